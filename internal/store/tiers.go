package store

import (
	"context"
	"fmt"
	"time"

	"github.com/llmgate/llmgate/internal/store/schema"
)

// Budget tiers (LiteLLM's budget table): named sets of limits that keys and customers take
// with budget_id. A tier holds no spend: each record that takes it is charged on its own.
const (
	PrefixTier     = "BUDGET#" // BUDGET#<budget_id>, sk "BUDGET"
	SortTier       = "BUDGET"
	KindTier       = "BUDGET"
	SortPrefixTier = "BUDGET#"
)

// ErrTierExists: a budget tier with that id exists.
var ErrTierExists = fmt.Errorf("budget %w", ErrExists)

// Tier is a budget tier (pk BUDGET#<budget_id>, sk BUDGET), with LiteLLM's budget fields.
type Tier struct {
	BudgetID string `dynamodbav:"budget_id" json:"budget_id"`
	// MaxBudget is stored apart from the max_budget of charged records: a tier has no spend
	// nor remaining for the store's update to recompute.
	MaxBudget      *float64 `dynamodbav:"tier_max_budget,omitempty" json:"max_budget"`
	SoftBudget     *float64 `dynamodbav:"soft_budget,omitempty" json:"soft_budget"`
	BudgetDuration string   `dynamodbav:"budget_duration,omitempty" json:"budget_duration"`
	// BudgetResetAt is when a period that starts now would end (LiteLLM shows it).
	BudgetResetAt  *time.Time             `dynamodbav:"budget_reset_at,omitempty" json:"budget_reset_at"`
	ModelMaxBudget map[string]ModelBudget `dynamodbav:"model_max_budget,omitempty" json:"model_max_budget"`
	TPMLimit       *int64                 `dynamodbav:"tpm_limit,omitempty" json:"tpm_limit"`
	RPMLimit       *int64                 `dynamodbav:"rpm_limit,omitempty" json:"rpm_limit"`
	MaxParallel    *int64                 `dynamodbav:"max_parallel_requests,omitempty" json:"max_parallel_requests"`
	Audit
	Index
}

func (t *Tier) index() {
	t.Kind = KindTier
	t.GSISort = gsiSort(SortPrefixTier, t.CreatedAt, t.BudgetID)
}

// GetTier reads a budget tier. ErrNotFound if absent.
func (s *Store) GetTier(ctx context.Context, id string) (*Tier, error) {
	var t Tier
	if err := s.get(ctx, PrefixTier+id, SortTier, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// PutTier adds the creation of a tier (ErrTierExists if its id is taken).
func (t *Tx) PutTier(tier *Tier) error {
	tier.index()
	return t.put(PrefixTier+tier.BudgetID, SortTier, tier, nil, fmt.Errorf("%w: %s", ErrTierExists, tier.BudgetID))
}

// UpdateTier adds the change of a tier from old (as read) to new.
func (t *Tx) UpdateTier(old, new *Tier) error {
	new.index()
	return t.update(PrefixTier+old.BudgetID, SortTier, old, new)
}

// DeleteTier adds the deletion of a tier as read (ErrConflict if it changed since). Keys
// and customers that took its limits keep them.
func (t *Tx) DeleteTier(tier *Tier) error {
	return t.delUnchanged(PrefixTier+tier.BudgetID, SortTier, tier.Audit)
}

// ListTiers returns one page of tiers and their number (by_kind index).
func (s *Store) ListTiers(ctx context.Context, p Page) ([]Tier, int, error) {
	var tiers []Tier
	n, err := s.query(ctx, schema.IndexByKind, "kind", KindTier, SortPrefixTier, p, &tiers)
	return tiers, n, err
}
