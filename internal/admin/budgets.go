package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/store"
)

// budgetFields are the budget and limits that tiers, customers and organizations take
// (LiteLLM's budget-table fields).
type budgetFields struct {
	MaxBudget      Opt[float64] `json:"max_budget"`
	SoftBudget     Opt[float64] `json:"soft_budget"`
	BudgetDuration Opt[string]  `json:"budget_duration"`
	TPMLimit       Opt[int64]   `json:"tpm_limit"`
	RPMLimit       Opt[int64]   `json:"rpm_limit"`
	MaxParallel    Opt[int64]   `json:"max_parallel_requests"`
}

// limitFields returns them as key fields, which validate, take a tier's limits and apply
// as a key's do.
func (f *budgetFields) limitFields() *keyFields {
	return &keyFields{
		MaxBudget: f.MaxBudget, SoftBudget: f.SoftBudget, BudgetDuration: f.BudgetDuration,
		TPMLimit: f.TPMLimit, RPMLimit: f.RPMLimit, MaxParallel: f.MaxParallel,
	}
}

// budgetTable is a record's budget and limits as LiteLLM's litellm_budget_table object.
func budgetTable(budgetID *string, b store.Budget, l store.Limits) map[string]any {
	return map[string]any{
		"budget_id": budgetID, "max_budget": b.MaxBudget, "soft_budget": b.SoftBudget,
		"tpm_limit": l.TPMLimit, "rpm_limit": l.RPMLimit, "max_parallel_requests": l.MaxParallelRequests,
		"budget_duration": nilIfEmpty(b.BudgetDuration), "budget_reset_at": timeOrNil(b.BudgetResetAt), "model_max_budget": nil,
	}
}

// requiredID refuses an empty or oversized id field.
func requiredID(name, v string) error {
	if v == "" {
		return badRequest("%s is required", name).WithParam(name)
	}
	return checkID(name, v)
}

// change reads the record id with get, applies fn to a copy and writes the difference with
// update, reading again when the record changed concurrently. It returns the new record, or
// get's ErrNotFound.
func change[T any](ctx context.Context, h *handler, id string, get func(context.Context, string) (*T, error),
	update func(*store.Tx, *T, *T) error, fn func(*T) error) (*T, error) {
	var out *T
	err := store.Retry(ctx, func() error {
		old, err := get(ctx, id)
		if err != nil {
			return err
		}
		rec, err := store.Clone(old)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
		tx := h.Store.Tx()
		if err := update(tx, old, rec); err != nil {
			return err
		}
		out = rec
		return tx.Commit(ctx)
	})
	return out, err
}

// tierFields are the limits of a budget tier (LiteLLM's BudgetNewRequest).
type tierFields struct {
	budgetFields
	ModelMaxBudget Opt[map[string]modelBudget] `json:"model_max_budget"`
}

// limitFields returns the fields validate shares with keys.
func (f *tierFields) limitFields() *keyFields {
	lf := f.budgetFields.limitFields()
	lf.ModelMaxBudget = f.ModelMaxBudget
	return lf
}

// apply sets the fields present in f on t. budget_reset_at is when a period starting now
// would end.
func (f *tierFields) apply(t *store.Tier, now time.Time) {
	if f.MaxBudget.Set {
		t.MaxBudget = f.MaxBudget.Ptr()
	}
	if f.SoftBudget.Set {
		t.SoftBudget = f.SoftBudget.Ptr()
	}
	if f.BudgetDuration.Set {
		t.BudgetDuration, t.BudgetResetAt = "", nil
		if f.BudgetDuration.Has() {
			d, _ := duration.Parse(f.BudgetDuration.V) // validated
			at := d.Add(now)
			t.BudgetDuration, t.BudgetResetAt = f.BudgetDuration.V, &at
		}
	}
	if f.TPMLimit.Set {
		t.TPMLimit = f.TPMLimit.Ptr()
	}
	if f.RPMLimit.Set {
		t.RPMLimit = f.RPMLimit.Ptr()
	}
	if f.MaxParallel.Set {
		t.MaxParallel = f.MaxParallel.Ptr()
	}
	if f.ModelMaxBudget.Set {
		t.ModelMaxBudget = f.limitFields().modelBudgets(nil, now, time.UTC)
	}
}

// fillFromTier gives f the tier's limits that f leaves out: a key or customer that takes
// budget_id takes the tier's limits, and limits the request sets itself win.
func fillFromTier(f *keyFields, t *store.Tier) {
	if !f.MaxBudget.Set && t.MaxBudget != nil {
		f.MaxBudget = Of(*t.MaxBudget)
	}
	if !f.SoftBudget.Set && t.SoftBudget != nil {
		f.SoftBudget = Of(*t.SoftBudget)
	}
	if !f.BudgetDuration.Set && t.BudgetDuration != "" {
		f.BudgetDuration = Of(t.BudgetDuration)
	}
	for _, l := range []struct {
		dst *Opt[int64]
		v   *int64
	}{{&f.TPMLimit, t.TPMLimit}, {&f.RPMLimit, t.RPMLimit}, {&f.MaxParallel, t.MaxParallel}} {
		if !l.dst.Set && l.v != nil {
			*l.dst = Of(*l.v)
		}
	}
	if !f.ModelMaxBudget.Set && len(t.ModelMaxBudget) > 0 {
		m := make(map[string]modelBudget, len(t.ModelMaxBudget))
		for model, b := range t.ModelMaxBudget {
			m[model] = modelBudget{BudgetLimit: Of(b.BudgetLimit), TimePeriod: b.TimePeriod}
		}
		f.ModelMaxBudget = Of(m)
	}
}

// takeTier fills f from the tier its budget_id names (a 400 naming budget_id when there is
// no such tier). Nothing happens without a budget_id.
func (h *handler) takeTier(ctx context.Context, f *keyFields, id Opt[string]) error {
	if !id.Has() || id.V == "" {
		return nil
	}
	if err := checkID("budget_id", id.V); err != nil {
		return err
	}
	t, err := h.Store.GetTier(ctx, id.V)
	if errors.Is(err, store.ErrNotFound) {
		return badRequest("Budget not found, passed budget_id=%s. Create it with /budget/new.", id.V).WithParam("budget_id")
	} else if err != nil {
		return err
	}
	fillFromTier(f, t)
	return nil
}

// newTierRequest is /budget/new's and /budget/update's body.
type newTierRequest struct {
	tierFields
	BudgetID Opt[string] `json:"budget_id"`
}

func (req *newTierRequest) validate() error {
	if err := checkID("budget_id", req.BudgetID.V); err != nil {
		return err
	}
	return req.limitFields().validate()
}

func tierNotFound(id string) error {
	return notFound(fmt.Sprintf("Budget not found, passed budget_id=%s", id)).WithParam("budget_id")
}

// budgetNew is POST /budget/new.
func (h *handler) budgetNew(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req newTierRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	now := h.Now().UTC()
	t := &store.Tier{BudgetID: req.BudgetID.V}
	if t.BudgetID == "" {
		t.BudgetID = uuid.NewString()
	}
	t.CreatedAt, t.UpdatedAt, t.CreatedBy, t.UpdatedBy = now, now, p.UserID, p.UserID
	req.apply(t, now)
	tx := h.Store.Tx()
	if err := tx.PutTier(t); err != nil {
		return err
	}
	if err := tx.Commit(r.Context()); errors.Is(err, store.ErrTierExists) {
		return invalid(fmt.Sprintf("Budget with id '%s' already exists.", t.BudgetID)).WithParam("budget_id")
	} else if err != nil {
		return err
	}
	return writeJSON(w, t)
}

// budgetUpdate is POST /budget/update. Keys and customers that took the tier keep the
// limits they took.
func (h *handler) budgetUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req newTierRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := requiredID("budget_id", req.BudgetID.V); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	now := h.Now().UTC()
	out, err := change(r.Context(), h, req.BudgetID.V, h.Store.GetTier, (*store.Tx).UpdateTier, func(t *store.Tier) error {
		req.apply(t, now)
		t.UpdatedAt, t.UpdatedBy = now, p.UserID
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return tierNotFound(req.BudgetID.V)
	} else if err != nil {
		return err
	}
	return writeJSON(w, out)
}

// budgetInfo is POST /budget/info: the tiers of {"budgets": [ids]} that exist.
func (h *handler) budgetInfo(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var req struct {
		Budgets []string `json:"budgets"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if len(req.Budgets) == 0 {
		return badRequest("Specify list of budget id's to query. Passed in=[]").WithParam("budgets")
	}
	if err := checkList("budgets", req.Budgets); err != nil {
		return err
	}
	out := []store.Tier{}
	for _, id := range req.Budgets {
		if err := checkID("budgets", id); err != nil {
			return err
		}
		t, err := h.Store.GetTier(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		out = append(out, *t)
	}
	return writeJSON(w, out)
}

// budgetList is GET /budget/list: every tier, newest first (at most maxListed).
func (h *handler) budgetList(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	tiers, _, err := h.Store.ListTiers(r.Context(), store.Page{Number: 1, Size: maxListed, Desc: true})
	if err != nil {
		return err
	}
	if tiers == nil {
		tiers = []store.Tier{}
	}
	return writeJSON(w, tiers)
}

// tierSettings are the fields /budget/settings describes, in LiteLLM's order, with their
// types as its admin UI reads them.
var tierSettings = []struct{ name, typ, description string }{
	{"max_budget", "Float", "Spend in USD a record on the tier may reach."},
	{"soft_budget", "Float", "Spend in USD above which calls are logged as over a soft budget, not refused."},
	{"max_parallel_requests", "Integer", "Calls a record on the tier may have in flight at once."},
	{"tpm_limit", "Integer", "Tokens per minute."},
	{"rpm_limit", "Integer", "Requests per minute."},
	{"budget_duration", "String", "How often spend resets (30s, 1h, 1d, 1mo)."},
	{"model_max_budget", "Object", "Budgets per model: {model: {budget_limit, time_period}}."},
}

// budgetSettings is GET /budget/settings?budget_id=: each configurable field of a tier with
// its value (null for a tier that does not exist), as LiteLLM's admin UI reads it.
func (h *handler) budgetSettings(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	id := r.URL.Query().Get("budget_id")
	if err := requiredID("budget_id", id); err != nil {
		return err
	}
	values := map[string]any{}
	t, err := h.Store.GetTier(r.Context(), id)
	switch {
	case err == nil:
		values = object(t)
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	out := make([]any, 0, len(tierSettings))
	for _, f := range tierSettings {
		out = append(out, map[string]any{"field_name": f.name, "field_type": f.typ, "field_description": f.description,
			"field_value": values[f.name], "stored_in_db": true, "field_default_value": nil})
	}
	return writeJSON(w, out)
}

// maxListed bounds the unpaged lists (/budget/list, /organization/list): LiteLLM returns
// every row; one answer stays bounded.
const maxListed = 1000

// budgetDelete is POST /budget/delete {"id": budget_id}. Keys and customers that took the
// tier keep its limits.
func (h *handler) budgetDelete(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var req struct {
		ID string `json:"id"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := requiredID("id", req.ID); err != nil {
		return err
	}
	ctx := r.Context()
	var deleted *store.Tier
	err := store.Retry(ctx, func() error {
		t, err := h.Store.GetTier(ctx, req.ID)
		if err != nil {
			return err
		}
		tx := h.Store.Tx()
		if err := tx.DeleteTier(t); err != nil {
			return err
		}
		deleted = t
		return tx.Commit(ctx)
	})
	if errors.Is(err, store.ErrNotFound) {
		return tierNotFound(req.ID)
	} else if err != nil {
		return err
	}
	return writeJSON(w, deleted)
}
