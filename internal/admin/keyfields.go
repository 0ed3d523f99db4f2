package admin

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/store"
)

// keyFields are the key parameters of /key/generate, /key/update and /key/regenerate
// (LiteLLM's GenerateRequestBase / KeyRequestBase names). Absent fields leave a key alone.
type keyFields struct {
	KeyAlias         Opt[string]                 `json:"key_alias"`
	Duration         Opt[string]                 `json:"duration"`
	Models           Opt[[]string]               `json:"models"`
	Spend            Opt[float64]                `json:"spend"`
	MaxBudget        Opt[float64]                `json:"max_budget"`
	SoftBudget       Opt[float64]                `json:"soft_budget"`
	UserID           Opt[string]                 `json:"user_id"`
	TeamID           Opt[string]                 `json:"team_id"`
	MaxParallel      Opt[int64]                  `json:"max_parallel_requests"`
	Metadata         Opt[map[string]any]         `json:"metadata"`
	TPMLimit         Opt[int64]                  `json:"tpm_limit"`
	RPMLimit         Opt[int64]                  `json:"rpm_limit"`
	BudgetDuration   Opt[string]                 `json:"budget_duration"`
	BudgetLimits     Opt[[]budgetLimit]          `json:"budget_limits"`
	ModelMaxBudget   Opt[map[string]modelBudget] `json:"model_max_budget"`
	ModelRPMLimit    Opt[map[string]int64]       `json:"model_rpm_limit"`
	ModelTPMLimit    Opt[map[string]int64]       `json:"model_tpm_limit"`
	Aliases          Opt[map[string]string]      `json:"aliases"`
	Blocked          Opt[bool]                   `json:"blocked"`
	Tags             Opt[[]string]               `json:"tags"`
	AutoRotate       Opt[bool]                   `json:"auto_rotate"`
	RotationInterval Opt[string]                 `json:"rotation_interval"`
	// BudgetID names a budget tier: the key takes the tier's limits it does not set itself.
	BudgetID Opt[string] `json:"budget_id"`
}

// budgetLimit is one budget_limits window: {"budget_duration": "1d", "max_budget": 10}.
type budgetLimit struct {
	BudgetDuration string       `json:"budget_duration"`
	MaxBudget      Opt[float64] `json:"max_budget"`
}

// modelBudget is one model_max_budget entry: {"budget_limit": 0.5, "time_period": "30d"}.
type modelBudget struct {
	BudgetLimit Opt[float64] `json:"budget_limit"`
	TimePeriod  string       `json:"time_period"`
}

// pyFloat formats a number as Python prints a float (1.0, 0.5), as LiteLLM's messages do.
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// validate checks values that are wrong whatever the key: negative, non-finite or
// oversized budgets and limits, bad durations, and sizes past the bounds (bounds.go).
func (f *keyFields) validate() error {
	for _, b := range []struct {
		name string
		v    Opt[float64]
	}{{"max_budget", f.MaxBudget}, {"soft_budget", f.SoftBudget}, {"spend", f.Spend}} {
		if b.v.Has() && b.v.V < 0 {
			return invalid(fmt.Sprintf("%s cannot be negative. Received: %s", b.name, pyFloat(b.v.V)))
		}
		if b.v.Has() {
			if err := checkAmount(b.name, b.v.V); err != nil {
				return err
			}
		}
	}
	for _, l := range []struct {
		name string
		v    Opt[int64]
	}{{"tpm_limit", f.TPMLimit}, {"rpm_limit", f.RPMLimit}, {"max_parallel_requests", f.MaxParallel}} {
		if l.v.Has() && l.v.V < 0 {
			return invalid(fmt.Sprintf("%s cannot be negative. Received: %d", l.name, l.v.V))
		}
		if l.v.Has() {
			if err := checkLimit(l.name, l.v.V); err != nil {
				return err
			}
		}
	}
	for name, m := range map[string]Opt[map[string]int64]{"model_rpm_limit": f.ModelRPMLimit, "model_tpm_limit": f.ModelTPMLimit} {
		if err := checkList(name, slices.Collect(maps.Keys(m.V))); err != nil {
			return err
		}
		for model, v := range m.V {
			if v < 0 {
				return invalid(fmt.Sprintf("%s for %s cannot be negative. Received: %d", name, model, v))
			}
			if err := checkLimit(name, v); err != nil {
				return err
			}
		}
	}
	if err := f.validateSizes(); err != nil {
		return err
	}
	if f.Duration.Has() && f.Duration.V != "-1" {
		if _, err := duration.Parse(f.Duration.V); err != nil {
			return badRequest("Invalid duration: %v", err).WithParam("duration")
		}
	}
	if f.BudgetDuration.Has() {
		if _, err := duration.Parse(f.BudgetDuration.V); err != nil {
			return badRequest("Invalid budget_duration: %v", err).WithParam("budget_duration")
		}
	}
	if f.RotationInterval.Has() {
		if _, err := duration.Parse(f.RotationInterval.V); err != nil {
			return badRequest("Invalid rotation_interval: %v", err).WithParam("rotation_interval")
		}
	}
	resetting := len(f.BudgetLimits.V)
	for _, w := range f.BudgetLimits.V {
		if _, err := duration.Parse(w.BudgetDuration); err != nil {
			return badRequest("Invalid budget_limits: budget_duration: %v", err).WithParam("budget_limits")
		}
		if !w.MaxBudget.Has() || w.MaxBudget.V < 0 {
			return badRequest("Invalid budget_limits: each window needs a max_budget >= 0").WithParam("budget_limits")
		}
		if err := checkAmount("budget_limits", w.MaxBudget.V); err != nil {
			return err
		}
	}
	if err := checkList("model_max_budget", slices.Collect(maps.Keys(f.ModelMaxBudget.V))); err != nil {
		return err
	}
	for model, b := range f.ModelMaxBudget.V {
		if !b.BudgetLimit.Has() || b.BudgetLimit.V < 0 {
			return badRequest("Invalid model_max_budget: %s needs a budget_limit >= 0. Example of valid model_max_budget: https://docs.litellm.ai/docs/proxy/users", model).WithParam("model_max_budget")
		}
		if err := checkAmount("model_max_budget", b.BudgetLimit.V); err != nil {
			return err
		}
		if b.TimePeriod != "" {
			if _, err := duration.Parse(b.TimePeriod); err != nil {
				return badRequest("Invalid model_max_budget: %s time_period: %v", model, err).WithParam("model_max_budget")
			}
			resetting++
		}
	}
	if resetting > maxResetting {
		return badRequest("budget_limits windows and model_max_budget entries with a time_period number %d; the limit is %d together.",
			resetting, maxResetting).WithParam("budget_limits")
	}
	return nil
}

// validateSizes checks the ids, lists and metadata of a request against the bounds.
func (f *keyFields) validateSizes() error {
	for _, id := range []struct {
		name string
		v    Opt[string]
	}{{"key_alias", f.KeyAlias}, {"user_id", f.UserID}, {"team_id", f.TeamID}, {"budget_id", f.BudgetID}} {
		if err := checkID(id.name, id.v.V); err != nil {
			return err
		}
	}
	if err := checkList("models", f.Models.V); err != nil {
		return err
	}
	if err := checkList("tags", f.Tags.V); err != nil {
		return err
	}
	if err := checkList("aliases", slices.Collect(maps.Keys(f.Aliases.V))); err != nil {
		return err
	}
	if err := checkList("aliases", slices.Collect(maps.Values(f.Aliases.V))); err != nil {
		return err
	}
	return checkMetadata("metadata", f.Metadata.V)
}

// apply sets the fields present in f on k. Spend moves only through reset_spend and
// reservations, except the initial spend of a new key.
func (f *keyFields) apply(k *store.Key, now time.Time, loc *time.Location) {
	str := func(o Opt[string]) *string {
		if !o.Has() || o.V == "" {
			return nil
		}
		return o.Ptr()
	}
	if f.KeyAlias.Set {
		k.KeyAlias = str(f.KeyAlias)
	}
	if f.UserID.Set {
		k.UserID = str(f.UserID)
	}
	if f.TeamID.Set {
		k.TeamID = str(f.TeamID)
	}
	if f.BudgetID.Set {
		k.BudgetID = str(f.BudgetID)
	}
	if f.Duration.Set {
		k.Duration, k.Expires = nil, nil
		if f.Duration.Has() && f.Duration.V != "-1" {
			d, _ := duration.Parse(f.Duration.V) // validated
			exp := d.Add(now)
			k.Duration, k.Expires = f.Duration.Ptr(), &exp
		}
	}
	if f.Models.Set {
		k.Models = nonNil(f.Models.V)
	}
	if f.Aliases.Set {
		k.Aliases = nonNilMap(f.Aliases.V)
	}
	if f.Metadata.Set {
		k.Metadata = nonNilMap(f.Metadata.V)
	}
	if f.Tags.Set {
		k.Tags = f.Tags.V
	}
	if f.Blocked.Set {
		k.Blocked = f.Blocked.V
	}
	f.applyBudget(&k.Budget, now, loc)
	f.applyLimits(&k.Limits)
	if f.BudgetLimits.Set {
		k.BudgetLimits = f.windows(k.BudgetLimits, now, loc)
	}
	if f.ModelMaxBudget.Set {
		k.ModelMaxBudget = f.modelBudgets(k.ModelMaxBudget, now, loc)
	}
	if f.AutoRotate.Set {
		k.AutoRotate = f.AutoRotate.Has() && f.AutoRotate.V
	}
	if f.RotationInterval.Set {
		k.RotationInterval = str(f.RotationInterval)
	}
	if f.AutoRotate.Set || f.RotationInterval.Set {
		_ = k.ScheduleRotation(now) // rotation_interval validated
	}
}

// applyBudget sets max_budget, soft_budget and budget_duration (with the next
// budget_reset_at) when present. The store recomputes remaining from spend on write.
func (f *keyFields) applyBudget(b *store.Budget, now time.Time, loc *time.Location) {
	if f.MaxBudget.Set {
		b.MaxBudget = f.MaxBudget.Ptr()
	}
	if f.SoftBudget.Set {
		b.SoftBudget = f.SoftBudget.Ptr()
	}
	if f.BudgetDuration.Set {
		b.BudgetDuration, b.BudgetResetAt = "", nil
		if f.BudgetDuration.Has() {
			d, _ := duration.Parse(f.BudgetDuration.V) // validated
			at := duration.NextReset(d, now, loc)
			b.BudgetDuration, b.BudgetResetAt = f.BudgetDuration.V, &at
		}
	}
}

// applyLimits sets tpm/rpm/parallel limits and per-model limits when present.
func (f *keyFields) applyLimits(l *store.Limits) {
	if f.TPMLimit.Set {
		l.TPMLimit = f.TPMLimit.Ptr()
	}
	if f.RPMLimit.Set {
		l.RPMLimit = f.RPMLimit.Ptr()
	}
	if f.MaxParallel.Set {
		l.MaxParallelRequests = f.MaxParallel.Ptr()
	}
	if f.ModelRPMLimit.Set {
		l.ModelRPMLimit = f.ModelRPMLimit.V
	}
	if f.ModelTPMLimit.Set {
		l.ModelTPMLimit = f.ModelTPMLimit.V
	}
}

// windows builds budget_limits, keeping the spend (and reset time) of windows whose
// duration is unchanged; remaining = max_budget - spend.
func (f *keyFields) windows(old []store.BudgetWindow, now time.Time, loc *time.Location) []store.BudgetWindow {
	return budgetWindows(f.BudgetLimits.V, old, now, loc)
}

func budgetWindows(req []budgetLimit, old []store.BudgetWindow, now time.Time, loc *time.Location) []store.BudgetWindow {
	if len(req) == 0 {
		return nil
	}
	prev := map[string]store.BudgetWindow{}
	for _, w := range old {
		prev[w.BudgetDuration] = w
	}
	out := make([]store.BudgetWindow, 0, len(req))
	for _, r := range req {
		w := store.BudgetWindow{BudgetDuration: r.BudgetDuration, MaxBudget: r.MaxBudget.V}
		if p, ok := prev[r.BudgetDuration]; ok {
			w.Spend, w.ResetAt = p.Spend, p.ResetAt
		} else {
			d, _ := duration.Parse(r.BudgetDuration) // validated
			at := duration.NextReset(d, now, loc)
			w.ResetAt = &at
		}
		w.Remaining = w.MaxBudget - w.Spend
		out = append(out, w)
	}
	return out
}

// modelBudgets builds model_max_budget, keeping the spend of models already budgeted.
func (f *keyFields) modelBudgets(old map[string]store.ModelBudget, now time.Time, loc *time.Location) map[string]store.ModelBudget {
	if len(f.ModelMaxBudget.V) == 0 {
		return nil
	}
	out := make(map[string]store.ModelBudget, len(f.ModelMaxBudget.V))
	for model, r := range f.ModelMaxBudget.V {
		b := store.ModelBudget{BudgetLimit: r.BudgetLimit.V, TimePeriod: r.TimePeriod}
		if p, ok := old[model]; ok && p.TimePeriod == r.TimePeriod {
			b.Spend, b.ResetAt = p.Spend, p.ResetAt
		} else if r.TimePeriod != "" {
			d, _ := duration.Parse(r.TimePeriod) // validated
			at := duration.NextReset(d, now, loc)
			b.ResetAt = &at
		}
		b.Remaining = b.BudgetLimit - b.Spend
		out[model] = b
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}
