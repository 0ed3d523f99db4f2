package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/store"
)

// defaultable are the fields default_key_generate_params may fill (LiteLLM's list).
var defaultable = []string{"max_budget", "user_id", "team_id", "max_parallel_requests", "tpm_limit", "rpm_limit", "budget_duration", "duration", "models", "metadata"}

// applyDefaults fills fields the request left unset from
// litellm_settings.default_key_generate_params (models when empty, metadata when empty).
func (h *handler) applyDefaults(f *keyFields) {
	defs := h.Config.LiteLLMSettings.DefaultKeyGenerateParams
	if len(defs) == 0 {
		return
	}
	b, err := json.Marshal(defs)
	if err != nil {
		return
	}
	var d keyFields
	if err := json.Unmarshal(b, &d); err != nil {
		h.Logger.Warn("admin: default_key_generate_params do not fit the key fields", "error", err)
		return
	}
	dst, src := reflect.ValueOf(f).Elem(), reflect.ValueOf(&d).Elem()
	for _, name := range defaultable {
		if _, ok := defs[name]; !ok {
			continue
		}
		cur := field(dst, name)
		unset := !cur.Interface().(interface{ Has() bool }).Has()
		if (name == "models" && len(f.Models.V) == 0) || (name == "metadata" && len(f.Metadata.V) == 0) {
			unset = true
		}
		if unset {
			cur.Set(field(src, name))
		}
	}
}

// field returns the struct field with the JSON name.
func field(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		if strings.Split(t.Field(i).Tag.Get("json"), ",")[0] == name {
			return v.Field(i)
		}
	}
	panic("admin: no field " + name) // the names above are fields of keyFields
}

// bounded are the fields upperbound_key_generate_params may cap.
var bounded = []string{"max_budget", "max_parallel_requests", "tpm_limit", "rpm_limit", "duration", "budget_duration"}

// enforceUpperbound applies litellm_settings.upperbound_key_generate_params: a value over
// its bound is refused; on /key/generate an unset field takes the bound.
func (h *handler) enforceUpperbound(f *keyFields, fill bool) error {
	bounds := h.Config.LiteLLMSettings.UpperboundKeyGenerateParams
	if len(bounds) == 0 {
		return nil
	}
	v := reflect.ValueOf(f).Elem()
	for _, name := range bounded {
		bound, ok := bounds[name]
		if !ok || bound == nil {
			continue
		}
		fv := field(v, name)
		has := fv.Interface().(interface{ Has() bool }).Has()
		if !has {
			if fill {
				b, _ := json.Marshal(bound)
				if err := json.Unmarshal(b, fv.Addr().Interface()); err != nil {
					return mgmtError(500, fmt.Sprintf("upperbound_key_generate_params.%s is not valid: %v", name, err))
				}
			}
			continue
		}
		value := fv.FieldByName("V").Interface()
		over, err := overBound(name, value, bound)
		if err != nil {
			return mgmtError(500, fmt.Sprintf("upperbound_key_generate_params.%s is not valid: %v", name, err))
		}
		if over {
			return invalid(fmt.Sprintf("%s is over max limit set in config - user_value=%s; max_value=%s", name, boundString(name, value), boundString(name, bound)))
		}
	}
	return nil
}

// boundString prints a value as LiteLLM's upperbound message does: max_budget is a float
// there ("100.0"), the limits are ints and the durations strings.
func boundString(name string, v any) string {
	if f, ok := asFloat(v); ok && name == "max_budget" {
		return pyFloat(f)
	}
	return fmt.Sprint(v)
}

// asFloat reads a number decoded from JSON or YAML.
func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// overBound compares a value with its bound; durations compare in seconds, "-1" is no bound.
func overBound(name string, value, bound any) (bool, error) {
	if name == "duration" || name == "budget_duration" {
		bs := fmt.Sprint(bound)
		if bs == "-1" {
			return false, nil
		}
		bd, err := duration.Parse(bs)
		if err != nil {
			return false, err
		}
		vs := fmt.Sprint(value)
		if vs == "-1" {
			return true, nil // never expiring is over any bound
		}
		vd, err := duration.Parse(vs)
		if err != nil {
			return false, err
		}
		return vd.Approx() > bd.Approx(), nil
	}
	b, ok := asFloat(bound)
	if !ok {
		return false, fmt.Errorf("want a number, got %v", bound)
	}
	x, ok := asFloat(value)
	return ok && x > b, nil
}

// checkKeyRequest is the one check of what /key/generate (old nil), /key/update and
// /key/regenerate (old, the key as it is) ask for, so no route lets a caller do what another
// refuses: valid values within upperbound_key_generate_params; a non-admin creating keys has
// a user, and its keys stay its own (on /key/generate the key defaults to the caller), as
// the user pays for them; a named team exists and lets the caller create its keys; a key put
// into a team or taken out of one passes key_generation_settings; auto_rotate has what it
// needs. body is /key/generate's request, for required_params. What the resulting key may do
// is checked on the record (narrowsKey, limitNewKey).
func (h *handler) checkKeyRequest(r *http.Request, p *auth.Principal, f *keyFields, old *store.Key, body []byte) error {
	if err := f.validate(); err != nil {
		return err
	}
	if old == nil && !p.IsProxyAdmin() && p.UserID == "" {
		// Its keys would answer to no user's budget, and a team key to no member's rights.
		return forbidden("This key has no user_id, so it cannot create keys: ask a proxy admin for a key of your user.")
	}
	if err := h.enforceUpperbound(f, old == nil); err != nil {
		return err
	}
	if err := ownerCheck(p, f, old); err != nil {
		return err
	}
	team, err := h.keyTeam(r, f.TeamID)
	if err != nil {
		return err
	}
	if team != nil && old == nil {
		// A stranger to the team gets the answer for a missing team.
		missing := invalid(fmt.Sprintf("Team doesn't exist in db. Team=%s. Create team via `/team/new` call.", team.TeamID))
		if err := mayAct(r, p, target{team: team}, missing); err != nil {
			return err
		}
	}
	// An existing key's team is checked only when it changes, as LiteLLM's is_different_team.
	if old == nil || (f.TeamID.Set && f.TeamID.V != aws.ToString(old.TeamID)) {
		if err := h.keyGenerationCheck(p, team, f, old, body); err != nil {
			return err
		}
	}
	return h.rotationCheck(f, old)
}

// ownerCheck keeps a non-admin's keys their own: a new key is the caller's, and an existing
// key cannot be handed to another user, whose budget would pay for its calls.
func ownerCheck(p *auth.Principal, f *keyFields, old *store.Key) error {
	if p.IsProxyAdmin() {
		return nil
	}
	if old != nil {
		if owner := aws.ToString(old.UserID); f.UserID.Set && f.UserID.V != owner {
			return forbidden(fmt.Sprintf("User=%s is not allowed to update key=%s to belong to user=%s", f.UserID.V, old.KeyName, owner))
		}
		return nil
	}
	if f.UserID.Has() && f.UserID.V != p.UserID {
		return forbidden(fmt.Sprintf("User can only create keys for themselves. Got user_id=%s, Your ID=%s", f.UserID.V, p.UserID))
	}
	if !f.UserID.Has() && p.UserID != "" {
		f.UserID = Of(p.UserID)
	}
	return nil
}

// keyGenerationCheck applies litellm_settings.key_generation_settings to a non-admin whose
// key is created or moved into team (nil: a personal key): the caller and the key's user
// must be members of the team, the caller in an allowed role; required_params apply to new
// keys.
func (h *handler) keyGenerationCheck(p *auth.Principal, team *store.Team, f *keyFields, old *store.Key, body []byte) error {
	if p.IsProxyAdmin() {
		return nil
	}
	s := h.Config.LiteLLMSettings.KeyGenerationSettings
	var rule *config.KeyGenerationRule
	if team != nil {
		member := memberOf(team, p.UserID)
		if member == nil {
			return notInTeam(p.UserID, team, old != nil)
		}
		owner := f.UserID.V
		if !f.UserID.Set && old != nil {
			owner = aws.ToString(old.UserID)
		}
		if owner != "" && memberOf(team, owner) == nil {
			return notInTeam(owner, team, old != nil)
		}
		if s == nil || s.TeamKeyGeneration == nil {
			return nil
		}
		rule = s.TeamKeyGeneration
		if len(rule.AllowedTeamMemberRoles) > 0 && !slices.Contains(rule.AllowedTeamMemberRoles, member.Role) {
			return invalid(fmt.Sprintf("Team member role %s not in allowed_team_member_roles=%s", member.Role, pyList(rule.AllowedTeamMemberRoles)))
		}
	} else {
		if s == nil || s.PersonalKeyGeneration == nil {
			return nil
		}
		rule = s.PersonalKeyGeneration
		if len(rule.AllowedUserRoles) > 0 && !slices.Contains(rule.AllowedUserRoles, p.Role) {
			return invalid(fmt.Sprintf("Personal key creation has been restricted by admin. Allowed roles=%s. Your role=%s", pyList(rule.AllowedUserRoles), p.Role))
		}
	}
	if old != nil {
		return nil // required_params name what a new key's request must carry
	}
	return requiredParams(rule.RequiredParams, body)
}

// notInTeam is LiteLLM's refusal of a user outside the team: /key/generate's 400, or the 403
// of validate_key_team_change when an existing key moves.
func notInTeam(userID string, t *store.Team, existing bool) error {
	if existing {
		return forbidden(fmt.Sprintf("User=%s is not a member of the team=%s. Check team members via `/team/info`.", userID, t.TeamID))
	}
	return invalid(fmt.Sprintf("User=%s not assigned to team=%s", userID, t.TeamID))
}

func memberOf(t *store.Team, userID string) *store.Member {
	for i, m := range t.MembersWithRoles {
		if aws.ToString(m.UserID) == userID {
			return &t.MembersWithRoles[i]
		}
	}
	return nil
}

func requiredParams(params []string, body []byte) error {
	var sent map[string]json.RawMessage
	_ = json.Unmarshal(body, &sent)
	for _, p := range params {
		if v, ok := sent[p]; !ok || string(v) == "null" {
			return invalid(fmt.Sprintf("Required param %s not in data", p))
		}
	}
	return nil
}

func pyList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "'" + x + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// narrowsKey refuses a non-admin's change of a key, from old (as read) to new, that gives it
// a right (rightsTable); alias targets stay within the key's team's models, or for a
// personal key its user's.
func (h *handler) narrowsKey(r *http.Request, p *auth.Principal, old, new *store.Key) error {
	if p.IsProxyAdmin() {
		return nil
	}
	team, err := h.teamOf(r, aws.ToString(old.TeamID))
	if err != nil {
		return err
	}
	var user *store.User
	if uid := aws.ToString(old.UserID); team == nil && uid != "" {
		if user, err = h.Store.GetUser(r.Context(), uid); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return narrowsOnly(p, keyRights(old), keyRights(new), rightsCheck{models: p.Models, bounds: keyBounds(team, user)})
}

// limitNewKey makes a non-admin's new key no more than its ceilings (the caller's key, that
// key's team, the new key's team): what it leaves unset it inherits from them, and what it
// sets beyond them is refused.
func (h *handler) limitNewKey(r *http.Request, p *auth.Principal, k *store.Key) error {
	if p.IsProxyAdmin() {
		return nil
	}
	team, err := h.teamOf(r, aws.ToString(k.TeamID))
	if err != nil {
		return err
	}
	ceilings := ceilingsOf(p, team)
	if err := inherit(k, ceilings, p.Models); err != nil {
		return err
	}
	return withinCeilings(p, keyRights(k), ceilings, rightsCheck{models: p.Models, bounds: keyBounds(team, p.User)})
}
