// Package auth turns a request into a Principal: the master key, or a virtual key with its
// user and team, read from the store by the SHA-256 hash of the key. It also holds the
// LiteLLM model access rules (models lists, wildcards, access groups, key and team aliases).
package auth

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/metrics"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

// LiteLLM user roles.
const (
	RoleProxyAdmin         = "proxy_admin"
	RoleProxyAdminViewer   = "proxy_admin_viewer"
	RoleOrgAdmin           = "org_admin"
	RoleInternalUser       = "internal_user"
	RoleInternalUserViewer = "internal_user_viewer"
	RoleTeam               = "team"
	RoleCustomer           = "customer"
)

// ProxyAdminUserID is the user id LiteLLM gives the master key (litellm_proxy_admin_name).
const ProxyAdminUserID = "default_user_id"

// Error types of model access denials (LiteLLM's ProxyErrorTypes).
const (
	TypeKeyModelAccessDenied  = "key_model_access_denied"
	TypeTeamModelAccessDenied = "team_model_access_denied"
	TypeUserModelAccessDenied = "user_model_access_denied"
)

// Principal is an authenticated caller.
type Principal struct {
	IsMaster   bool              // the master key: may do everything
	Role       string            // proxy_admin, internal_user, ... (LiteLLM roles)
	UserID     string            // the key's user_id; ProxyAdminUserID for the master key
	Token      string            // SHA-256 hex of the key (empty for the master key)
	Key        *store.Key        // nil for the master key
	User       *store.User       // key's user, if any
	Team       *store.Team       // key's team, if any
	Membership *store.Membership // user's budget in the team, if the team sets one

	// Models resolves access groups and providers for the model rules; nil knows none.
	Models *ModelIndex
}

var _ llmcall.Caller = (*Principal)(nil)

// IsProxyAdmin reports whether the caller may manage everything (master key or proxy_admin).
func (p *Principal) IsProxyAdmin() bool {
	return p.IsMaster || p.Role == RoleProxyAdmin
}

// ResolveModel maps the requested model through the key's aliases, else the team's
// model_aliases, then checks the key's, the team's and (for keys without a team) the user's
// models lists, as LiteLLM does. A denial is a 401 with LiteLLM's message and error type.
func (p *Principal) ResolveModel(requested string) (string, error) {
	resolved := p.alias(requested)
	if err := p.check(requested, resolved, true); err != nil {
		return "", err
	}
	return resolved, nil
}

// Allowed reports whether the caller may use the model group (for GET /v1/models).
func (p *Principal) Allowed(model string) bool {
	return p.check(model, p.alias(model), true) == nil
}

// MayRoute reports whether the models lists let the caller be served by the model group
// itself. Aliases play no part: a key's alias that maps the group's name to another group
// lets the key request that name, not reach the group.
func (p *Principal) MayRoute(group string) bool {
	return p.check(group, group, false) == nil
}

// alias maps requested through the key's aliases, else the team's model_aliases.
func (p *Principal) alias(requested string) string {
	if p.Key != nil {
		if m, ok := p.Key.Aliases[requested]; ok && m != "" {
			return m
		}
	}
	if p.Team != nil {
		if m, ok := p.Team.ModelAliases[requested]; ok && m != "" {
			return m
		}
	}
	return requested
}

// check applies the key, team and user models rules in LiteLLM's order. A request passes a
// rule when either the requested name or the model it is aliased to is allowed, or (with
// viaAliases) when the name is one of the team's model_aliases.
func (p *Principal) check(requested, resolved string, viaAliases bool) error {
	if p.IsMaster || p.Key == nil {
		return nil
	}
	var teamAliases map[string]string
	if p.Team != nil && viaAliases {
		teamAliases = p.Team.ModelAliases
	}
	candidates := []string{requested}
	if resolved != requested {
		candidates = append(candidates, resolved)
	}
	allowed := func(models []string) bool {
		for _, m := range candidates {
			if p.Models.allows(models, m, teamAliases) {
				return true
			}
		}
		return false
	}
	if !contains(p.Key.Models, "all-team-models") && !allowed(p.Key.Models) {
		return denied(TypeKeyModelAccessDenied, fmt.Sprintf(
			"key not allowed to access model. This key can only access models=%s. Tried to access %s",
			pyList(p.Key.Models), requested))
	}
	if p.Team != nil && len(p.Team.Models) > 0 && !allowed(p.Team.Models) {
		return denied(TypeTeamModelAccessDenied, fmt.Sprintf(
			"Team not allowed to access model. Team=%s, Model=%s. Allowed team models = %s",
			p.Team.TeamID, requested, pyList(p.Team.Models)))
	}
	if p.Team == nil && p.User != nil && len(p.User.Models) > 0 {
		if contains(p.User.Models, "no-default-models") {
			return denied(TypeUserModelAccessDenied, fmt.Sprintf(
				"User not allowed to access model. No default model access, only team models allowed. Tried to access %s", requested))
		}
		if !allowed(p.User.Models) {
			return denied(TypeUserModelAccessDenied, fmt.Sprintf(
				"user not allowed to access model. This user can only access models=%s. Tried to access %s",
				pyList(p.User.Models), requested))
		}
	}
	return nil
}

func denied(typ, msg string) error {
	return openai.Errorf(http.StatusUnauthorized, typ, msg).WithParam("model")
}

// pyList formats a list as Python prints it (['a', 'b']), as LiteLLM's messages show it.
func pyList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "'" + x + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

var _ llmcall.Owner = (*Principal)(nil)

// Owner names who owns the responses the caller makes: its key's hash and team.
func (p *Principal) Owner() (key, team string) {
	if p.Team != nil {
		team = p.Team.TeamID
	}
	return p.Token, team
}

var _ metrics.Identified = (*Principal)(nil)

// MetricsWho names the caller in metric labels: the key's hash (never the key), alias,
// team and user, and the budgets as of the cached records.
func (p *Principal) MetricsWho() metrics.Who {
	w := metrics.Who{User: p.UserID}
	if k := p.Key; k != nil {
		w.HashedKey, w.KeyMaxBudget, w.KeySpend = k.Token, k.MaxBudget, k.Spend
		w.KeyAlias = deref(k.KeyAlias)
	}
	if t := p.Team; t != nil {
		w.Team, w.TeamAlias, w.TeamMaxBudget, w.TeamSpend = t.TeamID, deref(t.TeamAlias), t.MaxBudget, t.Spend
	}
	return w
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
