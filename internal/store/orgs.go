package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// Organizations group teams: their models and budget are a ceiling for the teams in them.
const (
	PrefixOrg     = "ORG#" // ORG#<organization_id>, sk "ORG"
	SortOrg       = "ORG"
	KindOrg       = "ORG"
	SortPrefixOrg = "ORG#"
)

// ErrOrgExists: an organization with that id exists.
var ErrOrgExists = fmt.Errorf("organization %w", ErrExists)

// Org is an organization (pk ORG#<organization_id>, sk ORG), with LiteLLM's fields.
type Org struct {
	OrganizationID    string         `dynamodbav:"organization_id" json:"organization_id"`
	OrganizationAlias string         `dynamodbav:"organization_alias" json:"organization_alias"`
	BudgetID          *string        `dynamodbav:"budget_id,omitempty" json:"budget_id"`
	Models            []string       `dynamodbav:"models" json:"models"`
	Metadata          map[string]any `dynamodbav:"metadata,omitempty" json:"metadata"`
	Members           []OrgMember    `dynamodbav:"members" json:"-"`
	// SpendThrough is the last hour (rollup hour, "2006-01-02T15") whose calls Spend
	// counts: the rotator adds an organization's spend hour by hour from the spend logs
	// (see Store.addOrgSpend), not each call.
	SpendThrough string `dynamodbav:"spend_through,omitempty" json:"spend_through,omitempty"`
	Budget
	Limits
	Audit
	Index
}

// OrgMember is a user's role in an organization: org_admin, internal_user or
// internal_user_viewer.
type OrgMember struct {
	UserID   string `dynamodbav:"user_id" json:"user_id"`
	UserRole string `dynamodbav:"user_role" json:"user_role"`
}

func (o *Org) index() {
	o.Kind = KindOrg
	o.GSISort = gsiSort(SortPrefixOrg, o.CreatedAt, o.OrganizationID)
}

// GetOrg reads an organization. ErrNotFound if absent.
func (s *Store) GetOrg(ctx context.Context, id string) (*Org, error) {
	var o Org
	if err := s.get(ctx, PrefixOrg+id, SortOrg, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// PutOrg adds the creation of an organization (ErrOrgExists if its id is taken).
func (t *Tx) PutOrg(o *Org) error {
	fillHeadroom(&o.Budget, nil, nil)
	o.index()
	return t.put(PrefixOrg+o.OrganizationID, SortOrg, o, nil, fmt.Errorf("%w: %s", ErrOrgExists, o.OrganizationID))
}

// UpdateOrg adds the change of an organization from old (as read) to new; see Tx.update.
func (t *Tx) UpdateOrg(old, new *Org) error {
	new.index()
	return t.update(PrefixOrg+old.OrganizationID, SortOrg, old, new)
}

// DeleteOrg adds the deletion of an organization as read (ErrConflict if it changed since).
func (t *Tx) DeleteOrg(o *Org) error {
	return t.delUnchanged(PrefixOrg+o.OrganizationID, SortOrg, o.Audit)
}

// ListOrgs returns one page of organizations and their number (by_kind index).
func (s *Store) ListOrgs(ctx context.Context, p Page) ([]Org, int, error) {
	var os []Org
	n, err := s.query(ctx, schema.IndexByKind, "kind", KindOrg, SortPrefixOrg, p, &os)
	return os, n, err
}

// addOrgSpend adds spend, what the calls of organization id cost in the rolled hour
// (rollupHourFormat), to its spend (and remaining, when it has a budget), once: the
// organization keeps the last hour added (spend_through), so a rerun of an hour adds
// nothing. Hours must be added in order. A deleted organization is skipped. It is the
// rotator's write, one per organization and hour with calls: no call pays for it.
func (s *Store) addOrgSpend(ctx context.Context, id, hour string, spend float64) error {
	for range 3 {
		o, err := s.GetOrg(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("organization spend %s: %w", id, err)
		}
		if o.SpendThrough >= hour {
			return nil
		}
		// remaining is kept only beside a max_budget: which of the two holds is part of the
		// condition, so a budget set since the read makes this a conflict and a re-read.
		update, cond := "SET spend = spend + :s, spend_through = :h", "attribute_exists(pk) AND (attribute_not_exists(spend_through) OR spend_through < :h) AND "
		if o.MaxBudget != nil {
			update, cond = update+", remaining = remaining - :s", cond+"attribute_exists(remaining)"
		} else {
			cond += "attribute_not_exists(remaining)"
		}
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: keyOf(PrefixOrg+id, SortOrg),
			UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
			ExpressionAttributeValues: item{":s": &types.AttributeValueMemberN{Value: usd(spend)}, ":h": &types.AttributeValueMemberS{Value: hour}},
		})
		var failed *types.ConditionalCheckFailedException
		if !errors.As(err, &failed) {
			if err != nil {
				return fmt.Errorf("organization spend %s: %w", id, err)
			}
			return nil
		}
	}
	return fmt.Errorf("organization spend %s: %w", id, ErrConflict)
}
