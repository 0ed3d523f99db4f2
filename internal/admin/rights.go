package admin

import (
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/store"
)

// rights is what a key, user or team record lets its holder do, in one shape so one table
// (rightsTable) can compare two records of any kind. Unset caps (nil) and empty model lists
// mean no limit.
type rights struct {
	budget       store.Budget
	limits       store.Limits
	windows      []store.BudgetWindow
	modelBudgets map[string]store.ModelBudget
	models       []string
	aliases      map[string]string
	blocked      bool
	expires      *time.Time
	// Who the record belongs to.
	owner, team, org, role string
	// A team's caps on each member.
	memberBudget       *float64
	memberRPM          *int64
	memberTPM          *int64
	memberBudgetPeriod string
}

func keyRights(k *store.Key) rights {
	return rights{budget: k.Budget, limits: k.Limits, windows: k.BudgetLimits, modelBudgets: k.ModelMaxBudget,
		models: k.Models, aliases: k.Aliases, blocked: k.Blocked, expires: k.Expires,
		owner: aws.ToString(k.UserID), team: aws.ToString(k.TeamID)}
}

func userRights(u *store.User) rights {
	return rights{budget: u.Budget, limits: u.Limits, modelBudgets: u.ModelMaxBudget, models: u.Models, role: u.UserRole}
}

func teamRights(t *store.Team) rights {
	return rights{budget: t.Budget, limits: t.Limits, windows: t.BudgetLimits, models: t.Models, aliases: t.ModelAliases,
		blocked: t.Blocked, org: aws.ToString(t.OrganizationID), memberBudget: t.TeamMemberBudget,
		memberRPM: t.TeamMemberRPM, memberTPM: t.TeamMemberTPM, memberBudgetPeriod: aws.ToString(t.TeamMemberBudgetDur)}
}

// rightsCheck is what comparing two rights needs besides them: the model rules, and the
// model lists that bound the record besides its own (its team's; for a personal key, its
// user's), which alias targets must also stay within.
type rightsCheck struct {
	models *auth.ModelIndex
	bounds [][]string
}

// rightsTable is the field half of the permission model: every right a record carries, and
// when a change of it gives more. A non-admin's change of a key, user or team may give none
// (it may only narrow: lower a limit, add a budget window, drop models, block, expire
// sooner, keep its owner and team), and a key a non-admin creates may have none beyond the
// key creating it, that key's team and the new key's team: the rows marked ceiling.
var rightsTable = []struct {
	field   string
	ceiling bool
	widens  func(old, new *rights, c rightsCheck) bool
}{
	{"max_budget", true, func(o, n *rights, _ rightsCheck) bool { return capWidens(o.budget.MaxBudget, n.budget.MaxBudget) }},
	{"budget_duration", true, func(o, n *rights, _ rightsCheck) bool {
		return o.budget.MaxBudget != nil && resetsSooner(o.budget.BudgetDuration, n.budget.BudgetDuration)
	}},
	{"budget_limits", true, func(o, n *rights, _ rightsCheck) bool { return windowsWiden(o.windows, n.windows) }},
	{"model_max_budget", true, func(o, n *rights, _ rightsCheck) bool { return modelBudgetsWiden(o.modelBudgets, n.modelBudgets) }},
	{"tpm_limit", true, func(o, n *rights, _ rightsCheck) bool { return capWidens(o.limits.TPMLimit, n.limits.TPMLimit) }},
	{"rpm_limit", true, func(o, n *rights, _ rightsCheck) bool { return capWidens(o.limits.RPMLimit, n.limits.RPMLimit) }},
	{"max_parallel_requests", true, func(o, n *rights, _ rightsCheck) bool {
		return capWidens(o.limits.MaxParallelRequests, n.limits.MaxParallelRequests)
	}},
	{"model_rpm_limit", true, func(o, n *rights, _ rightsCheck) bool {
		return capsWiden(o.limits.ModelRPMLimit, n.limits.ModelRPMLimit)
	}},
	{"model_tpm_limit", true, func(o, n *rights, _ rightsCheck) bool {
		return capsWiden(o.limits.ModelTPMLimit, n.limits.ModelTPMLimit)
	}},
	{"models", true, func(o, n *rights, c rightsCheck) bool { return modelsWiden(c.models, o.models, n.models) }},
	{"aliases", true, func(o, n *rights, c rightsCheck) bool { return aliasesWiden(c, o.aliases, n) }},
	{"blocked", false, func(o, n *rights, _ rightsCheck) bool { return o.blocked && !n.blocked }},
	{"duration", true, func(o, n *rights, _ rightsCheck) bool {
		return o.expires != nil && (n.expires == nil || n.expires.After(*o.expires))
	}},
	{"team_member_budget", false, func(o, n *rights, _ rightsCheck) bool { return capWidens(o.memberBudget, n.memberBudget) }},
	{"team_member_rpm_limit", false, func(o, n *rights, _ rightsCheck) bool { return capWidens(o.memberRPM, n.memberRPM) }},
	{"team_member_tpm_limit", false, func(o, n *rights, _ rightsCheck) bool { return capWidens(o.memberTPM, n.memberTPM) }},
	{"team_member_budget_duration", false, func(o, n *rights, _ rightsCheck) bool {
		return o.memberBudget != nil && resetsSooner(o.memberBudgetPeriod, n.memberBudgetPeriod)
	}},
	{"user_id", false, func(o, n *rights, _ rightsCheck) bool { return o.owner != n.owner }},
	{"team_id", false, func(o, n *rights, _ rightsCheck) bool { return o.team != n.team }},
	{"organization_id", false, func(o, n *rights, _ rightsCheck) bool { return o.org != n.org }},
	{"user_role", false, func(o, n *rights, _ rightsCheck) bool { return o.role != n.role }},
}

// narrowsOnly refuses a non-admin's change of a record from old to new that gives any
// right the record did not have.
func narrowsOnly(p *auth.Principal, old, new rights, c rightsCheck) error {
	if p.IsProxyAdmin() {
		return nil
	}
	for _, row := range rightsTable {
		if row.widens(&old, &new, c) {
			return forbidden(fmt.Sprintf(
				"Only a proxy admin can raise a budget or limit, widen models or aliases, unblock, extend an expiry, or change an owner or team; "+
					"this request changes %s that way. Your role=%s", row.field, p.Role)).WithParam(row.field)
		}
	}
	return nil
}

// withinCeilings refuses a new key (made by a non-admin) with a right beyond one of the
// ceilings: the key making it, that key's team, the new key's team.
func withinCeilings(p *auth.Principal, k rights, ceilings []rights, c rightsCheck) error {
	for _, ceil := range ceilings {
		for _, row := range rightsTable {
			if row.ceiling && row.widens(&ceil, &k, c) {
				return forbidden(fmt.Sprintf(
					"A key cannot be created with more rights than the key creating it, its team or the new key's team have: %s is beyond them. Your role=%s",
					row.field, p.Role)).WithParam(row.field)
			}
		}
	}
	return nil
}

// inherit gives a new key the ceilings' limits it does not set itself, so a key created
// with no budget, limits, models or expiry gets the tightest of its creator's rather than
// none: the lowest cap, every budget window and per-model cap, the shared models, the
// earliest expiry.
func inherit(k *store.Key, ceilings []rights, ix *auth.ModelIndex) error {
	unsetBudget, unsetTPM, unsetRPM, unsetParallel, unsetExpiry := k.MaxBudget == nil, k.TPMLimit == nil, k.RPMLimit == nil,
		k.MaxParallelRequests == nil, k.Expires == nil
	for _, c := range ceilings {
		if b := c.budget.MaxBudget; unsetBudget && b != nil && (k.MaxBudget == nil || *b < *k.MaxBudget) {
			v := *b
			k.MaxBudget = &v
			if k.BudgetDuration == "" {
				k.BudgetDuration, k.BudgetResetAt = c.budget.BudgetDuration, c.budget.BudgetResetAt
			}
		}
		k.TPMLimit = lowerCap(k.TPMLimit, c.limits.TPMLimit, unsetTPM)
		k.RPMLimit = lowerCap(k.RPMLimit, c.limits.RPMLimit, unsetRPM)
		k.MaxParallelRequests = lowerCap(k.MaxParallelRequests, c.limits.MaxParallelRequests, unsetParallel)
		if e := c.expires; unsetExpiry && e != nil && (k.Expires == nil || e.Before(*k.Expires)) {
			v := *e
			k.Expires = &v
		}
		for _, w := range c.windows {
			if !slices.ContainsFunc(k.BudgetLimits, func(x store.BudgetWindow) bool { return x.BudgetDuration == w.BudgetDuration }) {
				k.BudgetLimits = append(k.BudgetLimits, store.BudgetWindow{BudgetDuration: w.BudgetDuration, MaxBudget: w.MaxBudget,
					Remaining: w.MaxBudget, ResetAt: w.ResetAt})
			}
		}
		for m, b := range c.modelBudgets {
			if _, ok := k.ModelMaxBudget[m]; !ok {
				if k.ModelMaxBudget == nil {
					k.ModelMaxBudget = map[string]store.ModelBudget{}
				}
				k.ModelMaxBudget[m] = store.ModelBudget{BudgetLimit: b.BudgetLimit, TimePeriod: b.TimePeriod, Remaining: b.BudgetLimit, ResetAt: b.ResetAt}
			}
		}
		k.ModelRPMLimit = addMissing(k.ModelRPMLimit, c.limits.ModelRPMLimit)
		k.ModelTPMLimit = addMissing(k.ModelTPMLimit, c.limits.ModelTPMLimit)
	}
	if len(k.Models) > 0 {
		return nil
	}
	var shared []string
	for _, c := range ceilings {
		if unrestricted(c.models) {
			continue
		}
		if shared == nil {
			shared = slices.Clone(c.models)
			continue
		}
		if shared = intersectModels(ix, shared, c.models); len(shared) == 0 {
			return forbidden("models: the key creating this one and the teams involved have no model in common, so a new key could call none.").WithParam("models")
		}
	}
	if shared != nil {
		k.Models = shared
	}
	return nil
}

// unrestricted reports whether a models list allows every model (a key's "all-team-models"
// defers to its team's list, which is checked on its own).
func unrestricted(models []string) bool {
	return len(models) == 0 || slices.Contains(models, allTeamModels)
}

// addMissing adds to caps the ceiling's caps of models it has none for.
func addMissing(caps, ceil map[string]int64) map[string]int64 {
	for m, v := range ceil {
		if _, ok := caps[m]; !ok {
			if caps == nil {
				caps = map[string]int64{}
			}
			caps[m] = v
		}
	}
	return caps
}

// lowerCap is cur, or when the key left the cap unset the lower of it and ceil.
func lowerCap(cur, ceil *int64, unset bool) *int64 {
	if !unset || ceil == nil || cur != nil && *cur <= *ceil {
		return cur
	}
	v := *ceil
	return &v
}

// allTeamModels in a key's models defers to its team's list.
const allTeamModels = "all-team-models"

// capWidens reports whether a cap was raised or removed.
func capWidens[T int64 | float64](old, new *T) bool {
	return old != nil && (new == nil || *new > *old)
}

// capsWiden reports whether a per-model cap was raised or removed.
func capsWiden(old, new map[string]int64) bool {
	for m, o := range old {
		if n, ok := new[m]; !ok || n > o {
			return true
		}
	}
	return false
}

// resetsSooner reports whether a budget's reset period changed so it resets more often (a
// budget that never reset now does).
func resetsSooner(old, new string) bool {
	if old == new || new == "" {
		return false
	}
	if old == "" {
		return true
	}
	o, err1 := duration.Parse(old)
	n, err2 := duration.Parse(new)
	return err1 != nil || err2 != nil || n.Approx() < o.Approx()
}

// windowsWiden reports whether a budget window was dropped, raised or reset sooner: each
// old window must stay with a budget no higher.
func windowsWiden(old, new []store.BudgetWindow) bool {
	for _, o := range old {
		i := slices.IndexFunc(new, func(n store.BudgetWindow) bool { return n.BudgetDuration == o.BudgetDuration })
		if i < 0 || new[i].MaxBudget > o.MaxBudget {
			return true
		}
	}
	return false
}

// modelBudgetsWiden reports whether a model budget was dropped, raised or given another
// period.
func modelBudgetsWiden(old, new map[string]store.ModelBudget) bool {
	for m, o := range old {
		n, ok := new[m]
		if !ok || n.BudgetLimit > o.BudgetLimit || n.TimePeriod != o.TimePeriod {
			return true
		}
	}
	return false
}

// modelsWiden reports whether new lets its holder call a model old does not.
func modelsWiden(ix *auth.ModelIndex, old, new []string) bool {
	if unrestricted(old) {
		return false
	}
	if unrestricted(new) {
		return true
	}
	for _, m := range new {
		if !ix.Within(old, m) {
			return true
		}
	}
	return false
}

// aliasesWiden reports whether an alias was added or changed to a model outside the
// record's own models or a list that bounds it: an alias must never reach a model the
// holder could not call by name.
func aliasesWiden(c rightsCheck, old map[string]string, n *rights) bool {
	lists := append([][]string{n.models}, c.bounds...)
	for name, target := range n.aliases {
		if t, ok := old[name]; ok && t == target {
			continue
		}
		for _, l := range lists {
			if !unrestricted(l) && !c.models.Within(l, target) {
				return true
			}
		}
	}
	return false
}

// intersectModels is the models both lists allow, as entries of either.
func intersectModels(ix *auth.ModelIndex, a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, pair := range [][2][]string{{a, b}, {b, a}} {
		for _, m := range pair[0] {
			if ix.Within(pair[1], m) && !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// keyBounds are the model lists that bound a key besides its own: its team's, and for a
// personal key its user's.
func keyBounds(team *store.Team, user *store.User) [][]string {
	var b [][]string
	if team != nil {
		b = append(b, team.Models)
	} else if user != nil {
		b = append(b, user.Models)
	}
	return b
}

// ceilingsOf are the rights a key created by p may not exceed: p's key, p's key's team and
// the new key's team.
func ceilingsOf(p *auth.Principal, team *store.Team) []rights {
	var out []rights
	if p.Key != nil {
		out = append(out, keyRights(p.Key))
	}
	if p.Team != nil {
		out = append(out, teamRights(p.Team))
	}
	if team != nil && (p.Team == nil || p.Team.TeamID != team.TeamID) {
		out = append(out, teamRights(team))
	}
	return out
}
