package admin_test

import (
	"encoding/json"
	"net/http"
	"testing"
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
