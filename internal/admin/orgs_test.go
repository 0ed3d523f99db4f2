package admin_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Organizations: CRUD and members as LiteLLM shapes them, and the organization's models and
// budget as a ceiling for its teams (test_organizations.py's scenarios and LiteLLM's team
// checks).
func TestOrganizations_LifecycleAndTeamCeiling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.ok("POST", "/organization/new", master, map[string]any{"organization_id": "acme", "organization_alias": "Acme",
		"models": []string{"gpt-4o"}, "max_budget": 10, "rpm_limit": 100})
	hasFields(t, "/organization/new", m, "organization_id", "organization_alias", "models", "spend", "litellm_budget_table", "members",
		"created_at", "created_by")
	if bt, _ := m["litellm_budget_table"].(map[string]any); bt["max_budget"] != 10.0 || bt["rpm_limit"] != 100.0 {
		t.Errorf("/organization/new = %v", m)
	}

	e.ok("POST", "/team/new", master, map[string]any{"team_id": "in-acme", "organization_id": "acme", "models": []string{"gpt-4o"}, "max_budget": 5, "rpm_limit": 10})
	for _, c := range []struct {
		name string
		body map[string]any
		code int
	}{
		{"budget over the organization's", map[string]any{"organization_id": "acme", "models": []string{"gpt-4o"}, "max_budget": 20, "rpm_limit": 1}, 403},
		{"no budget under a budgeted organization", map[string]any{"organization_id": "acme", "models": []string{"gpt-4o"}, "rpm_limit": 1}, 403},
		{"model outside the organization's", map[string]any{"organization_id": "acme", "models": []string{"gpt-5"}, "max_budget": 1, "rpm_limit": 1}, 403},
		{"every model under a restricted organization", map[string]any{"organization_id": "acme", "max_budget": 1, "rpm_limit": 1}, 403},
		{"rpm over the organization's", map[string]any{"organization_id": "acme", "models": []string{"gpt-4o"}, "max_budget": 1, "rpm_limit": 1000}, 403},
		{"unknown organization", map[string]any{"organization_id": "nope"}, 400},
	} {
		code, m := e.call("POST", "/team/new", master, c.body)
		if code != c.code {
			t.Errorf("/team/new %s: %d %v, want %d", c.name, code, m, c.code)
		}
	}
	code, m := e.call("POST", "/team/update", master, map[string]any{"team_id": "in-acme", "max_budget": 50})
	if code != http.StatusForbidden {
		t.Errorf("/team/update over the organization's budget: %d %v, want 403", code, m)
	}

	e.ok("POST", "/organization/member_add", master, map[string]any{"organization_id": "acme",
		"member": []any{map[string]any{"user_id": "alice", "role": "org_admin"}, map[string]any{"user_id": "bob"}}})
	e.ok("POST", "/organization/member_update", master, map[string]any{"organization_id": "acme", "user_id": "bob", "role": "internal_user_viewer"})
	e.ok("POST", "/organization/member_delete", master, map[string]any{"organization_id": "acme", "user_id": "alice"})
	m = e.ok("GET", "/organization/info?organization_id=acme", master, nil)
	members, _ := m["members"].([]any)
	teams, _ := m["teams"].([]any)
	if len(members) != 1 || members[0].(map[string]any)["user_id"] != "bob" || members[0].(map[string]any)["user_role"] != "internal_user_viewer" {
		t.Errorf("members = %v, want bob as internal_user_viewer", members)
	}
	if len(teams) != 1 || teams[0].(map[string]any)["team_id"] != "in-acme" {
		t.Errorf("teams = %v, want in-acme", teams)
	}
	if u := e.ok("GET", "/user/info?user_id=alice", master, nil); u["user_id"] != "alice" {
		t.Errorf("member_add did not create alice: %v", u)
	}

	m = e.ok("POST", "/organization/update", master, map[string]any{"organization_id": "acme", "max_budget": 50, "organization_alias": "Acme Inc"})
	if m["organization_alias"] != "Acme Inc" {
		t.Errorf("/organization/update = %v", m)
	}
	e.ok("POST", "/team/update", master, map[string]any{"team_id": "in-acme", "max_budget": 50})

	_, raw := e.raw("GET", "/organization/list", master, nil)
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 1 {
		t.Errorf("/organization/list = %s", raw)
	}
	if code, raw := e.raw("POST", "/organization/delete", master, map[string]any{"organization_ids": []string{"acme"}}); code != 200 || !jsonArrayLen(t, raw, 1) {
		t.Errorf("/organization/delete = %d %s, want the deleted organization", code, raw)
	}
	code, m = e.call("GET", "/organization/info?organization_id=acme", master, nil)
	wantError(t, code, m, http.StatusNotFound, "auth_error", "Organization not found, passed organization_id=acme")
}

func TestOrganizations_BadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/organization/new", master, map[string]any{"organization_id": "o", "organization_alias": "O"})
	plain := e.generate(map[string]any{"user_id": "plain"})
	for _, c := range []struct {
		name, method, path, key string
		body                    any
		code                    int
	}{
		{"malformed JSON", "POST", "/organization/new", master, `{"organization_alias":`, 400},
		{"no alias", "POST", "/organization/new", master, map[string]any{"organization_id": "x"}, 400},
		{"duplicate", "POST", "/organization/new", master, map[string]any{"organization_id": "o", "organization_alias": "O"}, 400},
		{"negative budget", "POST", "/organization/new", master, map[string]any{"organization_alias": "x", "max_budget": -1}, 400},
		{"update unknown", "POST", "/organization/update", master, map[string]any{"organization_id": "nope", "max_budget": 1}, 404},
		{"info without id", "GET", "/organization/info", master, nil, 400},
		{"delete unknown", "POST", "/organization/delete", master, map[string]any{"organization_ids": []string{"nope"}}, 404},
		{"member without user", "POST", "/organization/member_add", master, map[string]any{"organization_id": "o", "member": map[string]any{"role": "org_admin"}}, 400},
		{"bad member role", "POST", "/organization/member_add", master, map[string]any{"organization_id": "o", "member": map[string]any{"user_id": "u", "role": "king"}}, 400},
		{"update a non-member", "POST", "/organization/member_update", master, map[string]any{"organization_id": "o", "user_id": "stranger", "role": "org_admin"}, 404},
		{"non-admin new", "POST", "/organization/new", plain, map[string]any{"organization_alias": "y"}, 403},
		{"non-admin member_add", "POST", "/organization/member_add", plain, map[string]any{"organization_id": "o", "member": map[string]any{"user_id": "plain"}}, 403},
	} {
		code, m := e.call(c.method, c.path, c.key, c.body)
		if code != c.code {
			t.Errorf("%s: %d %v, want %d", c.name, code, m, c.code)
			continue
		}
		errOf(t, m)
	}
}
