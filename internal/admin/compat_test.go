package admin_test

import (
	"fmt"
	"sync"
	"testing"
)

// Scenarios from LiteLLM Proxy's own end-to-end tests (tests/test_keys.py, test_team.py,
// test_users.py), ported to llmgate's admin handler.

func TestUpdate_NullMaxBudgetRemovesTheBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.generate(map[string]any{"max_budget": 10})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t1", "max_budget": 10})
	e.ok("POST", "/user/new", master, map[string]any{"user_id": "u1", "max_budget": 10})
	for _, c := range []struct {
		path, info string
		body       map[string]any
	}{
		{"/key/update", "/key/info?key=" + key, map[string]any{"key": key, "max_budget": nil}},
		{"/team/update", "/team/info?team_id=t1", map[string]any{"team_id": "t1", "max_budget": nil}},
		{"/user/update", "/user/info?user_id=u1", map[string]any{"user_id": "u1", "max_budget": nil}},
	} {
		e.ok("POST", c.path, master, c.body)
		m := e.ok("GET", c.info, master, nil)
		for _, k := range []string{"info", "team_info", "user_info"} {
			if sub, ok := m[k].(map[string]any); ok {
				m = sub
			}
		}
		if v, ok := m["max_budget"]; !ok || v != nil {
			t.Errorf("%s: max_budget after null update = %v (present %v), want null", c.path, v, ok)
		}
	}
}

// test_team.py's test_team_new_concurrent (and test_users.py's) create teams in parallel that
// all name the same new user: every one must succeed, and the user ends up in all of them.
func TestTeamNew_ConcurrentTeamsNamingTheSameNewMember(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 10
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _ = e.call("POST", "/team/new", master, map[string]any{
				"team_id": fmt.Sprintf("team-%d", i), "members_with_roles": []any{map[string]any{"user_id": "shared", "role": "user"}},
			})
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Errorf("/team/new team-%d = %d, want 200", i, c)
		}
	}
	u, err := e.st.GetUser(t.Context(), "shared")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Teams) != n {
		t.Errorf("user teams = %v, want %d teams", u.Teams, n)
	}
}

// test_team.py counts members after /team/new: LiteLLM adds the caller as a team admin
// unless the request names it, and the master key's user is default_user_id.
func TestTeamNew_AddsTheCallerAsAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lead := e.ok("POST", "/user/new", master, map[string]any{"user_id": "lead", "user_role": "proxy_admin"})["key"].(string)
	for _, c := range []struct {
		name, key string
		members   []any
		want      string
	}{
		{"master key", master, nil, "[default_user_id:admin]"},
		{"caller named as user", lead, []any{map[string]any{"user_id": "lead", "role": "user"}}, "[lead:user]"},
		{"caller not named", lead, []any{map[string]any{"user_id": "dev", "role": "user"}}, "[dev:user lead:admin]"},
	} {
		m := e.ok("POST", "/team/new", c.key, map[string]any{"members_with_roles": c.members})
		var got []string
		for _, x := range m["members_with_roles"].([]any) {
			x := x.(map[string]any)
			got = append(got, fmt.Sprintf("%v:%v", x["user_id"], x["role"]))
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("%s: members_with_roles = %v, want %s", c.name, got, c.want)
		}
	}
}

// test_team.py test_team_member_update (and test_team_member_permissions.py's setup): a
// member's role and team budget change; a team admin may change others, not itself.
func TestTeamMemberUpdate_RoleAndBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lead := e.ok("POST", "/user/new", master, map[string]any{"user_id": "lead"})["key"].(string)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "members_with_roles": []any{
		map[string]any{"user_id": "lead", "role": "admin"}, map[string]any{"user_id": "dev", "user_email": "dev@example.com", "role": "user"},
	}})
	m := e.ok("POST", "/team/member_update", lead, map[string]any{"team_id": "t", "user_email": "dev@example.com", "max_budget_in_team": 7})
	if m["user_id"] != "dev" || m["max_budget_in_team"] != 7.0 {
		t.Errorf("/team/member_update answer: %v", m)
	}
	e.ok("POST", "/team/member_update", master, map[string]any{"team_id": "t", "user_id": "dev", "role": "admin"})
	info := e.ok("GET", "/team/info?team_id=t", master, nil)
	roles := map[any]any{}
	for _, x := range info["team_info"].(map[string]any)["members_with_roles"].([]any) {
		roles[x.(map[string]any)["user_id"]] = x.(map[string]any)["role"]
	}
	if roles["dev"] != "admin" {
		t.Errorf("dev's role after update: %v", roles)
	}
	ms, err := e.st.GetMembership(t.Context(), "t", "dev")
	if err != nil || ms.MaxBudget == nil || *ms.MaxBudget != 7 {
		t.Errorf("dev's membership: %+v, %v", ms, err)
	}
	code, body := e.call("POST", "/team/member_update", lead, map[string]any{"team_id": "t", "user_id": "lead", "max_budget_in_team": 1000})
	wantError(t, code, body, 403, "auth_error", "")
	code, body = e.call("POST", "/team/member_update", master, map[string]any{"team_id": "t", "user_id": "nobody", "role": "user"})
	wantError(t, code, body, 400, "auth_error", "User not found in team")
	e.ok("POST", "/team/member_update", master, map[string]any{"team_id": "t", "user_id": "dev", "max_budget_in_team": nil})
	if ms, _ := e.st.GetMembership(t.Context(), "t", "dev"); ms.MaxBudget != nil {
		t.Errorf("max_budget_in_team null left %v", *ms.MaxBudget)
	}
}
