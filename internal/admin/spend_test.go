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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/callid"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/responseid"
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
	var got dailyAnswer
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

// A user reads the daily spend of their own keys and record and of their teams, never
// another's: a key or team they may not read is answered as a missing one, another user is
// a 403, and the group_by form (every id) is for admins and viewers. Figures come from the
// rollups (May 1, rolled) and the open hours' logs (May 2).
func TestSpendDaily_NonAdminsReadOnlyTheirKeysUserAndTeams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.ok("POST", "/user/new", master, map[string]any{"user_id": "alice"})["key"].(string)
	bob := e.ok("POST", "/user/new", master, map[string]any{"user_id": "bob"})["key"].(string)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "research", "members_with_roles": []any{
		map[string]any{"user_id": "alice", "role": "admin"}, map[string]any{"user_id": "bob", "role": "user"}}})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "billing", "members_with_roles": []any{map[string]any{"user_id": "bob", "role": "admin"}}})
	aliceTeamKey := e.generate(map[string]any{"user_id": "alice", "team_id": "research"})
	bobBillingKey := e.generate(map[string]any{"user_id": "bob", "team_id": "billing"})
	day := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, l := range []store.SpendLog{
		{RequestID: "a1", APIKey: auth.Hash(alice), User: "alice", Spend: 0.5, StartTime: day},
		{RequestID: "a2", APIKey: auth.Hash(aliceTeamKey), User: "alice", TeamID: "research", Spend: 0.25, StartTime: day.Add(time.Hour)},
		{RequestID: "a3", APIKey: auth.Hash(alice), User: "alice", Spend: 1, StartTime: day.AddDate(0, 0, 1)},
		{RequestID: "b1", APIKey: auth.Hash(bobBillingKey), User: "bob", TeamID: "billing", Spend: 8, StartTime: day},
		{RequestID: "b2", APIKey: auth.Hash(bob), User: "bob", Spend: 4, StartTime: day.AddDate(0, 0, 1)},
	} {
		l.Model, l.ModelGroup, l.Status = "gpt-4o", "gpt-4o", store.StatusSuccess
		e.logSpend(l)
	}
	if _, _, err := e.st.RollUp(context.Background(), day.AddDate(0, 0, 1).Truncate(24*time.Hour), day.Truncate(24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	const rng = "&start_date=2026-05-01&end_date=2026-05-02"
	// days reads the per-day figures of the one id an answer names.
	days := func(caller, query, id string) map[string]float64 {
		t.Helper()
		code, raw := e.raw("GET", "/spend/daily?"+query+rng, caller, nil)
		var got dailyAnswer
		if code != http.StatusOK || json.Unmarshal(raw, &got) != nil {
			t.Fatalf("GET /spend/daily?%s = %d %s", query, code, raw)
		}
		out := map[string]float64{}
		for _, d := range got.Results {
			if len(d.IDs) != 1 || d.IDs[id] != d.Total {
				t.Errorf("%s: day %s = %+v, want the figures of %s alone", query, d.Day, d, id)
			}
			out[d.Day] = d.Total.Spend
		}
		return out
	}
	tests := []struct {
		caller, query, id string
		want              map[string]float64
	}{
		{alice, "api_key=" + auth.Hash(alice), auth.Hash(alice), map[string]float64{"2026-05-01": 0.5, "2026-05-02": 1}},
		{alice, "api_key=" + url.QueryEscape(aliceTeamKey), auth.Hash(aliceTeamKey), map[string]float64{"2026-05-01": 0.25}},
		{alice, "user_id=alice", "alice", map[string]float64{"2026-05-01": 0.75, "2026-05-02": 1}},
		{alice, "team_id=research", "research", map[string]float64{"2026-05-01": 0.25}},
		{bob, "team_id=research", "research", map[string]float64{"2026-05-01": 0.25}}, // a plain member reads the team
		{master, "team_id=billing", "billing", map[string]float64{"2026-05-01": 8}},
		{master, "user_id=bob", "bob", map[string]float64{"2026-05-01": 8, "2026-05-02": 4}},
	}
	for _, tt := range tests {
		if got := days(tt.caller, tt.query, tt.id); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("GET /spend/daily?%s = %v, want %v", tt.query, got, tt.want)
		}
	}
	refusals := []struct {
		query, wantType string
		wantCode        int
	}{
		{"api_key=" + auth.Hash(bob), "auth_error", 404},
		{"api_key=" + auth.Hash(bobBillingKey), "auth_error", 404},
		{"api_key=sk-no-such-key", "auth_error", 404},
		{"team_id=billing", "auth_error", 404},
		{"team_id=no-such-team", "auth_error", 404},
		{"user_id=bob", "auth_error", 403},
		{"group_by=api_key", "auth_error", 403},
		{"", "auth_error", 403},
		{"team_id=research&user_id=alice", "invalid_request_error", 400},
	}
	for _, tt := range refusals {
		code, m := e.call("GET", "/spend/daily?"+tt.query+rng, alice, nil)
		if _, ok := m["results"]; ok || code != tt.wantCode || errOf(t, m)["type"] != tt.wantType {
			t.Errorf("alice: GET /spend/daily?%s = %d %v, want %d %s", tt.query, code, m, tt.wantCode, tt.wantType)
		}
	}
}

// dailyAnswer is GET /spend/daily's answer.
type dailyAnswer struct {
	RolledThrough time.Time         `json:"rolled_through"`
	Results       []store.DayRollup `json:"results"`
}

// /spend/tags adds up the tag rollups (and only the hours not rolled from the logs): its
// figures do not depend on the logs of rolled hours, which expire with spend_log_retention.
// On the old code, which summed the logs, the rolled day vanished with its logs.
func TestSpendTags_ReadsTheRollupsNotTheLogs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	day := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for _, l := range []store.SpendLog{
		{RequestID: "a", APIKey: "k1", Model: "m", StartTime: day, Spend: 0.5, RequestTags: []string{"prod", "batch"}, Status: store.StatusSuccess},
		{RequestID: "b", APIKey: "k1", Model: "m", StartTime: day.Add(time.Hour), Spend: 0.25, RequestTags: []string{"prod"}, Status: store.StatusSuccess},
		{RequestID: "c", APIKey: "k2", Model: "m", StartTime: day.AddDate(0, 0, 1), Spend: 1, RequestTags: []string{"dev"}, Status: store.StatusSuccess},
	} {
		e.logSpend(l)
	}
	// May 1 is rolled; then its logs expire. May 2 is read from its logs.
	if _, _, err := e.st.RollUp(context.Background(), day.AddDate(0, 0, 1).Truncate(24*time.Hour), day.Truncate(24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	db := dynamotest.Client(t)
	for _, id := range []string{"a", "b"} {
		if _, err := db.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: aws.String(e.st.Table()), Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: store.PrefixSpendLog + id}, "sk": &types.AttributeValueMemberS{Value: store.SortSpendLog}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, path := range []string{"/spend/tags", "/global/spend/tags"} {
		got := e.list(path+"?start_date=2026-05-01&end_date=2026-05-02", master)
		want := []map[string]any{
			{"individual_request_tag": "dev", "log_count": 1.0, "total_spend": 1.0},
			{"individual_request_tag": "prod", "log_count": 2.0, "total_spend": 0.75},
			{"individual_request_tag": "batch", "log_count": 1.0, "total_spend": 0.5},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v\nwant %v", path, got, want)
		}
	}
	// The range is the rollups' (at most 92 days), not the logs' 366.
	code, m := e.call("GET", "/spend/tags?start_date=2026-01-01&end_date=2026-05-01", master, nil)
	if code != http.StatusBadRequest || errOf(t, m)["param"] != "end_date" {
		t.Errorf("a 121-day range: %d %v, want 400 naming end_date", code, m)
	}
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

// GET /global/spend (LiteLLM's) is what the proxy budget counted against max_budget, and
// without a proxy budget the last 30 days' spend from the global rollup.
func TestGlobalSpend_ProxyBudgetOrLast30Days(t *testing.T) {
	t.Parallel()
	budget := 10.0
	e := newEnv(t, func(c *config.Config, _ *admin.Options) { c.LiteLLMSettings.MaxBudget = &budget })
	now := e.clock()
	if got := e.ok("GET", "/global/spend", master, nil); got["spend"] != 0.0 || got["max_budget"] != 10.0 {
		t.Errorf("before any call: %v, want spend 0 of max_budget 10", got)
	}
	ctx := context.Background()
	r, err := e.st.Reserve(ctx, store.ReserveInput{RequestID: "p1", Model: "m", Now: now, Cost: 1, ProxyMaxBudget: &budget})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.Settle(ctx, r, store.Settlement{Cost: 0.75, Log: &store.SpendLog{RequestID: "p1", Model: "m", StartTime: now}}); err != nil {
		t.Fatal(err)
	}
	if got := e.ok("GET", "/global/spend", master, nil); got["spend"] != 0.75 || got["max_budget"] != 10.0 {
		t.Errorf("after a call of $0.75: %v, want spend 0.75 of max_budget 10", got)
	}

	open := newEnv(t)
	open.logSpend(store.SpendLog{RequestID: "a", APIKey: "k1", Model: "m", StartTime: open.clock().Add(-time.Hour), Spend: 0.5})
	open.logSpend(store.SpendLog{RequestID: "b", APIKey: "k1", Model: "m", StartTime: open.clock().AddDate(0, 0, -40), Spend: 3})
	if got := open.ok("GET", "/global/spend", master, nil); got["spend"] != 0.5 || got["max_budget"] != nil {
		t.Errorf("without a proxy budget: %v, want the 30 days' spend 0.5 and max_budget null", got)
	}
	key := open.generate(map[string]any{})
	if code, m := open.call("GET", "/global/spend", key, nil); code != http.StatusForbidden {
		t.Errorf("as a plain key: %d %v, want 403", code, m)
	}
}

// /team/list?team_ids= reads the teams named (for the console's teams that spent most),
// those the caller may read only, in the order asked.
func TestTeamList_TeamIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.ok("POST", "/user/new", master, map[string]any{"user_id": "alice"})["key"].(string)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "research", "max_budget": 5, "members_with_roles": []any{map[string]any{"user_id": "alice", "role": "user"}}})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "billing"})
	ids := func(m map[string]any) []string {
		var out []string
		for _, x := range m["teams"].([]any) {
			out = append(out, x.(map[string]any)["team_id"].(string))
		}
		return out
	}
	if got := ids(e.ok("GET", "/team/list?team_ids=billing,gone,research,billing", master, nil)); !reflect.DeepEqual(got, []string{"billing", "research"}) {
		t.Errorf("admin: teams %v, want billing and research (gone left out)", got)
	}
	if got := ids(e.ok("GET", "/team/list?user_id=alice&team_ids=billing,research", alice, nil)); !reflect.DeepEqual(got, []string{"research"}) {
		t.Errorf("alice: teams %v, want only research, hers", got)
	}
	if code, _ := e.call("GET", "/team/list?team_ids=research", alice, nil); code == http.StatusOK {
		t.Errorf("alice without user_id: %d, want a refusal (as every team list)", code)
	}
	code, m := e.call("GET", "/team/list?team_ids="+strings.Repeat("t,", 100)+"t", master, nil)
	if code != http.StatusBadRequest || errOf(t, m)["param"] != "team_ids" {
		t.Errorf("101 team ids: %d %v, want 400 naming team_ids", code, m)
	}
}

// A call's log is found by the response id its client got: llmgate's chat or message id
// (the upstream's prefix and the call id) or a sealed Responses id. An upstream's own id, or
// a sealed id of another master key, finds nothing.
func TestSpendLogs_ByTheResponseIDTheClientGot(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	start := time.Now().UTC().Add(-time.Minute)
	chat, resp := callid.New(start), callid.New(start.Add(time.Second))
	chatID := responseid.For("chatcmpl-upstream1", chat)
	// As long as a real one: OpenAI's response id, a key hash, a team id.
	sealed := responseid.New(master).Seal(responseid.Ref{Deployment: "gpt-5-deployment-1", ID: "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
		Key: strings.Repeat("3f9a", 16), Team: "3f8a2b1c-9d4e-4f5a-8b6c-7d8e9f0a1b2c", Call: resp})
	for _, l := range []store.SpendLog{
		{RequestID: chat, ResponseID: chatID, Model: "gpt-4o", StartTime: start, Spend: 0.5, Status: store.StatusSuccess},
		{RequestID: resp, ResponseID: sealed, Model: "gpt-5", StartTime: start.Add(time.Second), Spend: 0.25, Status: store.StatusSuccess},
	} {
		e.logSpend(l)
	}
	for _, tc := range []struct {
		name, id string
		want     []string
	}{
		{"chat id", chatID, []string{chat}},
		{"call id", chat, []string{chat}},
		{"sealed id", sealed, []string{resp}},
		{"the upstream's id", "chatcmpl-upstream1", []string{}},
		{"another master key's sealed id", responseid.New("sk-other").Seal(responseid.Ref{Deployment: "d1", ID: "resp_upstream2", Call: resp}), []string{}},
		{"another prefix", "Chat-" + chat, []string{}},
	} {
		if got := requestIDs(e.list("/spend/logs?request_id="+url.QueryEscape(tc.id), master)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	// An id that names another user's call finds nothing for a plain key, as its call id does.
	if got := requestIDs(e.list("/spend/logs?request_id="+url.QueryEscape(chatID), e.generate(map[string]any{"user_id": "u9"}))); len(got) != 0 {
		t.Errorf("another user's chat id: got %v, want none", got)
	}
	code, body := e.call("GET", "/spend/logs?request_id="+strings.Repeat("a", 2049), master, nil)
	wantError(t, code, body, 400, "invalid_request_error", "request_id is 2049 bytes long; the limit is 2048.")
}
