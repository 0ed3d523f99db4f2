package admin

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/auth"
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
		over, err := overBound(name, fv.FieldByName("V").Interface(), bound)
		if err != nil {
			return mgmtError(500, fmt.Sprintf("upperbound_key_generate_params.%s is not valid: %v", name, err))
		}
		if over {
			return invalid(fmt.Sprintf("%s is over max limit set in config - user_value=%v; max_value=%v", name, fv.FieldByName("V").Interface(), bound))
		}
	}
	return nil
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
	var b float64
	switch x := bound.(type) {
	case int:
		b = float64(x)
	case int64:
		b = float64(x)
	case float64:
		b = x
	default:
		return false, fmt.Errorf("want a number, got %v", bound)
	}
	switch x := value.(type) {
	case float64:
		return x > b, nil
	case int64:
		return float64(x) > b, nil
	}
	return false, nil
}

// keyGenerationCheck applies litellm_settings.key_generation_settings to non-admins, and
// lets non-admins create team keys only for teams they belong to.
func (h *handler) keyGenerationCheck(p *auth.Principal, team *store.Team, f *keyFields, body []byte) error {
	if p.IsProxyAdmin() {
		return nil
	}
	s := h.Config.LiteLLMSettings.KeyGenerationSettings
	if team != nil {
		var member *store.Member
		for i, m := range team.MembersWithRoles {
			if aws.ToString(m.UserID) == p.UserID {
				member = &team.MembersWithRoles[i]
			}
		}
		if member == nil {
			return invalid(fmt.Sprintf("User=%s not assigned to team=%s", p.UserID, team.TeamID))
		}
		if s == nil || s.TeamKeyGeneration == nil {
			return nil
		}
		rule := s.TeamKeyGeneration
		if len(rule.AllowedTeamMemberRoles) > 0 && !slices.Contains(rule.AllowedTeamMemberRoles, member.Role) {
			return invalid(fmt.Sprintf("Team member role %s not in allowed_team_member_roles=%s", member.Role, pyList(rule.AllowedTeamMemberRoles)))
		}
		return requiredParams(rule.RequiredParams, body)
	}
	if s == nil || s.PersonalKeyGeneration == nil {
		return nil
	}
	rule := s.PersonalKeyGeneration
	if len(rule.AllowedUserRoles) > 0 && !slices.Contains(rule.AllowedUserRoles, p.Role) {
		return invalid(fmt.Sprintf("Personal key creation has been restricted by admin. Allowed roles=%s. Your role=%s", pyList(rule.AllowedUserRoles), p.Role))
	}
	return requiredParams(rule.RequiredParams, body)
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
