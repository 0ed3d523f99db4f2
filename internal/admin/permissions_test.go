package admin_test

import (
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/admin"
	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// Relations of a caller to the object a route acts on, as the permission table names them.
const (
	relStranger  = "stranger"         // none
	relOwner     = "owner"            // its own user record, its own personal key
	relTeamAdmin = "team admin"       // admin of the team (of the key)
	relMember    = "team member"      // plain member of a team that grants nothing
	relPermitted = "permitted member" // plain member of a team that grants every key route
	relOrgAdmin  = "org admin"        // org_admin of the team's organization, not in the team
)

// fixture is one case's world: a caller with a role and a relation to the objects.
type fixture struct {
	caller string // the caller's key
	self   string // the caller's user id
	other  string // another user
	team   string // a team the other user is a member of (and the caller, per relation)
	key    string // the object key: the caller's personal key (owner), else the other user's
	tier   string // a budget tier
	cust   string // a customer
	org    string // an organization the other user is a member of
	n      int64

	t  *testing.T
	st *store.Store
}

// model stores a model for the model routes to act on and returns its id.
func (f *fixture) model() string {
	id := fmt.Sprintf("m%d", f.n)
	now := time.Now().UTC()
	m := &store.StoredModel{ID: id, ModelName: id, CreatedAt: now, UpdatedAt: now,
		Deployment: fmt.Sprintf(`{"model_name":%q,"litellm_params":{"model":"openai/gpt-4o"},"model_info":{"id":%q}}`, id, id)}
	if err := store.Retry(f.t.Context(), func() error { return f.st.CreateModel(f.t.Context(), m) }); err != nil {
		f.t.Fatal(err)
	}
	return id
}

var fixtureSeq atomic.Int64

// newFixture writes a case's records straight to the table in one transaction (the routes
// that create them are tested elsewhere; this keeps 500 cases fast).
func (e *env) newFixture(t *testing.T, role, rel string) *fixture {
	t.Helper()
	n := fixtureSeq.Add(1)
	f := &fixture{self: fmt.Sprintf("c%d", n), other: fmt.Sprintf("o%d", n), team: fmt.Sprintf("t%d", n), tier: fmt.Sprintf("b%d", n), cust: fmt.Sprintf("cu%d", n), org: fmt.Sprintf("org%d", n), n: n, t: t, st: e.st}
	now := e.clock()
	user := func(id, role string, teams ...string) *store.User {
		u := &store.User{UserID: id, UserRole: role, Models: []string{}, Teams: teams, Metadata: map[string]any{}}
		u.CreatedAt, u.UpdatedAt = now, now
		return u
	}
	key := func(userID, teamID string) (string, *store.Key) {
		raw, err := auth.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		k := &store.Key{Token: auth.Hash(raw), KeyName: auth.KeyName(raw), UserID: aws.String(userID),
			Models: []string{}, Aliases: map[string]string{}, Metadata: map[string]any{}}
		if teamID != "" {
			k.TeamID = aws.String(teamID)
		}
		k.CreatedAt, k.UpdatedAt = now, now
		return raw, k
	}
	team := &store.Team{TeamID: f.team, Admins: []string{}, Members: []string{}, Models: []string{}, Metadata: map[string]any{},
		MembersWithRoles: []store.Member{{UserID: aws.String(f.other), Role: "user"}}}
	team.CreatedAt, team.UpdatedAt = now, now
	callerTeams := []string{}
	switch rel {
	case relTeamAdmin:
		team.MembersWithRoles = append(team.MembersWithRoles, store.Member{UserID: aws.String(f.self), Role: "admin"})
		callerTeams = append(callerTeams, f.team)
	case relMember, relPermitted:
		team.MembersWithRoles = append(team.MembersWithRoles, store.Member{UserID: aws.String(f.self), Role: "user"})
		callerTeams = append(callerTeams, f.team)
	}
	if rel == relPermitted {
		team.TeamMemberPermissions = admin.TeamMemberPermissions
	}
	orgMembers := []store.OrgMember{{UserID: f.other, UserRole: auth.RoleInternalUser}}
	if rel == relOrgAdmin {
		team.OrganizationID = aws.String(f.org)
		orgMembers = append(orgMembers, store.OrgMember{UserID: f.self, UserRole: auth.RoleOrgAdmin})
	}
	var callerKey, objectKey *store.Key
	f.caller, callerKey = key(f.self, "")
	switch rel {
	case relOwner:
		f.key, objectKey = key(f.self, "")
	case relStranger:
		f.key, objectKey = key(f.other, "")
	default:
		f.key, objectKey = key(f.other, f.team)
	}
	tx := e.st.Tx()
	for _, put := range []func() error{
		func() error { return tx.PutUser(user(f.self, role, callerTeams...)) },
		func() error { return tx.PutUser(user(f.other, auth.RoleInternalUser, f.team)) },
		func() error { return tx.PutTeam(team) },
		func() error { return tx.PutKey(callerKey) },
		func() error { return tx.PutKey(objectKey) },
		func() error {
			return tx.PutTier(&store.Tier{BudgetID: f.tier, Audit: store.Audit{CreatedAt: now, UpdatedAt: now}})
		},
		func() error {
			return tx.PutCustomer(&store.Customer{UserID: f.cust, Audit: store.Audit{CreatedAt: now, UpdatedAt: now}})
		},
		func() error {
			return tx.PutOrg(&store.Org{OrganizationID: f.org, OrganizationAlias: "org", Models: []string{},
				Members: orgMembers, Audit: store.Audit{CreatedAt: now, UpdatedAt: now}})
		},
	} {
		if err := put(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f
}

// subject is the user a user route names: the caller itself as owner, else the other user.
func (f *fixture) subject(rel string) string {
	if rel == relOwner {
		return f.self
	}
	return f.other
}

// probe is a request that a route serves with 200 when the caller may make it.
type probe struct {
	kind         string // what the route acts on: "key", "user", "team", "org" or "" (nothing owned)
	method, path string
	body         any
}

// probes are the requests of the generated test, one per route of the permission table.
var probes = map[string]func(f *fixture, rel string) probe{
	"POST /key/generate": func(f *fixture, rel string) probe {
		switch rel {
		case relOwner:
			return probe{"key", "POST", "/key/generate", map[string]any{}}
		case relStranger:
			return probe{"key", "POST", "/key/generate", map[string]any{"user_id": f.other}}
		}
		return probe{"key", "POST", "/key/generate", map[string]any{"team_id": f.team}}
	},
	"GET /key/info": func(f *fixture, _ string) probe {
		return probe{"key", "GET", "/key/info?key=" + url.QueryEscape(f.key), nil}
	},
	"POST /key/update": func(f *fixture, _ string) probe {
		return probe{"key", "POST", "/key/update", map[string]any{"key": f.key, "metadata": map[string]any{"a": 1}}}
	},
	"POST /key/delete": func(f *fixture, _ string) probe {
		return probe{"key", "POST", "/key/delete", map[string]any{"keys": []string{f.key}}}
	},
	"POST /key/block": func(f *fixture, _ string) probe {
		return probe{"key", "POST", "/key/block", map[string]any{"key": f.key}}
	},
	"POST /key/unblock": func(f *fixture, _ string) probe {
		return probe{"key", "POST", "/key/unblock", map[string]any{"key": f.key}}
	},
	"POST /key/regenerate": func(f *fixture, _ string) probe {
		return probe{"key", "POST", "/key/regenerate", map[string]any{"key": f.key}}
	},
	"POST /key/{key}/regenerate": func(f *fixture, _ string) probe {
		return probe{"key", "POST", "/key/" + f.key + "/regenerate", map[string]any{}}
	},
	"GET /key/list": func(f *fixture, rel string) probe {
		switch rel {
		case relOwner, relStranger:
			return probe{"key", "GET", "/key/list?user_id=" + f.subject(rel), nil}
		}
		return probe{"key", "GET", "/key/list?team_id=" + f.team, nil}
	},
	"POST /key/{key}/reset_spend": func(f *fixture, _ string) probe {
		return probe{"key", "POST", "/key/" + f.key + "/reset_spend", map[string]any{"reset_to": 0}}
	},
	"POST /user/new": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/user/new", map[string]any{"user_id": fmt.Sprintf("new%d", f.n)}}
	},
	"GET /user/info": func(f *fixture, rel string) probe {
		return probe{"user", "GET", "/user/info?user_id=" + f.subject(rel), nil}
	},
	"POST /user/update": func(f *fixture, rel string) probe {
		return probe{"user", "POST", "/user/update", map[string]any{"user_id": f.subject(rel), "user_email": fmt.Sprintf("u%d@example.com", f.n)}}
	},
	"POST /user/delete": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/user/delete", map[string]any{"user_ids": []string{f.other}}}
	},
	"GET /user/list": func(*fixture, string) probe { return probe{"", "GET", "/user/list", nil} },
	"POST /team/new": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/team/new", map[string]any{"team_id": fmt.Sprintf("new%d", f.n)}}
	},
	"GET /team/info": func(f *fixture, _ string) probe {
		return probe{"team", "GET", "/team/info?team_id=" + f.team, nil}
	},
	"POST /team/update": func(f *fixture, _ string) probe {
		return probe{"team", "POST", "/team/update", map[string]any{"team_id": f.team, "metadata": map[string]any{"a": 1}}}
	},
	"POST /team/delete": func(f *fixture, _ string) probe {
		return probe{"team", "POST", "/team/delete", map[string]any{"team_ids": []string{f.team}}}
	},
	"POST /team/member_add": func(f *fixture, _ string) probe {
		return probe{"team", "POST", "/team/member_add", map[string]any{"team_id": f.team,
			"member": map[string]any{"user_id": fmt.Sprintf("added%d", f.n), "role": "user"}}}
	},
	"POST /team/member_delete": func(f *fixture, _ string) probe {
		return probe{"team", "POST", "/team/member_delete", map[string]any{"team_id": f.team, "user_id": f.other}}
	},
	"POST /team/member_update": func(f *fixture, _ string) probe {
		return probe{"team", "POST", "/team/member_update", map[string]any{"team_id": f.team, "user_id": f.other, "max_budget_in_team": 1}}
	},
	"POST /team/block": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/team/block", map[string]any{"team_id": f.team}}
	},
	"POST /team/unblock": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/team/unblock", map[string]any{"team_id": f.team}}
	},
	"GET /team/list": func(f *fixture, rel string) probe {
		return probe{"user", "GET", "/team/list?user_id=" + f.subject(rel), nil}
	},
	"GET /spend/tags": func(*fixture, string) probe { return probe{"", "GET", "/spend/tags", nil} },
	"POST /budget/new": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/budget/new", map[string]any{"budget_id": fmt.Sprintf("new%d", f.n), "max_budget": 1}}
	},
	"POST /budget/update": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/budget/update", map[string]any{"budget_id": f.tier, "rpm_limit": 5}}
	},
	"POST /budget/delete": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/budget/delete", map[string]any{"id": f.tier}}
	},
	"POST /budget/info": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/budget/info", map[string]any{"budgets": []string{f.tier}}}
	},
	"GET /budget/list": func(*fixture, string) probe { return probe{"", "GET", "/budget/list", nil} },
	"GET /customer/daily/activity": func(*fixture, string) probe {
		return probe{"", "GET", "/customer/daily/activity?start_date=2026-01-01&end_date=2026-01-02", nil}
	},
	"GET /end_user/daily/activity": func(*fixture, string) probe {
		return probe{"", "GET", "/end_user/daily/activity?start_date=2026-01-01&end_date=2026-01-02", nil}
	},
	"GET /budget/settings": func(f *fixture, _ string) probe {
		return probe{"", "GET", "/budget/settings?budget_id=" + f.tier, nil}
	},
	"GET /spend/daily": func(f *fixture, _ string) probe {
		return probe{"key", "GET", "/spend/daily?api_key=" + url.QueryEscape(f.key), nil}
	},
	"POST /model/new": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/model/new", map[string]any{"model_name": "new", "litellm_params": map[string]any{"model": "openai/gpt-4o"},
			"model_info": map[string]any{"id": fmt.Sprintf("new%d", f.n)}}}
	},
	"POST /model/update": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/model/update", map[string]any{"model_name": "renamed", "model_info": map[string]any{"id": f.model()}}}
	},
	"PATCH /model/{id}/update": func(f *fixture, _ string) probe {
		return probe{"", "PATCH", "/model/" + f.model() + "/update", map[string]any{"litellm_params": map[string]any{"rpm": 5}}}
	},
	"POST /model/delete": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/model/delete", map[string]any{"id": f.model()}}
	},
	"GET /global/spend":        func(*fixture, string) probe { return probe{"", "GET", "/global/spend", nil} },
	"GET /global/spend/report": func(*fixture, string) probe { return probe{"", "GET", "/global/spend/report?group_by=api_key", nil} },
	"GET /global/spend/keys":   func(*fixture, string) probe { return probe{"", "GET", "/global/spend/keys?limit=3", nil} },
	"GET /global/spend/teams":  func(*fixture, string) probe { return probe{"", "GET", "/global/spend/teams", nil} },
	"GET /global/spend/models": func(*fixture, string) probe { return probe{"", "GET", "/global/spend/models", nil} },
	"GET /global/spend/tags":   func(*fixture, string) probe { return probe{"", "GET", "/global/spend/tags", nil} },
	"POST /organization/new": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/organization/new", map[string]any{"organization_id": fmt.Sprintf("neworg%d", f.n), "organization_alias": "o"}}
	},
	"POST /organization/update": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/organization/update", map[string]any{"organization_id": f.org, "max_budget": 5}}
	},
	"POST /organization/delete": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/organization/delete", map[string]any{"organization_ids": []string{f.org}}}
	},
	"PATCH /organization/update": func(f *fixture, _ string) probe {
		return probe{"", "PATCH", "/organization/update", map[string]any{"organization_id": f.org, "max_budget": 5}}
	},
	"GET /organization/info": func(f *fixture, _ string) probe {
		return probe{"org", "GET", "/organization/info?organization_id=" + f.org, nil}
	},
	"GET /organization/list": func(*fixture, string) probe { return probe{"", "GET", "/organization/list", nil} },
	"POST /organization/member_add": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/organization/member_add", map[string]any{"organization_id": f.org,
			"member": map[string]any{"user_id": fmt.Sprintf("orgadded%d", f.n), "role": "internal_user"}}}
	},
	"POST /organization/member_update": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/organization/member_update", map[string]any{"organization_id": f.org, "user_id": f.other, "role": "org_admin"}}
	},
	"POST /organization/member_delete": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/organization/member_delete", map[string]any{"organization_id": f.org, "user_id": f.other}}
	},
	"POST /customer/new": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/customer/new", map[string]any{"user_id": fmt.Sprintf("newcu%d", f.n)}}
	},
	"GET /customer/info": func(f *fixture, _ string) probe { return probe{"", "GET", "/customer/info?end_user_id=" + f.cust, nil} },
	"POST /customer/update": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/customer/update", map[string]any{"user_id": f.cust, "max_budget": 1}}
	},
	"POST /customer/delete": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/customer/delete", map[string]any{"user_ids": []string{f.cust}}}
	},
	"GET /customer/list": func(*fixture, string) probe { return probe{"", "GET", "/customer/list", nil} },
	"POST /customer/block": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/customer/block", map[string]any{"user_ids": []string{f.cust}}}
	},
	"POST /customer/unblock": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/customer/unblock", map[string]any{"user_ids": []string{f.cust}}}
	},
	"POST /end_user/new": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/end_user/new", map[string]any{"user_id": fmt.Sprintf("newcu%d", f.n)}}
	},
	"GET /end_user/info": func(f *fixture, _ string) probe { return probe{"", "GET", "/end_user/info?end_user_id=" + f.cust, nil} },
	"POST /end_user/update": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/end_user/update", map[string]any{"user_id": f.cust, "max_budget": 1}}
	},
	"POST /end_user/delete": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/end_user/delete", map[string]any{"user_ids": []string{f.cust}}}
	},
	"GET /end_user/list": func(*fixture, string) probe { return probe{"", "GET", "/end_user/list", nil} },
	"POST /end_user/block": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/end_user/block", map[string]any{"user_ids": []string{f.cust}}}
	},
	"POST /end_user/unblock": func(f *fixture, _ string) probe {
		return probe{"", "POST", "/end_user/unblock", map[string]any{"user_ids": []string{f.cust}}}
	},
	"GET /spend/logs": func(f *fixture, rel string) probe {
		return probe{"user", "GET", "/spend/logs?user_id=" + f.subject(rel), nil}
	},
}

// allowed is what the permission table says of a caller with role and relation on a
// route whose object is of kind: proxy admins always; others when the route admits the
// role and either the role reaches every object or the relation is one the row grants.
func allowed(row admin.Row, role, rel, kind string) bool {
	if role == auth.RoleProxyAdmin {
		return true
	}
	if row.Roles != nil && !slices.Contains(row.Roles, role) {
		return false
	}
	if slices.Contains(row.All, role) {
		return true
	}
	switch {
	case rel == relOwner:
		return (kind == "key" || kind == "user") && (row.Owner || row.KeyUser)
	case rel == relOrgAdmin: // of the team's organization, and of the organization itself
		return (kind == "team" || kind == "org") && row.OrgAdmin
	case kind != "key" && kind != "team":
		return false
	case rel == relTeamAdmin: // an admin is a member too
		return row.TeamAdmin || row.Members && row.Member == ""
	case rel == relMember:
		return row.Members && row.Member == ""
	case rel == relPermitted:
		return row.Members
	}
	return false
}

// TestPermissionTable_EveryRoleOnEveryRoute is generated from the permission table: every
// role, in every relation to the object, against every management route, gets 200 exactly
// where the table allows it and a refusal everywhere else.
func TestPermissionTable_EveryRoleOnEveryRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	roles := []string{auth.RoleProxyAdmin, auth.RoleProxyAdminViewer, auth.RoleInternalUser, auth.RoleInternalUserViewer}
	rels := []string{relStranger, relOwner, relTeamAdmin, relMember, relPermitted, relOrgAdmin}
	for _, row := range admin.Permissions() {
		mk, ok := probes[row.Pattern]
		if !ok {
			t.Errorf("route %s has no probe: add one to probes", row.Pattern)
			continue
		}
		t.Run(row.Pattern, func(t *testing.T) {
			t.Parallel()
			for _, role := range roles {
				for _, rel := range rels {
					t.Run(role+"/"+rel, func(t *testing.T) {
						t.Parallel()
						f := e.newFixture(t, role, rel)
						pr := mk(f, rel)
						want := allowed(row, role, rel, pr.kind)
						code, m := e.raw(pr.method, pr.path, f.caller, pr.body)
						switch {
						case want && code != 200:
							t.Errorf("%s %s: %d %s, want 200", pr.method, pr.path, code, m)
						case !want && (code < 400 || code >= 500 || code == 413):
							t.Errorf("%s %s: %d %s, want a refusal", pr.method, pr.path, code, m)
						}
					})
				}
			}
			// The master key may call every route.
			f := e.newFixture(t, auth.RoleInternalUser, relStranger)
			pr := mk(f, relStranger)
			if code, m := e.raw(pr.method, pr.path, master, pr.body); code != 200 {
				t.Errorf("master key: %s %s: %d %s", pr.method, pr.path, code, m)
			}
		})
	}
	for pattern := range probes {
		if !slices.ContainsFunc(admin.Permissions(), func(r admin.Row) bool { return r.Pattern == pattern }) {
			t.Errorf("probe for %s, which is no route", pattern)
		}
	}
}
