// Package router routes a call for a model group to one of its deployments, as LiteLLM's
// Router does: model groups and aliases from the config, wildcard groups, routing
// strategies, retries, fallbacks and per-deployment cooldowns.
package router

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/metrics"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/viachat"
)

// Defaults, as LiteLLM's Router has them.
const (
	DefaultNumRetries   = 2 // openai.DEFAULT_MAX_RETRIES
	DefaultAllowedFails = 3
	DefaultCooldown     = 5 * time.Second
	// DefaultTimeout bounds a whole call, retries and fallbacks included, when neither
	// router_settings.timeout nor litellm_settings.request_timeout is set.
	DefaultTimeout = 10 * time.Minute
	// failWindow is how long failures count toward allowed_fails.
	failWindow = time.Minute
	// maxBackoff caps the wait between two retries when the upstream gives no retry-after.
	maxBackoff = 8 * time.Second
)

// Routing strategies (router_settings.routing_strategy).
const (
	SimpleShuffle = "simple-shuffle"
	LeastBusy     = "least-busy"
	LatencyBased  = "latency-based-routing"
)

// Providers finds the provider for a litellm_params.model prefix ("openai", "mock", ...).
type Providers interface {
	Lookup(prefix string) (provider.Provider, error)
}

// ProviderFunc adapts a function to Providers.
type ProviderFunc func(prefix string) (provider.Provider, error)

// Lookup calls f.
func (f ProviderFunc) Lookup(prefix string) (provider.Provider, error) { return f(prefix) }

// translating serves the Messages and Responses kinds on every provider: through a
// translation to chat where the provider does not speak them.
type translating struct{ Providers }

func (t translating) Lookup(prefix string) (provider.Provider, error) {
	p, err := t.Providers.Lookup(prefix)
	if err != nil {
		return nil, err
	}
	return viachat.Wrap(p), nil
}

// Clock is the router's time: cooldowns, latency and the waits between retries.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done, whichever comes first, and returns ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Options are the router's dependencies. Clock and Rand are for tests.
type Options struct {
	Config    *config.Config
	Providers Providers
	Pricer    *pricing.Pricer
	Logger    *slog.Logger
	Clock     Clock          // nil: the real clock
	Rand      func() float64 // nil: math/rand/v2; values in [0, 1)
	// Metrics is told of every upstream attempt; nil records nothing.
	Metrics metrics.Recorder
}

// Router routes calls. It is safe for concurrent use.
type Router struct {
	// models is the model list in use: the config's, plus the models stored in DynamoDB
	// when store_model_in_db is on (SetModels replaces it while calls run).
	models       atomic.Pointer[modelTable]
	modelsMu     sync.Mutex // serialises SetStoredModels
	config       []config.Deployment
	aliases      map[string]string
	hidden       map[string]bool
	fallbacks    map[string][]string
	ctxFallbacks map[string][]string

	strategy     string
	retries      int // router_settings.num_retries
	allowedFails int
	cooldown     time.Duration
	timeout      time.Duration

	providers Providers
	mock      provider.Provider
	pricer    *pricing.Pricer
	log       *slog.Logger
	clock     Clock
	rand      func() float64
	metrics   metrics.Recorder
}

// modelTable is a model list as the router uses it.
type modelTable struct {
	groups      map[string]*Group
	wildcards   []*Group // groups whose name has a "*", longest name first
	order       []string // group names in list order
	deployments []*Deployment
}

// Group is a model group: the deployments that share a model_name.
type Group struct {
	Name        string
	Deployments []*Deployment
	by          weightBy
}

// Route is a resolved model: the group to call and, for a wildcard group, the text its
// "*" matched.
type Route struct {
	// Model is the model group name callers see: the requested name after aliases (for a
	// wildcard group, the requested model, such as "openai/gpt-4o-mini").
	Model    string
	Group    *Group
	wildcard string
	isWild   bool
	// Overrides are the request's own routing settings.
	Overrides Overrides
	// pinned is true for a route narrowed to one deployment (Pin): it has no fallbacks.
	pinned bool
	// MayUse reports whether the caller may be served by a model group; configured
	// fallbacks (fallbacks, context_window_fallbacks, the "*" default) to a group it refuses
	// are skipped. nil: every group (general_settings.enforce_fallback_model_access off, or
	// no caller to check). The request's own fallbacks were checked like its model.
	MayUse func(group string) bool
}

// Pin narrows rt to the deployment of its group whose model_info.id is id, without
// fallbacks: a call that continues what an upstream keeps (a stored response) must reach
// that upstream or fail. ok is false when the group has no such deployment.
func (rt Route) Pin(id string) (Route, bool) {
	for _, d := range rt.Group.Deployments {
		if d.ID == id {
			ds := []*Deployment{d}
			rt.Group = &Group{Name: rt.Group.Name, Deployments: ds, by: weighting(ds)}
			rt.pinned = true
			return rt, true
		}
	}
	return rt, false
}

// Pinned is the route to the deployment whose model_info.id is id alone (see Pin), for
// calls that name a deployment rather than a model.
func (r *Router) Pinned(id string) (Route, bool) {
	t := r.models.Load()
	for _, d := range t.deployments {
		if d.ID == id {
			return Route{Model: d.Group, Group: t.groups[d.Group]}.Pin(id)
		}
	}
	return Route{}, false
}

// New builds the router from the config.
func New(o Options) (*Router, error) {
	if o.Config == nil || o.Providers == nil {
		return nil, errors.New("router: a config and providers are required")
	}
	cfg := o.Config
	r := &Router{
		aliases:      map[string]string{},
		hidden:       map[string]bool{},
		fallbacks:    fallbackMap(cfg.RouterSettings.Fallbacks, cfg.LiteLLMSettings.Fallbacks),
		ctxFallbacks: fallbackMap(cfg.RouterSettings.ContextWindowFallbacks, cfg.LiteLLMSettings.ContextWindowFallbacks),
		strategy:     cfg.RouterSettings.RoutingStrategy,
		retries:      DefaultNumRetries,
		allowedFails: DefaultAllowedFails,
		cooldown:     DefaultCooldown,
		timeout:      DefaultTimeout,
		providers:    translating{o.Providers},
		pricer:       o.Pricer,
		log:          o.Logger,
		clock:        o.Clock,
		rand:         o.Rand,
		metrics:      o.Metrics,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.metrics == nil {
		r.metrics = metrics.Nop{}
	}
	if r.clock == nil {
		r.clock = realClock{}
	}
	if r.rand == nil {
		r.rand = rand.Float64
	}
	if r.pricer == nil {
		r.pricer = pricing.NewWithMap(pricing.Embedded(), r.log)
	}
	switch r.strategy {
	case "", SimpleShuffle:
		r.strategy = SimpleShuffle
	case LeastBusy, LatencyBased:
	default:
		r.log.Warn("routing strategy not supported by llmgate: using simple-shuffle", "routing_strategy", r.strategy)
		r.strategy = SimpleShuffle
	}
	if n := firstInt(cfg.RouterSettings.NumRetries, cfg.LiteLLMSettings.NumRetries); n != nil {
		r.retries = *n
	}
	if n := cfg.RouterSettings.AllowedFails; n != nil {
		r.allowedFails = *n
	}
	if c := cfg.RouterSettings.CooldownTime; c != nil {
		r.cooldown = seconds(*c)
	}
	if t := cfg.RouterSettings.Timeout; t > 0 {
		r.timeout = seconds(t)
	} else if t := cfg.LiteLLMSettings.RequestTimeout; t > 0 {
		r.timeout = seconds(t)
	}
	if p, err := r.providers.Lookup("mock"); err == nil {
		r.mock = p
	}

	r.config = cfg.ModelList
	r.models.Store(r.buildTable(r.config, len(r.config), nil))
	for alias, target := range cfg.LiteLLMSettings.ModelGroupAlias {
		r.aliases[alias] = target
	}
	for alias, v := range cfg.RouterSettings.ModelGroupAlias {
		switch v := v.(type) {
		case string:
			r.aliases[alias] = v
		case map[string]any:
			m, _ := v["model"].(string)
			r.aliases[alias] = m
			if h, _ := v["hidden"].(bool); h {
				r.hidden[alias] = true
			}
		}
	}
	return r, nil
}

// SetStoredModels replaces the models stored in DynamoDB (store_model_in_db), served after
// the config's. A deployment whose entry is unchanged keeps its state (cooldown, latency,
// calls in flight); calls already routed finish on the deployments they were given.
func (r *Router) SetStoredModels(stored []config.Deployment) {
	r.modelsMu.Lock()
	defer r.modelsMu.Unlock()
	r.models.Store(r.buildTable(slices.Concat(r.config, stored), len(r.config), r.models.Load()))
}

// buildTable builds the model table of list, whose entries from stored on are stored
// models, reusing prev's deployments whose entry is unchanged.
func (r *Router) buildTable(list []config.Deployment, stored int, prev *modelTable) *modelTable {
	kept := map[string]*Deployment{}
	if prev != nil {
		for _, d := range prev.deployments {
			kept[d.ID] = d
		}
	}
	t := &modelTable{groups: map[string]*Group{}}
	ids := map[string]bool{}
	for i, dc := range list {
		d := r.newDeployment(i, dc, ids)
		d.stored = i >= stored
		if old, ok := kept[d.ID]; ok && old.stored == d.stored && reflect.DeepEqual(old.Config, d.Config) {
			d = old
		}
		ids[d.ID] = true
		g := t.groups[dc.ModelName]
		if g == nil {
			g = &Group{Name: dc.ModelName}
			t.groups[dc.ModelName] = g
			t.order = append(t.order, dc.ModelName)
			if strings.Contains(dc.ModelName, "*") {
				t.wildcards = append(t.wildcards, g)
			}
		}
		g.Deployments = append(g.Deployments, d)
		t.deployments = append(t.deployments, d)
	}
	for _, g := range t.groups {
		g.by = weighting(g.Deployments)
	}
	sort.SliceStable(t.wildcards, func(i, j int) bool { return len(t.wildcards[i].Name) > len(t.wildcards[j].Name) })
	return t
}

// newDeployment builds the i-th deployment of a list, priced and with its provider.
func (r *Router) newDeployment(i int, dc config.Deployment, ids map[string]bool) *Deployment {
	d := newDeployment(dc, r.timeout)
	if d.ID == "" {
		d.ID = generatedID(dc, ids)
	}
	if !strings.Contains(d.Model, "*") {
		d.price = r.pricer.Price(dc, d.Model)
	}
	if prefix, _ := provider.Split(d.Model); !strings.Contains(prefix, "*") {
		d.provider, d.providerErr = r.providers.Lookup(prefix)
		if d.providerErr != nil {
			r.log.Warn("deployment's provider is not available: its calls will fail", "model_list_index", i,
				"model_group", dc.ModelName, "provider", prefix, "error", d.providerErr.Error())
		}
	}
	return d
}

// Resolve maps a requested model to its route: a model_group_alias (unless a group has
// that name) is replaced by its target, then an exact group name, then the most specific
// wildcard group whose pattern matches.
func (r *Router) Resolve(model string) (Route, bool) {
	t := r.models.Load()
	if target, ok := r.aliases[model]; ok {
		if _, isGroup := t.groups[model]; !isGroup {
			model = target // one step: an alias names a group, not another alias
		}
	}
	if g, ok := t.groups[model]; ok {
		return Route{Model: model, Group: g}, true
	}
	for _, g := range t.wildcards {
		if m, ok := matchWildcard(g.Name, model); ok {
			return Route{Model: model, Group: g, wildcard: m, isWild: true}, true
		}
	}
	return Route{}, false
}

// Models lists the names callers may request, in config order: the model groups, then
// the aliases that are not hidden.
func (r *Router) Models() []string {
	t := r.models.Load()
	out := append([]string(nil), t.order...)
	aliases := make([]string, 0, len(r.aliases))
	for a := range r.aliases {
		if _, isGroup := t.groups[a]; !isGroup && !r.hidden[a] {
			aliases = append(aliases, a)
		}
	}
	sort.Strings(aliases)
	return append(out, aliases...)
}

// Timeout bounds a whole call, retries and fallbacks included (router_settings.timeout).
func (r *Router) Timeout() time.Duration { return r.timeout }

// Deployments lists every deployment in list order (the config's, then the stored models).
func (r *Router) Deployments() []*Deployment { return r.models.Load().deployments }

// Targets lists every deployment a call on rt can reach, with its price: the route's group
// and each group it may fall back to (the request's own fallbacks, fallbacks,
// context_window_fallbacks and the "*" defaults, those rt.MayUse allows, as route tries
// them), for the reservation bound.
func (r *Router) Targets(rt Route) []pricing.Target {
	var out []pricing.Target
	add := func(rt Route) {
		for _, d := range rt.Group.Deployments {
			out = append(out, pricing.Target{Model: rt.model(d), Price: r.priceOf(rt, d), MaxTokens: d.Config.LiteLLMParams.MaxTokens})
		}
	}
	add(rt)
	if rt.pinned {
		return out
	}
	seen := map[string]bool{rt.Model: true}
	for _, list := range [...]struct {
		names      []string
		configured bool
	}{{rt.Overrides.Fallbacks, false}, {r.lookupFallbacks(r.fallbacks, rt), true}, {r.lookupFallbacks(r.ctxFallbacks, rt), true}} {
		for _, name := range list.names {
			if frt, skip := r.fallbackRoute(rt, name, list.configured); skip == "" && !seen[frt.Model] {
				seen[frt.Model] = true
				add(frt)
			}
		}
	}
	return out
}

// fallbackRoute resolves a fallback of a call on rt. skip says why the call may not take it
// ("" when it may): the name is no model group, it is rt's own group, or it is a configured
// fallback (not the request's own) to a group rt.MayUse refuses.
func (r *Router) fallbackRoute(rt Route, name string, configured bool) (frt Route, skip string) {
	frt, ok := r.Resolve(name)
	switch {
	case !ok:
		return frt, skipNoGroup
	case frt.Group == rt.Group && frt.wildcard == rt.wildcard:
		return frt, "the failing group itself"
	case configured && rt.MayUse != nil && !rt.MayUse(frt.Model):
		return frt, "the caller may not use it"
	}
	return frt, ""
}

// skipNoGroup is fallbackRoute's reason for a name that is no model group: a config error.
const skipNoGroup = "no such model group"

// model is the litellm_params.model deployment d serves on this route.
func (rt Route) model(d *Deployment) string {
	if rt.isWild {
		return strings.Replace(d.Model, "*", rt.wildcard, 1)
	}
	return d.Model
}

// priceOf is deployment d's price on route rt (a wildcard deployment is priced per model).
func (r *Router) priceOf(rt Route, d *Deployment) pricing.Price {
	if rt.isWild && strings.Contains(d.Model, "*") {
		return r.pricer.Price(d.Config, rt.model(d))
	}
	return d.price
}

// matchWildcard matches model against a pattern with one or more "*" and returns the text
// the first "*" matched.
func matchWildcard(pattern, model string) (string, bool) {
	before, after, _ := strings.Cut(pattern, "*")
	if !strings.HasPrefix(model, before) {
		return "", false
	}
	rest := model[len(before):]
	if !strings.Contains(after, "*") {
		if !strings.HasSuffix(rest, after) || len(rest) < len(after) {
			return "", false
		}
		return rest[:len(rest)-len(after)], true
	}
	// More stars: the first one matches up to the shortest rest that matches the remainder.
	for i := 0; i <= len(rest); i++ {
		if _, ok := matchWildcard(after, rest[i:]); ok {
			return rest[:i], true
		}
	}
	return "", false
}

func fallbackMap(lists ...[]map[string][]string) map[string][]string {
	out := map[string][]string{}
	for _, list := range lists {
		for _, m := range list {
			for group, fbs := range m {
				out[group] = append(out[group], fbs...)
			}
		}
	}
	return out
}

// generatedID is a stable id for a deployment without model_info.id, from what
// distinguishes it (as LiteLLM hashes the deployment's params).
func generatedID(dc config.Deployment, taken map[string]bool) string {
	lp := dc.LiteLLMParams
	sum := sha256.Sum256([]byte(strings.Join([]string{dc.ModelName, lp.Model, lp.APIBase, lp.APIVersion, lp.AWSRegionName}, "\x00")))
	id := hex.EncodeToString(sum[:])[:16]
	for n := 2; taken[id]; n++ {
		id = fmt.Sprintf("%s-%d", id[:16], n)
	}
	return id
}

func firstInt(vs ...*int) *int {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// Expand lists the models a wildcard group serves that the cost map knows, as callers name
// them ("anthropic/claude-3-5-sonnet-20240620" for "anthropic/*"), each with its route; nil
// for a group without a "*".
func (r *Router) Expand(g *Group) []Route {
	if !strings.Contains(g.Name, "*") {
		return nil
	}
	var out []Route
	seen := map[string]bool{}
	for _, d := range g.Deployments {
		prefix, pattern := provider.Split(d.Model)
		if strings.Contains(prefix, "*") || !strings.Contains(pattern, "*") {
			continue
		}
		for _, m := range r.pricer.Models(prefix) {
			w, ok := matchWildcard(pattern, m)
			if !ok {
				continue
			}
			name := strings.Replace(g.Name, "*", w, 1)
			if rt, ok := r.Resolve(name); ok && rt.Group == g && !seen[name] {
				seen[name] = true
				out = append(out, rt)
			}
		}
	}
	return out
}

// Price is deployment d's price on route rt (a wildcard deployment is priced per model).
func (r *Router) Price(rt Route, d *Deployment) pricing.Price { return r.priceOf(rt, d) }

// Upstream is the litellm_params.model d serves on route rt.
func (rt Route) Upstream(d *Deployment) string { return rt.model(d) }
