package admin

import (
	"net/http"
	"net/url"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// dailyGroups maps GET /spend/daily's group_by to the rollup kinds.
var dailyGroups = map[string]string{
	"": store.ScopeGlobal, "global": store.ScopeGlobal, "model": store.ScopeModel, "team": store.ScopeTeam,
	"api_key": store.ScopeKey, "user": store.ScopeUser, "tag": store.ScopeTag,
}

// dailySpend is the answer of GET /spend/daily.
type dailySpend struct {
	GroupBy string `json:"group_by"`
	// RolledThrough is the end of the last hour read from the rollups (null before the
	// first); later hours were added up from the spend logs.
	RolledThrough *time.Time        `json:"rolled_through"`
	Results       []store.DayRollup `json:"results"`
}

// rollupRange is the start_date..end_date of a request read from the rollups: by default
// the last 31 days, at most store.MaxDailySpendDays.
func (h *handler) rollupRange(q url.Values) (time.Time, time.Time, error) {
	start, end, err := dateRange(q.Get("start_date"), q.Get("end_date"))
	if err != nil {
		return start, end, err
	}
	if start.IsZero() {
		end = h.Now().UTC()
		start = end.AddDate(0, 0, -30)
	}
	if end.Sub(start) >= store.MaxDailySpendDays*24*time.Hour {
		return start, end, badRequest("start_date to end_date spans more than %d days; ask for a shorter range", store.MaxDailySpendDays).WithParam("end_date")
	}
	return start, end, nil
}

// spendDaily is GET /spend/daily[?group_by=global|model|team|api_key|user|tag&start_date=&end_date=]:
// spend, calls and tokens per UTC day (by default the last 31 days), in total and for the
// store.RollupIDs highest-spending ids of the group (the rest added up in "other"; api_key
// ids are key hashes). It reads the rotator's hourly and daily rollups and only the hours
// not rolled yet from the spend logs, so the console's charts never scan months of logs.
func (h *handler) spendDaily(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	q := r.URL.Query()
	group := q.Get("group_by")
	kind, ok := dailyGroups[group]
	if !ok {
		return badRequest("group_by must be one of global, model, team, api_key, user, tag; got %q", group).WithParam("group_by")
	}
	start, end, err := h.rollupRange(q)
	if err != nil {
		return err
	}
	days, err := h.Store.DailyRollups(r.Context(), kind, start, end)
	if err != nil {
		return err
	}
	st, err := h.Store.RollupState(r.Context())
	if err != nil {
		return err
	}
	out := dailySpend{GroupBy: kind, Results: days}
	if out.Results == nil {
		out.Results = []store.DayRollup{}
	}
	if !st.Since.IsZero() {
		t := st.Through.Add(time.Hour)
		out.RolledThrough = &t
	}
	return writeJSON(w, out)
}
