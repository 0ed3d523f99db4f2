package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/google/uuid"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/store"
)

// userRoles are the roles a user may have.
var userRoles = []string{auth.RoleProxyAdmin, auth.RoleProxyAdminViewer, auth.RoleInternalUser, auth.RoleInternalUserViewer, auth.RoleTeam, auth.RoleCustomer}

// userFields are the user parameters of /user/new and /user/update.
type userFields struct {
	UserEmail      Opt[string]                 `json:"user_email"`
	UserAlias      Opt[string]                 `json:"user_alias"`
	UserRole       Opt[string]                 `json:"user_role"`
	MaxBudget      Opt[float64]                `json:"max_budget"`
	SoftBudget     Opt[float64]                `json:"soft_budget"`
	BudgetDuration Opt[string]                 `json:"budget_duration"`
	Models         Opt[[]string]               `json:"models"`
	TPMLimit       Opt[int64]                  `json:"tpm_limit"`
	RPMLimit       Opt[int64]                  `json:"rpm_limit"`
	MaxParallel    Opt[int64]                  `json:"max_parallel_requests"`
	Metadata       Opt[map[string]any]         `json:"metadata"`
	ModelMaxBudget Opt[map[string]modelBudget] `json:"model_max_budget"`
	ModelRPMLimit  Opt[map[string]int64]       `json:"model_rpm_limit"`
	ModelTPMLimit  Opt[map[string]int64]       `json:"model_tpm_limit"`
}

// limitFields returns the fields validate and applyBudget share with keys.
func (f *userFields) limitFields() *keyFields {
	return &keyFields{
		MaxBudget: f.MaxBudget, SoftBudget: f.SoftBudget, BudgetDuration: f.BudgetDuration,
		TPMLimit: f.TPMLimit, RPMLimit: f.RPMLimit, MaxParallel: f.MaxParallel,
		ModelMaxBudget: f.ModelMaxBudget, ModelRPMLimit: f.ModelRPMLimit, ModelTPMLimit: f.ModelTPMLimit,
	}
}

func (f *userFields) validate() error {
	if f.UserRole.Has() && !slices.Contains(userRoles, f.UserRole.V) {
		return badRequest("Invalid user_role %q: want one of %s", f.UserRole.V, strings.Join(userRoles, ", ")).WithParam("user_role")
	}
	for name, v := range map[string]string{"user_email": f.UserEmail.V, "user_alias": f.UserAlias.V} {
		if err := checkID(name, v); err != nil {
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

// apply sets the fields present in f on u.
func (f *userFields) apply(u *store.User, now time.Time, loc *time.Location) {
	if f.UserEmail.Set {
		u.UserEmail = f.UserEmail.Ptr()
	}
	if f.UserAlias.Set {
		u.UserAlias = f.UserAlias.Ptr()
	}
	if f.UserRole.Has() {
		u.UserRole = f.UserRole.V
	}
	if f.Models.Set {
		u.Models = nonNil(f.Models.V)
	}
	if f.Metadata.Set {
		u.Metadata = nonNilMap(f.Metadata.V)
	}
	lf := f.limitFields()
	lf.applyBudget(&u.Budget, now, loc)
	lf.applyLimits(&u.Limits)
	if f.ModelMaxBudget.Set {
		u.ModelMaxBudget = lf.modelBudgets(u.ModelMaxBudget, now, loc)
	}
}

// teamRef is an entry of /user/new's teams: a team id, or {team_id, max_budget_in_team, user_role}.
type teamRef struct {
	TeamID          string   `json:"team_id"`
	MaxBudgetInTeam *float64 `json:"max_budget_in_team"`
	UserRole        string   `json:"user_role"`
}

func (t *teamRef) UnmarshalJSON(b []byte) error {
	var id string
	if err := json.Unmarshal(b, &id); err == nil {
		*t = teamRef{TeamID: id}
		return nil
	}
	type plain teamRef
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return errors.New("expected a team id or {team_id, max_budget_in_team, user_role}")
	}
	*t = teamRef(p)
	return nil
}

// newUserRequest is /user/new's body.
type newUserRequest struct {
	userFields
	UserID        Opt[string]            `json:"user_id"`
	Teams         Opt[[]teamRef]         `json:"teams"`
	TeamID        Opt[string]            `json:"team_id"`
	AutoCreateKey Opt[bool]              `json:"auto_create_key"`
	KeyAlias      Opt[string]            `json:"key_alias"`
	Duration      Opt[string]            `json:"duration"`
	Aliases       Opt[map[string]string] `json:"aliases"`
}

// userObject is a user record as LiteLLM returns it (LiteLLM_UserTable).
func userObject(u *store.User) map[string]any {
	m := object(u)
	m["budget_reset_at"] = timeOrNil(u.BudgetResetAt)
	m["organization_memberships"] = nil
	m["sso_user_id"] = nil
	return m
}

// userNew is POST /user/new: the user, its key (unless auto_create_key is false) and its
// team memberships, in one transaction.
func (h *handler) userNew(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req newUserRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	if err := (&keyFields{KeyAlias: req.KeyAlias, UserID: req.UserID, TeamID: req.TeamID, Aliases: req.Aliases}).validateSizes(); err != nil {
		return err
	}
	for _, t := range req.Teams.V {
		if err := checkID("teams", t.TeamID); err != nil {
			return err
		}
		if t.MaxBudgetInTeam != nil {
			if err := checkAmount("max_budget_in_team", *t.MaxBudgetInTeam); err != nil {
				return err
			}
		}
	}
	if req.Duration.Has() && req.Duration.V != "-1" {
		if _, err := duration.Parse(req.Duration.V); err != nil {
			return badRequest("Invalid duration: %v", err).WithParam("duration")
		}
	}
	ctx := r.Context()
	now := h.Now().UTC()
	u := newUser(req.UserID.V, now, p.UserID)
	if u.UserID == "" {
		u.UserID = uuid.NewString()
	}
	req.apply(u, now, h.loc())
	refs := req.Teams.V
	if req.TeamID.Has() {
		refs = append(refs, teamRef{TeamID: req.TeamID.V})
	}
	var raw string
	var k *store.Key
	err := store.Retry(ctx, func() error {
		if _, err := h.Store.GetUser(ctx, u.UserID); err == nil {
			return mgmtError(http.StatusConflict, fmt.Sprintf("User with id %s already exists", u.UserID))
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		plan := newMemberPlan()
		plan.users[u.UserID] = &userChange{new: u}
		for _, ref := range refs {
			team, err := plan.team(h, r, ref.TeamID)
			if err != nil {
				return err
			}
			role := ref.UserRole
			if role == "" {
				role = "user"
			}
			m := store.Member{UserID: aws.String(u.UserID), UserEmail: u.UserEmail, Role: role}
			if err := plan.add(h, r, team, m, ref.MaxBudgetInTeam, now, p.UserID); err != nil {
				return err
			}
		}
		tx := h.Store.Tx()
		if !req.AutoCreateKey.Set || req.AutoCreateKey.V {
			var err error
			if raw, err = auth.NewKey(); err != nil {
				return err
			}
			k = &store.Key{Token: auth.Hash(raw), KeyName: auth.KeyName(raw), UserID: aws.String(u.UserID),
				Models: nonNil(req.Models.V), Aliases: nonNilMap(req.Aliases.V), Metadata: map[string]any{}}
			k.CreatedAt, k.UpdatedAt, k.CreatedBy, k.UpdatedBy = now, now, p.UserID, p.UserID
			// LiteLLM's generate_key_helper_fn copies the user's limits and metadata onto the key.
			kf := keyFields{KeyAlias: req.KeyAlias, Duration: req.Duration, TPMLimit: req.TPMLimit, RPMLimit: req.RPMLimit,
				MaxParallel: req.MaxParallel, Metadata: req.Metadata}
			kf.apply(k, now, h.loc())
			if req.TeamID.Has() {
				k.TeamID = aws.String(req.TeamID.V)
			}
			if err := tx.PutKey(k); err != nil {
				return err
			}
		}
		if err := plan.write(tx); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	switch {
	case errors.Is(err, store.ErrAliasTaken):
		return aliasTaken(req.KeyAlias.V)
	case errors.Is(err, store.ErrEmailTaken):
		return mgmtError(http.StatusConflict, fmt.Sprintf("User with email %s already exists", aws.ToString(u.UserEmail)))
	case errors.Is(err, store.ErrUserExists):
		return mgmtError(http.StatusConflict, fmt.Sprintf("User with id %s already exists", u.UserID))
	case err != nil:
		return err
	}
	h.Auth.Invalidate()
	out := userObject(u)
	out["key"] = nil
	if k != nil {
		h.deliver(ctx, k, raw)
		out["key"] = raw
		out["key_name"] = k.KeyName
		out["key_alias"] = k.KeyAlias
		out["expires"] = timeOrNil(k.Expires)
		out["aliases"] = k.Aliases
	}
	return writeJSON(w, out)
}

func aliasTaken(alias string) error {
	return errorWithType(http.StatusBadRequest, "bad_request_error", fmt.Sprintf(
		"Key with alias '%s' already exists. Unique key aliases across all keys are required.", alias), "key_alias")
}

// userInfo is GET /user/info?user_id=.
func (h *handler) userInfo(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.URL.Query().Get("user_id")
	if id == "" {
		id = p.UserID
	}
	if id == "" {
		return badRequest("user_id is required").WithParam("user_id")
	}
	if err := checkID("user_id", id); err != nil {
		return err
	}
	missing := notFound(fmt.Sprintf("User %s not found", id))
	if err := mayAct(r, p, target{user: id}, missing); err != nil {
		return err
	}
	ctx := r.Context()
	u, err := h.Store.GetUser(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return missing
	} else if err != nil {
		return err
	}
	keys, err := h.Store.AllKeys(ctx, store.KeyFilter{UserID: id})
	if err != nil {
		return err
	}
	keyList := make([]any, 0, len(keys))
	for i := range keys {
		keyList = append(keyList, keyObject(&keys[i]))
	}
	teams := make([]any, 0, len(u.Teams))
	for _, tid := range u.Teams {
		t, err := h.Store.GetTeam(ctx, tid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		teams = append(teams, teamObject(t))
	}
	return writeJSON(w, map[string]any{"user_id": id, "user_info": userObject(u), "keys": keyList, "teams": teams})
}

// viewerFields are the fields a proxy_admin_viewer may change on itself (LiteLLM's
// self-service email change; llmgate keeps no passwords).
var viewerFields = []string{"user_id", "user_email"}

// viewerUpdate refuses a proxy_admin_viewer's /user/update of any other field, as LiteLLM.
func viewerUpdate(r *http.Request, p *auth.Principal, req *updateUserRequest) error {
	if p.Role != auth.RoleProxyAdminViewer {
		return nil
	}
	for _, name := range sentFields(req) {
		if !slices.Contains(viewerFields, name) {
			return forbidden(fmt.Sprintf("user not allowed to access this route, role= %s. Trying to access: %s and updating invalid param: %s. only user_email and password can be updated",
				p.Role, r.URL.Path, name)).WithParam(name)
		}
	}
	return nil
}

// updateUserRequest is /user/update's body.
type updateUserRequest struct {
	userFields
	UserID Opt[string] `json:"user_id"`
}

// userUpdate is POST /user/update: admins any user, others themselves (not their role).
// A user that does not exist yet is created, as LiteLLM upserts.
func (h *handler) userUpdate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req updateUserRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if !req.UserID.Has() && !req.UserEmail.Has() {
		return invalid("Either user id or user email must be provided")
	}
	if err := checkID("user_id", req.UserID.V); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	ctx := r.Context()
	id := req.UserID.V
	if id == "" {
		var err error
		if id, err = h.Store.UserIDByEmail(ctx, req.UserEmail.V); errors.Is(err, store.ErrNotFound) {
			id = uuid.NewString()
		} else if err != nil {
			return err
		}
	}
	if err := mayAct(r, p, target{user: id}, forbidden(permissionOf(r).denied)); err != nil {
		return err
	}
	if req.UserRole.Set && !p.IsProxyAdmin() {
		return forbidden("Only proxy admins can modify user roles.")
	}
	if err := viewerUpdate(r, p, &req); err != nil {
		return err
	}
	now := h.Now().UTC()
	var out *store.User
	err := store.Retry(ctx, func() error {
		old, err := h.Store.GetUser(ctx, id)
		tx := h.Store.Tx()
		switch {
		case errors.Is(err, store.ErrNotFound):
			u := newUser(id, now, p.UserID)
			req.apply(u, now, h.loc())
			if err := tx.PutUser(u); err != nil {
				return err
			}
			out = u
		case err != nil:
			return err
		default:
			u, err := store.Clone(old)
			if err != nil {
				return err
			}
			req.apply(u, now, h.loc())
			if err := narrowsOnly(p, userRights(old), userRights(u), rightsCheck{models: p.Models}); err != nil {
				return err
			}
			u.UpdatedAt, u.UpdatedBy = now, p.UserID
			if err := tx.UpdateUser(old, u); err != nil {
				return err
			}
			out = u
		}
		return tx.Commit(ctx)
	})
	if errors.Is(err, store.ErrEmailTaken) {
		return mgmtError(http.StatusConflict, fmt.Sprintf("User with email %s already exists", req.UserEmail.V))
	} else if err != nil {
		return err
	}
	h.Auth.Invalidate()
	return writeJSON(w, userObject(out))
}

// deleteUsersRequest is /user/delete's body.
type deleteUsersRequest struct {
	UserIDs []string `json:"user_ids"`
}

// userDelete is POST /user/delete: the users, their keys, and their team memberships.
// It answers the number of users deleted, as LiteLLM does.
func (h *handler) userDelete(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req deleteUsersRequest
	if err := decode(w, r, h.bodyLimit, &req); err != nil {
		return err
	}
	if len(req.UserIDs) == 0 {
		return invalid("No user id passed in")
	}
	for _, id := range req.UserIDs {
		if err := checkID("user_ids", id); err != nil {
			return err
		}
	}
	now := h.Now().UTC()
	err := deleteAll(h, r.Context(), req.UserIDs, h.Store.GetUser, "User not found, passed user_id=%s", func(_ string, u *store.User) error {
		return h.deleteUser(r, u, now, p.UserID)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, len(req.UserIDs))
}

// deleteUser deletes a user as read with its keys, its memberships and its entries in its
// teams: in one transaction when they fit, else the keys first (they stop working), then the
// team links in bounded batches and the user record last. Each write is idempotent, so after
// a failure the user is still there and deleting it again finishes the job.
func (h *handler) deleteUser(r *http.Request, u *store.User, now time.Time, by string) error {
	ctx := r.Context()
	keys, err := h.Store.AllKeys(ctx, store.KeyFilter{UserID: u.UserID})
	if err != nil {
		return err
	}
	b := h.Store.Batch()
	for i := range keys {
		if err := b.DeleteKey(ctx, &keys[i]); err != nil {
			return err
		}
	}
	for _, tid := range u.Teams {
		old, err := h.Store.GetTeam(ctx, tid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		t, err := store.Clone(old)
		if err != nil {
			return err
		}
		g := h.Store.Tx()
		if removeMember(t, u.UserID, aws.ToString(u.UserEmail)) {
			t.UpdatedAt, t.UpdatedBy = now, by
			if err := g.UpdateTeam(old, t); err != nil {
				return err
			}
		}
		g.DeleteMembership(tid, u.UserID)
		b.Add(g)
	}
	last := h.Store.Tx()
	if err := last.DeleteUser(u); err != nil {
		return err
	}
	b.Add(last)
	return b.Commit(ctx)
}

// deleteAll is the flow of /user/delete and /team/delete: every id must exist (else a 404
// with missing, formatted with the id), then each record is deleted in its own retried
// transaction by del, which gets the record as read in that attempt; a record deleted
// concurrently is skipped.
func deleteAll[T any](h *handler, ctx context.Context, ids []string, get func(context.Context, string) (*T, error), missing string, del func(id string, rec *T) error) error {
	for _, id := range ids {
		if _, err := get(ctx, id); errors.Is(err, store.ErrNotFound) {
			return notFound(fmt.Sprintf(missing, id))
		} else if err != nil {
			return err
		}
	}
	for _, id := range ids {
		err := store.Retry(ctx, func() error {
			rec, err := get(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return nil // deleted concurrently
			} else if err != nil {
				return err
			}
			return del(id, rec)
		})
		if err != nil {
			return err
		}
	}
	h.Auth.Invalidate()
	return nil
}

// userList is GET /user/list: paged, newest first, with role, user_ids and team filters.
func (h *handler) userList(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	q := r.URL.Query()
	page, err := intParam(q.Get("page"), 1, 1, math.MaxInt32, "page")
	if err != nil {
		return err
	}
	size, err := intParam(q.Get("page_size"), 25, 1, 100, "page_size")
	if err != nil {
		return err
	}
	ctx := r.Context()
	var users []store.User
	var total int
	role, team, ids := q.Get("role"), q.Get("team"), q.Get("user_ids")
	if role == "" && team == "" && ids == "" {
		if users, total, err = h.Store.ListUsers(ctx, store.Page{Number: page, Size: size, Desc: true}); err != nil {
			return err
		}
	} else {
		all, _, err := h.Store.ListUsers(ctx, store.Page{Number: 1, Size: math.MaxInt32, Desc: true})
		if err != nil {
			return err
		}
		want := map[string]bool{}
		for _, id := range strings.Split(ids, ",") {
			if id = strings.TrimSpace(id); id != "" {
				want[id] = true
			}
		}
		var kept []store.User
		for _, u := range all {
			if (role == "" || u.UserRole == role) && (team == "" || slices.Contains(u.Teams, team)) && (len(want) == 0 || want[u.UserID]) {
				kept = append(kept, u)
			}
		}
		users, total = pageOf(kept, page, size), len(kept)
	}
	list := make([]any, 0, len(users))
	for i := range users {
		_, n, err := h.Store.ListKeys(ctx, store.KeyFilter{UserID: users[i].UserID}, store.Page{Number: 1, Size: 1})
		if err != nil {
			return err
		}
		m := userObject(&users[i])
		m["key_count"] = n
		list = append(list, m)
	}
	return writeJSON(w, map[string]any{
		"users": list, "total": total, "page": page, "page_size": size, "total_pages": (total + size - 1) / size,
	})
}
