package store

import (
	"context"
	"fmt"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// Customers (LiteLLM's end users): whom a request's "user" field names. Their budget and
// limits are charged by the reservation like a key's.
const (
	PrefixCustomer     = "CUSTOMER#" // CUSTOMER#<user_id>, sk "CUSTOMER"
	SortCustomer       = "CUSTOMER"
	KindCustomer       = "CUSTOMER"
	SortPrefixCustomer = "CUSTOMER#"
)

// ErrCustomerExists: a customer with that id exists.
var ErrCustomerExists = fmt.Errorf("customer %w", ErrExists)

// Customer is an end user (pk CUSTOMER#<user_id>, sk CUSTOMER), with LiteLLM's end-user
// fields. BudgetID names the tier whose limits it took; its spend is its own.
type Customer struct {
	UserID             string         `dynamodbav:"user_id" json:"user_id"`
	Alias              *string        `dynamodbav:"alias,omitempty" json:"alias"`
	Blocked            bool           `dynamodbav:"blocked" json:"blocked"`
	BudgetID           *string        `dynamodbav:"budget_id,omitempty" json:"budget_id"`
	AllowedModelRegion *string        `dynamodbav:"allowed_model_region,omitempty" json:"allowed_model_region"`
	DefaultModel       *string        `dynamodbav:"default_model,omitempty" json:"default_model"`
	Metadata           map[string]any `dynamodbav:"metadata,omitempty" json:"metadata"`
	Budget
	Limits
	Audit
	Index
}

func (c *Customer) index() {
	c.Kind = KindCustomer
	c.GSISort = gsiSort(SortPrefixCustomer, c.CreatedAt, c.UserID)
	setResetIndex(&c.Index, PrefixCustomer+c.UserID, budgetResets(c.Budget, nil, nil))
}

// GetCustomer reads a customer. ErrNotFound if absent.
func (s *Store) GetCustomer(ctx context.Context, id string) (*Customer, error) {
	var c Customer
	if err := s.get(ctx, PrefixCustomer+id, SortCustomer, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// PutCustomer adds the creation of a customer (ErrCustomerExists if its id is taken).
func (t *Tx) PutCustomer(c *Customer) error {
	fillHeadroom(&c.Budget, nil, nil)
	c.index()
	return t.put(PrefixCustomer+c.UserID, SortCustomer, c, nil, fmt.Errorf("%w: %s", ErrCustomerExists, c.UserID))
}

// UpdateCustomer adds the change of a customer from old (as read) to new; see Tx.update.
func (t *Tx) UpdateCustomer(old, new *Customer) error {
	new.index()
	return t.update(PrefixCustomer+old.UserID, SortCustomer, old, new)
}

// DeleteCustomer adds the deletion of a customer as read (ErrConflict if it changed since).
func (t *Tx) DeleteCustomer(c *Customer) error {
	return t.delUnchanged(PrefixCustomer+c.UserID, SortCustomer, c.Audit)
}

// ListCustomers returns one page of customers and their number (by_kind index).
func (s *Store) ListCustomers(ctx context.Context, p Page) ([]Customer, int, error) {
	var cs []Customer
	n, err := s.query(ctx, schema.IndexByKind, "kind", KindCustomer, SortPrefixCustomer, p, &cs)
	return cs, n, err
}
