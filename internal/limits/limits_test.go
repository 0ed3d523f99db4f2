package limits_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/llmgate/llmgate/internal/auth"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/limits"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// calls counts DynamoDB round trips (HTTP attempts) per operation.
type calls struct {
	mu sync.Mutex
	n  map[string]int
}

// option is an SDK middleware after the retry step, so it sees every attempt.
func (c *calls) option(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Finalize.Add(middleware.FinalizeMiddlewareFunc("countCalls",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				c.mu.Lock()
				c.n[awsmiddleware.GetOperationName(ctx)]++
				c.mu.Unlock()
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}

func (c *calls) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// env is a limiter on a fresh table, with a clock pinned in the middle of a minute.
type env struct {
	st    *store.Store
	lim   *limits.Limiter
	calls *calls
	now   time.Time
	cfg   *config.Config
}

func newEnv(t *testing.T, mod func(*config.Config)) *env {
	t.Helper()
	e := &env{calls: &calls{n: map[string]int{}}, now: time.Now().UTC().Truncate(time.Minute).Add(30 * time.Second)}
	e.st = store.NewWithClient(dynamotest.NewTable(t, e.calls.option))
	e.cfg = &config.Config{}
	e.cfg.Settings.BudgetEnforcement = limits.ModeReserve
	e.cfg.Settings.ReservationTTL = config.Duration(time.Minute)
	e.cfg.GeneralSettings.MasterKey = "sk-master"
	if mod != nil {
		mod(e.cfg)
	}
	e.lim = e.limiter()
	e.calls.take()
	return e
}

// testTimeout bounds Reserve and Settle in tests: generous, because these tests prove
// exactness under contention on a shared DynamoDB Local, not latency.
const testTimeout = time.Minute

func (e *env) limiter() *limits.Limiter {
	return limits.New(e.st, e.cfg, limits.WithClock(func() time.Time { return e.now }), limits.WithTimeouts(testTimeout, testTimeout))
}

func ptr[T any](v T) *T { return &v }

// caller creates a key of user u1 in team t1 (with a membership) and returns its principal
// as the authenticator would: the records read back from the table.
func (e *env) caller(t *testing.T, mod func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership)) *auth.Principal {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	k := &store.Key{Token: "hash-" + t.Name(), KeyName: "sk-...abcd", UserID: ptr("u1"), TeamID: ptr("t1"),
		Models: []string{}, Aliases: map[string]string{}, Metadata: map[string]any{}}
	u := &store.User{UserID: "u1", UserRole: auth.RoleInternalUser, Models: []string{}, Teams: []string{"t1"}, Metadata: map[string]any{}}
	tm := &store.Team{TeamID: "t1", Admins: []string{}, Members: []string{}, MembersWithRoles: []store.Member{}, Models: []string{}, Metadata: map[string]any{}}
	m := &store.Membership{TeamID: "t1", UserID: "u1"}
	k.CreatedAt, u.CreatedAt, tm.CreatedAt = now, now, now
	if mod != nil {
		mod(k, u, tm, m)
	}
	tx := e.st.Tx()
	for _, err := range []error{tx.PutKey(k), tx.PutUser(u), tx.PutTeam(tm), tx.PutMembership(m)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatalf("create records: %v", err)
	}
	k, err := e.st.GetKey(ctx, k.Token)
	if err != nil {
		t.Fatal(err)
	}
	u2, t2, m2, err := e.st.BatchRecords(ctx, "u1", "t1")
	if err != nil {
		t.Fatal(err)
	}
	p := &auth.Principal{Role: auth.RoleInternalUser, UserID: "u1", Token: k.Token, Key: k, User: u2, Team: t2}
	if m2 != nil && m2.MaxBudget != nil {
		p.Membership = m2
	}
	e.calls.take()
	return p
}

var nextID atomic.Int64

func charge(cost float64) llmcall.Charge {
	return llmcall.Charge{
		RequestID: fmt.Sprintf("req-%d", nextID.Add(1)), Route: "/chat/completions", Model: "gpt-4o",
		Cost: cost, PromptTokens: 100, MaxTokens: 1000, Tokens: 1100, OutputCostPerToken: cost / 2000,
		Tags: []string{"team-a"},
	}
}

func outcome(cost float64, tokens int) llmcall.Outcome {
	now := time.Now()
	return llmcall.Outcome{
		Model: "gpt-4o", Deployment: "dep-1", Provider: "openai", Cost: cost, Success: true, Status: 200,
		Usage: openai.Usage{PromptTokens: tokens / 2, CompletionTokens: tokens - tokens/2, TotalTokens: tokens},
		Start: now.Add(-time.Second), End: now,
	}
}

// sumLogs adds up the spend logs of a filter.
func (e *env) sumLogs(t *testing.T, f store.SpendLogFilter) float64 {
	t.Helper()
	logs, err := e.st.SpendLogs(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, l := range logs {
		sum += l.Spend
	}
	return sum
}

// ledgerTolerance: spend is stored as exact decimals (1e-12 USD steps); the spend logs are
// summed here in float64, so they are compared within 1e-9 USD.
const ledgerTolerance = 1e-9

func TestReserve_ConcurrentCallsNeverPassTheBindingBudget(t *testing.T) {
	t.Parallel()
	const n, cost = 7, 0.13
	budget := n * cost
	// 200 concurrent calls on the key's budget; the other budgets, which bind through the
	// same conditions, with 40 to keep the run short (DynamoDB Local runs transactions one
	// at a time).
	tests := []struct {
		name  string
		calls int
		mod   func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership)
	}{
		{"key max_budget", 200, func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
			k.MaxBudget, u.MaxBudget, tm.MaxBudget = ptr(budget), ptr(10.0), ptr(10.0)
		}},
		{"key budget window", 40, func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
			k.MaxBudget = ptr(10.0)
			k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "30d", MaxBudget: 10}, {BudgetDuration: "1h", MaxBudget: budget}}
		}},
		{"user max_budget", 40, func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
			k.MaxBudget, u.MaxBudget = ptr(10.0), ptr(budget)
		}},
		{"team max_budget", 40, func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
			tm.MaxBudget = ptr(budget)
		}},
		{"team budget window", 40, func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
			tm.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: budget}}
		}},
		{"team member budget", 40, func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
			m.MaxBudget = ptr(budget)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, nil)
			p := e.caller(t, tt.mod)
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				admitted []llmcall.Reservation
				refused  int
			)
			for range tt.calls {
				wg.Go(func() {
					res, err := e.lim.Reserve(ctx, p, charge(cost))
					mu.Lock()
					defer mu.Unlock()
					var oe *openai.Error
					switch {
					case err == nil:
						admitted = append(admitted, res)
					case errors.As(err, &oe) && oe.Status == http.StatusBadRequest && oe.Type == openai.TypeBudgetExceeded:
						refused++
					default:
						t.Errorf("Reserve: %v", err)
					}
				})
			}
			wg.Wait()
			if len(admitted) != n || refused != tt.calls-n {
				t.Fatalf("admitted %d, refused %d; want exactly %d admitted and %d refused", len(admitted), refused, n, tt.calls-n)
			}
			for i, res := range admitted {
				wg.Go(func() {
					if err := res.Settle(ctx, outcome(cost*float64(i+1)/float64(n), 10)); err != nil {
						t.Errorf("Settle: %v", err)
					}
				})
			}
			wg.Wait()

			k, _ := e.st.GetKey(ctx, p.Key.Token)
			u, tm, m, err := e.st.BatchRecords(ctx, "u1", "t1")
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				what       string
				spend, max float64
				ledger     store.SpendLogFilter
			}{
				{"key", k.Spend, maxOf(k.MaxBudget, k.BudgetLimits), store.SpendLogFilter{APIKey: p.Key.Token}},
				{"user", u.Spend, maxOf(u.MaxBudget, nil), store.SpendLogFilter{UserID: "u1"}},
				{"team", tm.Spend, maxOf(tm.MaxBudget, tm.BudgetLimits), store.SpendLogFilter{TeamID: "t1"}},
				{"member", m.Spend, maxOf(m.MaxBudget, nil), store.SpendLogFilter{TeamID: "t1"}},
			} {
				if c.what == "member" && p.Membership == nil {
					continue // memberships without a budget are not charged (auth loads them only with one)
				}
				if c.spend > c.max+ledgerTolerance {
					t.Errorf("%s spend %v is over its budget %v", c.what, c.spend, c.max)
				}
				if sum := e.sumLogs(t, c.ledger); math.Abs(sum-c.spend) > ledgerTolerance {
					t.Errorf("%s: spend logs add up to %v, spend is %v", c.what, sum, c.spend)
				}
			}
			if want := cost * float64(n+1) / 2; math.Abs(k.Spend-want) > ledgerTolerance {
				t.Errorf("key spend %v, want the actual costs %v", k.Spend, want)
			}
		})
	}
}

// maxOf is the tightest of a record's max_budget and windows (+Inf if none).
func maxOf(max *float64, windows []store.BudgetWindow) float64 {
	m := math.Inf(1)
	if max != nil {
		m = *max
	}
	for _, w := range windows {
		m = min(m, w.MaxBudget)
	}
	return m
}

// admitConcurrently runs calls concurrent reservations and returns the admitted ones and the
// errors of the others.
func admitConcurrently(t *testing.T, e *env, p *auth.Principal, calls int, ch func() llmcall.Charge) ([]llmcall.Reservation, []*openai.Error) {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted []llmcall.Reservation
		errs     []*openai.Error
	)
	for range calls {
		wg.Go(func() {
			res, err := e.lim.Reserve(context.Background(), p, ch())
			mu.Lock()
			defer mu.Unlock()
			var oe *openai.Error
			switch {
			case err == nil:
				admitted = append(admitted, res)
			case errors.As(err, &oe):
				errs = append(errs, oe)
			default:
				t.Errorf("Reserve: %v", err)
			}
		})
	}
	wg.Wait()
	return admitted, errs
}

func TestReserve_RateLimitsAreExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mod     func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership)
		calls   int
		want    int
		message string // of every refusal, with %s for the key hash where needed
	}{
		{"key rpm_limit", func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) { k.RPMLimit = ptr(int64(10)) }, 50, 10,
			"Rate limit exceeded for api_key: %s. Limit type: requests. Current limit: 10, Remaining: 0. Limit resets at: %s"},
		{"team rpm_limit", func(_ *store.Key, _ *store.User, tm *store.Team, _ *store.Membership) { tm.RPMLimit = ptr(int64(4)) }, 12, 4,
			"Rate limit exceeded for team: t1. Limit type: requests. Current limit: 4, Remaining: 0. Limit resets at: %[2]s"},
		{"key model_rpm_limit", func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
			k.ModelRPMLimit = map[string]int64{"gpt-4o": 3, "other": 1}
		}, 10, 3, "Rate limit exceeded for model_per_key: %s:gpt-4o. Limit type: requests. Current limit: 3, Remaining: 0. Limit resets at: %s"},
		{"key tpm_limit: worst cases of 1,100 tokens", func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
			k.TPMLimit = ptr(int64(3500))
		}, 20, 3, "Rate limit exceeded for api_key: %s. Limit type: tokens. Current limit: 3500, Remaining: 200. Limit resets at: %s"},
		{"team tpm_limit under one worst case: one call at a time", func(_ *store.Key, _ *store.User, tm *store.Team, _ *store.Membership) {
			tm.TPMLimit = ptr(int64(1000))
		}, 10, 1, "Rate limit exceeded for team: t1. Limit type: tokens. Current limit: 1000, Remaining: 0. Limit resets at: %[2]s"},
		{"max_parallel_requests", func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
			k.MaxParallelRequests = ptr(int64(3))
		}, 12, 3,
			"Rate limit exceeded for api_key: %s. Limit type: max_parallel_requests. Current limit: 3, Remaining: 0. Limit resets at: %s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			p := e.caller(t, tt.mod)
			admitted, errs := admitConcurrently(t, e, p, tt.calls, func() llmcall.Charge { return charge(0.001) })
			if len(admitted) != tt.want || len(errs) != tt.calls-tt.want {
				t.Fatalf("admitted %d, refused %d; want %d and %d", len(admitted), len(errs), tt.want, tt.calls-tt.want)
			}
			reset := e.now.Truncate(time.Minute).Add(time.Minute)
			retryAfter := "30"
			if tt.name == "max_parallel_requests" {
				reset, retryAfter = e.now.Add(time.Second), "1"
			}
			resetAt := reset.Format("2006-01-02 15:04:05 UTC")
			want := fmt.Sprintf(tt.message, p.Key.Token, resetAt)
			for _, oe := range errs {
				if oe.Status != http.StatusTooManyRequests || oe.Type != limits.TypeThrottling || oe.Message != want {
					t.Fatalf("refusal = %d %s %q\nwant 429 %s %q", oe.Status, oe.Type, oe.Message, limits.TypeThrottling, want)
				}
				if got := oe.Header.Get("retry-after"); got != retryAfter {
					t.Errorf("retry-after = %q, want %q", got, retryAfter)
				}
				if got := oe.Header.Get("reset_at"); got != resetAt {
					t.Errorf("reset_at = %q, want %q", got, resetAt)
				}
			}
		})
	}
}

func TestReserve_ParallelLeaseIsReleasedBySettle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	p := e.caller(t, func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
		k.MaxParallelRequests = ptr(int64(1))
	})
	first, err := e.lim.Reserve(ctx, p, charge(0.01))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.lim.Reserve(ctx, p, charge(0.01)); err == nil {
		t.Fatal("a second parallel call was admitted with max_parallel_requests 1")
	}
	if err := first.Settle(ctx, outcome(0.01, 5)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lim.Reserve(ctx, p, charge(0.01)); err != nil {
		t.Errorf("after the first call settled: %v", err)
	}
}

// TestReserve_TPMHoldsTheWorstCaseUntilSettled: a call whose worst case fits the tpm limit
// holds it until it settles; settling counts the tokens used instead.
func TestReserve_TPMHoldsTheWorstCaseUntilSettled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	p := e.caller(t, func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) { k.TPMLimit = ptr(int64(3500)) })
	reserve := func() (llmcall.Reservation, error) { return e.lim.Reserve(ctx, p, charge(0.001)) }
	var held []llmcall.Reservation
	for range 3 { // 3 × 1,100 held
		res, err := reserve()
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, res)
	}
	if _, err := reserve(); err == nil {
		t.Fatal("a fourth call was admitted with 3,300 of 3,500 tokens held")
	}
	if err := held[0].Settle(ctx, outcome(0.001, 30)); err != nil { // 2,230 counted
		t.Fatal(err)
	}
	if _, err := reserve(); err != nil { // 3,330
		t.Fatalf("after a call settled with 30 tokens: %v", err)
	}
	failed := outcome(0, 0)
	failed.Success, failed.Status = false, http.StatusBadGateway
	if err := held[1].Settle(ctx, failed); err != nil { // 2,230
		t.Fatal(err)
	}
	if _, err := reserve(); err != nil {
		t.Fatalf("after a failed call released its tokens: %v", err)
	}
	var oe *openai.Error
	if _, err := reserve(); !errors.As(err, &oe) || !strings.Contains(oe.Message, "Limit type: tokens. Current limit: 3500, Remaining: 170.") {
		t.Fatalf("call over the limit = %v, want a tokens refusal with 170 remaining", err)
	}
}

func TestReserve_TPMLimitCountsSettledTokensPerMinute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	p := e.caller(t, func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) { k.TPMLimit = ptr(int64(100)) })
	for i := range 4 { // 0, 30, 60, 90 tokens used so far: under 100
		res, err := e.lim.Reserve(ctx, p, charge(0.001))
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if err := res.Settle(ctx, outcome(0.001, 30)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.lim.Reserve(ctx, p, charge(0.001))
	var oe *openai.Error
	want := fmt.Sprintf("Rate limit exceeded for api_key: %s. Limit type: tokens. Current limit: 100, Remaining: 0. Limit resets at: %s",
		p.Key.Token, e.now.Truncate(time.Minute).Add(time.Minute).Format("2006-01-02 15:04:05 UTC"))
	if !errors.As(err, &oe) || oe.Message != want || oe.Header.Get("rate_limit_type") != "tokens" {
		t.Fatalf("fifth call = %v, want %q", err, want)
	}
	e.now = e.now.Add(time.Minute)
	if _, err := e.lim.Reserve(ctx, p, charge(0.001)); err != nil {
		t.Errorf("next minute: %v", err)
	}
}

func TestReserve_WarmPathIsOneRoundTripEachWay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	p := e.caller(t, func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership) {
		k.MaxBudget, k.RPMLimit, k.TPMLimit, k.MaxParallelRequests = ptr(5.0), ptr(int64(100)), ptr(int64(100000)), ptr(int64(10))
		k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "1d", MaxBudget: 2}}
		u.MaxBudget, tm.MaxBudget, m.MaxBudget = ptr(5.0), ptr(5.0), ptr(5.0)
		tm.RPMLimit = ptr(int64(100))
	})
	e.cfg.LiteLLMSettings.MaxBudget = ptr(100.0)
	e.lim = e.limiter()
	// The first call creates the proxy budget item; every later one is the warm path.
	res, err := e.lim.Reserve(ctx, p, charge(0.01))
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Settle(ctx, outcome(0.01, 10)); err != nil {
		t.Fatal(err)
	}
	e.calls.take()
	for i := range 3 {
		res, err := e.lim.Reserve(ctx, p, charge(0.01))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.calls.take(); len(got) != 1 || got["TransactWriteItems"] != 1 {
			t.Errorf("call %d: Reserve made %v, want one TransactWriteItems", i, got)
		}
		if err := res.Settle(ctx, outcome(0.005, 10)); err != nil {
			t.Fatal(err)
		}
		if got := e.calls.take(); len(got) != 1 || got["TransactWriteItems"] != 1 {
			t.Errorf("call %d: Settle made %v, want one TransactWriteItems", i, got)
		}
	}
}

func TestReserve_RefusalsUseLiteLLMsMessages(t *testing.T) {
	t.Parallel()
	type mod = func(k *store.Key, u *store.User, tm *store.Team, m *store.Membership)
	tests := []struct {
		name    string
		mod     mod
		status  int
		typ     string
		message string // %s is the key hash
	}{
		{"key budget", func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
			k.MaxBudget, k.Spend = ptr(1.0), 0.995
		},
			400, "budget_exceeded", "Budget has been exceeded! Current cost: 0.995, Max budget: 1.0. This call could cost up to $0.01 (prompt + max_tokens 1000), more than the $0.005 left; lower max_tokens to fit."},
		{"user budget", func(_ *store.Key, u *store.User, _ *store.Team, _ *store.Membership) {
			u.MaxBudget, u.Spend = ptr(2.0), 2
		},
			400, "budget_exceeded", "ExceededBudget: User=u1 over budget. Spend=2.0, Budget=2.0"},
		{"team budget", func(_ *store.Key, _ *store.User, tm *store.Team, _ *store.Membership) {
			tm.MaxBudget, tm.Spend = ptr(3.0), 2.995
		},
			400, "budget_exceeded", "Budget has been exceeded! Team=t1 Current cost: 2.995, Max budget: 3.0. This call could cost up to $0.01 (prompt + max_tokens 1000), more than the $0.005 left; lower max_tokens to fit."},
		{"team member budget", func(_ *store.Key, _ *store.User, _ *store.Team, m *store.Membership) {
			m.MaxBudget, m.Spend = ptr(0.5), 0.5
		},
			400, "budget_exceeded", "Budget has been exceeded! User=u1 in Team=t1 Current cost: 0.5, Max budget: 0.5"},
		{"key window", func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
			k.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "24h", MaxBudget: 10, Spend: 9.995}}
		}, 400, "budget_exceeded", "ExceededBudget: Key over 24h budget. Spend=$9.9950, Limit=$10.00. This call could cost up to $0.01 (prompt + max_tokens 1000), more than the $0.005 left; lower max_tokens to fit."},
		{"team window", func(_ *store.Key, _ *store.User, tm *store.Team, _ *store.Membership) {
			tm.BudgetLimits = []store.BudgetWindow{{BudgetDuration: "30d", MaxBudget: 100, Spend: 100}}
		}, 400, "budget_exceeded", "ExceededBudget: Team=t1 over 30d budget. Spend=$100.0000, Limit=$100.00"},
		{"key model budget", func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
			k.KeyAlias = ptr("ci")
			k.ModelMaxBudget = map[string]store.ModelBudget{"gpt-4o": {BudgetLimit: 0.5, TimePeriod: "30d", Spend: 0.5}}
		}, 400, "budget_exceeded", "LiteLLM Virtual Key: %s, key_alias: ci, exceeded budget for model=gpt-4o"},
		{"user model budget", func(_ *store.Key, u *store.User, _ *store.Team, _ *store.Membership) {
			u.ModelMaxBudget = map[string]store.ModelBudget{"gpt-4o": {BudgetLimit: 0.5, Spend: 0.5}}
		}, 400, "budget_exceeded", "LiteLLM User: u1, exceeded budget for model=gpt-4o"},
		{"key blocked since it was cached", func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) { k.Blocked = true },
			401, "auth_error", "Authentication Error, Key is blocked. Update via `/key/unblock` if you're an admin."},
		{"team blocked since it was cached", func(_ *store.Key, _ *store.User, tm *store.Team, _ *store.Membership) { tm.Blocked = true },
			401, "auth_error", "Authentication Error, Team=t1 is blocked. Update via `/team/unblock` if you're an admin."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, nil)
			p := e.caller(t, tt.mod)
			_, err := e.lim.Reserve(context.Background(), p, charge(0.01))
			var oe *openai.Error
			if !errors.As(err, &oe) {
				t.Fatalf("Reserve = %v, want an OpenAI error", err)
			}
			want := tt.message
			if tt.name == "key model budget" {
				want = fmt.Sprintf(want, p.Key.Token)
			}
			if oe.Status != tt.status || oe.Type != tt.typ || oe.Message != want {
				t.Errorf("got %d %s %q\nwant %d %s %q", oe.Status, oe.Type, oe.Message, tt.status, tt.typ, want)
			}
		})
	}
}

func TestReserve_ProxyBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("max_budget 0 refuses every call", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *config.Config) { c.LiteLLMSettings.MaxBudget = ptr(0.0) })
		ch := charge(0.01)
		ch.Free = true
		_, err := e.lim.Reserve(ctx, &auth.Principal{IsMaster: true}, ch)
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.Status != 400 || oe.Type != openai.TypeBudgetExceeded {
			t.Errorf("Reserve under the kill switch = %v, want 400 budget_exceeded", err)
		}
		if got := e.calls.take(); len(got) != 0 {
			t.Errorf("the kill switch called DynamoDB: %v", got)
		}
	})
	t.Run("master key calls count against it and are logged", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(c *config.Config) { c.LiteLLMSettings.MaxBudget = ptr(0.02) })
		master := &auth.Principal{IsMaster: true, UserID: auth.ProxyAdminUserID}
		for range 2 {
			res, err := e.lim.Reserve(ctx, master, charge(0.01))
			if err != nil {
				t.Fatal(err)
			}
			if err := res.Settle(ctx, outcome(0.01, 10)); err != nil {
				t.Fatal(err)
			}
		}
		_, err := e.lim.Reserve(ctx, master, charge(0.01))
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.Message != "Budget has been exceeded! Current cost: 0.02, Max budget: 0.02" {
			t.Errorf("third master call = %v, want the proxy budget refusal", err)
		}
		if sum := e.sumLogs(t, store.SpendLogFilter{APIKey: auth.Hash("sk-master")}); math.Abs(sum-0.02) > ledgerTolerance {
			t.Errorf("master key spend logs add up to %v, want 0.02", sum)
		}
	})
}

func TestReserve_PostHocChecksSpendBeforeAndChargesAfter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, func(c *config.Config) { c.Settings.BudgetEnforcement = limits.ModePostHoc })
	p := e.caller(t, func(k *store.Key, _ *store.User, tm *store.Team, _ *store.Membership) {
		k.MaxBudget = ptr(1.0)
		tm.MaxBudget, tm.Spend = ptr(5.0), 5 // LiteLLM refuses a team only once spend > budget
	})
	res, err := e.lim.Reserve(ctx, p, charge(3)) // the worst case is over the budget: post_hoc admits
	if err != nil {
		t.Fatalf("post_hoc refused a call while spend < budget: %v", err)
	}
	if err := res.Settle(ctx, outcome(1.2, 10)); err != nil {
		t.Fatal(err)
	}
	_, err = e.lim.Reserve(ctx, p, charge(0.01))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.Message != "Budget has been exceeded! Current cost: 1.2, Max budget: 1.0" {
		t.Errorf("after spend passed the budget: %v, want LiteLLM's key budget error", err)
	}
}

func TestReserve_ClampsMaxTokensToTheBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, func(c *config.Config) { c.Settings.ClampMaxTokens = true })
	p := e.caller(t, func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) { k.MaxBudget = ptr(1.0) })
	ch := charge(2) // prompt 0.5 + 1000 tokens at 0.0015
	ch.OutputCostPerToken = 0.0015
	res, err := e.lim.Reserve(ctx, p, ch)
	if err != nil {
		t.Fatalf("clamp mode refused: %v", err)
	}
	if got := res.MaxTokens(); got != 333 {
		t.Errorf("MaxTokens = %d, want 333 (what 0.5 USD of output buys)", got)
	}
	k, _ := e.st.GetKey(ctx, p.Key.Token)
	if math.Abs(*k.Remaining-0.0005) > ledgerTolerance {
		t.Errorf("remaining after the clamped reservation = %v, want 0.0005", *k.Remaining)
	}
	ch.RequestID += "-again"
	_, err = e.lim.Reserve(ctx, p, ch) // not even MinClampTokens fit now
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.Type != openai.TypeBudgetExceeded {
		t.Errorf("second call = %v, want a budget refusal", err)
	}
}

func TestReserve_ZeroPricedModelsSkipBudgets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	p := e.caller(t, func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) { k.MaxBudget = ptr(0.0) })
	ch := charge(0)
	ch.Free = true
	res, err := e.lim.Reserve(ctx, p, ch)
	if err != nil {
		t.Fatalf("a free model was refused on a spent key: %v", err)
	}
	if err := res.Settle(ctx, outcome(0, 10)); err != nil {
		t.Fatal(err)
	}
	if l, err := e.st.GetSpendLog(ctx, ch.RequestID); err != nil || l.Spend != 0 || l.TotalTokens != 10 {
		t.Errorf("spend log = %+v, %v; want a zero-cost entry", l, err)
	}
}

func TestReserve_SoftBudgetWarnsWithoutRefusing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	p := e.caller(t, func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
		k.SoftBudget, k.Spend = ptr(0.5), 0.6
	})
	if _, err := e.lim.Reserve(context.Background(), p, charge(0.01)); err != nil {
		t.Fatalf("a soft budget refused a call: %v", err)
	}
	if got := e.lim.SoftBudgetAlerts(); got != 1 {
		t.Errorf("SoftBudgetAlerts = %d, want 1", got)
	}
}

func TestReserve_HeadersDescribeTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	p := e.caller(t, func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
		k.MaxBudget, k.Spend, k.RPMLimit, k.TPMLimit = ptr(10.0), 1.5, ptr(int64(60)), ptr(int64(5000))
	})
	res, err := e.lim.Reserve(context.Background(), p, charge(0.01))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"x-litellm-key-spend": "1.5", "x-litellm-key-max-budget": "10.0",
		"x-litellm-key-rpm-limit": "60", "x-litellm-key-tpm-limit": "5000",
		"x-ratelimit-limit-requests": "60", "x-ratelimit-api_key-limit-tokens": "5000",
	} {
		if got := res.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestReserve_FailsClosedWhenDynamoDBIsUnreachable(t *testing.T) {
	t.Parallel()
	st, err := store.New(context.Background(), store.Options{Table: "t", Region: "us-east-1", Endpoint: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	lim := limits.New(st, &config.Config{}, limits.WithTimeouts(300*time.Millisecond, time.Second))
	p := &auth.Principal{Token: "h", Key: &store.Key{Token: "h"}}
	start := time.Now()
	_, err = lim.Reserve(context.Background(), p, charge(0.01))
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.Status != http.StatusServiceUnavailable {
		t.Fatalf("Reserve with DynamoDB down = %v, want a 503", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Reserve took %v to fail, want about its 300ms budget", d)
	}
}

// loseReservationAnswers is an SDK middleware that loses the answer of every reservation
// (a write that puts a RES# item or holds a new r#<request id> entry on a key record): it
// sends the write when
// send is true (it commits), then waits until the call's context ends and returns its error,
// as a timeout after the transaction went out does.
func loseReservationAnswers(send bool) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("loseReservationAnswers",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if !reserves(in.Parameters) {
						return next.HandleInitialize(ctx, in)
					}
					if send {
						if out, md, err := next.HandleInitialize(ctx, in); err != nil {
							return out, md, err
						}
					}
					<-ctx.Done()
					return middleware.InitializeOutput{}, middleware.Metadata{}, ctx.Err()
				}), middleware.After)
		})
	}
}

func reserves(params any) bool {
	switch in := params.(type) {
	case *dynamodb.UpdateItemInput:
		return holdsNew(in.ExpressionAttributeNames, aws.ToString(in.ConditionExpression))
	case *dynamodb.TransactWriteItemsInput:
		for _, it := range in.TransactItems {
			if it.Update != nil && holdsNew(it.Update.ExpressionAttributeNames, aws.ToString(it.Update.ConditionExpression)) {
				return true
			}
			if it.Put == nil {
				continue
			}
			if pk, ok := it.Put.Item["pk"].(*types.AttributeValueMemberS); ok && strings.HasPrefix(pk.Value, store.PrefixReservation) {
				return true
			}
		}
	}
	return false
}

// holdsNew reports whether an update adds a reservation entry to a key record: it requires
// an r#<request id> attribute not to exist yet.
func holdsNew(names map[string]string, cond string) bool {
	for p, n := range names {
		if strings.HasPrefix(n, "r#") && strings.Contains(cond, "attribute_not_exists("+p+")") {
			return true
		}
	}
	return false
}

// TestReserve_ReleasesAReservationWhoseAnswerWasLost: Reserve times out after its
// transaction went out, so the call is refused with a 503; the reservation it may have
// written is released in the background: the lease and the reserved budget are back. One
// that was never written is left alone (its release changes nothing).
func TestReserve_ReleasesAReservationWhoseAnswerWasLost(t *testing.T) {
	t.Parallel()
	for _, written := range []bool{true, false} {
		t.Run(fmt.Sprintf("written=%t", written), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, nil)
			p := e.caller(t, func(k *store.Key, _ *store.User, _ *store.Team, _ *store.Membership) {
				k.MaxBudget, k.MaxParallelRequests = ptr(1.0), ptr(int64(1))
			})
			lossy := store.NewWithClient(dynamotest.Client(t, loseReservationAnswers(written)), e.st.Table())
			lim := limits.New(lossy, e.cfg, limits.WithClock(func() time.Time { return e.now }), limits.WithTimeouts(300*time.Millisecond, testTimeout))
			_, err := lim.Reserve(ctx, p, charge(0.01))
			var oe *openai.Error
			if !errors.As(err, &oe) || oe.Status != http.StatusServiceUnavailable {
				t.Fatalf("Reserve whose answer was lost = %v, want a 503", err)
			}
			var k *store.Key
			released := func() bool {
				k, err = e.st.GetKey(ctx, p.Key.Token)
				return err == nil && k.Limits.Inflight == 0 && k.Budget.Reserved == 0
			}
			for deadline := time.Now().Add(5 * time.Second); !released() && time.Now().Before(deadline); {
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.Limits.Inflight != 0 || k.Budget.Reserved != 0 || k.Budget.Spend != 0 || *k.Budget.Remaining != 1 {
				t.Errorf("after the refused call: inflight %d, reserved %g, spend %g, remaining %g; want 0, 0, 0 and 1",
					k.Limits.Inflight, k.Budget.Reserved, k.Budget.Spend, *k.Budget.Remaining)
			}
			if _, err := e.lim.Reserve(ctx, p, charge(0.01)); err != nil {
				t.Errorf("the next call (max_parallel_requests 1) = %v, want it admitted", err)
			}
		})
	}
}
