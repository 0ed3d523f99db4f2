package store

import (
	"context"
	"fmt"

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
