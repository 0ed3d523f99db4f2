package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// PrefixEmail is the partition key prefix of EMAIL#<lower-case email> (sk EMAIL): the
// user id of an email, which keeps emails unique and finds a user by email without a scan.
const (
	PrefixEmail = "EMAIL#"
	SortEmail   = "EMAIL"
)

type emailItem struct {
	UserID string `dynamodbav:"user_id"`
}

func emailPK(email string) string { return PrefixEmail + strings.ToLower(strings.TrimSpace(email)) }

func (u *User) index() {
	u.Kind = KindUser
	u.GSISort = gsiSort(SortPrefixUser, u.CreatedAt, u.UserID)
	setResetIndex(&u.Index, PrefixUser+u.UserID, budgetResets(u.Budget, nil, u.ModelMaxBudget))
}

// GetUser reads a user. ErrNotFound if absent.
func (s *Store) GetUser(ctx context.Context, id string) (*User, error) {
	var u User
	if err := s.get(ctx, PrefixUser+id, SortUser, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// UserIDByEmail returns the id of the user with the email (case-insensitive).
func (s *Store) UserIDByEmail(ctx context.Context, email string) (string, error) {
	var e emailItem
	if err := s.get(ctx, emailPK(email), SortEmail, &e); err != nil {
		return "", err
	}
	return e.UserID, nil
}

// PutUser adds the creation of a user (and its EMAIL# item) to the transaction.
func (t *Tx) PutUser(u *User) error {
	fillHeadroom(&u.Budget, nil, u.ModelMaxBudget)
	u.index()
	if err := t.put(PrefixUser+u.UserID, SortUser, u, nil, fmt.Errorf("%w: %s", ErrUserExists, u.UserID)); err != nil {
		return err
	}
	if e := aws.ToString(u.UserEmail); e != "" {
		return t.put(emailPK(e), SortEmail, emailItem{UserID: u.UserID}, nil, fmt.Errorf("%w: %s", ErrEmailTaken, e))
	}
	return nil
}

// PutUserAsMember adds the creation of a user that a team change names before it exists. A
// concurrent request creating the same user (or taking its email) fails the write with
// ErrConflict rather than ErrUserExists: the caller's Retry reads the user again and adds the
// team to it.
func (t *Tx) PutUserAsMember(u *User) error {
	n := len(t.fails)
	if err := t.PutUser(u); err != nil {
		return err
	}
	for i := n; i < len(t.fails); i++ {
		t.fails[i] = fmt.Errorf("%w: user %s created concurrently", ErrConflict, u.UserID)
	}
	return nil
}

// UpdateUser adds the change of a user from old (as read) to new; a changed email moves
// its EMAIL# item. Model budgets new keeps keep what calls in flight reserved on them.
func (t *Tx) UpdateUser(old, new *User) error {
	carryReserved(nil, nil, old.ModelMaxBudget, new.ModelMaxBudget)
	new.index()
	if err := t.update(PrefixUser+old.UserID, SortUser, old, new); err != nil {
		return err
	}
	oe, ne := strings.ToLower(aws.ToString(old.UserEmail)), strings.ToLower(aws.ToString(new.UserEmail))
	if oe == ne {
		return nil
	}
	if oe != "" {
		t.delEmail(oe, old.UserID)
	}
	if ne != "" {
		return t.put(emailPK(ne), SortEmail, emailItem{UserID: new.UserID}, nil, fmt.Errorf("%w: %s", ErrEmailTaken, ne))
	}
	return nil
}

// DeleteUser adds the deletion of a user as read (ErrConflict if it changed since) and of
// its EMAIL# item.
func (t *Tx) DeleteUser(u *User) error {
	if err := t.delUnchanged(PrefixUser+u.UserID, SortUser, u.Audit); err != nil {
		return err
	}
	if e := aws.ToString(u.UserEmail); e != "" {
		t.delEmail(e, u.UserID)
	}
	return nil
}

func (t *Tx) delEmail(email, userID string) {
	t.del(emailPK(email), SortEmail, "attribute_not_exists(pk) OR user_id = :u",
		item{":u": &types.AttributeValueMemberS{Value: userID}}, ErrConflict)
}

// ListUsers returns one page of users and the number of users (by_kind index).
func (s *Store) ListUsers(ctx context.Context, p Page) ([]User, int, error) {
	var users []User
	n, err := s.query(ctx, schema.IndexByKind, "kind", KindUser, SortPrefixUser, p, &users)
	return users, n, err
}
