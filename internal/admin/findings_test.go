package admin_test

import (
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/rotation"
	"github.com/llmgate/llmgate/internal/store"
)

// The findings of issue 14 on the management API, one test each, through the real handlers
// on DynamoDB Local. Each failed before the permission model (see /work/notes/authz.md).

// user creates a user with a role and returns its key.
func (e *env) user(id, role string) string {
	e.t.Helper()
	return e.ok("POST", "/user/new", master, map[string]any{"user_id": id, "user_role": role})["key"].(string)
}

// storedUser reads a user as stored.
func (e *env) storedUser(t *testing.T, id string) *store.User {
	t.Helper()
	u, err := e.st.GetUser(t.Context(), id)
	if err != nil {
		t.Fatalf("user %s: %v", id, err)
	}
	return u
}

func TestFinding_UserUpdateSelfRaiseRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, role := range []string{auth.RoleInternalUser, auth.RoleProxyAdminViewer, auth.RoleInternalUserViewer} {
		t.Run(role, func(t *testing.T) {
			id := "self-" + role
			key := e.user(id, role)
			e.ok("POST", "/user/update", master, map[string]any{"user_id": id, "max_budget": 10, "models": []string{"gpt-4o"}})
			before := e.storedUser(t, id)
			code, m := e.call("POST", "/user/update", key, map[string]any{"user_id": id, "max_budget": 1000000, "models": []string{}})
			if code != 403 {
				t.Errorf("self-raise answered %d %v, want 403", code, m)
			}
			if after := e.storedUser(t, id); !reflect.DeepEqual(before, after) {
				t.Errorf("refused update changed the user:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
	// Narrowing oneself is fine.
	key := e.user("narrow", auth.RoleInternalUser)
	e.ok("POST", "/user/update", master, map[string]any{"user_id": "narrow", "max_budget": 10})
	if m := e.ok("POST", "/user/update", key, map[string]any{"user_id": "narrow", "max_budget": 5}); m["max_budget"] != 5.0 {
		t.Errorf("lowering one's own budget: %v", m["max_budget"])
	}
}

func TestFinding_ViewersCannotGenerateKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, role := range []string{auth.RoleProxyAdminViewer, auth.RoleInternalUserViewer} {
		t.Run(role, func(t *testing.T) {
			key := e.user("viewer-"+role, role)
			code, m := e.call("POST", "/key/generate", key, map[string]any{})
			wantError(t, code, m, 403, "auth_error", "user not allowed to access this route, role= "+role+". Trying to access: /key/generate")
		})
	}
}

func TestFinding_OwnerCannotUnblockAdminBlockedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", auth.RoleInternalUser)
	for _, route := range []string{"/key/update", "/key/regenerate", "/key/unblock"} {
		t.Run(route, func(t *testing.T) {
			k := e.generate(map[string]any{"user_id": "alice"})
			e.ok("POST", "/key/block", master, map[string]any{"key": k})
			code, m := e.call("POST", route, alice, map[string]any{"key": k, "blocked": false})
			if code != 403 {
				t.Errorf("%s by the owner answered %d %v, want 403", route, code, m)
			}
			if got := e.storedKey(t, k); got == nil || !got.Blocked {
				t.Errorf("key after %s: %+v, want it still blocked", route, got)
			}
		})
	}
}

func TestFinding_TeamAdminCannotUnblockOrRaiseTeam(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lead := e.user("lead", auth.RoleInternalUser)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "max_budget": 10,
		"members_with_roles": []any{map[string]any{"user_id": "lead", "role": "admin"}}})
	e.ok("POST", "/team/block", master, map[string]any{"team_id": "t"})
	for name, body := range map[string]map[string]any{
		"unblock":    {"team_id": "t", "blocked": false},
		"raise":      {"team_id": "t", "max_budget": 1000000},
		"both":       {"team_id": "t", "blocked": false, "max_budget": 1000000},
		"/team/unbl": nil,
	} {
		t.Run(name, func(t *testing.T) {
			path := "/team/update"
			if body == nil {
				path, body = "/team/unblock", map[string]any{"team_id": "t"}
			}
			code, m := e.call("POST", path, lead, body)
			if code != 403 {
				t.Errorf("%s answered %d %v, want 403", path, code, m)
			}
			got, err := e.st.GetTeam(t.Context(), "t")
			if err != nil || !got.Blocked || *got.MaxBudget != 10 {
				t.Errorf("team after the refusal: %+v %v", got, err)
			}
		})
	}
}

func TestFinding_KeysWithoutUserCannotMintKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "max_budget": 5, "models": []string{"gpt-4o"}})
	loose := e.generate(map[string]any{"max_budget": 1})
	teamKey := e.generate(map[string]any{"team_id": "t"})
	for name, tt := range map[string]struct {
		key  string
		body map[string]any
	}{
		"key without user, empty body":    {loose, map[string]any{}},
		"team key without user, personal": {teamKey, map[string]any{}},
		"team key without user, team key": {teamKey, map[string]any{"team_id": "t"}},
	} {
		t.Run(name, func(t *testing.T) {
			code, m := e.call("POST", "/key/generate", tt.key, tt.body)
			if code != 403 && code != 401 {
				t.Errorf("answered %d %v, want a refusal", code, m)
			}
		})
	}
	if _, m := e.call("GET", "/key/list", master, nil); m["total_count"] != 2.0 {
		t.Errorf("keys after the refusals: %v, want the 2 made by the admin", m["total_count"])
	}
}

func TestFinding_NewKeysInheritTheirCreatorsLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("alice", auth.RoleInternalUser)
	creator := e.generate(map[string]any{"user_id": "alice", "max_budget": 3, "models": []string{"gpt-4o"}, "rpm_limit": 7, "duration": "1h"})
	m := e.ok("POST", "/key/generate", creator, map[string]any{})
	if m["max_budget"] != 3.0 || m["rpm_limit"] != 7.0 || m["expires"] == nil || !reflect.DeepEqual(m["models"], []any{"gpt-4o"}) {
		t.Errorf("new key: max_budget %v rpm_limit %v expires %v models %v, want its creator's", m["max_budget"], m["rpm_limit"], m["expires"], m["models"])
	}
	for field, v := range map[string]any{"max_budget": 4, "rpm_limit": 8, "models": []string{"gpt-4o", "o3"}, "duration": "2h"} {
		code, body := e.call("POST", "/key/generate", creator, map[string]any{field: v})
		if code != 403 || errOf(t, body)["param"] != field {
			t.Errorf("%s beyond the creator's: %d %v, want 403 naming it", field, code, body)
		}
	}
}

func TestFinding_PlainTeamMemberCannotCreateTeamKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dev := e.user("dev", auth.RoleInternalUser)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "members_with_roles": []any{map[string]any{"user_id": "dev", "role": "user"}}})
	code, m := e.call("POST", "/key/generate", dev, map[string]any{"team_id": "t"})
	wantError(t, code, m, 401, "team_member_permission_error", "Team member does not have permissions for endpoint: /key/generate. "+
		"You only have access to the following endpoints: [] for team t. To create keys for this team, please ask your proxy admin to check "+
		"the team member permission settings and update the settings to allow team member users to create keys.")
	// The team's team_member_permissions let it.
	e.ok("POST", "/team/update", master, map[string]any{"team_id": "t", "team_member_permissions": []string{"/key/generate"}})
	e.ok("POST", "/key/generate", dev, map[string]any{"team_id": "t"})
}

func TestFinding_AliasesStayWithinTheModelsList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", auth.RoleInternalUser)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "models": []string{"gpt-4o"},
		"members_with_roles": []any{map[string]any{"user_id": "alice", "role": "admin"}}})
	own := e.generate(map[string]any{"user_id": "alice", "models": []string{"gpt-4o"}})
	inTeam := e.generate(map[string]any{"user_id": "alice", "team_id": "t"})
	for name, tt := range map[string]struct {
		route string
		body  map[string]any
	}{
		"update: outside the key's models":  {"/key/update", map[string]any{"key": own, "aliases": map[string]string{"gpt-4o": "o3-pro"}}},
		"update: outside the team's models": {"/key/update", map[string]any{"key": inTeam, "aliases": map[string]string{"gpt-4o": "o3-pro"}}},
		"generate: outside the creator's":   {"/key/generate", map[string]any{"aliases": map[string]string{"gpt-4o": "o3-pro"}}},
		"team model_aliases by team admin":  {"/team/update", map[string]any{"team_id": "t", "model_aliases": map[string]string{"gpt-4o": "o3-pro"}}},
	} {
		t.Run(name, func(t *testing.T) {
			caller := alice
			if tt.route == "/key/generate" {
				caller = own
			}
			code, m := e.call("POST", tt.route, caller, tt.body)
			if code != 403 {
				t.Errorf("answered %d %v, want 403", code, m)
			}
		})
	}
	e.ok("POST", "/key/update", alice, map[string]any{"key": own, "aliases": map[string]string{"fast": "gpt-4o"}})
}

func TestFinding_GraceOldValueVisibleToAdmins(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, route := range []string{"/key/info", "/key/block", "/key/delete"} {
		t.Run(route, func(t *testing.T) {
			old := e.generate(map[string]any{})
			cur := e.ok("POST", "/key/regenerate", master, map[string]any{"key": old, "grace_period": "36500d"})["key"].(string)
			if code, _ := e.authStatus(old); code != 200 {
				t.Fatalf("old value in its grace period answered %d", code)
			}
			var code int
			var m map[string]any
			switch route {
			case "/key/info":
				code, m = e.call("GET", "/key/info?key="+url.QueryEscape(old), master, nil)
				if info, _ := m["info"].(map[string]any); code == 200 && info["key_name"] != auth.KeyName(cur) {
					t.Errorf("info of the old value: %v, want the key it was rotated into", info)
				}
			case "/key/block":
				code, m = e.call("POST", "/key/block", master, map[string]any{"key": old})
			case "/key/delete":
				code, m = e.call("POST", "/key/delete", master, map[string]any{"keys": []string{old}})
			}
			if code != 200 {
				t.Fatalf("%s by the old value answered %d %v", route, code, m)
			}
			if route != "/key/info" {
				for _, k := range []string{old, cur} {
					if code, _ := e.authStatus(k); code != 401 {
						t.Errorf("after %s by the old value, %s answers %d, want 401", route, auth.KeyName(k), code)
					}
				}
			}
		})
	}
}

func TestFinding_RevokedKeyCannotMintOnAnotherInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("alice", auth.RoleInternalUser)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "members_with_roles": []any{map[string]any{"user_id": "alice", "role": "admin"}}})
	for _, revoke := range []string{"block key", "delete key", "block team"} {
		t.Run(revoke, func(t *testing.T) {
			k := e.generate(map[string]any{"user_id": "alice", "team_id": "t"})
			warm := e.another()
			if code, m := warm.call("GET", "/key/info", k, nil); code != 200 { // warms its cache
				t.Fatalf("warm-up: %d %v", code, m)
			}
			switch revoke {
			case "block key":
				e.ok("POST", "/key/block", master, map[string]any{"key": k})
			case "delete key":
				e.ok("POST", "/key/delete", master, map[string]any{"keys": []string{k}})
			case "block team":
				e.ok("POST", "/team/block", master, map[string]any{"team_id": "t"})
				defer e.ok("POST", "/team/unblock", master, map[string]any{"team_id": "t"})
			}
			if code, m := warm.call("POST", "/key/generate", k, map[string]any{}); code != 401 {
				t.Errorf("revoked key on a warm instance minted: %d %v, want 401", code, m)
			}
		})
	}
}

func TestFinding_CustomKeyValues(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	taken := "sk-Qh7f2LmX9pRt4vWc8bNz1K"
	e.generate(map[string]any{"key": taken})
	for name, v := range map[string]string{
		"prefix only":     "sk-",
		"one character":   "sk-a",
		"repetitive":      "sk-" + strings.Repeat("a", 40),
		"the master key":  master,
		"already in use":  taken,
		"over 256 bytes":  "sk-" + strings.Repeat("xY9-", 80),
		"control chars":   "sk-ab\x01cdefghijklmnopqrstuvwxyz",
		"new_key, master": "",
	} {
		t.Run(name, func(t *testing.T) {
			route, body := "/key/generate", map[string]any{"key": v}
			if v == "" {
				route, body = "/key/regenerate", map[string]any{"key": taken, "new_key": master}
			}
			code, m := e.call("POST", route, master, body)
			if code != 400 {
				t.Fatalf("answered %d %v, want 400", code, m)
			}
			if msg := errOf(t, m)["message"].(string); strings.Contains(msg, "exists") {
				t.Errorf("answer %q tells whether the value is in use", msg)
			}
		})
	}
	// With a strong master key, in use and the master key get the same answer (a weak one
	// gets what every weak value gets).
	strong := "sk-Mk9vT2qLx7Rb4Wn8Zc1Hf6Jd"
	s := newEnv(t, func(c *config.Config, _ *admin.Options) { c.GeneralSettings.MasterKey = strong })
	s.ok("POST", "/key/generate", strong, map[string]any{"key": taken})
	_, a := s.call("POST", "/key/generate", strong, map[string]any{"key": taken})
	_, b := s.call("POST", "/key/generate", strong, map[string]any{"key": strong})
	if !reflect.DeepEqual(a, b) {
		t.Errorf("a value in use answers %v, the master key %v: want the same", a, b)
	}
}

func TestFinding_MissingAndForbiddenAnswerTheSame(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", auth.RoleInternalUser)
	e.user("bob", auth.RoleInternalUser)
	bobs := e.generate(map[string]any{"user_id": "bob"})
	ghost := "sk-" + strings.Repeat("Zq7-", 6)
	for _, tt := range []struct {
		method, route string
		body          func(k string) any
		path          func(k string) string
	}{
		{"POST", "/key/delete", func(k string) any { return map[string]any{"keys": []string{k}} }, nil},
		{"POST", "/key/update", func(k string) any { return map[string]any{"key": k, "metadata": map[string]any{}} }, nil},
		{"POST", "/key/regenerate", func(k string) any { return map[string]any{"key": k} }, nil},
		{"POST", "/key/block", func(k string) any { return map[string]any{"key": k} }, nil},
		{"GET", "/key/info", nil, func(k string) string { return "/key/info?key=" + url.QueryEscape(k) }},
	} {
		t.Run(tt.route, func(t *testing.T) {
			answer := func(k string) (int, string) {
				path, body := tt.route, any(nil)
				if tt.path != nil {
					path = tt.path(k)
				}
				if tt.body != nil {
					body = tt.body(k)
				}
				code, m := e.call(tt.method, path, alice, body)
				msg, _ := errOf(t, m)["message"].(string)
				return code, strings.ReplaceAll(msg, auth.KeyName(k), "<key>")
			}
			c1, m1 := answer(bobs)
			c2, m2 := answer(ghost)
			if c1 != c2 || m1 != m2 {
				t.Errorf("another's key: %d %q; a missing key: %d %q; want the same", c1, m1, c2, m2)
			}
		})
	}
	if e.storedKey(t, bobs) == nil {
		t.Error("bob's key is gone")
	}
}

func TestFinding_TeamListHidesKeyHashesAndTeammatesKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", auth.RoleInternalUser)
	e.user("bob", auth.RoleInternalUser)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "members_with_roles": []any{
		map[string]any{"user_id": "alice", "role": "user"}, map[string]any{"user_id": "bob", "role": "user"}}})
	bobs := e.generate(map[string]any{"user_id": "bob", "team_id": "t"})
	code, raw := e.raw("GET", "/team/list?user_id=alice", alice, nil)
	if code != 200 {
		t.Fatalf("/team/list: %d %s", code, raw)
	}
	if strings.Contains(string(raw), auth.Hash(bobs)) {
		t.Errorf("/team/list shows a teammate's key hash to a member: %s", raw)
	}
	// A plain member reads a teammate's key only if the team grants /key/info.
	code, m := e.call("GET", "/key/info?key="+url.QueryEscape(bobs), alice, nil)
	wantError(t, code, m, 401, "team_member_permission_error", "")
}

func TestFinding_BadNumbersAndSizesAre400s(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	big := func(n int) []string {
		xs := make([]string, n)
		for i := range xs {
			xs[i] = "m" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("0", i/26)
		}
		return xs
	}
	windows := make([]any, 60)
	for i := range windows {
		windows[i] = map[string]any{"budget_duration": strings.Repeat("1", 1) + string(rune('0'+i%10)) + "s", "max_budget": 1}
	}
	for _, tt := range []struct {
		name, route, field string
		body               any
	}{
		{"max_budget NaN", "/key/generate", "max_budget", `{"max_budget": "NaN"}`},
		{"max_budget Inf", "/key/generate", "max_budget", `{"max_budget": "Inf"}`},
		{"max_budget 1e308", "/key/generate", "max_budget", `{"max_budget": 1e308}`},
		{"max_budget 1e125", "/key/generate", "max_budget", `{"max_budget": 1e125}`},
		{"max_budget 1e-200", "/key/generate", "max_budget", `{"max_budget": 1e-200}`},
		{"NaN in budget_limits", "/key/generate", "budget_limits", `{"budget_limits": [{"budget_duration": "1d", "max_budget": "NaN"}]}`},
		{"60 budget windows", "/key/generate", "budget_limits", map[string]any{"budget_limits": windows}},
		{"420 KB of metadata", "/key/generate", "metadata", map[string]any{"metadata": map[string]any{"x": strings.Repeat("y", 420<<10)}}},
		{"1000 models", "/key/generate", "models", map[string]any{"models": big(1000)}},
		{"3 KB user_id", "/key/generate", "user_id", map[string]any{"user_id": strings.Repeat("u", 3000)}},
		{"3 KB team_id on /team/new", "/team/new", "team_id", map[string]any{"team_id": strings.Repeat("t", 3000)}},
		{"NaN team budget", "/team/new", "max_budget", `{"max_budget": "NaN"}`},
		{"Inf user budget", "/user/new", "max_budget", `{"max_budget": "Infinity"}`},
		{"3 KB user id on /user/update", "/user/update", "user_id", map[string]any{"user_id": strings.Repeat("u", 3000)}},
		{"1000 team tags", "/team/new", "tags", map[string]any{"tags": big(1000)}},
		{"200 aliases", "/key/generate", "aliases", map[string]any{"aliases": func() map[string]string {
			m := map[string]string{}
			for _, n := range big(200) {
				m[n] = "gpt-4o"
			}
			return m
		}()}},
		{"max_parallel_requests 2^62", "/key/generate", "max_parallel_requests", map[string]any{"max_parallel_requests": int64(math.MaxInt64 / 2)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, m := e.call("POST", tt.route, master, tt.body)
			if code != 400 {
				t.Fatalf("answered %d %v, want 400", code, m)
			}
			if p := errOf(t, m)["param"]; p != tt.field {
				t.Errorf("param = %v, want %s (message %v)", p, tt.field, errOf(t, m)["message"])
			}
		})
	}
	if _, m := e.call("GET", "/key/list", master, nil); m["total_count"] != 0.0 {
		t.Errorf("refused requests wrote %v keys", m["total_count"])
	}
	if _, m := e.call("GET", "/user/list", master, nil); m["total"] != 0.0 {
		t.Errorf("refused requests wrote %v users", m["total"])
	}
	// The id checks apply to query parameters too (a 3 KB key is over DynamoDB's key size).
	code, m := e.call("GET", "/key/info?key="+strings.Repeat("a", 3000), master, nil)
	wantError(t, code, m, 400, "invalid_request_error", "")
}

// TestFinding_WorstCaseBudgetsResetInOneRun checks the bound on resetting budgets: a key and
// a team with as many as the bound allows, all due at once, are reset by one rotator run
// (DynamoDB caps the update's expression at 4 KB), and one more is refused.
func TestFinding_WorstCaseBudgetsResetInOneRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := func(i int) string { return strings.Repeat(string(rune('a'+i)), 256) }
	var windows []any
	models := map[string]any{}
	for i := range 5 {
		windows = append(windows, map[string]any{"budget_duration": fmt.Sprintf("%ds", i+1), "max_budget": 1})
		models[long(i)] = map[string]any{"budget_limit": 1, "time_period": "1s"}
	}
	e.generate(map[string]any{"max_budget": 1, "budget_duration": "1s", "budget_limits": windows, "model_max_budget": models})
	var teamWindows []any
	for i := range 10 {
		teamWindows = append(teamWindows, map[string]any{"budget_duration": fmt.Sprintf("%ds", i+1), "max_budget": 1})
	}
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "max_budget": 1, "budget_duration": "1s", "budget_limits": teamWindows})
	code, m := e.call("POST", "/team/update", master, map[string]any{"team_id": "t",
		"budget_limits": append(teamWindows, map[string]any{"budget_duration": "11s", "max_budget": 1})})
	wantError(t, code, m, 400, "invalid_request_error", "")

	e.advance(time.Minute)
	rep, err := rotation.New(rotation.Options{Store: e.st, Now: e.clock}).Run(t.Context())
	if err != nil || rep.Failures > 0 || rep.Resets != 2 {
		t.Errorf("rotator run: %+v %v, want the key and the team reset without failures", rep, err)
	}
}

func TestFinding_TeamAdminCannotRaiseAMembersBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	lead := e.user("lead", auth.RoleInternalUser)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "team_member_budget": 5,
		"members_with_roles": []any{map[string]any{"user_id": "lead", "role": "admin"}}})
	code, m := e.call("POST", "/team/member_add", lead, map[string]any{"team_id": "t",
		"member": map[string]any{"user_id": "dev", "role": "user"}, "max_budget_in_team": 1000})
	if code != 403 || errOf(t, m)["param"] != "max_budget_in_team" {
		t.Errorf("answered %d %v, want 403 naming max_budget_in_team", code, m)
	}
	e.ok("POST", "/team/member_add", lead, map[string]any{"team_id": "t",
		"member": map[string]any{"user_id": "dev", "role": "user"}, "max_budget_in_team": 3})
}

func TestFinding_TeamServiceKeyGetsNoMemberKeyRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("dev", auth.RoleInternalUser)
	e.ok("POST", "/team/new", master, map[string]any{"team_id": "t", "team_member_permissions": []string{"/key/update", "/key/delete", "/key/info"},
		"members_with_roles": []any{map[string]any{"user_id": "dev", "role": "user"}}})
	service := e.generate(map[string]any{"team_id": "t"})
	devs := e.generate(map[string]any{"team_id": "t", "user_id": "dev"})
	code, m := e.call("POST", "/key/delete", service, map[string]any{"keys": []string{devs}})
	wantError(t, code, m, 401, "team_member_permission_error", "")
	e.ok("GET", "/team/info?team_id=t", service, nil) // it reads its team
	if e.storedKey(t, devs) == nil {
		t.Error("the service key deleted a member's key")
	}
}
