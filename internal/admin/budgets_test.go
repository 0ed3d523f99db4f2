package admin_test

import (
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"
)

// test_budget_management.py: a tier with a budget_duration resets one period after it is
// created; and the /budget/* routes as LiteLLM shapes them.
func TestBudgetTiers_Lifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.ok("POST", "/budget/new", master, map[string]any{"budget_id": "tier-1", "budget_duration": "1d", "max_budget": 0.02})
	hasFields(t, "/budget/new", m, "budget_id", "max_budget", "soft_budget", "tpm_limit", "rpm_limit", "max_parallel_requests",
		"budget_duration", "budget_reset_at", "model_max_budget", "created_at", "created_by", "updated_at", "updated_by")
	created, err1 := time.Parse(time.RFC3339Nano, m["created_at"].(string))
	reset, err2 := time.Parse(time.RFC3339Nano, m["budget_reset_at"].(string))
	if err1 != nil || err2 != nil || math.Abs(reset.Sub(created.Add(24*time.Hour)).Seconds()) > 3 {
		t.Errorf("budget_reset_at %v, created_at %v: want one day apart", m["budget_reset_at"], m["created_at"])
	}
	if m["budget_id"] != "tier-1" || m["max_budget"] != 0.02 {
		t.Errorf("/budget/new = %v", m)
	}

	code, m := e.call("POST", "/budget/new", master, map[string]any{"budget_id": "tier-1"})
	wantError(t, code, m, http.StatusBadRequest, "auth_error", "Budget with id 'tier-1' already exists.")

	m = e.ok("POST", "/budget/update", master, map[string]any{"budget_id": "tier-1", "rpm_limit": 7, "max_budget": nil})
	if m["rpm_limit"] != 7.0 || m["max_budget"] != nil || m["budget_duration"] != "1d" {
		t.Errorf("/budget/update = %v, want rpm_limit 7, no max_budget, budget_duration kept", m)
	}

	// A generated id when none is given.
	gen := e.ok("POST", "/budget/new", master, map[string]any{"tpm_limit": 100})
	if id, _ := gen["budget_id"].(string); id == "" {
		t.Errorf("/budget/new without budget_id: budget_id = %v", gen["budget_id"])
	}

	_, raw := e.raw("POST", "/budget/info", master, map[string]any{"budgets": []string{"tier-1", "missing"}})
	var infos []map[string]any
	if err := json.Unmarshal(raw, &infos); err != nil || len(infos) != 1 || infos[0]["budget_id"] != "tier-1" {
		t.Errorf("/budget/info = %s, want tier-1 only", raw)
	}
	_, raw = e.raw("GET", "/budget/list", master, nil)
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 2 {
		t.Errorf("/budget/list = %s, want 2 tiers", raw)
	}
	// /budget/settings: LiteLLM's admin UI reads each field of a tier with its value.
	for id, wantRPM := range map[string]any{"tier-1": 7.0, "missing": nil} {
		_, raw = e.raw("GET", "/budget/settings?budget_id="+id, master, nil)
		var fields []map[string]any
		if err := json.Unmarshal(raw, &fields); err != nil || len(fields) != 7 {
			t.Fatalf("/budget/settings?budget_id=%s = %s, want 7 fields", id, raw)
		}
		for _, f := range fields {
			if f["field_name"] == "rpm_limit" && (f["field_value"] != wantRPM || f["field_type"] != "Integer" || f["stored_in_db"] != true) {
				t.Errorf("/budget/settings?budget_id=%s rpm_limit = %v, want value %v", id, f, wantRPM)
			}
			if f["field_name"] == "budget_duration" && id == "tier-1" && f["field_value"] != "1d" {
				t.Errorf("budget_duration = %v, want 1d", f)
			}
		}
	}

	e.ok("POST", "/budget/delete", master, map[string]any{"id": "tier-1"})
	code, m = e.call("POST", "/budget/delete", master, map[string]any{"id": "tier-1"})
	wantError(t, code, m, http.StatusNotFound, "auth_error", "Budget not found, passed budget_id=tier-1")
}

func TestBudgetTiers_BadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/budget/new", master, map[string]any{"budget_id": "b"})
	viewer := e.generate(map[string]any{"user_id": "plain"})
	for _, c := range []struct {
		name, method, path, key string
		body                    any
		code                    int
	}{
		{"malformed JSON", "POST", "/budget/new", master, `{"budget_id":`, 400},
		{"negative max_budget", "POST", "/budget/new", master, map[string]any{"max_budget": -1}, 400},
		{"NaN-like string budget", "POST", "/budget/new", master, map[string]any{"max_budget": "lots"}, 400},
		{"bad duration", "POST", "/budget/new", master, map[string]any{"budget_duration": "soon"}, 400},
		{"update without id", "POST", "/budget/update", master, map[string]any{"rpm_limit": 1}, 400},
		{"update unknown", "POST", "/budget/update", master, map[string]any{"budget_id": "nope", "rpm_limit": 1}, 404},
		{"info without ids", "POST", "/budget/info", master, map[string]any{"budgets": []string{}}, 400},
		{"delete without id", "POST", "/budget/delete", master, map[string]any{}, 400},
		{"non-admin new", "POST", "/budget/new", viewer, map[string]any{"budget_id": "x"}, 403},
		{"non-admin list", "GET", "/budget/list", viewer, nil, 403},
		{"settings without id", "GET", "/budget/settings", master, nil, 400},
		{"non-admin settings", "GET", "/budget/settings?budget_id=b", viewer, nil, 403},
		{"key with unknown budget", "POST", "/key/generate", master, map[string]any{"budget_id": "nope"}, 400},
	} {
		code, m := e.call(c.method, c.path, c.key, c.body)
		if code != c.code {
			t.Errorf("%s: %d %v, want %d", c.name, code, m, c.code)
			continue
		}
		errOf(t, m)
	}
}

// A key with a budget_id takes the tier's limits it does not set itself.
func TestBudgetTiers_KeyTakesTheTiersLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/budget/new", master, map[string]any{"budget_id": "free", "max_budget": 1.5, "rpm_limit": 3, "tpm_limit": 1000,
		"max_parallel_requests": 2, "budget_duration": "30d", "model_max_budget": map[string]any{"gpt-4o": map[string]any{"budget_limit": 0.5}}})
	key := e.generate(map[string]any{"budget_id": "free", "tpm_limit": 50})
	info := e.ok("GET", "/key/info?key="+key, master, nil)["info"].(map[string]any)
	for field, want := range map[string]any{"budget_id": "free", "max_budget": 1.5, "rpm_limit": 3.0, "tpm_limit": 50.0,
		"max_parallel_requests": 2.0, "budget_duration": "30d"} {
		if info[field] != want {
			t.Errorf("key %s = %v, want %v", field, info[field], want)
		}
	}
	if mb, _ := info["model_max_budget"].(map[string]any); mb["gpt-4o"] == nil {
		t.Errorf("key model_max_budget = %v, want the tier's gpt-4o entry", info["model_max_budget"])
	}
	// /key/update moves the key to another tier.
	e.ok("POST", "/budget/new", master, map[string]any{"budget_id": "paid", "max_budget": 10, "rpm_limit": 100})
	e.ok("POST", "/key/update", master, map[string]any{"key": key, "budget_id": "paid"})
	info = e.ok("GET", "/key/info?key="+key, master, nil)["info"].(map[string]any)
	if info["budget_id"] != "paid" || info["max_budget"] != 10.0 || info["rpm_limit"] != 100.0 {
		t.Errorf("after /key/update budget_id=paid: %v %v %v", info["budget_id"], info["max_budget"], info["rpm_limit"])
	}
}
