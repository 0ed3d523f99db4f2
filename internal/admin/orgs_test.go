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
	if m := e.ok("PATCH", "/organization/update", master, map[string]any{"organization_id": "acme", "organization_alias": "Acme Labs"}); m["organization_alias"] != "Acme Labs" {
		t.Errorf("PATCH /organization/update = %v", m)
	}

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

// An org_admin member of an organization manages the teams in it (LiteLLM's organization
// admin): creates teams there (within the organization's ceiling), changes their settings
// (narrowing only, as every non-admin) and members, deletes them, reads them, its
// organization and its team list; and no more: not teams elsewhere, not the organization
// itself. The team settings and deletion of teams it did not create were refused before.
func TestOrganizations_OrgAdminManagesTheTeamsInItsOrganization(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/organization/new", master, map[string]any{"organization_id": "acme", "organization_alias": "Acme", "models": []string{"gpt-4o"}, "max_budget": 10})
	e.ok("POST", "/organization/new", master, map[string]any{"organization_id": "other", "organization_alias": "Other"})
	olga := e.user("olga", "internal_user")
	ivan := e.user("ivan", "internal_user")
	e.ok("POST", "/organization/member_add", master, map[string]any{"organization_id": "acme",
		"member": []any{map[string]any{"user_id": "olga", "role": "org_admin"}, map[string]any{"user_id": "ivan", "role": "internal_user"}}})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "elsewhere", "organization_id": "other"})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "no-org"})
	// A team of the organization that olga did not create, so she is not its team admin.
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "acme-ops", "organization_id": "acme", "models": []string{"gpt-4o"}, "max_budget": 5})

	m := e.ok("POST", "/team/new", olga, map[string]any{"team_id": "acme-dev", "organization_id": "acme", "models": []string{"gpt-4o"}, "max_budget": 5})
	if m["organization_id"] != "acme" {
		t.Errorf("/team/new as the org admin = %v", m)
	}
	e.ok("POST", "/team/member_add", olga, map[string]any{"team_id": "acme-ops", "member": map[string]any{"user_id": "dora", "role": "user"}})
	e.ok("POST", "/team/member_update", olga, map[string]any{"team_id": "acme-ops", "user_id": "dora", "max_budget_in_team": 1})
	e.ok("POST", "/team/member_delete", olga, map[string]any{"team_id": "acme-ops", "user_id": "dora"})
	if info := e.ok("GET", "/team/info?team_id=acme-ops", olga, nil); info["team_id"] != "acme-ops" {
		t.Errorf("/team/info = %v", info)
	}
	if info := e.ok("GET", "/organization/info?organization_id=acme", olga, nil); len(info["teams"].([]any)) != 2 {
		t.Errorf("/organization/info as its admin = %v, want its two teams", info)
	}
	if code, raw := e.raw("GET", "/team/list?organization_id=acme", olga, nil); code != 200 || !jsonArrayLen(t, raw, 2) {
		t.Errorf("/team/list?organization_id=acme as its admin: %d %s, want its two teams", code, raw)
	}
	// acme-ops was created by the master key: olga is no admin of it, only of its organization.
	if got := e.ok("POST", "/team/update", olga, map[string]any{"team_id": "acme-ops", "max_budget": 1, "team_alias": "ops"}); got["data"].(map[string]any)["max_budget"] != 1.0 {
		t.Errorf("/team/update of a team of its organization = %v, want max_budget 1", got)
	}
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "acme-old", "organization_id": "acme", "models": []string{"gpt-4o"}, "max_budget": 1,
		"members_with_roles": []any{map[string]any{"user_id": "ivan", "role": "admin"}}})

	for _, c := range []struct {
		name, method, path, key string
		body                    map[string]any
		code                    int
	}{
		{"a team beyond the organization's ceiling", "POST", "/team/new", olga, map[string]any{"organization_id": "acme", "models": []string{"gpt-4o"}, "max_budget": 50}, 403},
		{"a team in another organization", "POST", "/team/new", olga, map[string]any{"organization_id": "other"}, 403},
		{"a team in no organization", "POST", "/team/new", olga, map[string]any{"team_alias": "mine"}, 403},
		{"a plain member of the organization", "POST", "/team/new", ivan, map[string]any{"organization_id": "acme"}, 403},
		{"members of another organization's team", "POST", "/team/member_add", olga, map[string]any{"team_id": "elsewhere", "member": map[string]any{"user_id": "x", "role": "user"}}, 404},
		{"members of a team in no organization", "POST", "/team/member_add", olga, map[string]any{"team_id": "no-org", "member": map[string]any{"user_id": "x", "role": "user"}}, 404},
		{"another organization's team", "GET", "/team/info?team_id=elsewhere", olga, nil, 404},
		{"a raise of a team's budget", "POST", "/team/update", olga, map[string]any{"team_id": "acme-ops", "max_budget": 2}, 403},
		{"another organization's team's settings", "POST", "/team/update", olga, map[string]any{"team_id": "elsewhere", "max_budget": 1}, 404},
		{"a team moved out of the organization", "POST", "/team/update", olga, map[string]any{"team_id": "acme-ops", "organization_id": "other"}, 403},
		{"another organization's team's deletion", "POST", "/team/delete", olga, map[string]any{"team_ids": []string{"acme-dev", "elsewhere"}}, 404},
		{"a team's deletion by its own admin", "POST", "/team/delete", ivan, map[string]any{"team_ids": []string{"acme-old"}}, 403},
		{"the organization itself", "POST", "/organization/update", olga, map[string]any{"organization_id": "acme", "max_budget": 100}, 403},
		{"the organization's members", "POST", "/organization/member_add", olga, map[string]any{"organization_id": "acme", "member": map[string]any{"user_id": "y"}}, 403},
		{"another organization", "GET", "/organization/info?organization_id=other", olga, nil, 404},
		{"another organization's teams", "GET", "/team/list?organization_id=other", olga, nil, 401},
		{"the organization as a plain member", "GET", "/organization/info?organization_id=acme", ivan, nil, 404},
		{"its teams as a plain member", "GET", "/team/list?organization_id=acme", ivan, nil, 401},
	} {
		if code, m := e.call(c.method, c.path, c.key, c.body); code != c.code {
			t.Errorf("%s: %s %s = %d %v, want %d", c.name, c.method, c.path, code, m, c.code)
		}
	}
	// A refused deletion deleted nothing; an allowed one deletes every team named.
	e.ok("GET", "/team/info?team_id=acme-dev", master, nil)
	e.ok("POST", "/team/delete", olga, map[string]any{"team_ids": []string{"acme-dev", "acme-ops", "acme-old"}})
	for _, id := range []string{"acme-dev", "acme-ops", "acme-old"} {
		if code, m := e.call("GET", "/team/info?team_id="+id, master, nil); code != 404 {
			t.Errorf("%s after its deletion by the org admin: %d %v, want 404", id, code, m)
		}
	}
	e.ok("GET", "/team/info?team_id=elsewhere", master, nil)
}
