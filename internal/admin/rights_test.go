package admin_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/auth"
)

// rightsCases give, for every field of the rights table, a record an admin set up (old), a
// change that gives a right (widen: refused to non-admins) and one that only narrows
// (allowed). kind is the record: a key (changed by its owner), a user (by itself) or a team
// (by its admin, and by an admin of its organization). mint is what a key with old asks /key/generate for beyond itself, when
// widen does not say it.
var rightsCases = []struct {
	field, kind        string
	old, widen, narrow map[string]any
	mint               map[string]any
}{
	{"max_budget", "key", m{"max_budget": 10}, m{"max_budget": 11}, m{"max_budget": 9}, nil},
	{"max_budget", "key", m{"max_budget": 10}, m{"max_budget": nil}, m{"max_budget": 10}, m{"max_budget": 10.01}},
	{"max_budget", "user", m{"max_budget": 10}, m{"max_budget": 1000000}, m{"max_budget": 1}, nil},
	{"max_budget", "team", m{"max_budget": 10}, m{"max_budget": 11}, m{"max_budget": 9}, nil},
	{"budget_duration", "key", m{"max_budget": 10, "budget_duration": "30d"}, m{"budget_duration": "1d"}, m{"budget_duration": "60d"}, nil},
	{"budget_duration", "team", m{"max_budget": 10, "budget_duration": "30d"}, m{"budget_duration": nil, "max_budget": nil}, m{"budget_duration": "60d"}, nil},
	{"budget_limits", "key", m{"budget_limits": []m{{"budget_duration": "1d", "max_budget": 5}}},
		m{"budget_limits": []m{{"budget_duration": "1d", "max_budget": 6}}},
		m{"budget_limits": []m{{"budget_duration": "1d", "max_budget": 5}, {"budget_duration": "7d", "max_budget": 20}}}, nil},
	{"budget_limits", "team", m{"budget_limits": []m{{"budget_duration": "1d", "max_budget": 5}}}, m{"budget_limits": []m{}},
		m{"budget_limits": []m{{"budget_duration": "1d", "max_budget": 4}}}, nil},
	{"model_max_budget", "key", m{"model_max_budget": m{"gpt-4o": m{"budget_limit": 1, "time_period": "1d"}}},
		m{"model_max_budget": m{"gpt-4o": m{"budget_limit": 2, "time_period": "1d"}}},
		m{"model_max_budget": m{"gpt-4o": m{"budget_limit": 0.5, "time_period": "1d"}}}, nil},
	{"model_max_budget", "user", m{"model_max_budget": m{"gpt-4o": m{"budget_limit": 1, "time_period": "1d"}}},
		m{"model_max_budget": m{"gpt-4o": m{"budget_limit": 1, "time_period": "1s"}}},
		m{"model_max_budget": m{"gpt-4o": m{"budget_limit": 1, "time_period": "1d"}}}, nil},
	{"tpm_limit", "key", m{"tpm_limit": 100}, m{"tpm_limit": 101}, m{"tpm_limit": 99}, nil},
	{"tpm_limit", "user", m{"tpm_limit": 100}, m{"tpm_limit": nil}, m{"tpm_limit": 99}, nil},
	{"rpm_limit", "team", m{"rpm_limit": 100}, m{"rpm_limit": 101}, m{"rpm_limit": 99}, nil},
	{"rpm_limit", "key", m{"rpm_limit": 100}, m{"rpm_limit": 101}, m{"rpm_limit": 99}, nil},
	{"max_parallel_requests", "key", m{"max_parallel_requests": 2}, m{"max_parallel_requests": 3}, m{"max_parallel_requests": 1}, nil},
	{"max_parallel_requests", "team", m{"max_parallel_requests": 2}, m{"max_parallel_requests": 3}, m{"max_parallel_requests": 1}, nil},
	{"model_rpm_limit", "key", m{"model_rpm_limit": m{"gpt-4o": 10}}, m{"model_rpm_limit": m{"gpt-4o": 11}}, m{"model_rpm_limit": m{"gpt-4o": 9}}, nil},
	{"model_tpm_limit", "team", m{"model_tpm_limit": m{"gpt-4o": 10}}, m{"model_tpm_limit": m{}}, m{"model_tpm_limit": m{"gpt-4o": 9}}, nil},
	{"models", "key", m{"models": []string{"gpt-4o"}}, m{"models": []string{}}, m{"models": []string{"gpt-4o"}}, m{"models": []string{"o3"}}},
	{"models", "user", m{"models": []string{"gpt-4o"}}, m{"models": []string{"gpt-4o", "o3"}}, m{"models": []string{"gpt-4o"}}, nil},
	{"models", "team", m{"models": []string{"gpt-4o"}}, m{"models": []string{"*"}}, m{"models": []string{"gpt-4o"}}, nil},
	{"aliases", "key", m{"models": []string{"gpt-4o"}}, m{"aliases": m{"gpt-4o": "o3"}}, m{"aliases": m{"fast": "gpt-4o"}}, nil},
	{"aliases", "team", m{"models": []string{"gpt-4o"}}, m{"model_aliases": m{"gpt-4o": "o3"}}, m{"model_aliases": m{"fast": "gpt-4o"}}, nil},
	{"blocked", "key", m{"blocked": true}, m{"blocked": false}, m{"blocked": true}, nil},
	{"blocked", "team", m{"blocked": true}, m{"blocked": false}, m{"blocked": true}, nil},
	{"duration", "key", m{"duration": "1h"}, m{"duration": "2h"}, m{"duration": "30m"}, nil},
	{"duration", "key", m{"duration": "1h"}, m{"duration": nil}, m{"duration": "30m"}, m{"duration": "3h"}},
	{"team_member_budget", "team", m{"team_member_budget": 5}, m{"team_member_budget": 6}, m{"team_member_budget": 4}, nil},
	{"team_member_rpm_limit", "team", m{"team_member_rpm_limit": 5}, m{"team_member_rpm_limit": 6}, m{"team_member_rpm_limit": 4}, nil},
	{"team_member_tpm_limit", "team", m{"team_member_tpm_limit": 5}, m{"team_member_tpm_limit": nil}, m{"team_member_tpm_limit": 4}, nil},
	{"team_member_budget_duration", "team", m{"team_member_budget": 5, "team_member_budget_duration": "30d"},
		m{"team_member_budget_duration": "1d"}, m{"team_member_budget_duration": "60d"}, nil},
	{"user_id", "key", m{}, m{"user_id": "bob"}, m{"user_id": "alice"}, nil},
	{"team_id", "key", m{}, m{"team_id": "led"}, m{}, nil},
	{"organization_id", "team", m{}, m{"organization_id": "org"}, m{}, nil},
	{"user_role", "user", m{}, m{"user_role": "proxy_admin"}, m{}, nil},
}

type m = map[string]any

func merge(a, b m) m {
	out := m{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestRightsTable_NonAdminsOnlyNarrow is generated from the rights table: for every field,
// a non-admin's change that gives a right is refused with a 403 and writes nothing, on every
// route that changes that kind of record, while a narrowing change goes through; and a key a
// non-admin creates cannot exceed the key creating it.
func TestRightsTable_NonAdminsOnlyNarrow(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.user("alice", auth.RoleInternalUser)
	e.user("bob", auth.RoleInternalUser)
	e.ok("POST", "/team/new", master, m{"team_id": "led", "members_with_roles": []any{m{"user_id": "alice", "role": "admin"}}})
	olga := e.user("olga", auth.RoleInternalUser)
	e.ok("POST", "/organization/new", master, m{"organization_id": "acme", "organization_alias": "Acme"})
	e.ok("POST", "/organization/member_add", master, m{"organization_id": "acme", "member": m{"user_id": "olga", "role": "org_admin"}})
	covered := map[string]bool{}
	for i, tc := range rightsCases {
		covered[tc.field] = true
		t.Run(tc.kind+" "+tc.field, func(t *testing.T) {
			switch tc.kind {
			case "key":
				for _, route := range []string{"/key/update", "/key/regenerate"} {
					k := e.generate(merge(tc.old, m{"user_id": "alice"}))
					before := e.storedKey(t, k)
					code, body := e.call("POST", route, alice, merge(tc.widen, m{"key": k}))
					if code != 403 {
						t.Errorf("%s widening %v: %d %v, want 403", route, tc.widen, code, body)
					}
					if after := e.storedKey(t, k); !reflect.DeepEqual(before, after) {
						t.Errorf("%s: refused change wrote the key:\nbefore %+v\nafter  %+v", route, before, after)
					}
					e.ok("POST", route, alice, merge(tc.narrow, m{"key": k}))
				}
				if admin.RightsFields()[tc.field] {
					creator := e.generate(merge(tc.old, m{"user_id": "alice"}))
					ask := tc.mint
					if ask == nil {
						ask = tc.widen
					}
					if code, body := e.call("POST", "/key/generate", creator, ask); code != 403 {
						t.Errorf("/key/generate %v by a key with %v: %d %v, want 403", ask, tc.old, code, body)
					}
				}
			case "user":
				id := "u" + string(rune('a'+i%26)) + tc.field
				key := e.user(id, auth.RoleInternalUser)
				e.ok("POST", "/user/update", master, merge(tc.old, m{"user_id": id}))
				before := e.storedUser(t, id)
				if code, body := e.call("POST", "/user/update", key, merge(tc.widen, m{"user_id": id})); code != 403 {
					t.Errorf("widening %v: %d %v, want 403", tc.widen, code, body)
				}
				if after := e.storedUser(t, id); !reflect.DeepEqual(before, after) {
					t.Errorf("refused change wrote the user:\nbefore %+v\nafter  %+v", before, after)
				}
				e.ok("POST", "/user/update", key, merge(tc.narrow, m{"user_id": id}))
			case "team":
				// By the team's admin, and by an admin of its organization who is not in it.
				for j, by := range []struct {
					key  string
					team m
				}{
					{alice, m{"members_with_roles": []any{m{"user_id": "alice", "role": "admin"}}}},
					{olga, m{"organization_id": "acme"}},
				} {
					id := fmt.Sprintf("team-%c%s-%d", 'a'+i%26, tc.field, j)
					e.ok("POST", "/team/new", master, merge(tc.old, merge(by.team, m{"team_id": id})))
					before, err := e.st.GetTeam(t.Context(), id)
					if err != nil {
						t.Fatal(err)
					}
					if code, body := e.call("POST", "/team/update", by.key, merge(tc.widen, m{"team_id": id})); code != 403 {
						t.Errorf("%s widening %v: %d %v, want 403", id, tc.widen, code, body)
					}
					if after, _ := e.st.GetTeam(t.Context(), id); !reflect.DeepEqual(before, after) {
						t.Errorf("%s: refused change wrote the team:\nbefore %+v\nafter  %+v", id, before, after)
					}
					e.ok("POST", "/team/update", by.key, merge(tc.narrow, m{"team_id": id}))
				}
			}
		})
	}
	for field := range admin.RightsFields() {
		if !covered[field] {
			t.Errorf("rights field %s has no case: add one to rightsCases", field)
		}
	}
	// Admins change anything.
	k := e.generate(m{"user_id": "alice", "max_budget": 1, "blocked": true})
	e.ok("POST", "/key/update", master, m{"key": k, "max_budget": 100, "blocked": false, "models": []string{}})
}
