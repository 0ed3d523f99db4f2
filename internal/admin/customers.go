package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

// customerFields are the parameters of /customer/new and /customer/update (LiteLLM's
// NewCustomerRequest and UpdateCustomerRequest).
type customerFields struct {
	Alias              Opt[string]         `json:"alias"`
	Blocked            Opt[bool]           `json:"blocked"`
	BudgetID           Opt[string]         `json:"budget_id"`
	AllowedModelRegion Opt[string]         `json:"allowed_model_region"`
	DefaultModel       Opt[string]         `json:"default_model"`
	Metadata           Opt[map[string]any] `json:"metadata"`
	budgetFields
}

func (h *handler) validateCustomer(f *customerFields) error {
	for _, id := range []struct {
		name string
		v    Opt[string]
	}{{"alias", f.Alias}, {"budget_id", f.BudgetID}, {"default_model", f.DefaultModel}} {
		if err := checkID(id.name, id.v.V); err != nil {
			return err
		}
	}
	if r := f.AllowedModelRegion; r.Has() && r.V != "eu" && r.V != "us" {
		return badRequest("allowed_model_region must be \"eu\" or \"us\", got %q", r.V).WithParam("allowed_model_region")
	}
	if m := f.DefaultModel; m.Has() && !slices.ContainsFunc(h.Config.ModelList, func(d config.Deployment) bool { return d.ModelName == m.V }) {
		return openai.Errorf(http.StatusUnprocessableEntity, openai.TypeInvalidRequest, fmt.Sprintf(
			"Default Model not on proxy. Configure via `/model/new` or config.yaml. Default_model=%s", m.V)).WithParam("default_model")
	}
	if err := checkMetadata("metadata", f.Metadata.V); err != nil {
		return err
	}
	return f.limitFields().validate()
}

// apply sets the fields present in f on c; lf are f's limits after taking its tier's.
func (h *handler) applyCustomer(f *customerFields, lf *keyFields, c *store.Customer) {
	str := func(o Opt[string]) *string {
		if !o.Has() || o.V == "" {
			return nil
		}
		return o.Ptr()
	}
	if f.Alias.Set {
		c.Alias = str(f.Alias)
	}
	if f.Blocked.Set {
		c.Blocked = f.Blocked.Has() && f.Blocked.V
	}
	if f.BudgetID.Set {
		c.BudgetID = str(f.BudgetID)
	}
	if f.AllowedModelRegion.Set {
		c.AllowedModelRegion = str(f.AllowedModelRegion)
	}
	if f.DefaultModel.Set {
		c.DefaultModel = str(f.DefaultModel)
	}
	if f.Metadata.Set {
		c.Metadata = f.Metadata.V
	}
	now := h.Now().UTC()
	lf.applyBudget(&c.Budget, now, h.loc())
	lf.applyLimits(&c.Limits)
}

// customerObject is a customer as LiteLLM returns it (LiteLLM_EndUserTable): its budget and
// limits also as litellm_budget_table, null when it has none.
func customerObject(c *store.Customer) map[string]any {
	m := object(c)
	m["object_permission"] = nil
	m["litellm_budget_table"] = nil
	if c.MaxBudget != nil || c.SoftBudget != nil || c.BudgetDuration != "" || c.TPMLimit != nil || c.RPMLimit != nil || c.MaxParallelRequests != nil {
		m["litellm_budget_table"] = budgetTable(c.BudgetID, c.Budget, c.Limits)
	}
	return m
}

func customerMissing(id, param string) *openai.Error {
	return openai.Errorf(http.StatusNotFound, "not_found", fmt.Sprintf("End User Id=%s does not exist in db", id)).WithParam(param)
}

// customerNew is POST /customer/new (and /end_user/new).
func (h *handler) customerNew(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req struct {
		customerFields
		UserID string       `json:"user_id"`
		Spend  Opt[float64] `json:"spend"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := requiredID("user_id", req.UserID); err != nil {
		return err
	}
	if err := h.validateCustomer(&req.customerFields); err != nil {
		return err
	}
	if req.Spend.Has() {
		if err := checkAmount("spend", req.Spend.V); err != nil {
			return err
		}
	}
	ctx := r.Context()
	lf := req.limitFields()
	if err := h.takeTier(ctx, lf, req.BudgetID); err != nil {
		return err
	}
	now := h.Now().UTC()
	c := &store.Customer{UserID: req.UserID}
	c.CreatedAt, c.UpdatedAt, c.CreatedBy, c.UpdatedBy = now, now, p.UserID, p.UserID
	h.applyCustomer(&req.customerFields, lf, c)
	c.Spend = req.Spend.V
	tx := h.Store.Tx()
	if err := tx.PutCustomer(c); err != nil {
		return err
	}
	if err := tx.Commit(ctx); errors.Is(err, store.ErrCustomerExists) {
		return openai.Errorf(http.StatusBadRequest, "bad_request", fmt.Sprintf(
			"Customer already exists, passed user_id=%s. Please pass a new user_id.", req.UserID)).WithParam("user_id")
	} else if err != nil {
		return err
	}
	return writeJSON(w, customerObject(c))
}

// customerInfo is GET /customer/info?end_user_id= (and /end_user/info).
func (h *handler) customerInfo(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	id := r.URL.Query().Get("end_user_id")
	if err := requiredID("end_user_id", id); err != nil {
		return err
	}
	c, err := h.Store.GetCustomer(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return customerMissing(id, "end_user_id")
	} else if err != nil {
		return err
	}
	return writeJSON(w, customerObject(c))
}

// changeCustomer applies fn to customer id as read, retrying on concurrent changes.
func (h *handler) changeCustomer(ctx context.Context, id string, fn func(*store.Customer)) (*store.Customer, error) {
	return change(ctx, h, id, h.Store.GetCustomer, (*store.Tx).UpdateCustomer, func(c *store.Customer) error {
		fn(c)
		return nil
	})
}

// customerUpdate is POST /customer/update (and /end_user/update).
func (h *handler) customerUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req struct {
		customerFields
		UserID string `json:"user_id"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := requiredID("user_id", req.UserID); err != nil {
		return err
	}
	if err := h.validateCustomer(&req.customerFields); err != nil {
		return err
	}
	ctx := r.Context()
	lf := req.limitFields()
	if err := h.takeTier(ctx, lf, req.BudgetID); err != nil {
		return err
	}
	c, err := h.changeCustomer(ctx, req.UserID, func(c *store.Customer) {
		h.applyCustomer(&req.customerFields, lf, c)
		c.UpdatedAt, c.UpdatedBy = h.Now().UTC(), p.UserID
	})
	if errors.Is(err, store.ErrNotFound) {
		return customerMissing(req.UserID, "user_id")
	} else if err != nil {
		return err
	}
	return writeJSON(w, customerObject(c))
}

// customerIDs reads {"user_ids": [...]}, the body of delete, block and unblock.
func (h *handler) customerIDs(w http.ResponseWriter, r *http.Request) ([]string, error) {
	var req struct {
		UserIDs []string `json:"user_ids"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return nil, err
	}
	if len(req.UserIDs) == 0 {
		return nil, badRequest("user_ids is required: a list of customer ids").WithParam("user_ids")
	}
	if err := checkList("user_ids", req.UserIDs); err != nil {
		return nil, err
	}
	for _, id := range req.UserIDs {
		if id == "" {
			return nil, badRequest("user_ids has an empty id").WithParam("user_ids")
		}
		if err := checkID("user_ids", id); err != nil {
			return nil, err
		}
	}
	return req.UserIDs, nil
}

// customerDelete is POST /customer/delete (and /end_user/delete): every id must exist.
func (h *handler) customerDelete(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	ids, err := h.customerIDs(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var missing []string
	for _, id := range ids {
		if _, err := h.Store.GetCustomer(ctx, id); errors.Is(err, store.ErrNotFound) {
			missing = append(missing, id)
		} else if err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return openai.Errorf(http.StatusNotFound, "not_found", fmt.Sprintf("End User Id(s)=%s do not exist in db", strings.Join(missing, ", "))).WithParam("user_ids")
	}
	err = deleteAll(h, ctx, ids, h.Store.GetCustomer, "End User Id=%s does not exist in db", func(_ string, c *store.Customer) error {
		tx := h.Store.Tx()
		if err := tx.DeleteCustomer(c); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"deleted_customers": len(ids), "message": "Successfully deleted customers with ids: " + pyList(ids)})
}

// customerList is GET /customer/list (and /end_user/list): every customer, newest first
// (at most maxListed).
func (h *handler) customerList(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	cs, _, err := h.Store.ListCustomers(r.Context(), store.Page{Number: 1, Size: maxListed, Desc: true})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(cs))
	for i := range cs {
		out = append(out, customerObject(&cs[i]))
	}
	return writeJSON(w, out)
}

// customerBlock is POST /customer/block (and /end_user/block): blocks each customer,
// creating the ones that do not exist yet, as LiteLLM does.
func (h *handler) customerBlock(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.setBlocked(w, r, p, true)
}

// customerUnblock is POST /customer/unblock (and /end_user/unblock).
func (h *handler) customerUnblock(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.setBlocked(w, r, p, false)
}

func (h *handler) setBlocked(w http.ResponseWriter, r *http.Request, p *auth.Principal, blocked bool) error {
	ids, err := h.customerIDs(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := h.Now().UTC()
	records := make([]any, 0, len(ids))
	for _, id := range ids {
		c, err := h.changeCustomer(ctx, id, func(c *store.Customer) {
			c.Blocked, c.UpdatedAt, c.UpdatedBy = blocked, now, p.UserID
		})
		if errors.Is(err, store.ErrNotFound) {
			if !blocked {
				return customerMissing(id, "user_ids")
			}
			c = &store.Customer{UserID: id, Blocked: true}
			c.CreatedAt, c.UpdatedAt, c.CreatedBy, c.UpdatedBy = now, now, p.UserID, p.UserID
			tx := h.Store.Tx()
			if err = tx.PutCustomer(c); err == nil {
				err = tx.Commit(ctx)
			}
			if errors.Is(err, store.ErrCustomerExists) {
				// Created concurrently: block it as it is now.
				c, err = h.changeCustomer(ctx, id, func(c *store.Customer) { c.Blocked, c.UpdatedAt, c.UpdatedBy = true, now, p.UserID })
			}
		}
		if err != nil {
			return err
		}
		records = append(records, customerObject(c))
	}
	if blocked {
		return writeJSON(w, map[string]any{"blocked_users": records})
	}
	return writeJSON(w, map[string]any{"unblocked_users": records})
}

// customerDailyActivity is GET /customer/daily/activity (and /end_user/daily/activity),
// LiteLLM's SpendAnalyticsPaginatedResponse for customers: per UTC day from start_date to
// end_date, the figures of the customers in end_user_ids (comma-separated; all when unset)
// and each one's under breakdown.entities, from the rotator's end_user rollups (a day holds
// its store.RollupIDs highest-spending customers by name). One page holds every day.
func (h *handler) customerDailyActivity(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	q := r.URL.Query()
	if q.Get("start_date") == "" || q.Get("end_date") == "" {
		return badRequest("Please provide start_date and end_date").WithParam("start_date")
	}
	start, end, err := h.rollupRange(q)
	if err != nil {
		return err
	}
	var ids []string
	if list := q.Get("end_user_ids"); list != "" {
		ids = strings.Split(list, ",")
		if err := checkList("end_user_ids", ids); err != nil {
			return err
		}
	}
	days, err := h.Store.DailyRollups(r.Context(), store.ScopeEndUser, start, end)
	if err != nil {
		return err
	}
	results := make([]any, 0, len(days))
	var total store.SpendFigures
	for _, d := range days {
		var day store.SpendFigures
		entities := map[string]any{}
		for id, f := range d.IDs {
			if ids != nil && !slices.Contains(ids, id) {
				continue
			}
			day.Add(f)
			entities[id] = map[string]any{"metrics": activityMetrics(f), "metadata": map[string]any{}}
		}
		if len(entities) == 0 {
			continue
		}
		total.Add(day)
		results = append(results, map[string]any{"date": d.Day, "metrics": activityMetrics(day),
			"breakdown": map[string]any{"entities": entities, "models": map[string]any{}, "api_keys": map[string]any{}, "providers": map[string]any{}}})
	}
	m := activityMetrics(total)
	return writeJSON(w, map[string]any{"results": results, "metadata": map[string]any{
		"total_spend": m["spend"], "total_prompt_tokens": m["prompt_tokens"], "total_completion_tokens": m["completion_tokens"],
		"total_tokens": m["total_tokens"], "total_api_requests": m["api_requests"], "total_successful_requests": m["successful_requests"],
		"total_failed_requests": m["failed_requests"], "total_cache_read_input_tokens": 0, "total_cache_creation_input_tokens": 0,
		"page": 1, "total_pages": 1, "has_more": false,
	}})
}

// activityMetrics are f as LiteLLM's daily activity metrics.
func activityMetrics(f store.SpendFigures) map[string]any {
	return map[string]any{"spend": f.Spend, "prompt_tokens": f.PromptTokens, "completion_tokens": f.CompletionTokens,
		"total_tokens": f.PromptTokens + f.CompletionTokens, "api_requests": f.Calls, "successful_requests": f.Calls - f.Failures,
		"failed_requests": f.Failures, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}
}
