package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// logSpend writes a spend log the way a settled call does.
func (e *env) logSpend(l store.SpendLog) {
	e.t.Helper()
	ctx := context.Background()
	r, err := e.st.Reserve(ctx, store.ReserveInput{RequestID: l.RequestID, Model: l.Model, Now: l.StartTime})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.st.Settle(ctx, r, store.Settlement{Cost: l.Spend, Log: &l}); err != nil {
		e.t.Fatal(err)
	}
}

// list calls GET path and decodes a JSON array.
func (e *env) list(path, key string) []map[string]any {
	e.t.Helper()
	code, raw := e.raw("GET", path, key, nil)
	var out []map[string]any
	if code != http.StatusOK || json.Unmarshal(raw, &out) != nil {
		e.t.Fatalf("GET %s = %d %s, want 200 and a JSON array", path, code, raw)
	}
	return out
}

func requestIDs(logs []map[string]any) []string {
	ids := []string{}
	for _, l := range logs {
		ids = append(ids, l["request_id"].(string))
	}
	return ids
}

func TestSpendLogs_FiltersAsLiteLLM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key1 := e.generate(map[string]any{"user_id": "u1"})
	day := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, l := range []store.SpendLog{
		{RequestID: "a", APIKey: auth.Hash(key1), User: "u1", Model: "gpt-4o", StartTime: day, Spend: 0.5, Status: store.StatusSuccess},
		{RequestID: "b", APIKey: auth.Hash(key1), User: "u1", Model: "gpt-4o-mini", StartTime: day.Add(2 * time.Hour), Spend: 0.25, Status: store.StatusSuccess},
		{RequestID: "c", APIKey: "other-hash", User: "u2", Model: "gpt-4o", StartTime: day.AddDate(0, 0, 1), Spend: 1, Status: store.StatusFailure},
	} {
		e.logSpend(l)
	}
	tests := []struct {
		name, path, key string
		want            []string
	}{
		{"all, newest first", "/spend/logs?start_date=2026-04-30&end_date=2026-05-03&summarize=false", master, []string{"c", "b", "a"}},
		{"by raw api_key", "/spend/logs?api_key=" + key1, master, []string{"b", "a"}},
		{"by key hash", "/spend/logs?api_key=other-hash", master, []string{"c"}},
		{"by user_id", "/spend/logs?user_id=u2", master, []string{"c"}},
		{"by request_id", "/spend/logs?request_id=b", master, []string{"b"}},
		{"unknown request_id", "/spend/logs?request_id=zz", master, []string{}},
		{"one day", "/spend/logs?start_date=2026-05-02&end_date=2026-05-02&summarize=false", master, []string{"c"}},
		{"an internal user sees only their own", "/spend/logs", key1, []string{"b", "a"}},
		{"an internal user cannot read another user's request", "/spend/logs?request_id=c", key1, []string{}},
	}
	for _, tt := range tests {
		if got := requestIDs(e.list(tt.path, tt.key)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	// Naming another user is refused rather than silently answered with one's own logs.
	code, body := e.call("GET", "/spend/logs?user_id=u2", key1, nil)
	wantError(t, code, body, 403, "auth_error", "You can only view the spend logs of your own user.")
	logs := e.list("/spend/logs?request_id=a", master)
	if l := logs[0]; l["api_key"] != auth.Hash(key1) || l["spend"] != 0.5 || l["startTime"] == nil || l["status"] != "success" {
		t.Errorf("log fields = %v", l)
	}
}

func TestSpendLogs_SummarizesByDay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	day := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, l := range []store.SpendLog{
		{RequestID: "a", APIKey: "k1", User: "u1", Model: "gpt-4o", StartTime: day, Spend: 0.5},
		{RequestID: "b", APIKey: "k2", User: "u1", Model: "gpt-4o-mini", StartTime: day.Add(time.Hour), Spend: 0.25},
		{RequestID: "c", APIKey: "k1", User: "u2", Model: "gpt-4o", StartTime: day.AddDate(0, 0, 1), Spend: 1},
	} {
		e.logSpend(l)
	}
	got := e.list("/spend/logs?start_date=2026-05-01&end_date=2026-05-03", master)
	want := []map[string]any{
		{"startTime": "2026-05-01", "spend": 0.75, "k1": 0.5, "k2": 0.25,
			"users": map[string]any{"u1": 0.75}, "models": map[string]any{"gpt-4o": 0.5, "gpt-4o-mini": 0.25}},
		{"startTime": "2026-05-02", "spend": 1.0, "k1": 1.0,
			"users": map[string]any{"u2": 1.0}, "models": map[string]any{"gpt-4o": 1.0}},
		{"startTime": "2026-05-03", "spend": 0.0, "users": map[string]any{}, "models": map[string]any{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summary =\n%v\nwant\n%v", got, want)
	}
	if got := e.list("/spend/logs?start_date=2026-06-01&end_date=2026-06-02", master); len(got) != 0 {
		t.Errorf("summary of a range without logs = %v, want []", got)
	}
}

// A range to the year 9999 made the summary fill in every day (out of memory, process
// gone on the old code) and the store query each of them; ranges are bounded.
func TestSpendLogs_RejectsBadDates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.generate(map[string]any{"user_id": "u1"})
	e.logSpend(store.SpendLog{RequestID: "a", APIKey: auth.Hash(key), User: "u1", Model: "m", StartTime: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Spend: 0.5})
	tests := []struct{ query, wantParam string }{
		{"start_date=May&end_date=2026-05-01", "start_date"},
		{"start_date=2026-01-01&end_date=9999-12-31", "end_date"},
		{"start_date=2026-01-01&end_date=2027-01-02&summarize=false", "end_date"},
		{"start_date=2026-05-02&end_date=2026-05-01", "end_date"},
	}
	for _, tt := range tests {
		code, m := e.call("GET", "/spend/logs?"+tt.query, key, nil)
		if code != http.StatusBadRequest || errOf(t, m)["param"] != tt.wantParam {
			t.Errorf("%s: %d %v, want 400 naming %s", tt.query, code, m, tt.wantParam)
		}
	}
	// The summary runs from the first day with spend (January 2) to the end date.
	if got := e.list("/spend/logs?start_date=2026-01-01&end_date=2026-12-31", key); len(got) != 364 {
		t.Errorf("a year's summary has %d days, want 364", len(got))
	}
}

func TestSpendDaily_GroupsTheDaysFromRollupsAndOpenHours(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	day := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, l := range []store.SpendLog{
		{RequestID: "a", APIKey: "k1", Model: "gpt-4o", ModelGroup: "gpt-4o", StartTime: day, Spend: 0.5, Status: store.StatusSuccess},
		{RequestID: "b", APIKey: "k2", Model: "claude", ModelGroup: "claude", StartTime: day.Add(time.Hour), Spend: 0.25, Status: store.StatusFailure},
		{RequestID: "c", APIKey: "k1", Model: "gpt-4o", ModelGroup: "gpt-4o", StartTime: day.AddDate(0, 0, 1), Spend: 1, Status: store.StatusSuccess},
	} {
		e.logSpend(l)
	}
	// Day 1 is rolled whole, day 2 is read from its logs.
	if _, _, err := e.st.RollUp(context.Background(), day.AddDate(0, 0, 1).Truncate(24*time.Hour), day.Truncate(24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	code, raw := e.raw("GET", "/spend/daily?group_by=model&start_date=2026-05-01&end_date=2026-05-02", master, nil)
	var got struct {
		RolledThrough time.Time         `json:"rolled_through"`
		Results       []store.DayRollup `json:"results"`
	}
	if code != http.StatusOK || json.Unmarshal(raw, &got) != nil {
		t.Fatalf("GET /spend/daily = %d %s", code, raw)
	}
	want := []store.DayRollup{
		{Day: "2026-05-01", Rollup: store.Rollup{Total: store.SpendFigures{Spend: 0.75, Calls: 2, Failures: 1}, IDs: map[string]store.SpendFigures{
			"gpt-4o": {Spend: 0.5, Calls: 1}, "claude": {Spend: 0.25, Calls: 1, Failures: 1}}}},
		{Day: "2026-05-02", Rollup: store.Rollup{Total: store.SpendFigures{Spend: 1, Calls: 1}, IDs: map[string]store.SpendFigures{"gpt-4o": {Spend: 1, Calls: 1}}}},
	}
	if !reflect.DeepEqual(got.Results, want) || !got.RolledThrough.Equal(day.AddDate(0, 0, 1).Truncate(24*time.Hour)) {
		t.Errorf("GET /spend/daily = %s\nwant results %+v, rolled through the end of 2026-05-01", raw, want)
	}
	code, body := e.call("GET", "/spend/daily?group_by=org", master, nil)
	wantError(t, code, body, 400, "invalid_request_error", `group_by must be one of global, model, team, api_key, user, tag; got "org"`)
}

func TestSpendLogsAndTeamList_CursorPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	day := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i, id := range []string{"a", "b", "c"} {
		e.logSpend(store.SpendLog{RequestID: id, APIKey: "k1", Model: "m", StartTime: day.Add(time.Duration(i) * time.Minute), Spend: 0.5, Status: store.StatusSuccess})
	}
	e.ok("POST", "/team/new", master, map[string]any{"team_alias": "one"})
	e.advance(time.Second)
	e.ok("POST", "/team/new", master, map[string]any{"team_alias": "two"})
	pages := func(path, field string) ([]string, int) {
		var ids []string
		for n := 1; ; n++ {
			m := e.ok("GET", path, master, nil)
			for _, x := range m[field].([]any) {
				o := x.(map[string]any)
				ids = append(ids, fmt.Sprint(o["request_id"], o["team_alias"]))
			}
			next, _ := m["next_cursor"].(string)
			if next == "" || n == 5 {
				return ids, n
			}
			path = strings.Split(path, "cursor=")[0] + "cursor=" + url.QueryEscape(next)
		}
	}
	if ids, n := pages("/spend/logs?api_key=k1&page_size=2&cursor=", "logs"); fmt.Sprint(ids) != "[c<nil> b<nil> a<nil>]" || n != 2 {
		t.Errorf("spend log pages: %d pages %v, want c, b then a", n, ids)
	}
	if ids, n := pages("/spend/logs?start_date=2026-05-01&end_date=2026-05-01&page_size=1&cursor=", "logs"); len(ids) != 3 || n != 3 {
		t.Errorf("spend log pages by date: %d pages %v, want 3 of 1", n, ids)
	}
	if ids, n := pages("/team/list?size=1&cursor=", "teams"); fmt.Sprint(ids) != "[<nil>one <nil>two]" || n != 2 {
		t.Errorf("team pages: %d pages %v, want one then two", n, ids)
	}
	code, body := e.call("GET", "/spend/logs?cursor=bm9wZQ", master, nil)
	wantError(t, code, body, 400, "invalid_request_error", "cursor is not one this list handed out; start again without it")
	code, body = e.call("GET", "/team/list?cursor=&user_id=u1", master, nil)
	wantError(t, code, body, 400, "invalid_request_error", "")
}
