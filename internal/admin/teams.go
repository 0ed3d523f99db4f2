package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

// teamFields are the team parameters of /team/new and /team/update.
type teamFields struct {
	TeamAlias           Opt[string]            `json:"team_alias"`
	OrganizationID      Opt[string]            `json:"organization_id"`
	Metadata            Opt[map[string]any]    `json:"metadata"`
	TPMLimit            Opt[int64]             `json:"tpm_limit"`
	RPMLimit            Opt[int64]             `json:"rpm_limit"`
	MaxParallel         Opt[int64]             `json:"max_parallel_requests"`
	MaxBudget           Opt[float64]           `json:"max_budget"`
	SoftBudget          Opt[float64]           `json:"soft_budget"`
	BudgetDuration      Opt[string]            `json:"budget_duration"`
	BudgetLimits        Opt[[]budgetLimit]     `json:"budget_limits"`
	Models              Opt[[]string]          `json:"models"`
	Blocked             Opt[bool]              `json:"blocked"`
	ModelAliases        Opt[map[string]string] `json:"model_aliases"`
	Tags                Opt[[]string]          `json:"tags"`
	ModelRPMLimit       Opt[map[string]int64]  `json:"model_rpm_limit"`
	ModelTPMLimit       Opt[map[string]int64]  `json:"model_tpm_limit"`
	TeamMemberBudget    Opt[float64]           `json:"team_member_budget"`
	TeamMemberRPMLimit  Opt[int64]             `json:"team_member_rpm_limit"`
	TeamMemberTPMLimit  Opt[int64]             `json:"team_member_tpm_limit"`
	TeamMemberKeyDur    Opt[string]            `json:"team_member_key_duration"`
	TeamMemberBudgetDur Opt[string]            `json:"team_member_budget_duration"`
	TeamMemberPerms     Opt[[]string]          `json:"team_member_permissions"`
}

func (f *teamFields) limitFields() *keyFields {
	return &keyFields{
		MaxBudget: f.MaxBudget, SoftBudget: f.SoftBudget, BudgetDuration: f.BudgetDuration, BudgetLimits: f.BudgetLimits,
		TPMLimit: f.TPMLimit, RPMLimit: f.RPMLimit, MaxParallel: f.MaxParallel,
		ModelRPMLimit: f.ModelRPMLimit, ModelTPMLimit: f.ModelTPMLimit,
	}
}

func (f *teamFields) validate() error {
	if f.TeamMemberBudget.Has() && f.TeamMemberBudget.V < 0 {
		return invalid(fmt.Sprintf("team_member_budget cannot be negative. Received: %s", pyFloat(f.TeamMemberBudget.V)))
	}
	if f.TeamMemberBudget.Has() {
		if err := checkAmount("team_member_budget", f.TeamMemberBudget.V); err != nil {
			return err
		}
	}
	for name, v := range map[string]Opt[int64]{"team_member_rpm_limit": f.TeamMemberRPMLimit, "team_member_tpm_limit": f.TeamMemberTPMLimit} {
		if v.Has() {
			if err := checkLimit(name, v.V); err != nil {
				return err
			}
		}
	}
	for _, perm := range f.TeamMemberPerms.V {
		if !slices.Contains(teamMemberPermissions, perm) {
			return badRequest("Invalid team_member_permissions entry %q: want some of %s", perm, strings.Join(teamMemberPermissions, ", ")).WithParam("team_member_permissions")
		}
	}
	for name, v := range map[string]string{"team_alias": f.TeamAlias.V, "organization_id": f.OrganizationID.V} {
		if err := checkID(name, v); err != nil {
			return err
		}
	}
	if err := (&keyFields{Models: f.Models, Tags: f.Tags, Aliases: f.ModelAliases, Metadata: f.Metadata}).validateSizes(); err != nil {
		return err
	}
	if f.TeamMemberBudgetDur.Has() {
		if _, err := duration.Parse(f.TeamMemberBudgetDur.V); err != nil {
			return badRequest("Invalid team_member_budget_duration: %v", err).WithParam("team_member_budget_duration")
		}
	}
	return f.limitFields().validate()
}

// apply sets the fields present in f on t.
func (f *teamFields) apply(t *store.Team, now time.Time, loc *time.Location) {
	if f.TeamAlias.Set {
		t.TeamAlias = f.TeamAlias.Ptr()
	}
	if f.OrganizationID.Set {
		t.OrganizationID = f.OrganizationID.Ptr()
	}
	if f.Metadata.Set {
		t.Metadata = nonNilMap(f.Metadata.V)
	}
	if f.Models.Set {
		t.Models = nonNil(f.Models.V)
	}
	if f.Blocked.Set {
		t.Blocked = f.Blocked.Has() && f.Blocked.V
	}
	if f.ModelAliases.Set {
		t.ModelAliases = f.ModelAliases.V
	}
	if f.Tags.Set {
		t.Tags = f.Tags.V
	}
	if f.TeamMemberBudget.Set {
		t.TeamMemberBudget = f.TeamMemberBudget.Ptr()
	}
	if f.TeamMemberRPMLimit.Set {
		t.TeamMemberRPM = f.TeamMemberRPMLimit.Ptr()
	}
	if f.TeamMemberTPMLimit.Set {
		t.TeamMemberTPM = f.TeamMemberTPMLimit.Ptr()
	}
	if f.TeamMemberKeyDur.Set {
		t.TeamMemberKeyDur = f.TeamMemberKeyDur.Ptr()
	}
	if f.TeamMemberBudgetDur.Set {
		t.TeamMemberBudgetDur = f.TeamMemberBudgetDur.Ptr()
	}
	if f.TeamMemberPerms.Set {
		t.TeamMemberPermissions = f.TeamMemberPerms.V
	}
	lf := f.limitFields()
	lf.applyBudget(&t.Budget, now, loc)
	lf.applyLimits(&t.Limits)
	if f.BudgetLimits.Set {
		t.BudgetLimits = lf.windows(t.BudgetLimits, now, loc)
	}
}

// teamObject is a team record as LiteLLM returns it (LiteLLM_TeamTable).
func teamObject(t *store.Team) map[string]any {
	m := object(t)
	m["budget_reset_at"] = timeOrNil(t.BudgetResetAt)
	m["model_id"] = nil
	m["litellm_model_table"] = nil
	if t.ModelAliases != nil {
		m["litellm_model_table"] = map[string]any{"model_aliases": t.ModelAliases}
	}
	return m
}

// member is a team member in a request: {"user_id"|"user_email", "role"}.
type member struct {
	UserID    string `json:"user_id"`
	UserEmail string `json:"user_email"`
	Role      string `json:"role"`
}

func (m member) validate() error {
	if m.UserID == "" && m.UserEmail == "" {
		return invalid("Either user_id or user_email needs to be passed in for each member")
	}
	if err := checkID("user_id", m.UserID); err != nil {
		return err
	}
	if err := checkID("user_email", m.UserEmail); err != nil {
		return err
	}
	if m.Role != "admin" && m.Role != "user" {
		return badRequest("Invalid member role %q: want \"admin\" or \"user\"", m.Role).WithParam("role")
	}
	return nil
}

func (m member) store() store.Member {
	sm := store.Member{Role: m.Role}
	if m.UserID != "" {
		sm.UserID = aws.String(m.UserID)
	}
	if m.UserEmail != "" {
		sm.UserEmail = aws.String(m.UserEmail)
	}
	return sm
}

// newTeamRequest is /team/new's body.
type newTeamRequest struct {
	teamFields
	TeamID           string   `json:"team_id"`
	MembersWithRoles []member `json:"members_with_roles"`
	Admins           []string `json:"admins"`
	Members          []string `json:"members"`
}

// teamNew is POST /team/new: the team, its members' memberships and their users (created
// when new), in one transaction.
func (h *handler) teamNew(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req newTeamRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	if err := checkID("team_id", req.TeamID); err != nil {
		return err
	}
	members := req.MembersWithRoles
	for _, id := range req.Admins {
		members = append(members, member{UserID: id, Role: "admin"})
	}
	for _, id := range req.Members {
		members = append(members, member{UserID: id, Role: "user"})
	}
	for _, m := range members {
		if err := m.validate(); err != nil {
			return err
		}
	}
	// As LiteLLM, the caller becomes a team admin unless the request names it (the master
	// key's user is default_user_id).
	if p.UserID != "" && !slices.ContainsFunc(members, func(m member) bool { return m.UserID == p.UserID }) {
		members = append(members, member{UserID: p.UserID, Role: "admin"})
	}
	if req.TeamID == "" {
		req.TeamID = uuid.NewString()
	}
	ctx := r.Context()
	if !p.IsProxyAdmin() {
		// An organization admin creates teams in its organization, within its ceiling.
		ok, err := h.administersOrg(ctx, p, req.OrganizationID.V)
		if err != nil {
			return err
		}
		if !ok {
			return forbidden(fmt.Sprintf("Only proxy admins, and organization admins in their organization (organization_id), can create teams. Route=%s. Your role=%s. Your user_id=%s",
				r.URL.Path, p.Role, p.UserID))
		}
	}
	now := h.Now().UTC()
	var team *store.Team
	err := store.Retry(ctx, func() error {
		if _, err := h.Store.GetTeam(ctx, req.TeamID); err == nil {
			return invalid(fmt.Sprintf("Team id = %s already exists. Please use a different team id.", req.TeamID))
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		team = &store.Team{TeamID: req.TeamID, Admins: []string{}, Members: []string{}, MembersWithRoles: []store.Member{},
			Models: []string{}, Metadata: map[string]any{}}
		team.CreatedAt, team.UpdatedAt, team.CreatedBy, team.UpdatedBy = now, now, p.UserID, p.UserID
		req.apply(team, now, h.loc())
		if err := h.orgCeiling(ctx, team); err != nil {
			return err
		}
		plan := newMemberPlan()
		for _, m := range members {
			if err := plan.add(h, r, team, m.store(), nil, now, p.UserID); err != nil {
				return err
			}
		}
		tx := h.Store.Tx()
		if err := tx.PutTeam(team); err != nil {
			return err
		}
		if err := plan.write(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if errors.Is(err, store.ErrTeamExists) {
		return invalid(fmt.Sprintf("Team id = %s already exists. Please use a different team id.", req.TeamID))
	} else if err != nil {
		return err
	}
	h.Auth.Invalidate()
	return writeJSON(w, teamObject(team))
}

// userChange is a user record a member change creates (old nil) or updates. asMember marks a
// user created only because a team names it, which another request may create concurrently.
type userChange struct {
	old, new *store.User
	asMember bool
}

// teamChange is a team record a member change updates.
type teamChange struct{ old, new *store.Team }

// memberPlan collects the records adding members touches, so they are written once each in
// one transaction.
type memberPlan struct {
	users       map[string]*userChange
	teams       map[string]*teamChange
	memberships []*store.Membership
}

func newMemberPlan() *memberPlan {
	return &memberPlan{users: map[string]*userChange{}, teams: map[string]*teamChange{}}
}

// team reads a team to change (once per plan); ErrNotFound when it does not exist.
func (pl *memberPlan) team(h *handler, r *http.Request, id string) (*store.Team, error) {
	if c, ok := pl.teams[id]; ok {
		return c.new, nil
	}
	old, err := h.Store.GetTeam(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid(fmt.Sprintf("Team doesn't exist in db. Team=%s. Create team via `/team/new` call.", id))
	} else if err != nil {
		return nil, err
	}
	t, err := store.Clone(old)
	if err != nil {
		return nil, err
	}
	pl.teams[id] = &teamChange{old: old, new: t}
	return t, nil
}

// add makes m a member of team: the member entry, the user's teams list (the user is created
// if unknown, found by email when only an email is given), and a membership item with
// max_budget_in_team or the team's team_member_budget.
func (pl *memberPlan) add(h *handler, r *http.Request, team *store.Team, m store.Member, maxInTeam *float64, now time.Time, by string) error {
	ctx := r.Context()
	uid, email := aws.ToString(m.UserID), aws.ToString(m.UserEmail)
	if uid == "" {
		id, err := h.Store.UserIDByEmail(ctx, email)
		switch {
		case errors.Is(err, store.ErrNotFound):
			uid = uuid.NewString()
		case err != nil:
			return err
		default:
			uid = id
		}
	}
	if isMember(team, uid) {
		return errorWithType(http.StatusBadRequest, "team_member_already_in_team",
			fmt.Sprintf("User=%s already in team=%s.", uid, team.TeamID), "user_id")
	}
	c, ok := pl.users[uid]
	if !ok {
		old, err := h.Store.GetUser(ctx, uid)
		switch {
		case errors.Is(err, store.ErrNotFound):
			u := newUser(uid, now, by)
			if email != "" {
				u.UserEmail = aws.String(email)
			}
			c = &userChange{new: u, asMember: true}
		case err != nil:
			return err
		default:
			u, err := store.Clone(old)
			if err != nil {
				return err
			}
			u.UpdatedAt, u.UpdatedBy = now, by
			c = &userChange{old: old, new: u}
		}
		pl.users[uid] = c
	}
	if !slices.Contains(c.new.Teams, team.TeamID) {
		c.new.Teams = append(c.new.Teams, team.TeamID)
	}
	if email == "" {
		email = aws.ToString(c.new.UserEmail)
	}
	entry := store.Member{UserID: aws.String(uid), Role: m.Role}
	if email != "" {
		entry.UserEmail = aws.String(email)
	}
	team.MembersWithRoles = append(team.MembersWithRoles, entry)
	team.UpdatedAt, team.UpdatedBy = now, by
	budget := maxInTeam
	if budget == nil {
		budget = team.TeamMemberBudget
	}
	ms := &store.Membership{TeamID: team.TeamID, UserID: uid, Budget: store.Budget{MaxBudget: budget}}
	h.setMemberBudgetDuration(&ms.Budget, team.TeamMemberBudgetDur, now)
	pl.memberships = append(pl.memberships, ms)
	return nil
}

// setMemberBudgetDuration gives a membership's budget the team's team_member_budget_duration
// and the next reset of it, which puts the membership in the rotator's due_reset index; no
// duration clears both.
func (h *handler) setMemberBudgetDuration(b *store.Budget, dur *string, now time.Time) {
	b.BudgetDuration, b.BudgetResetAt = "", nil
	if aws.ToString(dur) == "" {
		return
	}
	d, err := duration.Parse(*dur)
	if err != nil {
		return // validated when the team was written
	}
	at := duration.NextReset(d, now, h.loc())
	b.BudgetDuration, b.BudgetResetAt = *dur, &at
}

// syncMemberBudgetDuration gives the team's existing memberships its (changed)
// team_member_budget_duration, as LiteLLM's one team member budget applies to every member;
// memberships that have it already keep their reset time. Each membership is its own write,
// in batches after the team's, so repeating the request finishes what a failure left.
func (h *handler) syncMemberBudgetDuration(ctx context.Context, t *store.Team, now time.Time) error {
	return store.Retry(ctx, func() error {
		ms, err := h.Store.Memberships(ctx, t.TeamID)
		if err != nil {
			return err
		}
		b := h.Store.Batch()
		for i := range ms {
			old := &ms[i]
			if old.BudgetDuration == aws.ToString(t.TeamMemberBudgetDur) {
				continue
			}
			m := *old
			h.setMemberBudgetDuration(&m.Budget, t.TeamMemberBudgetDur, now)
			g := h.Store.Tx()
			if err := g.UpdateMembership(old, &m); err != nil {
				return err
			}
			b.Add(g)
		}
		return b.Commit(ctx)
	})
}

// write adds the plan's writes to tx.
func (pl *memberPlan) write(tx *store.Tx) error {
	for _, c := range pl.users {
		var err error
		switch {
		case c.asMember:
			err = tx.PutUserAsMember(c.new)
		case c.old == nil:
			err = tx.PutUser(c.new)
		default:
			err = tx.UpdateUser(c.old, c.new)
		}
		if err != nil {
			return err
		}
	}
	for _, c := range pl.teams {
		if err := tx.UpdateTeam(c.old, c.new); err != nil {
			return err
		}
	}
	for _, m := range pl.memberships {
		if err := tx.PutMembership(m); err != nil {
			return err
		}
	}
	return nil
}

// removeMember drops a user from a team's member lists; it reports whether it was there.
func removeMember(t *store.Team, userID, email string) bool {
	found := false
	kept := t.MembersWithRoles[:0:0]
	for _, m := range t.MembersWithRoles {
		if (userID != "" && aws.ToString(m.UserID) == userID) || (email != "" && aws.ToString(m.UserEmail) == email) {
			found = true
			continue
		}
		kept = append(kept, m)
	}
	t.MembersWithRoles = kept
	t.Admins = slices.DeleteFunc(slices.Clone(t.Admins), func(s string) bool { return s == userID })
	t.Members = slices.DeleteFunc(slices.Clone(t.Members), func(s string) bool { return s == userID })
	return found
}

func errorWithType(status int, typ, msg, param string) *openai.Error {
	return openai.Errorf(status, typ, msg).WithParam(param)
}

// teamInfo is GET /team/info?team_id=: the team, its keys and memberships.
func (h *handler) teamInfo(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.URL.Query().Get("team_id")
	if id == "" {
		return badRequest("Malformed request. No team id passed in.").WithParam("team_id")
	}
	if err := checkID("team_id", id); err != nil {
		return err
	}
	ctx := r.Context()
	missing := notFound(fmt.Sprintf("Team not found, passed team id: %s.", id))
	t, err := h.Store.GetTeam(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return missing
	} else if err != nil {
		return err
	}
	if err := h.mayActOnTeam(r, p, t, missing); err != nil {
		return err
	}
	keys, err := h.Store.AllKeys(ctx, store.KeyFilter{TeamID: id})
	if err != nil {
		return err
	}
	ms, err := h.Store.Memberships(ctx, id)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{
		"team_id":          id,
		"team_info":        teamObject(t),
		"keys":             keyObjects(keys, true),
		"team_memberships": membershipObjects(ms),
	})
}

func keyObjects(keys []store.Key, dropToken bool) []any {
	out := make([]any, 0, len(keys))
	for i := range keys {
		m := keyObject(&keys[i])
		if dropToken {
			delete(m, "token")
		}
		out = append(out, m)
	}
	return out
}

// membershipObjects are LiteLLM_TeamMembership rows.
func membershipObjects(ms []store.Membership) []any {
	out := make([]any, 0, len(ms))
	for _, m := range ms {
		var table any
		if m.MaxBudget != nil || m.BudgetDuration != "" {
			table = map[string]any{"max_budget": m.MaxBudget, "budget_duration": nilIfEmpty(m.BudgetDuration),
				"budget_reset_at": timeOrNil(m.BudgetResetAt)}
		}
		out = append(out, map[string]any{
			"team_id": m.TeamID, "user_id": m.UserID, "spend": m.Spend, "budget_id": nil, "litellm_budget_table": table,
		})
	}
	return out
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// updateTeamRequest is /team/update's body.
type updateTeamRequest struct {
	teamFields
	TeamID string `json:"team_id"`
}

// teamUpdate is POST /team/update: proxy admins, the team's admins and the admins of its
// organization; those who are not proxy admins only narrow (narrowsOnly).
func (h *handler) teamUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req updateTeamRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if req.TeamID == "" {
		return invalid("No team id passed in")
	}
	if err := checkID("team_id", req.TeamID); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	now := h.Now().UTC()
	t, err := h.changeTeam(r, p, req.TeamID, func(old, t *store.Team) error {
		req.apply(t, now, h.loc())
		// Rights first: a non-admin's widening is a 403 whether or not the organization it
		// names exists, so it cannot probe organization ids.
		if err := narrowsOnly(p, teamRights(old), teamRights(t), rightsCheck{models: p.Models}); err != nil {
			return err
		}
		return h.orgCeiling(r.Context(), t)
	})
	if err != nil {
		return err
	}
	if req.TeamMemberBudgetDur.Set {
		if err := h.syncMemberBudgetDuration(r.Context(), t, now); err != nil {
			return err
		}
	}
	return writeJSON(w, map[string]any{"team_id": t.TeamID, "data": teamObject(t)})
}

// changeTeam reads a team, checks the caller may act on it through the route, applies
// change (which may refuse) and writes the difference.
func (h *handler) changeTeam(r *http.Request, p *auth.Principal, id string, change func(old, new *store.Team) error) (*store.Team, error) {
	ctx := r.Context()
	missing := notFound(fmt.Sprintf("Team not found, passed team_id=%s", id))
	now := h.Now().UTC()
	var out *store.Team
	err := store.Retry(ctx, func() error {
		old, err := h.Store.GetTeam(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return missing
		} else if err != nil {
			return err
		}
		if err := h.mayActOnTeam(r, p, old, missing); err != nil {
			return err
		}
		t, err := store.Clone(old)
		if err != nil {
			return err
		}
		if err := change(old, t); err != nil {
			return err
		}
		t.UpdatedAt, t.UpdatedBy = now, p.UserID
		tx := h.Store.Tx()
		if err := tx.UpdateTeam(old, t); err != nil {
			return err
		}
		out = t
		return tx.Commit(ctx)
	})
	if err != nil {
		return nil, err
	}
	h.Auth.Invalidate()
	return out, nil
}

// blockTeamRequest is /team/block's and /team/unblock's body.
type blockTeamRequest struct {
	TeamID string `json:"team_id"`
}

func (h *handler) teamBlock(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.setTeamBlocked(w, r, p, true)
}

func (h *handler) teamUnblock(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.setTeamBlocked(w, r, p, false)
}

func (h *handler) setTeamBlocked(w http.ResponseWriter, r *http.Request, p *auth.Principal, blocked bool) error {
	var req blockTeamRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if req.TeamID == "" {
		return invalid("No team id passed in")
	}
	if err := checkID("team_id", req.TeamID); err != nil {
		return err
	}
	t, err := h.changeTeam(r, p, req.TeamID, func(_, t *store.Team) error {
		t.Blocked = blocked
		return nil
	})
	if err != nil {
		return err
	}
	return writeJSON(w, teamObject(t))
}

// deleteTeamsRequest is /team/delete's body.
type deleteTeamsRequest struct {
	TeamIDs []string `json:"team_ids"`
}

// teamDelete is POST /team/delete: the teams, their keys and memberships, and the team ids
// in their members' user records. The caller must be allowed every team before any is
// deleted (a proxy admin, or an admin of each team's organization).
func (h *handler) teamDelete(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req deleteTeamsRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if len(req.TeamIDs) == 0 {
		return invalid("No team id passed in")
	}
	for _, id := range req.TeamIDs {
		if err := checkID("team_ids", id); err != nil {
			return err
		}
	}
	const missing = "Team not found, passed team_id=%s"
	getAllowed := func(ctx context.Context, id string) (*store.Team, error) {
		t, err := h.Store.GetTeam(ctx, id)
		if err != nil {
			return nil, err
		}
		return t, h.mayActOnTeam(r, p, t, notFound(fmt.Sprintf(missing, id)))
	}
	now := h.Now().UTC()
	err := deleteAll(h, r.Context(), req.TeamIDs, getAllowed, missing, func(_ string, t *store.Team) error {
		return h.deleteTeam(r, t, now, p.UserID)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"deleted_teams": len(req.TeamIDs)})
}

// deleteTeam deletes a team as read with its keys, its memberships and its id in its
// members' user records: in one transaction when they fit. A bigger team is first blocked in
// one write, so its keys stop working at once; then the keys and member links go in bounded
// batches and the team record last, each write idempotent, so after a failure the blocked
// team is still there and deleting it again finishes the job.
func (h *handler) deleteTeam(r *http.Request, t *store.Team, now time.Time, by string) error {
	ctx := r.Context()
	keys, err := h.Store.AllKeys(ctx, store.KeyFilter{TeamID: t.TeamID})
	if err != nil {
		return err
	}
	ms, err := h.Store.Memberships(ctx, t.TeamID)
	if err != nil {
		return err
	}
	b := h.Store.Batch()
	for i := range keys {
		if err := b.DeleteKey(ctx, &keys[i]); err != nil {
			return err
		}
	}
	hasMembership := map[string]bool{}
	for _, m := range ms {
		hasMembership[m.UserID] = true
	}
	users := maps.Clone(hasMembership)
	for _, m := range t.MembersWithRoles {
		users[aws.ToString(m.UserID)] = true
	}
	for _, uid := range slices.Sorted(maps.Keys(users)) {
		g := h.Store.Tx()
		if hasMembership[uid] {
			g.DeleteMembership(t.TeamID, uid)
		}
		if err := h.dropTeamFromUser(r, g, uid, t.TeamID, now, by); err != nil {
			return err
		}
		b.Add(g)
	}
	last := h.Store.Tx()
	if err := last.DeleteTeam(t); err != nil {
		return err
	}
	// With the team record's own delete (and its escrow shards'), more than one transaction:
	// block the team first, so that no call is admitted while its keys go.
	if b.Len()+last.Len() > store.MaxTxItems && !t.Blocked {
		blocked, err := store.Clone(t)
		if err != nil {
			return err
		}
		blocked.Blocked = true
		blocked.UpdatedAt, blocked.UpdatedBy = now, by
		tx := h.Store.Tx()
		if err := tx.UpdateTeam(t, blocked); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		h.Auth.Invalidate()
		last = h.Store.Tx()
		if err := last.DeleteTeam(blocked); err != nil {
			return err
		}
	}
	b.Add(last)
	return b.Commit(ctx)
}

// dropTeamFromUser adds to tx the removal of teamID from the user's teams list.
func (h *handler) dropTeamFromUser(r *http.Request, tx *store.Tx, userID, teamID string, now time.Time, by string) error {
	if userID == "" {
		return nil
	}
	old, err := h.Store.GetUser(r.Context(), userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	if !slices.Contains(old.Teams, teamID) {
		return nil
	}
	u, err := store.Clone(old)
	if err != nil {
		return err
	}
	u.Teams = slices.DeleteFunc(u.Teams, func(s string) bool { return s == teamID })
	u.UpdatedAt, u.UpdatedBy = now, by
	return tx.UpdateUser(old, u)
}

// memberAddRequest is /team/member_add's body: member is one member or a list.
type memberAddRequest struct {
	TeamID          string       `json:"team_id"`
	Member          members      `json:"member"`
	MaxBudgetInTeam Opt[float64] `json:"max_budget_in_team"`
}

// members reads one member object or a list of them.
type members []member

func (ms *members) UnmarshalJSON(b []byte) error {
	var one member
	if err := decodeStrict(b, &one); err == nil {
		*ms = members{one}
		return nil
	}
	var many []member
	if err := decodeStrict(b, &many); err != nil {
		return errors.New("expected a member {user_id|user_email, role} or a list of them")
	}
	*ms = many
	return nil
}

// teamMemberAdd is POST /team/member_add: proxy admins and team admins.
func (h *handler) teamMemberAdd(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req memberAddRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if req.TeamID == "" {
		return invalid("No team id passed in")
	}
	if err := checkID("team_id", req.TeamID); err != nil {
		return err
	}
	if len(req.Member) == 0 {
		return invalid("No member/members passed in")
	}
	for _, m := range req.Member {
		if err := m.validate(); err != nil {
			return err
		}
	}
	if req.MaxBudgetInTeam.Has() && req.MaxBudgetInTeam.V < 0 {
		return invalid(fmt.Sprintf("max_budget_in_team cannot be negative. Received: %s", pyFloat(req.MaxBudgetInTeam.V)))
	}
	if req.MaxBudgetInTeam.Has() {
		if err := checkAmount("max_budget_in_team", req.MaxBudgetInTeam.V); err != nil {
			return err
		}
	}
	ctx := r.Context()
	now := h.Now().UTC()
	var plan *memberPlan
	var team *store.Team
	err := store.Retry(ctx, func() error {
		plan = newMemberPlan()
		var err error
		missing := notFound(fmt.Sprintf("Team not found for team_id=%s", req.TeamID))
		if team, err = h.Store.GetTeam(ctx, req.TeamID); errors.Is(err, store.ErrNotFound) {
			return missing
		} else if err != nil {
			return err
		}
		if err := h.mayActOnTeam(r, p, team, missing); err != nil {
			return err
		}
		if !p.IsProxyAdmin() && req.MaxBudgetInTeam.Has() && capWidens(team.TeamMemberBudget, req.MaxBudgetInTeam.Ptr()) {
			return forbidden(fmt.Sprintf("Only a proxy admin can give a member a budget above the team's team_member_budget (%s). Your role=%s",
				pyFloat(*team.TeamMemberBudget), p.Role)).WithParam("max_budget_in_team")
		}
		if team, err = plan.team(h, r, req.TeamID); err != nil {
			return err
		}
		for _, m := range req.Member {
			if err := plan.add(h, r, team, m.store(), req.MaxBudgetInTeam.Ptr(), now, p.UserID); err != nil {
				return err
			}
		}
		tx := h.Store.Tx()
		if err := plan.write(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if errors.Is(err, store.ErrMemberExists) {
		return errorWithType(http.StatusBadRequest, "team_member_already_in_team", "User already in team.", "user_id")
	} else if err != nil {
		return err
	}
	h.Auth.Invalidate()
	out := teamObject(team)
	users := make([]any, 0, len(plan.users))
	for _, c := range plan.users {
		users = append(users, userObject(c.new))
	}
	ms := make([]store.Membership, 0, len(plan.memberships))
	for _, m := range plan.memberships {
		ms = append(ms, *m)
	}
	out["updated_users"] = users
	out["updated_team_memberships"] = membershipObjects(ms)
	return writeJSON(w, out)
}

// memberRef names a team member, by user_id or user_email: /team/member_delete's body and
// the start of /team/member_update's.
type memberRef struct {
	TeamID    string `json:"team_id"`
	UserID    string `json:"user_id"`
	UserEmail string `json:"user_email"`
}

// validate refuses a reference without a team or without a user, with LiteLLM's messages.
func (m memberRef) validate() error {
	if m.TeamID == "" {
		return invalid("No team id passed in")
	}
	if err := checkID("team_id", m.TeamID); err != nil {
		return err
	}
	if m.UserID == "" && m.UserEmail == "" {
		return invalid("Either user_id or user_email needs to be passed in")
	}
	return (member{UserID: m.UserID, UserEmail: m.UserEmail, Role: "user"}).validate()
}

// teamMemberDelete is POST /team/member_delete: the member entry, the membership item and
// the team id in the user's record, in one transaction.
func (h *handler) teamMemberDelete(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req memberRef
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ctx := r.Context()
	now := h.Now().UTC()
	var team *store.Team
	err := store.Retry(ctx, func() error {
		old, err := h.teamToChange(r, p, req.TeamID)
		if err != nil {
			return err
		}
		uid := req.UserID
		if uid == "" {
			for _, m := range old.MembersWithRoles {
				if strings.EqualFold(aws.ToString(m.UserEmail), req.UserEmail) {
					uid = aws.ToString(m.UserID)
				}
			}
		}
		if team, err = store.Clone(old); err != nil {
			return err
		}
		if !removeMember(team, uid, req.UserEmail) {
			return invalid("User not found in team")
		}
		team.UpdatedAt, team.UpdatedBy = now, p.UserID
		tx := h.Store.Tx()
		if err := tx.UpdateTeam(old, team); err != nil {
			return err
		}
		if uid != "" {
			tx.DeleteMembership(req.TeamID, uid)
			if err := h.dropTeamFromUser(r, tx, uid, req.TeamID, now, p.UserID); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return err
	}
	h.Auth.Invalidate()
	return writeJSON(w, teamObject(team))
}

// teamList is GET /team/list[?user_id=]: teams with their memberships and keys, sorted by
// team_alias. Non-admins may list only their own teams.
func (h *handler) teamList(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	userID := r.URL.Query().Get("user_id")
	if err := checkID("user_id", userID); err != nil {
		return err
	}
	admin := p.IsProxyAdmin() || p.Role == auth.RoleProxyAdminViewer
	notAdmin := mgmtError(http.StatusUnauthorized, fmt.Sprintf("Only admin users can query all teams/other teams. Your user role=%s", p.Role))
	ctx := r.Context()
	if org := r.URL.Query().Get("organization_id"); org != "" {
		return h.orgTeamList(w, r, p, org, admin, notAdmin)
	}
	if err := mayAct(r, p, target{user: userID}, notAdmin); err != nil {
		return err
	}
	if ids := r.URL.Query().Get("team_ids"); ids != "" {
		return h.teamsByID(w, r, p, ids)
	}
	if r.URL.Query().Has("cursor") {
		return h.teamListAfter(w, r, userID)
	}
	teams, err := h.listedTeams(ctx, userID)
	if err != nil {
		return err
	}
	slices.SortStableFunc(teams, func(a, b store.Team) int {
		return strings.Compare(aws.ToString(a.TeamAlias), aws.ToString(b.TeamAlias))
	})
	out := make([]any, 0, len(teams))
	for i := range teams {
		t := &teams[i]
		if userID != "" && !isMember(t, userID) {
			continue
		}
		ms, err := h.Store.Memberships(ctx, t.TeamID)
		if err != nil {
			return err
		}
		if userID != "" {
			ms = slices.DeleteFunc(ms, func(m store.Membership) bool { return m.UserID != userID })
		}
		keys, err := h.Store.AllKeys(ctx, store.KeyFilter{TeamID: t.TeamID})
		if err != nil {
			return err
		}
		m := teamObject(t)
		m["team_memberships"] = membershipObjects(ms)
		m["keys"] = keyObjects(keys, !admin) // other keys' hashes are for admins only
		out = append(out, m)
	}
	return writeJSON(w, out)
}

// listedTeams is what /team/list without a cursor lists: every team, or a user's teams read
// by id from the user record's list (kept with the memberships), not every team filtered.
func (h *handler) listedTeams(ctx context.Context, userID string) ([]store.Team, error) {
	if userID == "" {
		teams, _, err := h.Store.ListTeams(ctx, store.Page{Number: 1, Size: 1 << 30})
		return teams, err
	}
	u, err := h.Store.GetUser(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return h.Store.GetTeams(ctx, u.Teams)
}

// orgTeamList is /team/list?organization_id=: the teams of an organization (among the
// newest maxListed teams), for proxy admins and viewers and the organization's admins.
func (h *handler) orgTeamList(w http.ResponseWriter, r *http.Request, p *auth.Principal, org string, admin bool, notAdmin error) error {
	if err := checkID("organization_id", org); err != nil {
		return err
	}
	if !admin {
		ok, err := h.administersOrg(r.Context(), p, org)
		if err != nil {
			return err
		}
		if !ok {
			return notAdmin
		}
	}
	teams, err := h.orgTeams(r.Context(), org)
	if err != nil {
		return err
	}
	out, err := h.teamsWithMemberships(r, teams)
	if err != nil {
		return err
	}
	return writeJSON(w, out)
}

// teamListAfter is /team/list?cursor=[&size=] (llmgate's own; "" for the first page): one
// page of teams (oldest first, default 25, at most 100) with their memberships, without their
// keys (a team's keys page through /key/list?team_id=), and next_cursor (null after the
// last). /team/list without a cursor reads every team and every team's keys.
func (h *handler) teamListAfter(w http.ResponseWriter, r *http.Request, userID string) error {
	q := r.URL.Query()
	if userID != "" {
		return badRequest("cursor pages list every team; a user's teams come without cursor").WithParam("cursor")
	}
	size, err := intParam(q.Get("size"), 25, 1, 100, "size")
	if err != nil {
		return err
	}
	teams, next, err := h.Store.ListTeamsAfter(r.Context(), q.Get("cursor"), size)
	if errors.Is(err, store.ErrBadCursor) {
		return badCursor()
	}
	if err != nil {
		return err
	}
	out, err := h.teamsWithMemberships(r, teams)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"teams": out, "next_cursor": nullable(next)})
}

// maxTeamIDs bounds /team/list?team_ids=.
const maxTeamIDs = 100

// teamsByID is /team/list?team_ids=a,b (llmgate's own, at most maxTeamIDs): those teams
// the caller may read (/team/info's row; others are left out, as missing ones), in the
// order asked, shaped as the cursor pages (memberships, no keys; next_cursor null). It lets
// the console name and measure the teams the rollups say spent most without listing all.
func (h *handler) teamsByID(w http.ResponseWriter, r *http.Request, p *auth.Principal, list string) error {
	ids := strings.Split(list, ",")
	if len(ids) > maxTeamIDs {
		return badRequest("team_ids names %d teams; at most %d", len(ids), maxTeamIDs).WithParam("team_ids")
	}
	for _, id := range ids {
		if err := checkID("team_ids", id); err != nil {
			return err
		}
	}
	teams, err := h.Store.GetTeams(r.Context(), ids)
	if err != nil {
		return err
	}
	teams = slices.DeleteFunc(teams, func(t store.Team) bool {
		return mayAct(withPermission(r, readTeam), p, target{team: &t}, errNotVisible) != nil
	})
	out, err := h.teamsWithMemberships(r, teams)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"teams": out, "next_cursor": nil})
}

// errNotVisible is mayAct's answer for an object a filter leaves out.
var errNotVisible = errors.New("not visible")

// teamsWithMemberships is the team objects of teams with their memberships, without keys.
func (h *handler) teamsWithMemberships(r *http.Request, teams []store.Team) ([]any, error) {
	out := make([]any, 0, len(teams))
	for i := range teams {
		ms, err := h.Store.Memberships(r.Context(), teams[i].TeamID)
		if err != nil {
			return nil, err
		}
		m := teamObject(&teams[i])
		m["team_memberships"] = membershipObjects(ms)
		out = append(out, m)
	}
	return out, nil
}

// teamToChange reads the team a member route changes: the route's answer for a missing team,
// and the same answer for a caller who may not act on it.
func (h *handler) teamToChange(r *http.Request, p *auth.Principal, id string) (*store.Team, error) {
	missing := invalid(fmt.Sprintf("Team id=%s does not exist in db", id))
	old, err := h.Store.GetTeam(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing
	} else if err != nil {
		return nil, err
	}
	if err := h.mayActOnTeam(r, p, old, missing); err != nil {
		return nil, err
	}
	return old, nil
}
