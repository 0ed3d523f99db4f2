// Package limits admits LLM calls under budgets and rate limits and settles what they cost.
// It implements llmcall.Limiter on the store's reserve and settle transactions: one
// DynamoDB round trip before the upstream call and one after it.
package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/duration"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

// Enforcement modes (llmgate_settings.budget_enforcement).
const (
	// ModeReserve reserves a call's worst-case cost before it runs: spend never passes a
	// budget, under any concurrency.
	ModeReserve = "reserve"
	// ModePostHoc is LiteLLM's behaviour: refuse once spend has reached the budget, charge
	// after the call (concurrent calls can overshoot).
	ModePostHoc = "post_hoc"
)

// Defaults of the time budgets of the store calls.
const (
	// DefaultReserveTimeout bounds Reserve, retries included; past it the call is refused
	// with a 503 (fail closed).
	DefaultReserveTimeout = 3 * time.Second
	// DefaultSettleTimeout bounds Settle, retries included; past it the reservation is left
	// to expire and the rotator settles it.
	DefaultSettleTimeout = 10 * time.Second
	// MinClampTokens is the fewest completion tokens clamp_max_tokens lowers max_tokens to;
	// when the budget pays for fewer, the call is refused.
	MinClampTokens = 16
)

// Limiter implements llmcall.Limiter.
type Limiter struct {
	st             *store.Store
	log            *slog.Logger
	now            func() time.Time
	postHoc        bool
	clamp          bool
	allowUnpriced  bool
	ttl            time.Duration
	proxyMax       *float64
	masterToken    string
	retention      time.Duration
	disableLogs    bool
	reserveTimeout time.Duration
	settleTimeout  time.Duration
	softAlerts     atomic.Int64
	// customers caches the customer records reservations found, by id (nil: no such
	// customer). A stale entry costs a reservation a re-plan, never a wrong admission: the
	// transaction checks the stored record, or that there is none.
	customersMu sync.Mutex
	customers   map[string]*store.Customer
}

// maxCachedCustomers bounds the customer cache of a Limiter.
const maxCachedCustomers = 10_000

// maxEndUserBytes is the longest request "user" that can name a customer (customer ids are
// at most this long); a longer one is neither charged nor logged.
const maxEndUserBytes = 256

var _ llmcall.Limiter = (*Limiter)(nil)

// Option configures a Limiter.
type Option func(*Limiter)

// WithLogger sets the logger (slog.Default otherwise).
func WithLogger(log *slog.Logger) Option { return func(l *Limiter) { l.log = log } }

// WithClock sets the clock (time.Now otherwise); tests pin rate windows with it.
func WithClock(now func() time.Time) Option { return func(l *Limiter) { l.now = now } }

// WithTimeouts sets the time budgets of Reserve and Settle, retries included.
func WithTimeouts(reserve, settle time.Duration) Option {
	return func(l *Limiter) { l.reserveTimeout, l.settleTimeout = reserve, settle }
}

// New builds a Limiter from the configuration: budget_enforcement, clamp_max_tokens,
// reservation_ttl, litellm_settings.max_budget, the master key (whose calls are logged
// under its hash), spend log retention and disable_spend_logs.
func New(st *store.Store, cfg *config.Config, opts ...Option) *Limiter {
	l := &Limiter{
		st:             st,
		log:            slog.Default(),
		now:            time.Now,
		postHoc:        cfg.Settings.BudgetEnforcement == ModePostHoc,
		clamp:          cfg.Settings.ClampMaxTokens,
		allowUnpriced:  cfg.Settings.AllowUnpricedModels,
		ttl:            cfg.Settings.ReservationTTL.Std(),
		proxyMax:       cfg.LiteLLMSettings.MaxBudget,
		retention:      retention(cfg),
		disableLogs:    cfg.GeneralSettings.DisableSpendLogs,
		reserveTimeout: DefaultReserveTimeout,
		settleTimeout:  DefaultSettleTimeout,
		customers:      map[string]*store.Customer{},
	}
	if mk := cfg.GeneralSettings.MasterKey; mk != "" {
		l.masterToken = auth.Hash(mk)
	}
	if l.ttl <= 0 {
		l.ttl = config.DefaultReservationTTL.Std()
	}
	for _, o := range opts {
		o(l)
	}
	return l
}

// retention is llmgate_settings.spend_log_retention, else LiteLLM's
// maximum_spend_logs_retention_period; 0 keeps logs forever.
func retention(cfg *config.Config) time.Duration {
	if r := cfg.Settings.SpendLogRetention.Std(); r > 0 {
		return r
	}
	if p := cfg.GeneralSettings.MaximumSpendLogsRetentionPeriod; p != "" {
		if d, err := duration.Parse(p); err == nil {
			return d.Approx()
		}
	}
	return 0
}

// SoftBudgetAlerts is how many admitted calls found a soft_budget passed.
func (l *Limiter) SoftBudgetAlerts() int64 { return l.softAlerts.Load() }

// Reserve admits a call: it checks and charges the caller's budgets, rate limits and
// parallel-request limit in one store transaction, or returns LiteLLM's error (400
// budget_exceeded, 429 with retry-after, 401 for a key blocked or expired since it was
// cached) or a 503 when the store cannot be reached in time (no call passes unchecked).
func (l *Limiter) Reserve(ctx context.Context, c llmcall.Caller, ch llmcall.Charge) (llmcall.Reservation, error) {
	p, _ := c.(*auth.Principal)
	if p == nil {
		p = &auth.Principal{IsMaster: true, UserID: auth.ProxyAdminUserID}
	}
	now := l.now()
	if l.proxyMax != nil && *l.proxyMax == 0 {
		return nil, budgetError("Budget has been exceeded! The proxy's max_budget is 0: every call is refused.")
	}
	in := l.input(ctx, p, ch, now)
	if err := l.unpriced(p, in.Customer, ch); err != nil {
		return nil, err
	}
	maxTokens := 0
	if t, cost, ok := l.clampTo(ch, headroom(p, in.Customer, ch.Model)); ok {
		maxTokens, in.Cost, in.Estimate = t, cost, cost
	}
	ctx, cancel := context.WithTimeout(ctx, l.reserveTimeout)
	defer cancel()
	res, err := l.st.Reserve(ctx, in)
	var ref *store.Refusal
	if errors.As(err, &ref) && l.clamp {
		// The cached records were stale: clamp to the headroom the refusing item reported.
		if t, cost, ok := l.clampTo(ch, ref.Max-ref.Spend); ok && clampable(ref) {
			maxTokens, in.Cost, in.Estimate = t, cost, cost
			res, err = l.st.Reserve(ctx, in)
		}
	}
	if err != nil {
		l.release(ctx, err)
		return nil, l.refusal(ctx, err, p, ch, now)
	}
	l.rememberCustomer(in.EndUser, res.Customer())
	l.softBudgets(ctx, p, res.Customer(), ch, in.Cost)
	return &reservation{l: l, res: res, p: p, ch: ch, log: in.Log, maxTokens: maxTokens, header: l.header(p)}, nil
}

// unpriced refuses, in reserve mode, a call that can reach a model with no known price when
// any budget applies to the caller: its cost could not be reserved, nor charged.
func (l *Limiter) unpriced(p *auth.Principal, c *store.Customer, ch llmcall.Charge) error {
	if len(ch.Unpriced) == 0 || l.postHoc || l.allowUnpriced || ch.Free {
		return nil
	}
	if math.IsInf(headroom(p, c, ch.Model), 1) && l.proxyMax == nil {
		return nil
	}
	what, fields := "", "model_info.input_cost_per_token and output_cost_per_token"
	if ch.Route == "/images/generations" {
		what, fields = " for images of this size and quality", "model_info.output_cost_per_image or input_cost_per_pixel"
	}
	return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, fmt.Sprintf(
		"model %s has no known price%s and a budget applies to this call, so its cost cannot be reserved. "+
			"Price it in its model_list entry (%s; 0 is a price), "+
			"or set llmgate_settings.allow_unpriced_models: true to run unpriced models at cost 0.",
		strings.Join(ch.Unpriced, ", "), what, fields)).WithParam("model")
}

// input builds the store's view of the call.
func (l *Limiter) input(ctx context.Context, p *auth.Principal, ch llmcall.Charge, now time.Time) store.ReserveInput {
	in := store.ReserveInput{
		RequestID: ch.RequestID, Model: ch.Model,
		Key: p.Key, User: p.User, Team: p.Team, Membership: p.Membership,
		Now: now, TTL: l.ttl,
	}
	if len(ch.EndUser) <= maxEndUserBytes {
		in.EndUser, in.Customer = ch.EndUser, l.customer(ctx, ch.EndUser)
	}
	switch {
	case ch.Free:
		in.Check = store.CheckNone
	case l.postHoc:
		in.Check, in.Estimate = store.CheckPostHoc, ch.Cost
	default:
		in.Check, in.Cost, in.Estimate = store.CheckReserve, ch.Cost, ch.Cost
	}
	if !l.postHoc {
		in.Tokens = int64(ch.Tokens) // rate limits apply to zero-priced models too
	}
	if l.proxyMax != nil && *l.proxyMax > 0 {
		in.ProxyMaxBudget = l.proxyMax
	}
	in.Log = store.SpendLog{
		RequestID: ch.RequestID, CallType: callType(ch.Route), APIKey: p.Token,
		Model: ch.Model, ModelGroup: ch.Model, User: p.UserID, EndUser: in.EndUser,
		RequestTags: append([]string{}, ch.Tags...), CacheHit: "False",
		StartTime: now.UTC(), Metadata: map[string]any{},
	}
	if p.IsMaster {
		in.Log.APIKey = l.masterToken
	}
	if p.Team != nil {
		in.Log.TeamID, in.Log.OrganizationID = p.Team.TeamID, aws.ToString(p.Team.OrganizationID)
	}
	if l.retention > 0 {
		in.Log.TTL = now.Add(l.retention).Unix()
	}
	return in
}

// callType is LiteLLM's call_type of a route.
func callType(route string) string {
	switch route {
	case "/embeddings":
		return "aembedding"
	case "/completions":
		return "atext_completion"
	case "/messages":
		return "anthropic_messages"
	case "/responses":
		return "aresponses"
	case "/moderations":
		return "amoderation"
	case "/images/generations":
		return "aimage_generation"
	default:
		return "acompletion"
	}
}

// customer is the record of customer id (nil for none or ""): cached, else read once. A
// failed read leaves it to the reservation, which finds the customer itself at the cost of
// a re-plan; reading first keeps a burst of calls of a new customer from each paying one.
func (l *Limiter) customer(ctx context.Context, id string) *store.Customer {
	if id == "" {
		return nil
	}
	l.customersMu.Lock()
	c, ok := l.customers[id]
	l.customersMu.Unlock()
	if ok {
		return c
	}
	c, err := l.st.GetCustomer(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		l.rememberCustomer(id, nil)
	case err != nil:
		return nil
	default:
		l.rememberCustomer(id, c)
	}
	return c
}

// rememberCustomer caches what was found of customer id: its record, or nil when there is
// no such customer.
func (l *Limiter) rememberCustomer(id string, c *store.Customer) {
	if id == "" {
		return
	}
	l.customersMu.Lock()
	defer l.customersMu.Unlock()
	if _, ok := l.customers[id]; !ok && len(l.customers) >= maxCachedCustomers {
		for k := range l.customers { // drop an arbitrary entry
			delete(l.customers, k)
			break
		}
	}
	l.customers[id] = c
}

// headroom is the least remaining budget among the caller's cached records and the
// request's customer (+Inf if none).
func headroom(p *auth.Principal, c *store.Customer, model string) float64 {
	h := math.Inf(1)
	budget := func(b store.Budget) {
		if b.Remaining != nil {
			h = min(h, *b.Remaining)
		}
	}
	windows := func(ws []store.BudgetWindow) {
		for _, w := range ws {
			h = min(h, w.Remaining)
		}
	}
	models := func(ms map[string]store.ModelBudget) {
		if m, ok := ms[model]; ok {
			h = min(h, m.Remaining)
		}
	}
	if k := p.Key; k != nil {
		budget(k.Budget)
		windows(k.BudgetLimits)
		models(k.ModelMaxBudget)
	}
	if u := p.User; u != nil {
		budget(u.Budget)
		models(u.ModelMaxBudget)
	}
	if t := p.Team; t != nil {
		budget(t.Budget)
		windows(t.BudgetLimits)
	}
	if m := p.Membership; m != nil {
		budget(m.Budget)
	}
	if c != nil {
		budget(c.Budget)
	}
	return h
}

// clampTo lowers max_tokens so the worst case fits the headroom, in reserve mode with
// clamp_max_tokens on: it returns the new max_tokens and the cost to reserve, or false
// when the call fits as it is or not even MinClampTokens fit. The reserved cost assumes
// one choice, which over-reserves when n > 1: never less than the clamped worst case.
func (l *Limiter) clampTo(ch llmcall.Charge, room float64) (int, float64, bool) {
	if !l.clamp || l.postHoc || ch.Free || ch.OutputCostPerToken <= 0 || ch.MaxTokens <= 0 || room >= ch.Cost {
		return 0, 0, false
	}
	t := int(math.Floor(float64(ch.MaxTokens) - (ch.Cost-room)/ch.OutputCostPerToken))
	if t < MinClampTokens {
		return 0, 0, false
	}
	return t, ch.Cost - float64(ch.MaxTokens-t)*ch.OutputCostPerToken, true
}

// clampable reports whether a refusal is about money that fewer tokens would fit.
func clampable(r *store.Refusal) bool {
	return r.Reason == store.ReasonBudget || r.Reason == store.ReasonWindow || r.Reason == store.ReasonModelBudget
}

// softBudgets logs a structured warning, in CloudWatch embedded metric format so it also
// counts as the SoftBudgetExceeded metric, for each record whose spend with this call
// reaches its soft_budget. It never refuses the call.
func (l *Limiter) softBudgets(ctx context.Context, p *auth.Principal, c *store.Customer, ch llmcall.Charge, cost float64) {
	alert := func(scope, id string, b store.Budget) {
		if b.SoftBudget == nil || b.Spend+cost < *b.SoftBudget {
			return
		}
		l.softAlerts.Add(1)
		l.log.LogAttrs(ctx, slog.LevelWarn, "soft budget exceeded",
			slog.String("scope", scope), slog.String("id", id), slog.String("request_id", ch.RequestID),
			slog.Float64("spend", b.Spend), slog.Float64("soft_budget", *b.SoftBudget),
			slog.Int("SoftBudgetExceeded", 1),
			slog.Any("_aws", map[string]any{
				"Timestamp": l.now().UnixMilli(),
				"CloudWatchMetrics": []any{map[string]any{
					"Namespace":  "llmgate",
					"Dimensions": [][]string{{"scope"}},
					"Metrics":    []any{map[string]string{"Name": "SoftBudgetExceeded", "Unit": "Count"}},
				}},
			}))
	}
	if k := p.Key; k != nil {
		alert(store.ScopeKey, k.Token, k.Budget)
	}
	if u := p.User; u != nil {
		alert(store.ScopeUser, u.UserID, u.Budget)
	}
	if t := p.Team; t != nil {
		alert(store.ScopeTeam, t.TeamID, t.Budget)
	}
	if c != nil {
		alert(store.ScopeEndUser, c.UserID, c.Budget)
	}
}

// header is what the response tells about the key at admission, with LiteLLM's names.
func (l *Limiter) header(p *auth.Principal) http.Header {
	h := http.Header{}
	k := p.Key
	if k == nil {
		return h
	}
	h[hdrKeySpend] = []string{pyFloat(k.Spend)}
	if k.MaxBudget != nil {
		h[hdrKeyMaxBudget] = []string{pyFloat(*k.MaxBudget)}
	}
	if k.RPMLimit != nil {
		v := strconv.FormatInt(*k.RPMLimit, 10)
		h[hdrKeyRPM], h[hdrLimitRequests], h[hdrKeyLimitRequests] = []string{v}, []string{v}, []string{v}
	}
	if k.TPMLimit != nil {
		v := strconv.FormatInt(*k.TPMLimit, 10)
		h[hdrKeyTPM], h[hdrLimitTokens], h[hdrKeyLimitTokens] = []string{v}, []string{v}, []string{v}
	}
	if k.MaxParallelRequests != nil {
		h[hdrKeyLimitParallel] = []string{strconv.FormatInt(*k.MaxParallelRequests, 10)}
	}
	return h
}

// The headers header sets, in canonical form once rather than by Header.Set on every call.
var (
	hdrKeySpend         = http.CanonicalHeaderKey("x-litellm-key-spend")
	hdrKeyMaxBudget     = http.CanonicalHeaderKey("x-litellm-key-max-budget")
	hdrKeyRPM           = http.CanonicalHeaderKey("x-litellm-key-rpm-limit")
	hdrLimitRequests    = http.CanonicalHeaderKey("x-ratelimit-limit-requests")
	hdrKeyLimitRequests = http.CanonicalHeaderKey("x-ratelimit-api_key-limit-requests")
	hdrKeyTPM           = http.CanonicalHeaderKey("x-litellm-key-tpm-limit")
	hdrLimitTokens      = http.CanonicalHeaderKey("x-ratelimit-limit-tokens")
	hdrKeyLimitTokens   = http.CanonicalHeaderKey("x-ratelimit-api_key-limit-tokens")
	hdrKeyLimitParallel = http.CanonicalHeaderKey("x-ratelimit-api_key-limit-max_parallel_requests")
)

// reservation is an admitted call.
type reservation struct {
	l         *Limiter
	res       *store.Reservation
	p         *auth.Principal
	ch        llmcall.Charge
	log       store.SpendLog
	maxTokens int
	header    http.Header
}

func (r *reservation) Header() http.Header { return r.header }

func (r *reservation) MaxTokens() int { return r.maxTokens }

// Settle replaces the reservation with what the call cost and writes its spend log, in one
// round trip (retried within the settle time budget). When it finally fails it logs an
// error: the reservation then expires and the rotator settles it at its estimated cost.
func (r *reservation) Settle(ctx context.Context, o llmcall.Outcome) error {
	l := r.l
	ctx, cancel := context.WithTimeout(ctx, l.settleTimeout)
	defer cancel()
	st := store.Settlement{Cost: o.Cost, Tokens: int64(o.Usage.TotalTokens)}
	if r.ch.Free {
		st.Cost = 0
	}
	if !l.disableLogs {
		log := r.log
		if o.Model != "" {
			log.ModelGroup, log.Model = o.Model, o.Model
		}
		log.ResponseID = o.ResponseID
		log.ModelID, log.CustomLLMProvider, log.APIBase = o.Deployment, o.Provider, o.APIBase
		log.PromptTokens, log.CompletionTokens, log.TotalTokens = o.Usage.PromptTokens, o.Usage.CompletionTokens, o.Usage.TotalTokens
		log.StartTime, log.EndTime = o.Start.UTC(), o.End.UTC()
		if o.Start.IsZero() {
			log.StartTime = r.log.StartTime
		}
		log.RequestDurationMS = log.EndTime.Sub(log.StartTime).Milliseconds()
		log.Status = store.StatusSuccess
		if !o.Success {
			log.Status = store.StatusFailure
			log.Metadata = map[string]any{"error_information": map[string]any{
				"error_code": strconv.Itoa(o.Status), "error_class": o.ErrorType,
			}}
		}
		st.Log = &log
	}
	err := l.st.Settle(ctx, r.res, st)
	switch {
	case errors.Is(err, store.ErrSettled):
		l.log.LogAttrs(ctx, slog.LevelWarn, "settle: the rotator settled this reservation first, at its estimated cost",
			slog.String("request_id", r.res.RequestID()))
		return nil
	case err != nil:
		l.log.LogAttrs(ctx, slog.LevelError, "settle failed: the reservation stays until it expires and the rotator settles it at its estimated cost",
			slog.String("request_id", r.res.RequestID()), slog.Time("expires", r.res.ExpireAt()),
			slog.Float64("cost", o.Cost), slog.String("error", err.Error()))
		return err
	}
	return nil
}
