package admin

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

// permission is one row of the permission model: who may call a management route, and on
// which objects. The model is LiteLLM's: user roles proxy_admin, proxy_admin_viewer,
// internal_user and internal_user_viewer; team member roles admin and user; and a team's
// team_member_permissions, the key routes its plain members may call on the team's keys.
// proxy_admin (and the master key) may call every route on every object. What a caller may
// change in a request it may make is the field table (fieldRules).
type permission struct {
	// roles are the user roles that may call the route at all; nil is every role.
	roles []string
	// all are the roles that act on every object of the route (besides proxy_admin).
	all []string
	// grants are the relations to the object that let any other caller act on it.
	grants grant
	// member is the route's name in team_member_permissions: with grantTeamMember, a plain
	// member acts on the team's keys only when the team lists it. Empty: any member may.
	member string
	// denied answers a caller related to the object but not enough (a stranger gets the
	// route's answer for a missing object, so a refusal tells nothing of what exists).
	denied string
}

// grant is a caller's relation to the object a route acts on.
type grant uint8

const (
	// grantOwner: the caller's own user record, or a personal (team-less) key of its user.
	// A team key is the team's: its user acts on it as a team member.
	grantOwner grant = 1 << iota
	// grantKeyUser: the caller's own user record, or any key of its user, or its own key.
	grantKeyUser
	// grantTeamAdmin: an admin of the key's team, or of the team.
	grantTeamAdmin
	// grantTeamMember: a member of the key's team or of the team (see permission.member).
	grantTeamMember
	// grantOrgAdmin: an org_admin member of the team's (or the organization's) organization.
	grantOrgAdmin
)

// Role sets of the table.
var (
	everyone     []string // nil: every role
	writers      = []string{auth.RoleProxyAdmin, auth.RoleInternalUser}
	adminOnly    = []string{auth.RoleProxyAdmin}
	adminViewers = []string{auth.RoleProxyAdmin, auth.RoleProxyAdminViewer}
	// selfUpdaters may call /user/update on themselves; proxy_admin_viewer only for its email.
	selfUpdaters = []string{auth.RoleProxyAdmin, auth.RoleProxyAdminViewer, auth.RoleInternalUser}
)

// Rows of the routes that read a key, a team or a user record (and that object's daily spend).
var (
	readKey = permission{all: adminViewers, grants: grantKeyUser | grantTeamAdmin | grantTeamMember, member: permKeyInfo,
		denied: "You are not allowed to access this key's info."}
	readTeam = permission{all: adminViewers, grants: grantTeamMember | grantOrgAdmin}
	readUser = permission{all: adminViewers, grants: grantOwner}
)

// Team member permissions (LiteLLM's KeyManagementRoutes a team may grant its members).
const (
	permKeyGenerate   = "/key/generate"
	permKeyUpdate     = "/key/update"
	permKeyDelete     = "/key/delete"
	permKeyInfo       = "/key/info"
	permKeyRegenerate = "/key/regenerate"
	permKeyList       = "/key/list"
)

// teamMemberPermissions are the values team_member_permissions may hold. A team grants
// none by default: a plain member reads and changes only its own personal keys.
var teamMemberPermissions = []string{permKeyGenerate, permKeyUpdate, permKeyDelete, permKeyInfo, permKeyRegenerate, permKeyList}

// keyWrite is the row of the routes that change a key: its user (for a personal key), an
// admin of its team, or a member the team lets.
func keyWrite(member, denied string) permission {
	return permission{roles: writers, grants: grantOwner | grantTeamAdmin | grantTeamMember, member: member, denied: denied}
}

// teamAdminWrite is the row of a route only proxy admins and the object's team admins call.
func teamAdminWrite(denied string) permission {
	return permission{roles: writers, grants: grantTeamAdmin, denied: denied}
}

// teamManagers is the row of the routes that change a team, its settings or its members:
// its admins and the admins of its organization (LiteLLM's rule: proxy admin, team admin,
// or org admin of the team's organization).
var teamManagers = permission{roles: writers, grants: grantTeamAdmin | grantOrgAdmin}

// mayAct checks that p may act on obj through the route of r (its pattern names the row).
// A caller with no relation to obj gets missing, the route's answer for an object that
// does not exist; a related caller without the right gets the row's refusal (or LiteLLM's
// team_member_permission_error for a plain team member).
func mayAct(r *http.Request, p *auth.Principal, obj target, missing error) error {
	perm := permissionOf(r)
	if p.IsProxyAdmin() || slices.Contains(perm.all, p.Role) {
		return nil
	}
	related := obj.orgAdmin
	if obj.orgAdmin && perm.grants&grantOrgAdmin != 0 {
		return nil
	}
	if obj.user != "" && obj.user == p.UserID || obj.token != "" && obj.token == p.Token {
		related = true
		if perm.grants&grantKeyUser != 0 || perm.grants&grantOwner != 0 && obj.team == nil {
			return nil
		}
	}
	if obj.team != nil {
		role, ok := teamRole(obj.team, p)
		if ok {
			related = true
			switch {
			case role == "admin" && perm.grants&grantTeamAdmin != 0:
				return nil
			case perm.grants&grantTeamMember != 0 && (perm.member == "" || p.UserID != "" && slices.Contains(obj.team.TeamMemberPermissions, perm.member)):
				return nil // a team's service key (no user) gets no key route the team grants members
			case perm.grants&grantTeamMember != 0 && role != "admin":
				return memberPermissionError(perm.member, obj.team)
			}
		}
	}
	switch {
	case !related:
		return missing
	case perm.denied == "" && obj.team != nil:
		return forbidden(fmt.Sprintf("Call not allowed. User not proxy admin OR team admin. route=%s, team_id=%s", r.URL.Path, obj.team.TeamID))
	case perm.denied == "":
		return forbidden(fmt.Sprintf("You are not allowed to call %s on this object. Your role=%s", r.URL.Path, p.Role))
	}
	return forbidden(perm.denied)
}

// target is what a route acts on, as mayAct needs it.
type target struct {
	user  string      // the key's user, or the user record's id
	token string      // the key's hash
	team  *store.Team // the key's team, or the team itself
	// orgAdmin: the caller is an org_admin of the team's organization, or of the
	// organization acted on (see handler.teamTarget).
	orgAdmin bool
}

// teamRole is the caller's role in t: its member role, else "user" for a key of t without
// a user (a team's service key reads what plain members read).
func teamRole(t *store.Team, p *auth.Principal) (string, bool) {
	if p.UserID != "" {
		if slices.Contains(t.Admins, p.UserID) {
			return "admin", true
		}
		if m := memberOf(t, p.UserID); m != nil {
			return m.Role, true
		}
	}
	if p.Key != nil && aws.ToString(p.Key.TeamID) == t.TeamID {
		return "user", true
	}
	return "", false
}

// memberPermissionError is LiteLLM's 401 for a plain team member calling a key route the
// team's team_member_permissions do not name.
func memberPermissionError(route string, t *store.Team) error {
	granted := t.TeamMemberPermissions
	if granted == nil {
		granted = []string{}
	}
	return openai.Errorf(http.StatusUnauthorized, "team_member_permission_error", fmt.Sprintf(
		"Team member does not have permissions for endpoint: %s. You only have access to the following endpoints: %s for team %s. "+
			"To create keys for this team, please ask your proxy admin to check the team member permission settings and update the settings to allow team member users to create keys.",
		route, pyList(granted), t.TeamID)).WithParam(route)
}

// permissionKey carries the row of the route being served in the request's context.
type permissionKey struct{}

// withPermission returns r carrying its route's row, for mayAct.
func withPermission(r *http.Request, perm permission) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), permissionKey{}, perm))
}

// permissionOf is the row of the route r is served by (none: only proxy admins).
func permissionOf(r *http.Request) permission {
	if perm, ok := r.Context().Value(permissionKey{}).(permission); ok {
		return perm
	}
	return permission{roles: adminOnly}
}

// mayCall is the route-level check: the caller's role is one the row lists.
func mayCall(rt route, p *auth.Principal, path string) error {
	if p.IsProxyAdmin() || rt.roles == nil || slices.Contains(rt.roles, p.Role) {
		return nil
	}
	if p.Role == auth.RoleProxyAdminViewer || p.Role == auth.RoleInternalUserViewer {
		return forbidden(fmt.Sprintf("user not allowed to access this route, role= %s. Trying to access: %s", p.Role, path))
	}
	return forbidden(fmt.Sprintf(
		"Only proxy admin can be used to generate, delete, update info for new keys/users/teams. Route=%s. Your role=%s. Your user_id=%s",
		path, p.Role, p.UserID))
}
