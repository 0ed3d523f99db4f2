package admin_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/store"
)

// LiteLLM's customer (end user) routes: create with a budget or a tier, read, update,
// block, unblock, list and delete, under both /customer/* and /end_user/*.
func TestCustomers_Lifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.ok("POST", "/customer/new", master, map[string]any{"user_id": "c1", "max_budget": 2, "alias": "Acme",
		"allowed_model_region": "eu", "default_model": "gpt-4o", "metadata": map[string]any{"plan": "pro"}})
	hasFields(t, "/customer/new", m, "user_id", "alias", "spend", "blocked", "budget_id", "allowed_model_region",
		"default_model", "litellm_budget_table", "object_permission", "metadata")
	if bt, _ := m["litellm_budget_table"].(map[string]any); bt["max_budget"] != 2.0 || m["blocked"] != false || m["spend"] != 0.0 {
		t.Errorf("/customer/new = %v", m)
	}
	code, m := e.call("POST", "/customer/new", master, map[string]any{"user_id": "c1"})
	wantError(t, code, m, http.StatusBadRequest, "bad_request", "Customer already exists, passed user_id=c1. Please pass a new user_id.")

	// A customer on a tier takes its limits.
	e.ok("POST", "/budget/new", master, map[string]any{"budget_id": "free_tier", "max_budget": 0.5, "rpm_limit": 10})
	m = e.ok("POST", "/end_user/new", master, map[string]any{"user_id": "c2", "budget_id": "free_tier"})
	if bt, _ := m["litellm_budget_table"].(map[string]any); m["budget_id"] != "free_tier" || bt["max_budget"] != 0.5 || bt["rpm_limit"] != 10.0 {
		t.Errorf("/end_user/new on a tier = %v", m)
	}

	m = e.ok("POST", "/customer/update", master, map[string]any{"user_id": "c1", "max_budget": 5, "alias": "Acme Inc"})
	if bt, _ := m["litellm_budget_table"].(map[string]any); bt["max_budget"] != 5.0 || m["alias"] != "Acme Inc" {
		t.Errorf("/customer/update = %v", m)
	}
	m = e.ok("GET", "/customer/info?end_user_id=c1", master, nil)
	if m["user_id"] != "c1" || m["alias"] != "Acme Inc" {
		t.Errorf("/customer/info = %v", m)
	}

	// Block creates the customers it does not know, as LiteLLM does.
	m = e.ok("POST", "/customer/block", master, map[string]any{"user_ids": []string{"c1", "c3"}})
	if bu, _ := m["blocked_users"].([]any); len(bu) != 2 || bu[1].(map[string]any)["blocked"] != true {
		t.Errorf("/customer/block = %v", m)
	}
	if m = e.ok("GET", "/customer/info?end_user_id=c3", master, nil); m["blocked"] != true {
		t.Errorf("blocked customer c3 = %v", m)
	}
	e.ok("POST", "/customer/unblock", master, map[string]any{"user_ids": []string{"c1"}})
	if m = e.ok("GET", "/customer/info?end_user_id=c1", master, nil); m["blocked"] != false {
		t.Errorf("unblocked customer c1 = %v", m)
	}

	_, raw := e.raw("GET", "/customer/list", master, nil)
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 3 {
		t.Errorf("/customer/list = %s, want 3 customers", raw)
	}
	code, m = e.call("POST", "/customer/delete", master, map[string]any{"user_ids": []string{"c1", "nope"}})
	wantError(t, code, m, http.StatusNotFound, "not_found", "End User Id(s)=nope do not exist in db")
	m = e.ok("POST", "/customer/delete", master, map[string]any{"user_ids": []string{"c1", "c2"}})
	if m["deleted_customers"] != 2.0 {
		t.Errorf("/customer/delete = %v", m)
	}
	code, m = e.call("GET", "/customer/info?end_user_id=c1", master, nil)
	wantError(t, code, m, http.StatusNotFound, "not_found", "End User Id=c1 does not exist in db")
}

func TestCustomers_BadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/customer/new", master, map[string]any{"user_id": "c"})
	plain := e.generate(map[string]any{"user_id": "plain"})
	for _, c := range []struct {
		name, method, path, key string
		body                    any
		code                    int
	}{
		{"malformed JSON", "POST", "/customer/new", master, `{"user_id":`, 400},
		{"no user_id", "POST", "/customer/new", master, map[string]any{"max_budget": 1}, 400},
		{"negative budget", "POST", "/customer/new", master, map[string]any{"user_id": "x", "max_budget": -1}, 400},
		{"bad region", "POST", "/customer/new", master, map[string]any{"user_id": "x", "allowed_model_region": "mars"}, 400},
		{"unknown default model", "POST", "/customer/new", master, map[string]any{"user_id": "x", "default_model": "nope"}, 422},
		{"unknown tier", "POST", "/customer/new", master, map[string]any{"user_id": "x", "budget_id": "nope"}, 400},
		{"blocked not a bool", "POST", "/customer/update", master, map[string]any{"user_id": "c", "blocked": "yes"}, 400},
		{"update unknown", "POST", "/customer/update", master, map[string]any{"user_id": "nope", "max_budget": 1}, 404},
		{"info without id", "GET", "/customer/info", master, nil, 400},
		{"unblock unknown", "POST", "/customer/unblock", master, map[string]any{"user_ids": []string{"nope"}}, 404},
		{"delete without ids", "POST", "/customer/delete", master, map[string]any{}, 400},
		{"non-admin new", "POST", "/customer/new", plain, map[string]any{"user_id": "y"}, 403},
		{"non-admin block", "POST", "/end_user/block", plain, map[string]any{"user_ids": []string{"c"}}, 403},
		{"non-admin list", "GET", "/customer/list", plain, nil, 403},
	} {
		code, m := e.call(c.method, c.path, c.key, c.body)
		if code != c.code {
			t.Errorf("%s: %d %v, want %d", c.name, code, m, c.code)
			continue
		}
		errOf(t, m)
	}
}

// /customer/daily/activity (LiteLLM's UI): a customer's days from the end_user rollups (here
// the open hours, read from the logs), in LiteLLM's SpendAnalyticsPaginatedResponse.
func TestCustomers_DailyActivity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := e.clock()
	for _, l := range []store.SpendLog{
		{RequestID: "c1-a", Model: "gpt-4o", EndUser: "c1", Spend: 0.5, PromptTokens: 10, CompletionTokens: 5, Status: store.StatusSuccess, StartTime: now},
		{RequestID: "c1-b", Model: "gpt-4o", EndUser: "c1", Spend: 0.25, Status: store.StatusFailure, StartTime: now},
		{RequestID: "c2-a", Model: "gpt-4o", EndUser: "c2", Spend: 2, Status: store.StatusSuccess, StartTime: now},
		{RequestID: "none", Model: "gpt-4o", Spend: 8, Status: store.StatusSuccess, StartTime: now},
	} {
		e.logSpend(l)
	}
	day := now.UTC().Format(time.DateOnly)
	q := "?start_date=" + day + "&end_date=" + day
	for _, path := range []string{"/customer/daily/activity", "/end_user/daily/activity"} {
		m := e.ok("GET", path+q+"&end_user_ids=c1", master, nil)
		results, _ := m["results"].([]any)
		if len(results) != 1 {
			t.Fatalf("%s: %v, want one day", path, m)
		}
		res := results[0].(map[string]any)
		metrics := res["metrics"].(map[string]any)
		if res["date"] != day || metrics["spend"] != 0.75 || metrics["api_requests"] != 2.0 || metrics["failed_requests"] != 1.0 || metrics["successful_requests"] != 1.0 || metrics["total_tokens"] != 15.0 {
			t.Errorf("%s: day %v, want c1's 0.75 over 2 calls, 1 failed, 15 tokens", path, res)
		}
		if ents := res["breakdown"].(map[string]any)["entities"].(map[string]any); len(ents) != 1 || ents["c1"] == nil {
			t.Errorf("%s: entities %v, want c1 alone", path, ents)
		}
	}
	m := e.ok("GET", "/customer/daily/activity"+q, master, nil)
	if md := m["metadata"].(map[string]any); md["total_spend"] != 2.75 || md["total_api_requests"] != 3.0 || md["has_more"] != false {
		t.Errorf("every customer: metadata %v, want 2.75 over 3 calls (the call without a customer left out)", md)
	}
	plain := e.generate(map[string]any{"user_id": "plain"})
	for _, c := range []struct {
		name, path, key string
		code            int
	}{
		{"no dates", "/customer/daily/activity", master, 400},
		{"a range over the limit", "/customer/daily/activity?start_date=2020-01-01&end_date=2026-01-01", master, 400},
		{"not an admin", "/customer/daily/activity" + q, plain, 403},
	} {
		if code, m := e.call("GET", c.path, c.key, nil); code != c.code {
			t.Errorf("%s: %d %v, want %d", c.name, code, m, c.code)
		}
	}
}

// /global/spend/report?group_by=customer (LiteLLM's) is each day's spend per customer (a
// log's end_user), highest first, from the end_user rollups: a rolled day and the open hours
// of today. Calls without a customer are left out. The old code refused it with a 400.
func TestGlobalSpendReport_GroupsByCustomer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := e.clock()
	yesterday := now.AddDate(0, 0, -1)
	for _, l := range []store.SpendLog{
		{RequestID: "y-c1", Model: "gpt-4o", EndUser: "c1", Spend: 1.5, Status: store.StatusSuccess, StartTime: yesterday},
		{RequestID: "c1-a", Model: "gpt-4o", EndUser: "c1", Spend: 0.5, Status: store.StatusSuccess, StartTime: now},
		{RequestID: "c1-b", Model: "gpt-4o", EndUser: "c1", Spend: 0.25, Status: store.StatusFailure, StartTime: now},
		{RequestID: "c2-a", Model: "gpt-4o", EndUser: "c2", Spend: 2, Status: store.StatusSuccess, StartTime: now},
		{RequestID: "none", Model: "gpt-4o", Spend: 8, Status: store.StatusSuccess, StartTime: now},
	} {
		e.logSpend(l)
	}
	if _, _, err := e.st.RollUp(t.Context(), now.Truncate(24*time.Hour), yesterday.Truncate(24*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	q := "&start_date=" + yesterday.UTC().Format(time.DateOnly) + "&end_date=" + now.UTC().Format(time.DateOnly)
	got := e.list("/global/spend/report?group_by=customer"+q, master)
	row := func(id string, spend float64) any {
		return map[string]any{"customer": id, "total_spend": spend, "metadata": []any{}}
	}
	want := []map[string]any{
		{"group_by_day": yesterday.UTC().Format(time.DateOnly), "customers": []any{row("c1", 1.5)}},
		{"group_by_day": now.UTC().Format(time.DateOnly), "customers": []any{row("c2", 2), row("c1", 0.75)}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("group_by=customer = %v\nwant %v", got, want)
	}
	code, m := e.call("GET", "/global/spend/report?group_by=planet"+q, master, nil)
	if code != http.StatusBadRequest || errOf(t, m)["param"] != "group_by" || !strings.Contains(errOf(t, m)["message"].(string), "customer") {
		t.Errorf("group_by=planet: %d %v, want a 400 naming group_by and its values", code, m)
	}
}
