package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/store"
)

// orgRoles are the roles a member of an organization may have.
var orgRoles = []string{auth.RoleOrgAdmin, auth.RoleInternalUser, auth.RoleInternalUserViewer}

// orgFields are the parameters of /organization/new and /organization/update.
type orgFields struct {
	OrganizationAlias Opt[string]         `json:"organization_alias"`
	Models            Opt[[]string]       `json:"models"`
	Metadata          Opt[map[string]any] `json:"metadata"`
	BudgetID          Opt[string]         `json:"budget_id"`
	budgetFields
}

func (f *orgFields) validate() error {
	for _, id := range []struct {
		name string
		v    Opt[string]
	}{{"organization_alias", f.OrganizationAlias}, {"budget_id", f.BudgetID}} {
		if err := checkID(id.name, id.v.V); err != nil {
			return err
		}
	}
	if err := checkList("models", f.Models.V); err != nil {
		return err
	}
	if err := checkMetadata("metadata", f.Metadata.V); err != nil {
		return err
	}
	return f.limitFields().validate()
}

func (h *handler) applyOrg(f *orgFields, lf *keyFields, o *store.Org) {
	if f.OrganizationAlias.Has() {
		o.OrganizationAlias = f.OrganizationAlias.V
	}
	if f.Models.Set {
		o.Models = nonNil(f.Models.V)
	}
	if f.Metadata.Set {
		o.Metadata = f.Metadata.V
	}
	if f.BudgetID.Set {
		o.BudgetID = f.BudgetID.Ptr()
	}
	lf.applyBudget(&o.Budget, h.Now().UTC(), h.loc())
	lf.applyLimits(&o.Limits)
}

// orgObject is an organization as LiteLLM returns it (LiteLLM_OrganizationTableWithMembers):
// its budget as litellm_budget_table, its members and, when given, its teams.
func orgObject(o *store.Org, teams []store.Team) map[string]any {
	m := object(o)
	m["litellm_budget_table"] = budgetTable(o.BudgetID, o.Budget, o.Limits)
	members := make([]any, 0, len(o.Members))
	for _, mem := range o.Members {
		members = append(members, map[string]any{"user_id": mem.UserID, "user_role": mem.UserRole,
			"organization_id": o.OrganizationID, "spend": 0.0, "budget_id": nil})
	}
	m["members"] = members
	if teams != nil {
		ts := make([]any, 0, len(teams))
		for i := range teams {
			ts = append(ts, teamObject(&teams[i]))
		}
		m["teams"] = ts
	}
	return m
}

func orgMissing(id string) error {
	return notFound(fmt.Sprintf("Organization not found, passed organization_id=%s", id)).WithParam("organization_id")
}

// orgNew is POST /organization/new.
func (h *handler) orgNew(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req struct {
		orgFields
		OrganizationID string `json:"organization_id"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if !req.OrganizationAlias.Has() || req.OrganizationAlias.V == "" {
		return badRequest("organization_alias is required").WithParam("organization_alias")
	}
	if err := checkID("organization_id", req.OrganizationID); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ctx := r.Context()
	lf := req.limitFields()
	if err := h.takeTier(ctx, lf, req.BudgetID); err != nil {
		return err
	}
	now := h.Now().UTC()
	o := &store.Org{OrganizationID: req.OrganizationID, Models: []string{}, Members: []store.OrgMember{}}
	if o.OrganizationID == "" {
		o.OrganizationID = uuid.NewString()
	}
	o.CreatedAt, o.UpdatedAt, o.CreatedBy, o.UpdatedBy = now, now, p.UserID, p.UserID
	h.applyOrg(&req.orgFields, lf, o)
	tx := h.Store.Tx()
	if err := tx.PutOrg(o); err != nil {
		return err
	}
	if err := tx.Commit(ctx); errors.Is(err, store.ErrOrgExists) {
		return invalid(fmt.Sprintf("Organization id = %s already exists. Please use a different organization id.", o.OrganizationID)).WithParam("organization_id")
	} else if err != nil {
		return err
	}
	return writeJSON(w, orgObject(o, nil))
}

// changeOrg applies fn to organization id as read, retrying on concurrent changes.
func (h *handler) changeOrg(ctx context.Context, id string, fn func(*store.Org) error) (*store.Org, error) {
	o, err := change(ctx, h, id, h.Store.GetOrg, (*store.Tx).UpdateOrg, func(o *store.Org) error {
		o.UpdatedAt = h.Now().UTC()
		return fn(o)
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, orgMissing(id)
	}
	return o, err
}

// orgUpdate is POST /organization/update (LiteLLM also serves it as PATCH).
func (h *handler) orgUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req struct {
		orgFields
		OrganizationID string `json:"organization_id"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := requiredID("organization_id", req.OrganizationID); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ctx := r.Context()
	lf := req.limitFields()
	if err := h.takeTier(ctx, lf, req.BudgetID); err != nil {
		return err
	}
	o, err := h.changeOrg(ctx, req.OrganizationID, func(o *store.Org) error {
		h.applyOrg(&req.orgFields, lf, o)
		o.UpdatedBy = p.UserID
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, orgObject(o, nil))
}

// orgTeams are the teams in organization id (among the first maxListed teams).
func (h *handler) orgTeams(ctx context.Context, id string) ([]store.Team, error) {
	all, _, err := h.Store.ListTeams(ctx, store.Page{Number: 1, Size: maxListed, Desc: true})
	if err != nil {
		return nil, err
	}
	teams := []store.Team{}
	for _, t := range all {
		if aws.ToString(t.OrganizationID) == id {
			teams = append(teams, t)
		}
	}
	return teams, nil
}

// orgInfo is GET /organization/info?organization_id=: proxy admins and viewers, and the
// organization's admins.
func (h *handler) orgInfo(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.URL.Query().Get("organization_id")
	if err := requiredID("organization_id", id); err != nil {
		return err
	}
	o, err := h.Store.GetOrg(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return orgMissing(id)
	} else if err != nil {
		return err
	}
	if err := mayAct(r, p, target{orgAdmin: isOrgAdmin(o, p)}, orgMissing(id)); err != nil {
		return err
	}
	teams, err := h.orgTeams(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, orgObject(o, teams))
}

// isOrgAdmin reports whether p's user is an org_admin member of o.
func isOrgAdmin(o *store.Org, p *auth.Principal) bool {
	return p.UserID != "" && slices.ContainsFunc(o.Members, func(m store.OrgMember) bool {
		return m.UserID == p.UserID && m.UserRole == auth.RoleOrgAdmin
	})
}

// administersOrg reports whether p is an org_admin of organization id (false when it does
// not exist).
func (h *handler) administersOrg(ctx context.Context, p *auth.Principal, id string) (bool, error) {
	if id == "" || p.UserID == "" {
		return false, nil
	}
	o, err := h.Store.GetOrg(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return isOrgAdmin(o, p), nil
}

// mayActOnTeam is mayAct on team t, where the route's row lets organization admins act
// and p is not already a proxy admin: then t's organization is read to see whether p
// administers it.
func (h *handler) mayActOnTeam(r *http.Request, p *auth.Principal, t *store.Team, missing error) error {
	obj := target{team: t}
	if permissionOf(r).grants&grantOrgAdmin != 0 && !p.IsProxyAdmin() {
		var err error
		if obj.orgAdmin, err = h.administersOrg(r.Context(), p, aws.ToString(t.OrganizationID)); err != nil {
			return err
		}
	}
	return mayAct(r, p, obj, missing)
}

// orgList is GET /organization/list: every organization, newest first (at most maxListed).
func (h *handler) orgList(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	orgs, _, err := h.Store.ListOrgs(r.Context(), store.Page{Number: 1, Size: maxListed, Desc: true})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(orgs))
	for i := range orgs {
		out = append(out, orgObject(&orgs[i], nil))
	}
	return writeJSON(w, out)
}

// orgDelete is POST /organization/delete {"organization_ids": [...]}: every id must exist.
// Teams in a deleted organization keep its id and lose its ceiling.
func (h *handler) orgDelete(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var req struct {
		OrganizationIDs []string `json:"organization_ids"`
	}
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if len(req.OrganizationIDs) == 0 {
		return badRequest("organization_ids is required").WithParam("organization_ids")
	}
	if err := checkList("organization_ids", req.OrganizationIDs); err != nil {
		return err
	}
	ctx := r.Context()
	deleted := make([]any, 0, len(req.OrganizationIDs))
	err := deleteAll(h, ctx, req.OrganizationIDs, h.Store.GetOrg, "Organization not found, passed organization_id=%s", func(_ string, o *store.Org) error {
		tx := h.Store.Tx()
		if err := tx.DeleteOrg(o); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		deleted = append(deleted, orgObject(o, nil))
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, deleted)
}

// orgMemberRequest is the body of /organization/member_add, _update and _delete: member
// is one {"user_id" or "user_email", "role"} or a list of them; the flat user_id,
// user_email and role serve member_update and member_delete.
type orgMemberRequest struct {
	OrganizationID string          `json:"organization_id"`
	Member         json.RawMessage `json:"member"`
	orgMember
}

// orgMember is a member entry.
type orgMember struct {
	UserID    string `json:"user_id"`
	UserEmail string `json:"user_email"`
	Role      string `json:"role"`
}

// orgMembers reads a member request: member is one entry or a list (member_add); the
// flat user_id, user_email and role serve member_update and member_delete.
func (h *handler) orgMembers(w http.ResponseWriter, r *http.Request) (string, []orgMember, error) {
	var req orgMemberRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return "", nil, err
	}
	if req.OrganizationID == "" {
		return "", nil, badRequest("organization_id is required").WithParam("organization_id")
	}
	var members []orgMember
	if m := bytes.TrimSpace(req.Member); len(m) > 0 && string(m) != "null" {
		var err error
		if m[0] == '[' {
			err = json.Unmarshal(m, &members)
		} else {
			members = make([]orgMember, 1)
			err = json.Unmarshal(m, &members[0])
		}
		if err != nil {
			return "", nil, badRequest("Invalid value for 'member': %s", fieldError(err)).WithParam("member")
		}
	}
	if req.UserID != "" || req.UserEmail != "" {
		members = append(members, req.orgMember)
	}
	if len(members) == 0 {
		return "", nil, badRequest("member is required: {\"user_id\" or \"user_email\", \"role\"}").WithParam("member")
	}
	if err := checkList("member", make([]string, len(members))); err != nil {
		return "", nil, err
	}
	for i, m := range members {
		if m.UserID == "" && m.UserEmail != "" {
			id, err := h.Store.UserIDByEmail(r.Context(), m.UserEmail)
			if errors.Is(err, store.ErrNotFound) {
				return "", nil, badRequest("No user with user_email=%s", m.UserEmail).WithParam("user_email")
			} else if err != nil {
				return "", nil, err
			}
			members[i].UserID = id
		}
		if members[i].UserID == "" {
			return "", nil, badRequest("each member needs a user_id or user_email").WithParam("member")
		}
		if err := checkID("user_id", members[i].UserID); err != nil {
			return "", nil, err
		}
		if m.Role != "" && !slices.Contains(orgRoles, m.Role) {
			return "", nil, badRequest("Invalid role %q: want one of org_admin, internal_user, internal_user_viewer", m.Role).WithParam("role")
		}
	}
	return req.OrganizationID, members, nil
}

// orgMemberAdd is POST /organization/member_add: members are added (a user that does not
// exist is created, as LiteLLM does) or their role changed.
func (h *handler) orgMemberAdd(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.changeOrgMembers(w, r, p, func(o *store.Org, m orgMember) {
		role := m.Role
		if role == "" {
			role = auth.RoleInternalUser
		}
		if i := slices.IndexFunc(o.Members, func(x store.OrgMember) bool { return x.UserID == m.UserID }); i >= 0 {
			o.Members[i].UserRole = role
			return
		}
		o.Members = append(o.Members, store.OrgMember{UserID: m.UserID, UserRole: role})
	}, true)
}

// orgMemberUpdate is POST /organization/member_update: a member's role.
func (h *handler) orgMemberUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.changeOrgMembers(w, r, p, func(o *store.Org, m orgMember) {
		if i := slices.IndexFunc(o.Members, func(x store.OrgMember) bool { return x.UserID == m.UserID }); i >= 0 && m.Role != "" {
			o.Members[i].UserRole = m.Role
		}
	}, false)
}

// orgMemberDelete is POST /organization/member_delete.
func (h *handler) orgMemberDelete(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.changeOrgMembers(w, r, p, func(o *store.Org, m orgMember) {
		o.Members = slices.DeleteFunc(o.Members, func(x store.OrgMember) bool { return x.UserID == m.UserID })
	}, false)
}

// changeOrgMembers applies change for each member of the request. Members must exist in
// the organization unless adding (then missing users are created first).
func (h *handler) changeOrgMembers(w http.ResponseWriter, r *http.Request, p *auth.Principal, change func(*store.Org, orgMember), adding bool) error {
	id, members, err := h.orgMembers(w, r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	now := h.Now().UTC()
	if adding {
		for _, m := range members {
			if _, err := h.Store.GetUser(ctx, m.UserID); errors.Is(err, store.ErrNotFound) {
				tx := h.Store.Tx()
				if err := tx.PutUserAsMember(newUser(m.UserID, now, p.UserID)); err != nil {
					return err
				}
				if err := tx.Commit(ctx); err != nil && !errors.Is(err, store.ErrConflict) {
					return err
				}
			} else if err != nil {
				return err
			}
		}
	}
	o, err := h.changeOrg(ctx, id, func(o *store.Org) error {
		for _, m := range members {
			if !adding && !slices.ContainsFunc(o.Members, func(x store.OrgMember) bool { return x.UserID == m.UserID }) {
				return notFound(fmt.Sprintf("User %s is not a member of organization %s", m.UserID, id)).WithParam("user_id")
			}
			change(o, m)
		}
		o.UpdatedBy = p.UserID
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, orgObject(o, nil))
}

// orgCeiling refuses a team whose organization does not exist, or that would have models,
// a budget or limits beyond its organization's (LiteLLM's checks on /team/new and update).
func (h *handler) orgCeiling(ctx context.Context, t *store.Team) error {
	id := aws.ToString(t.OrganizationID)
	if id == "" {
		return nil
	}
	o, err := h.Store.GetOrg(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return invalid(fmt.Sprintf("Organization not found, passed organization_id=%s. Create it with /organization/new.", id)).WithParam("organization_id")
	} else if err != nil {
		return err
	}
	if len(o.Models) > 0 {
		if len(t.Models) == 0 {
			return forbidden(fmt.Sprintf("Team has access to all proxy models, but organization %s allows only %s. Set the team's models.", id, pyList(o.Models)))
		}
		for _, m := range t.Models {
			if !slices.Contains(o.Models, m) {
				return forbidden(fmt.Sprintf("Model %s is not in organization %s's models %s.", m, id, pyList(o.Models)))
			}
		}
	}
	for _, c := range []struct {
		name      string
		team, org *float64
	}{{"max_budget", t.MaxBudget, o.MaxBudget}} {
		if c.org != nil && (c.team == nil || *c.team > *c.org) {
			return forbidden(fmt.Sprintf("Team %s %v is greater than organization %s's %s %v.", c.name, floatOrNone(c.team), id, c.name, *c.org))
		}
	}
	for _, c := range []struct {
		name      string
		team, org *int64
	}{{"tpm_limit", t.TPMLimit, o.TPMLimit}, {"rpm_limit", t.RPMLimit, o.RPMLimit}, {"max_parallel_requests", t.MaxParallelRequests, o.MaxParallelRequests}} {
		if c.org != nil && (c.team == nil || *c.team > *c.org) {
			return forbidden(fmt.Sprintf("Team %s %v is greater than organization %s's %s %d.", c.name, intOrNone(c.team), id, c.name, *c.org))
		}
	}
	return nil
}

func floatOrNone(f *float64) any {
	if f == nil {
		return "None"
	}
	return *f
}

func intOrNone(i *int64) any {
	if i == nil {
		return "None"
	}
	return *i
}
