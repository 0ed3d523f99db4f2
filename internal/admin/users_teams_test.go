package admin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

func TestUserNew_CreatesUserKeyAndMemberships(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t1", "team_alias": "one", "team_member_budget": 2})
	m := e.ok("POST", "/user/new", master, map[string]any{
		"user_id": "alice", "user_email": "alice@example.com", "max_budget": 5, "teams": []any{"t1"}, "key_alias": "alice-key",
	})
	hasFields(t, "/user/new", m, "key", "expires", "user_id", "max_budget", "user_email", "user_role", "teams",
		"user_alias", "models", "spend", "budget_duration", "budget_reset_at", "metadata", "tpm_limit", "rpm_limit",
		"created_at", "updated_at", "key_alias", "key_name")
	if m["user_id"] != "alice" || m["user_role"] != "internal_user" || fmt.Sprint(m["teams"]) != "[t1]" || m["key_alias"] != "alice-key" {
		t.Errorf("/user/new answer: %v", m)
	}
	key := m["key"].(string)
	info := e.ok("GET", "/key/info?key="+key, master, nil)["info"].(map[string]any)
	if info["user_id"] != "alice" {
		t.Errorf("key's user_id = %v, want alice", info["user_id"])
	}
	team := e.ok("GET", "/team/info?team_id=t1", master, nil)
	hasFields(t, "/team/info", team, "team_id", "team_info", "keys", "team_memberships")
	tm := team["team_memberships"].([]any)
	// The master key's user, default_user_id, created the team and is its admin.
	if len(tm) != 2 || tm[0].(map[string]any)["user_id"] != "alice" {
		t.Errorf("team_memberships = %v", tm)
	}
	members := team["team_info"].(map[string]any)["members_with_roles"].([]any)
	if len(members) != 2 || members[1].(map[string]any)["role"] != "user" {
		t.Errorf("members_with_roles = %v", members)
	}
	// The user's key authenticates with its membership budget loaded.
	p, err := e.authn.Principal(t.Context(), bearer(key))
	if err != nil || p.User == nil || p.User.UserID != "alice" {
		t.Fatalf("principal: %+v, %v", p, err)
	}

	code, body := e.call("POST", "/user/new", master, map[string]any{"user_id": "alice"})
	wantError(t, code, body, 409, "auth_error", "User with id alice already exists")
	code, body = e.call("POST", "/user/new", master, map[string]any{"user_id": "bob", "user_email": "ALICE@example.com"})
	wantError(t, code, body, 409, "auth_error", "User with email ALICE@example.com already exists")
	if _, err := e.st.GetUser(t.Context(), "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused /user/new left user bob behind: %v", err)
	}
	code, body = e.call("POST", "/user/new", master, map[string]any{"user_id": "carol", "teams": []any{"no-such-team"}})
	wantError(t, code, body, 400, "auth_error", "")
	if _, err := e.st.GetUser(t.Context(), "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused /user/new left user carol behind: %v", err)
	}
}

func bearer(key string) *httpRequest {
	r := newRequest("GET", "/")
	r.Header.Set("Authorization", "Bearer "+key)
	return r
}

func TestUserInfoUpdateListDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.ok("POST", "/user/new", master, map[string]any{"user_id": "u1", "user_email": "u1@example.com"})["key"].(string)
	e.ok("POST", "/user/new", master, map[string]any{"user_id": "u2", "auto_create_key": false})

	info := e.ok("GET", "/user/info?user_id=u1", master, nil)
	hasFields(t, "/user/info", info, "user_id", "user_info", "keys", "teams")
	if len(info["keys"].([]any)) != 1 {
		t.Errorf("u1 keys = %v", info["keys"])
	}
	// A user sees itself without naming itself, and not others.
	if m := e.ok("GET", "/user/info", key, nil); m["user_id"] != "u1" {
		t.Errorf("own /user/info = %v", m["user_id"])
	}
	// Another user reads as a missing one: the answer does not tell whether it exists.
	code, body := e.call("GET", "/user/info?user_id=u2", key, nil)
	wantError(t, code, body, 404, "auth_error", "User u2 not found")

	m := e.ok("POST", "/user/update", master, map[string]any{"user_email": "u1@example.com", "max_budget": 7, "user_role": "proxy_admin_viewer"})
	if m["user_id"] != "u1" || m["max_budget"] != 7.0 || m["user_role"] != "proxy_admin_viewer" {
		t.Errorf("/user/update by email: %v", m)
	}
	code, body = e.call("POST", "/user/update", key, map[string]any{"user_id": "u1", "user_role": "proxy_admin"})
	wantError(t, code, body, 403, "auth_error", "Only proxy admins can modify user roles.")
	code, body = e.call("POST", "/user/update", master, map[string]any{"max_budget": 1})
	wantError(t, code, body, 400, "auth_error", "Either user id or user email must be provided")

	list := e.ok("GET", "/user/list?page=1&page_size=1", master, nil)
	if list["total"] != 2.0 || list["total_pages"] != 2.0 || len(list["users"].([]any)) != 1 || list["page_size"] != 1.0 {
		t.Errorf("/user/list: %v", list)
	}
	if u := list["users"].([]any)[0].(map[string]any); u["user_id"] != "u2" || u["key_count"] != 0.0 {
		t.Errorf("newest user first with key_count: %v", u)
	}
	// u1 is a proxy_admin_viewer now, which reads what admins read.
	e.ok("GET", "/user/list", key, nil)

	code, body = e.call("POST", "/user/delete", master, map[string]any{"user_ids": []string{"u1", "ghost"}})
	wantError(t, code, body, 404, "auth_error", "User not found, passed user_id=ghost")
	if code, raw := e.raw("POST", "/user/delete", master, map[string]any{"user_ids": []string{"u1"}}); code != 200 || string(raw) != "1\n" {
		t.Fatalf("/user/delete = %d %s", code, raw)
	}
	if code, _ := e.authStatus(key); code != 401 {
		t.Errorf("deleted user's key: %d, want 401", code)
	}
	if _, err := e.st.UserIDByEmail(t.Context(), "u1@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("email item left behind: %v", err)
	}
}

func TestRoles_InternalUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.ok("POST", "/user/new", master, map[string]any{"user_id": "alice"})["key"].(string)
	bob := e.ok("POST", "/user/new", master, map[string]any{"user_id": "bob"})["key"].(string)

	// Own keys: generate (user_id defaults to the caller), update, delete.
	m := e.ok("POST", "/key/generate", alice, map[string]any{"key_alias": "alice-2"})
	if m["user_id"] != "alice" || m["created_by"] != "alice" {
		t.Errorf("internal user's key: user_id %v created_by %v", m["user_id"], m["created_by"])
	}
	own := m["key"].(string)
	e.ok("POST", "/key/update", alice, map[string]any{"key": own, "metadata": map[string]any{"x": 1}})

	tests := []struct {
		name, method, path string
		body               any
		code               int
		msg                string
	}{
		{"key for someone else", "POST", "/key/generate", map[string]any{"user_id": "bob"}, 403, "User can only create keys for themselves. Got user_id=bob, Your ID=alice"},
		// Another's key answers as a missing one, so nothing tells whether it exists.
		{"delete another's key", "POST", "/key/delete", map[string]any{"keys": []string{bob}}, 404, "No keys found"},
		{"update another's key", "POST", "/key/update", map[string]any{"key": bob, "max_budget": 1}, 404, "Key not found, passed key=" + auth.KeyName(bob)},
		{"regenerate another's key", "POST", "/key/regenerate", map[string]any{"key": bob}, 404, "Key " + auth.KeyName(bob) + " not found."},
		{"block a key", "POST", "/key/block", map[string]any{"key": bob}, 404, "Key " + auth.KeyName(bob) + " not found"},
		{"list another's keys", "GET", "/key/list?user_id=bob", nil, 403, "You are not authorized to check another user's keys"},
		{"unblock a key", "POST", "/key/unblock", map[string]any{"key": bob}, 403, ""},
		{"create users", "POST", "/user/new", map[string]any{}, 403, "Only proxy admin can be used to generate, delete, update info for new keys/users/teams. Route=/user/new. Your role=internal_user. Your user_id=alice"},
		{"create teams", "POST", "/team/new", map[string]any{}, 403, ""},
		{"list all teams", "GET", "/team/list", nil, 401, "Only admin users can query all teams/other teams. Your user role=internal_user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.call(tt.method, tt.path, alice, tt.body)
			wantError(t, code, body, tt.code, "auth_error", tt.msg)
		})
	}
	list := e.ok("GET", "/key/list", alice, nil)
	if list["total_count"] != 2.0 {
		t.Errorf("alice lists %v keys, want her 2", list["total_count"])
	}
	e.ok("POST", "/key/delete", alice, map[string]any{"keys": []string{own}})
}

func TestRoles_TeamAdminManagesTeamKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.ok("POST", "/user/new", master, map[string]any{"user_id": "lead"})["key"].(string)
	member := e.ok("POST", "/user/new", master, map[string]any{"user_id": "dev"})["key"].(string)
	outsider := e.ok("POST", "/user/new", master, map[string]any{"user_id": "out"})["key"].(string)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "members_with_roles": []any{
		map[string]any{"user_id": "lead", "role": "admin"}, map[string]any{"user_id": "dev", "role": "user"},
	}})
	// A plain member creates no team keys unless the team lets it (LiteLLM's default).
	code, body := e.call("POST", "/key/generate", member, map[string]any{"team_id": "t"})
	wantError(t, code, body, 401, "team_member_permission_error", "")
	teamKey := e.ok("POST", "/key/generate", admin, map[string]any{"team_id": "t", "user_id": "lead"})["key"].(string)

	// An outsider is told what a missing team gets.
	code, body = e.call("POST", "/key/generate", outsider, map[string]any{"team_id": "t"})
	wantError(t, code, body, 400, "auth_error", "Team doesn't exist in db. Team=t. Create team via `/team/new` call.")
	code, body = e.call("POST", "/team/member_add", member, map[string]any{"team_id": "t", "member": map[string]any{"user_id": "out", "role": "user"}})
	wantError(t, code, body, 403, "auth_error", "Call not allowed. User not proxy admin OR team admin. route=/team/member_add, team_id=t")

	e.ok("POST", "/key/block", admin, map[string]any{"key": teamKey})
	e.ok("POST", "/team/update", admin, map[string]any{"team_id": "t", "max_budget": 50})
	m := e.ok("POST", "/team/member_add", admin, map[string]any{"team_id": "t", "member": []any{map[string]any{"user_id": "out", "role": "user"}}, "max_budget_in_team": 3})
	hasFields(t, "/team/member_add", m, "team_id", "members_with_roles", "updated_users", "updated_team_memberships")
	if len(m["members_with_roles"].([]any)) != 4 { // with the creator, default_user_id
		t.Errorf("members after add: %v", m["members_with_roles"])
	}
	e.ok("POST", "/key/delete", admin, map[string]any{"keys": []string{teamKey}})
	code, body = e.call("POST", "/team/delete", admin, map[string]any{"team_ids": []string{"t"}})
	wantError(t, code, body, 403, "auth_error", "")
}

func TestTeam_Lifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	m := e.ok("POST", "/team/new", master, map[string]any{
		"team_alias": "core", "max_budget": 100, "models": []string{"gpt-4o"}, "model_aliases": map[string]string{"fast": "gpt-4o"},
		"members_with_roles": []any{map[string]any{"user_email": "new@example.com", "role": "admin"}},
	})
	hasFields(t, "/team/new", m, "team_id", "team_alias", "admins", "members", "members_with_roles", "metadata", "tpm_limit",
		"rpm_limit", "max_budget", "budget_duration", "models", "blocked", "spend", "max_parallel_requests", "budget_reset_at",
		"model_id", "litellm_model_table", "created_at", "updated_at")
	id := m["team_id"].(string)
	if len(id) != 36 {
		t.Errorf("generated team_id %q is not a UUID", id)
	}
	uid, err := e.st.UserIDByEmail(t.Context(), "new@example.com")
	if err != nil {
		t.Fatalf("member by email was not created as a user: %v", err)
	}
	key := e.generate(map[string]any{"team_id": id, "user_id": uid})

	code, body := e.call("POST", "/team/new", master, map[string]any{"team_id": id})
	wantError(t, code, body, 400, "auth_error", fmt.Sprintf("Team id = %s already exists. Please use a different team id.", id))
	code, body = e.call("POST", "/team/member_add", master, map[string]any{"team_id": id, "member": map[string]any{"user_id": uid, "role": "user"}})
	wantError(t, code, body, 400, "team_member_already_in_team", "")

	e.ok("POST", "/team/block", master, map[string]any{"team_id": id})
	code, body = e.authStatus(key)
	wantError(t, code, body, 401, "auth_error", fmt.Sprintf("Authentication Error, Team=%s is blocked. Update via `/team/unblock` if you're an admin.", id))
	e.ok("POST", "/team/unblock", master, map[string]any{"team_id": id})
	if code, _ := e.authStatus(key); code != 200 {
		t.Errorf("key of unblocked team: %d", code)
	}

	up := e.ok("POST", "/team/update", master, map[string]any{"team_id": id, "max_budget": 10, "budget_duration": "1d"})
	if up["team_id"] != id || up["data"].(map[string]any)["max_budget"] != 10.0 || up["data"].(map[string]any)["budget_reset_at"] == nil {
		t.Errorf("/team/update: %v", up)
	}
	code, raw := e.raw("GET", "/team/list", master, nil)
	if code != 200 || !jsonArrayLen(t, raw, 1) {
		t.Errorf("/team/list = %d %s", code, raw)
	}

	e.ok("POST", "/team/member_delete", master, map[string]any{"team_id": id, "user_email": "new@example.com"})
	u, _ := e.st.GetUser(t.Context(), uid)
	if slices.Contains(u.Teams, id) {
		t.Errorf("user still lists the team after member_delete: %v", u.Teams)
	}
	code, body = e.call("POST", "/team/member_delete", master, map[string]any{"team_id": id, "user_id": uid})
	wantError(t, code, body, 400, "auth_error", "User not found in team")

	if m := e.ok("POST", "/team/delete", master, map[string]any{"team_ids": []string{id}}); m["deleted_teams"] != 1.0 {
		t.Errorf("/team/delete = %v", m)
	}
	if code, _ := e.authStatus(key); code != 401 {
		t.Errorf("key of a deleted team: %d, want 401", code)
	}
	code, body = e.call("GET", "/team/info?team_id="+id, master, nil)
	wantError(t, code, body, 404, "auth_error", fmt.Sprintf("Team not found, passed team id: %s.", id))
	code, body = e.call("POST", "/team/delete", master, map[string]any{"team_ids": []string{id}})
	wantError(t, code, body, 404, "auth_error", fmt.Sprintf("Team not found, passed team_id=%s", id))
}

func TestTeamDelete_RemovesKeysMembershipsAndUserLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "members_with_roles": []any{map[string]any{"user_id": "m1", "role": "user"}}})
	var keys []string
	for range 3 {
		keys = append(keys, e.generate(map[string]any{"team_id": "t"}))
	}
	e.ok("POST", "/team/delete", master, map[string]any{"team_ids": []string{"t"}})
	for _, k := range keys {
		if _, err := e.st.GetKey(t.Context(), auth.Hash(k)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("team key left behind: %v", err)
		}
	}
	ms, _ := e.st.Memberships(t.Context(), "t")
	u, _ := e.st.GetUser(t.Context(), "m1")
	if len(ms) != 0 || u == nil || len(u.Teams) != 0 {
		t.Errorf("memberships %v, user teams %v; want none", ms, u)
	}
}

func TestTeamMemberBudgetDuration_MembershipsReset(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "team_member_budget": 5, "team_member_budget_duration": "1d",
		"members_with_roles": []any{map[string]any{"user_id": "a", "role": "user"}}})
	e.ok("POST", "/team/member_add", master, map[string]any{"team_id": "t", "member": map[string]any{"user_id": "b", "role": "user"}})
	// A team that gets the duration later moves its existing members onto it.
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "later", "team_member_budget": 5,
		"members_with_roles": []any{map[string]any{"user_id": "c", "role": "user"}}})
	up := e.ok("POST", "/team/update", master, map[string]any{"team_id": "later", "team_member_budget_duration": "7d"})
	if up["data"].(map[string]any)["team_member_budget_duration"] != "7d" {
		t.Errorf("/team/update answer: %v", up["data"])
	}

	for _, tt := range []struct {
		team, dur string
		users     []string
	}{{"t", "1d", []string{"a", "b", auth.ProxyAdminUserID}}, {"later", "7d", []string{"c", auth.ProxyAdminUserID}}} {
		info := e.ok("GET", "/team/info?team_id="+tt.team, master, nil)
		if got := info["team_info"].(map[string]any)["team_member_budget_duration"]; got != tt.dur {
			t.Errorf("team %s: team_member_budget_duration = %v", tt.team, got)
		}
		ms := info["team_memberships"].([]any)
		if len(ms) != len(tt.users) {
			t.Fatalf("team %s memberships: %v", tt.team, ms)
		}
		for _, m := range ms {
			m := m.(map[string]any)
			b, _ := m["litellm_budget_table"].(map[string]any)
			if !slices.Contains(tt.users, m["user_id"].(string)) || b == nil || b["budget_duration"] != tt.dur || b["budget_reset_at"] == nil || b["max_budget"] != 5.0 {
				t.Errorf("team %s membership of %v: budget table %v", tt.team, m["user_id"], b)
			}
		}
	}
	// The rotator finds the memberships when they are due.
	refs, _, err := e.st.DueResets(t.Context(), e.clock().Add(8*24*time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var due []string
	for _, r := range refs {
		due = append(due, r.PK+" "+r.SK)
	}
	slices.Sort(due)
	if want := []string{"TEAM#later MEMBER#c", "TEAM#later MEMBER#default_user_id", "TEAM#t MEMBER#a", "TEAM#t MEMBER#b",
		"TEAM#t MEMBER#default_user_id"}; !slices.Equal(due, want) {
		t.Errorf("due resets %v, want %v", due, want)
	}

	code, body := e.call("POST", "/team/update", master, map[string]any{"team_id": "t", "team_member_budget_duration": "often"})
	wantError(t, code, body, 400, "invalid_request_error", "")
}

func TestUserNew_KeyGetsLimitsAndMetadata(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.ok("POST", "/user/new", master, map[string]any{"user_id": "lim", "tpm_limit": 1000, "rpm_limit": 10,
		"max_parallel_requests": 2, "metadata": map[string]any{"dept": "ml"}})["key"].(string)
	info := e.ok("GET", "/key/info?key="+key, master, nil)["info"].(map[string]any)
	if info["tpm_limit"] != 1000.0 || info["rpm_limit"] != 10.0 || info["max_parallel_requests"] != 2.0 ||
		fmt.Sprint(info["metadata"]) != "map[dept:ml]" {
		t.Errorf("/user/new key: tpm %v rpm %v parallel %v metadata %v", info["tpm_limit"], info["rpm_limit"],
			info["max_parallel_requests"], info["metadata"])
	}
}

// /team/list?user_id= lists the user's teams, read by id from the user record (not every team
// filtered): teams joined at creation and by member_add, not one left or never joined.
func TestTeamList_UserIDListsTheUsersTeams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.ok("POST", "/user/new", master, map[string]any{"user_id": "alice"})["key"].(string)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "created", "team_alias": "b", "members_with_roles": []any{map[string]any{"user_id": "alice", "role": "user"}}})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "added", "team_alias": "a"})
	e.ok("POST", "/team/member_add", master, map[string]any{"team_id": "added", "member": map[string]any{"user_id": "alice", "role": "admin"}})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "left", "members_with_roles": []any{map[string]any{"user_id": "alice", "role": "user"}}})
	e.ok("POST", "/team/member_delete", master, map[string]any{"team_id": "left", "user_id": "alice"})
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "other"})
	code, raw := e.raw("GET", "/team/list?user_id=alice", alice, nil)
	var got []struct {
		TeamID string `json:"team_id"`
	}
	if code != 200 || json.Unmarshal(raw, &got) != nil {
		t.Fatalf("/team/list?user_id=alice: %d %s", code, raw)
	}
	var ids []string
	for _, x := range got {
		ids = append(ids, x.TeamID)
	}
	if want := []string{"added", "created"}; !slices.Equal(ids, want) { // by alias
		t.Errorf("alice's teams %v, want %v", ids, want)
	}
	code, raw = e.raw("GET", "/team/list?user_id=nobody", master, nil)
	if code != 200 || strings.TrimSpace(string(raw)) != "[]" {
		t.Errorf("a user without a record: %d %s, want []", code, raw)
	}
}
