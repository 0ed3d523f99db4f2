package admin

import (
	"cmp"
	"maps"
	"net/http"
	"slices"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// The /global/spend/* summaries read the rotator's daily rollups over a bounded range
// (start_date..end_date, by default the last 31 days, at most store.MaxDailySpendDays),
// never the spend logs of the range. A day's rollup names its store.RollupIDs highest
// spenders; the rest count only in its total.

// idSpend is one id's figures over a range.
type idSpend struct {
	ID string
	store.SpendFigures
}

// rollupTotals reads kind's daily rollups over the request's range and adds each id's
// figures up, highest spend first.
func (h *handler) rollupTotals(r *http.Request, kind string) ([]store.DayRollup, []idSpend, error) {
	start, end, err := h.rollupRange(r.URL.Query())
	if err != nil {
		return nil, nil, err
	}
	days, err := h.Store.DailyRollups(r.Context(), kind, start, end)
	if err != nil {
		return nil, nil, err
	}
	sums := map[string]*store.SpendFigures{}
	for _, d := range days {
		for id, f := range d.IDs {
			s, ok := sums[id]
			if !ok {
				s = &store.SpendFigures{}
				sums[id] = s
			}
			s.Spend += f.Spend
			s.Calls += f.Calls
			s.Failures += f.Failures
			s.PromptTokens += f.PromptTokens
			s.CompletionTokens += f.CompletionTokens
		}
	}
	out := make([]idSpend, 0, len(sums))
	for id, f := range sums {
		out = append(out, idSpend{id, *f})
	}
	slices.SortFunc(out, func(a, b idSpend) int {
		return cmp.Or(cmp.Compare(b.Spend, a.Spend), cmp.Compare(a.ID, b.ID))
	})
	return days, out, nil
}

// limitParam is ?limit= (default 5, as LiteLLM's, at most RollupIDs).
func limitParam(r *http.Request) (int, error) {
	return intParam(r.URL.Query().Get("limit"), 5, 1, store.RollupIDs, "limit")
}

// globalSpend is GET /global/spend, LiteLLM's {spend, max_budget}: with
// litellm_settings.max_budget, what the proxy budget counted since its last reset (what calls
// are held to) and budget_reset_at, its next reset; without, max_budget null and the spend of
// the last 30 days from the global rollup (as LiteLLM's monthly global spend).
func (h *handler) globalSpend(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	maxBudget := h.Config.LiteLLMSettings.MaxBudget
	out := map[string]any{"max_budget": maxBudget, "budget_reset_at": nil}
	if maxBudget != nil {
		b, err := h.Store.ProxyBudget(r.Context())
		if err != nil {
			return err
		}
		out["spend"], out["budget_reset_at"] = b.Spend, b.ResetAt
		return writeJSON(w, out)
	}
	end := h.Now().UTC()
	days, err := h.Store.DailyRollups(r.Context(), store.ScopeGlobal, end.AddDate(0, 0, -29), end)
	if err != nil {
		return err
	}
	spend := 0.0
	for _, d := range days {
		spend += d.Total.Spend
	}
	out["spend"] = spend
	return writeJSON(w, out)
}

// globalSpendKeys is GET /global/spend/keys?limit=: the keys that spent most.
func (h *handler) globalSpendKeys(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	return h.topSpenders(w, r, store.ScopeKey, "api_key")
}

// globalSpendModels is GET /global/spend/models?limit=: the model groups that spent most.
func (h *handler) globalSpendModels(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	return h.topSpenders(w, r, store.ScopeModel, "model")
}

func (h *handler) topSpenders(w http.ResponseWriter, r *http.Request, kind, field string) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	_, totals, err := h.rollupTotals(r, kind)
	if err != nil {
		return err
	}
	out := make([]any, 0, min(limit, len(totals)))
	for _, t := range totals[:min(limit, len(totals))] {
		out = append(out, map[string]any{field: t.ID, "total_spend": t.Spend})
	}
	return writeJSON(w, out)
}

// globalSpendTeams is GET /global/spend/teams: each day's spend per team, the teams, and
// each team's total.
func (h *handler) globalSpendTeams(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	days, totals, err := h.rollupTotals(r, store.ScopeTeam)
	if err != nil {
		return err
	}
	daily := make([]any, 0, len(days))
	for _, d := range days {
		row := map[string]any{"date": d.Day}
		for id, f := range d.IDs {
			row[id] = f.Spend
		}
		daily = append(daily, row)
	}
	teams := make([]string, 0, len(totals))
	perTeam := make([]any, 0, len(totals))
	for _, t := range totals {
		teams = append(teams, t.ID)
		perTeam = append(perTeam, map[string]any{"team_id": t.ID, "total_spend": t.Spend})
	}
	return writeJSON(w, map[string]any{"daily_spend": daily, "teams": teams, "total_spend_per_team": perTeam})
}

// reportGroups are /global/spend/report's group_by values: the rollup kind, and the field
// that holds a day's rows.
var reportGroups = map[string]struct{ kind, rows string }{
	"":         {store.ScopeTeam, "teams"},
	"team":     {store.ScopeTeam, "teams"},
	"customer": {store.ScopeEndUser, "customers"},
	"api_key":  {store.ScopeKey, "api_keys"},
}

// globalSpendReport is GET /global/spend/report?start_date=&end_date=&group_by=team|customer|api_key:
// per day, each team's (customer's, key's) spend, and tokens for keys. A customer is a log's
// end_user (the request's user field). LiteLLM's per-model metadata is left empty: the
// rollups hold no id-by-model figures.
func (h *handler) globalSpendReport(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	group, ok := reportGroups[r.URL.Query().Get("group_by")]
	if !ok {
		return badRequest("group_by must be team, customer or api_key; got %q", r.URL.Query().Get("group_by")).WithParam("group_by")
	}
	days, _, err := h.rollupTotals(r, group.kind)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(days))
	for _, d := range days {
		ids := slices.SortedFunc(maps.Keys(d.IDs), func(a, b string) int { return cmp.Or(cmp.Compare(d.IDs[b].Spend, d.IDs[a].Spend), cmp.Compare(a, b)) })
		rows := make([]any, 0, len(ids))
		for _, id := range ids {
			f := d.IDs[id]
			switch group.kind {
			case store.ScopeTeam:
				rows = append(rows, map[string]any{"team_name": id, "total_spend": f.Spend, "metadata": []any{}})
			case store.ScopeEndUser:
				rows = append(rows, map[string]any{"customer": id, "total_spend": f.Spend, "metadata": []any{}})
			default:
				rows = append(rows, map[string]any{"api_key": id, "total_cost": f.Spend,
					"total_input_tokens": f.PromptTokens, "total_output_tokens": f.CompletionTokens, "model_details": []any{}})
			}
		}
		out = append(out, map[string]any{"group_by_day": d.Day, group.rows: rows})
	}
	return writeJSON(w, out)
}
