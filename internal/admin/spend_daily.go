package admin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
// ids are key hashes), for proxy admins and viewers. With one of api_key (a key or its
// hash), team_id or user_id instead of group_by, the figures of that one key, team or user
// (ids holds it alone), for whoever may read its info: a user their own keys and record,
// a team member the team. It reads the rotator's hourly and daily rollups and only the
// hours not rolled yet from the spend logs (of the one id's index partition, when named),
// so the console's charts never scan months of logs.
func (h *handler) spendDaily(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q := r.URL.Query()
	scope, err := h.dailyScope(r, p)
	if err != nil {
		return err
	}
	start, end, err := h.rollupRange(q)
	if err != nil {
		return err
	}
	out := dailySpend{Results: []store.DayRollup{}}
	if scope.ID != "" {
		days, _, err := h.Store.DailySpend(r.Context(), scope, start, end, "", store.MaxDailySpendDays)
		if err != nil {
			return err
		}
		out.GroupBy = scope.Kind
		for _, d := range days {
			out.Results = append(out.Results, store.DayRollup{Day: d.Day, Rollup: store.Rollup{Total: d.SpendFigures, IDs: map[string]store.SpendFigures{scope.ID: d.SpendFigures}}})
		}
	} else {
		if !p.IsProxyAdmin() && p.Role != auth.RoleProxyAdminViewer {
			return forbidden("Only proxy admins and viewers see spend by group; pass api_key, team_id or user_id for the daily spend of a key, team or user you may see.")
		}
		group := q.Get("group_by")
		kind, ok := dailyGroups[group]
		if !ok {
			return badRequest("group_by must be one of global, model, team, api_key, user, tag; got %q", group).WithParam("group_by")
		}
		days, err := h.Store.DailyRollups(r.Context(), kind, start, end)
		if err != nil {
			return err
		}
		out.GroupBy = kind
		out.Results = append(out.Results, days...)
	}
	st, err := h.Store.RollupState(r.Context())
	if err != nil {
		return err
	}
	if !st.Since.IsZero() {
		t := st.Through.Add(time.Hour)
		out.RolledThrough = &t
	}
	return writeJSON(w, out)
}

// dailyScope is the one key, team or user a /spend/daily request names (zero: none), once
// the caller is found to be allowed to read it; a caller who may not gets the answer for
// one that does not exist.
func (h *handler) dailyScope(r *http.Request, p *auth.Principal) (store.SpendScope, error) {
	q := r.URL.Query()
	var named []string
	for _, param := range []string{"group_by", "api_key", "team_id", "user_id"} {
		if q.Get(param) != "" {
			named = append(named, param)
		}
	}
	if len(named) > 1 {
		return store.SpendScope{}, badRequest("pass one of group_by, api_key, team_id and user_id, not %s", strings.Join(named, " and ")).WithParam(named[1])
	}
	if len(named) == 0 || named[0] == "group_by" {
		return store.SpendScope{}, nil
	}
	param, id := named[0], q.Get(named[0])
	if err := checkID(param, id); err != nil {
		return store.SpendScope{}, err
	}
	switch param {
	case "api_key":
		k, _, err := h.keyFor(r, p, id, notFound("Key not found in database").WithParam("api_key"))
		if err != nil {
			return store.SpendScope{}, err
		}
		return store.SpendScope{Kind: store.ScopeKey, ID: k.Token}, nil
	case "team_id":
		missing := notFound(fmt.Sprintf("Team not found, passed team id: %s.", id)).WithParam("team_id")
		t, err := h.teamOf(r, id)
		if err != nil {
			return store.SpendScope{}, err
		}
		if t == nil {
			return store.SpendScope{}, missing
		}
		if err := mayAct(withPermission(r, readTeam), p, target{team: t}, missing); err != nil {
			return store.SpendScope{}, err
		}
		return store.SpendScope{Kind: store.ScopeTeam, ID: id}, nil
	}
	if err := mayAct(withPermission(r, readUser), p, target{user: id}, forbidden("You can only see the daily spend of your own user.").WithParam("user_id")); err != nil {
		return store.SpendScope{}, err
	}
	return store.SpendScope{Kind: store.ScopeUser, ID: id}, nil
}
