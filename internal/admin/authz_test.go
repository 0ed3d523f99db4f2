package admin_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/store"
)

// TestKeyChanges_SameRulesAsGenerate checks that /key/update and /key/regenerate refuse a
// non-admin what /key/generate refuses (another owner, a team that is missing or not theirs
// or not open to their role, a budget over upperbound_key_generate_params) and change
// nothing, while admins may move keys between users and teams.
func TestKeyChanges_SameRulesAsGenerate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *config.Config, _ *admin.Options) {
		c.LiteLLMSettings.UpperboundKeyGenerateParams = map[string]any{"max_budget": 100}
		c.LiteLLMSettings.KeyGenerationSettings = &config.KeyGenerationSettings{
			TeamKeyGeneration:     &config.KeyGenerationRule{AllowedTeamMemberRoles: []string{"admin"}},
			PersonalKeyGeneration: &config.KeyGenerationRule{AllowedUserRoles: []string{"proxy_admin"}},
		}
	})
	alice := e.ok("POST", "/user/new", master, map[string]any{"user_id": "alice"})["key"].(string)
	lead := e.ok("POST", "/user/new", master, map[string]any{"user_id": "lead"})["key"].(string)
	e.ok("POST", "/user/new", master, map[string]any{"user_id": "bob"})
	for team, members := range map[string]map[string]string{
		"t":       {"alice": "user", "lead": "admin"},
		"mine":    {"alice": "admin"},
		"foreign": {"bob": "admin"},
		"leads":   {"lead": "admin"},
	} {
		var mw []any
		for u, role := range members {
			mw = append(mw, map[string]any{"user_id": u, "role": role})
		}
		e.ok("POST", "/team/new", master, map[string]any{"team_id": team, "members_with_roles": mw})
	}
	own := e.generate(map[string]any{"user_id": "alice", "max_budget": 10})
	inMine := e.generate(map[string]any{"user_id": "alice", "team_id": "mine"})
	inT := e.generate(map[string]any{"user_id": "alice", "team_id": "t"})

	notMember := func(user, team string) string {
		return "User=" + user + " is not a member of the team=" + team + ". Check team members via `/team/info`."
	}
	tests := []struct {
		name    string
		caller  string
		key     string
		body    map[string]any
		code    int
		message string
	}{
		{"hand the key to another user", alice, own, map[string]any{"user_id": "bob"}, 403,
			"User=bob is not allowed to update key=" + auth.KeyName(own) + " to belong to user=alice"},
		{"drop the key's user", alice, own, map[string]any{"user_id": nil}, 403,
			"User= is not allowed to update key=" + auth.KeyName(own) + " to belong to user=alice"},
		{"move into a missing team", alice, own, map[string]any{"team_id": "nope"}, 400,
			"Team doesn't exist in db. Team=nope. Create team via `/team/new` call."},
		{"move into a foreign team", alice, own, map[string]any{"team_id": "foreign"}, 403, notMember("alice", "foreign")},
		{"move into a team whose role may not", alice, own, map[string]any{"team_id": "t"}, 400,
			"Team member role user not in allowed_team_member_roles=['admin']"},
		{"exceed the upperbound", alice, own, map[string]any{"max_budget": 101}, 400,
			"max_budget is over max limit set in config - user_value=101.0; max_value=100.0"},
		{"leave the team for a restricted personal key", alice, inMine, map[string]any{"team_id": nil}, 400,
			"Personal key creation has been restricted by admin. Allowed roles=['proxy_admin']. Your role=internal_user"},
		{"team admin moves a member's key where the member is not", lead, inT, map[string]any{"team_id": "leads"}, 403, notMember("alice", "leads")},
	}
	for _, route := range []string{"/key/update", "/key/regenerate"} {
		for _, tt := range tests {
			t.Run(route+" "+tt.name, func(t *testing.T) {
				before := e.storedKey(t, tt.key)
				body := map[string]any{"key": tt.key}
				for k, v := range tt.body {
					body[k] = v
				}
				code, m := e.call("POST", route, tt.caller, body)
				wantError(t, code, m, tt.code, "auth_error", tt.message)
				if after := e.storedKey(t, tt.key); !reflect.DeepEqual(before, after) {
					t.Errorf("refused request changed the key:\nbefore %+v\nafter  %+v", before, after)
				}
			})
		}
	}

	// What the rules allow goes through: a lower budget, and anything for admins.
	e.ok("POST", "/key/update", alice, map[string]any{"key": own, "max_budget": 8})
	own = e.ok("POST", "/key/regenerate", alice, map[string]any{"key": own, "max_budget": 5})["key"].(string)
	m := e.ok("POST", "/key/regenerate", master, map[string]any{"key": own, "user_id": "bob"})
	if m["user_id"] != "bob" {
		t.Errorf("admin regenerate: user_id = %v, want bob", m["user_id"])
	}
	if m := e.ok("POST", "/key/update", master, map[string]any{"key": inT, "team_id": "foreign"}); m["team_id"] != "foreign" {
		t.Errorf("admin update: team_id = %v, want foreign", m["team_id"])
	}
}

// storedKey reads a key's record as stored (nil when it is gone).
func (e *env) storedKey(t *testing.T, key string) *store.Key {
	t.Helper()
	k, err := e.st.GetKey(t.Context(), auth.Hash(key))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("key %s: %v", auth.KeyName(key), err)
	}
	return k
}
