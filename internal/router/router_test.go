package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/mock"
)

// step is what the fake provider does on one call to a deployment.
type step struct {
	err     *provider.Error
	hang    bool // wait for the context to end
	midFail bool // stream: fail after the first chunk
}

var (
	err500 = &provider.Error{Status: 500, Type: openai.TypeServer, Message: "boom", Retryable: true}
	err429 = &provider.Error{Status: 429, Type: openai.TypeRateLimit, Message: "slow down", Retryable: true}
	err400 = &provider.Error{Status: 400, Type: openai.TypeInvalidRequest, Message: "bad"}
	errCtx = &provider.Error{Status: 400, Type: openai.TypeInvalidRequest, Message: "too long", ContextWindow: true}
)

// fakeProvider answers per deployment (told apart by api_base) as scripted; a deployment
// whose script is used up answers successfully.
type fakeProvider struct {
	mu     sync.Mutex
	script map[string][]step
	always map[string]step
	calls  []string
}

func (f *fakeProvider) next(c *provider.Call) step {
	f.mu.Lock()
	defer f.mu.Unlock()
	base := c.Params.APIBase
	f.calls = append(f.calls, base)
	if s, ok := f.always[base]; ok {
		return s
	}
	if q := f.script[base]; len(q) > 0 {
		f.script[base] = q[1:]
		return q[0]
	}
	return step{}
}

func (f *fakeProvider) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeProvider) Do(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	s := f.next(c)
	if s.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.err != nil {
		return nil, s.err
	}
	return &provider.Response{Body: []byte(c.Params.APIBase + ":" + c.Model), Usage: openai.Usage{PromptTokens: 1}}, nil
}

func (f *fakeProvider) Stream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	s := f.next(c)
	if s.err != nil {
		return nil, s.err
	}
	return &fakeStream{ctx: ctx, base: c.Params.APIBase, hang: s.hang, midFail: s.midFail}, nil
}

type fakeStream struct {
	ctx     context.Context
	base    string
	hang    bool
	midFail bool
	n       int
}

func (s *fakeStream) Next() ([]byte, error) {
	if s.hang {
		<-s.ctx.Done()
		return nil, s.ctx.Err()
	}
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	s.n++
	switch {
	case s.n == 2 && s.midFail:
		return nil, err500
	case s.n > 3:
		return nil, io.EOF
	}
	return []byte(s.base), nil
}
func (s *fakeStream) Usage() openai.Usage { return openai.Usage{} }
func (s *fakeStream) Close() error        { return nil }

type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// dep is a deployment of group on the fake provider, told apart by base.
func dep(group, base string) config.Deployment {
	return config.Deployment{ModelName: group, LiteLLMParams: config.LiteLLMParams{Model: "fake/" + group, APIBase: base}}
}

type fixture struct {
	r     *Router
	fake  *fakeProvider
	clock *fakeClock
}

func newFixture(t *testing.T, cfg *config.Config) *fixture {
	t.Helper()
	f := &fixture{fake: &fakeProvider{script: map[string][]step{}, always: map[string]step{}}, clock: &fakeClock{now: time.Unix(1_700_000_000, 0)}}
	rng := rand.New(rand.NewPCG(1, 2))
	r, err := New(Options{Config: cfg, Clock: f.clock, Rand: rng.Float64, Providers: ProviderFunc(func(prefix string) (provider.Provider, error) {
		switch prefix {
		case "fake":
			return f.fake, nil
		case "mock":
			return mock.New(), nil
		}
		return nil, errors.New("unknown provider")
	})})
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	return f
}

func (f *fixture) do(t *testing.T, model string) (*provider.Response, Result, error) {
	t.Helper()
	rt, ok := f.r.Resolve(model)
	if !ok {
		t.Fatalf("Resolve(%q): not found", model)
	}
	return f.r.Do(context.Background(), rt, provider.Call{Kind: provider.Chat, Request: &openai.Request{Model: model}})
}

func ptr[T any](v T) *T { return &v }

func TestResolve(t *testing.T) {
	cfg := &config.Config{
		ModelList: []config.Deployment{
			dep("gpt-4o", "a"),
			{ModelName: "openai/*", LiteLLMParams: config.LiteLLMParams{Model: "fake/*", APIBase: "w"}},
			{ModelName: "openai/gpt-4o-*", LiteLLMParams: config.LiteLLMParams{Model: "fake/special-*", APIBase: "s"}},
		},
		LiteLLMSettings: config.LiteLLMSettings{ModelGroupAlias: map[string]string{"gpt4": "gpt-4o"}},
		RouterSettings: config.RouterSettings{ModelGroupAlias: map[string]any{
			"secret": map[string]any{"model": "gpt-4o", "hidden": true},
			"loop":   "loop",
		}},
	}
	f := newFixture(t, cfg)
	tests := []struct {
		model        string
		wantOK       bool
		wantGroup    string
		wantUpstream string // the model the provider is called with
	}{
		{"gpt-4o", true, "gpt-4o", "gpt-4o"},
		{"gpt4", true, "gpt-4o", "gpt-4o"},
		{"secret", true, "gpt-4o", "gpt-4o"},
		{"openai/o3-mini", true, "openai/*", "o3-mini"},
		{"openai/gpt-4o-mini", true, "openai/gpt-4o-*", "special-mini"}, // the more specific pattern wins
		{"loop", false, "", ""},
		{"claude", false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			rt, ok := f.r.Resolve(tt.model)
			if ok != tt.wantOK {
				t.Fatalf("Resolve ok = %v, want %v", ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if rt.Group.Name != tt.wantGroup {
				t.Errorf("group = %q, want %q", rt.Group.Name, tt.wantGroup)
			}
			resp, _, err := f.r.Do(context.Background(), rt, provider.Call{Request: &openai.Request{}})
			if err != nil {
				t.Fatal(err)
			}
			if _, got, _ := strings.Cut(string(resp.Body), ":"); got != tt.wantUpstream {
				t.Errorf("upstream model = %q, want %q", got, tt.wantUpstream)
			}
		})
	}
	if got, want := f.r.Models(), []string{"gpt-4o", "openai/*", "openai/gpt-4o-*", "gpt4", "loop"}; !slices.Equal(got, want) {
		t.Errorf("Models() = %v, want %v (hidden aliases left out)", got, want)
	}
}

func TestSimpleShuffle_Distribution(t *testing.T) {
	tests := []struct {
		name   string
		params []config.LiteLLMParams
		want   []float64 // expected share per deployment
	}{
		{"weight", []config.LiteLLMParams{{Weight: 1}, {Weight: 3}}, []float64{0.25, 0.75}},
		{"rpm when no weight", []config.LiteLLMParams{{RPM: 100}, {RPM: 300}, {RPM: 600}}, []float64{0.1, 0.3, 0.6}},
		{"tpm when no weight or rpm", []config.LiteLLMParams{{TPM: 1000}, {TPM: 1000}}, []float64{0.5, 0.5}},
		{"weight beats rpm; no weight means never", []config.LiteLLMParams{{Weight: 1, RPM: 1}, {RPM: 1000}}, []float64{1, 0}},
		{"uniform without any", []config.LiteLLMParams{{}, {}, {}, {}}, []float64{0.25, 0.25, 0.25, 0.25}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{}
			bases := make([]string, len(tt.params))
			for i, p := range tt.params {
				bases[i] = string(rune('a' + i))
				d := dep("g", bases[i])
				p.Model, p.APIBase = d.LiteLLMParams.Model, bases[i]
				d.LiteLLMParams = p
				cfg.ModelList = append(cfg.ModelList, d)
			}
			f := newFixture(t, cfg)
			const n = 4000
			for range n {
				if _, _, err := f.do(t, "g"); err != nil {
					t.Fatal(err)
				}
			}
			calls := f.fake.Calls()
			for i, b := range bases {
				share := float64(strings.Count(strings.Join(calls, ""), b)) / n
				if d := share - tt.want[i]; d > 0.03 || d < -0.03 {
					t.Errorf("deployment %s got %.3f of the calls, want %.2f", b, share, tt.want[i])
				}
			}
		})
	}
}

func TestLeastBusy_PicksTheDeploymentWithFewestCallsInFlight(t *testing.T) {
	cfg := &config.Config{ModelList: []config.Deployment{dep("g", "a"), dep("g", "b"), dep("g", "c")},
		RouterSettings: config.RouterSettings{RoutingStrategy: LeastBusy}}
	f := newFixture(t, cfg)
	ds := f.r.Deployments()
	ds[0].inflight.Store(3)
	ds[1].inflight.Store(1)
	ds[2].inflight.Store(2)
	for range 20 {
		if _, res, _ := f.do(t, "g"); res.Deployment != ds[1] {
			t.Fatalf("served by %s, want b (fewest in flight)", res.Deployment.Config.LiteLLMParams.APIBase)
		}
	}
	if got := ds[1].InFlight(); got != 1 {
		t.Errorf("in-flight count after calls = %d, want it back at 1", got)
	}
}

func TestLatencyBased_PrefersTheFastestAfterTryingEach(t *testing.T) {
	cfg := &config.Config{ModelList: []config.Deployment{dep("g", "a"), dep("g", "b"), dep("g", "c")},
		RouterSettings: config.RouterSettings{RoutingStrategy: LatencyBased}}
	f := newFixture(t, cfg)
	ds := f.r.Deployments()
	ds[0].observeLatency(300 * time.Millisecond)
	ds[1].observeLatency(100 * time.Millisecond)
	if _, res, _ := f.do(t, "g"); res.Deployment != ds[2] {
		t.Fatalf("served by %s, want the unmeasured c first", res.Deployment.Config.LiteLLMParams.APIBase)
	}
	ds[2].observeLatency(200 * time.Millisecond) // the fake clock measured 0: set c's average
	ds[2].observeLatency(200 * time.Millisecond)
	ds[2].observeLatency(200 * time.Millisecond)
	ds[2].observeLatency(200 * time.Millisecond)
	for range 10 {
		if _, res, _ := f.do(t, "g"); res.Deployment != ds[1] {
			t.Fatalf("served by %s, want b (lowest average latency)", res.Deployment.Config.LiteLLMParams.APIBase)
		}
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		cfg        *config.Config
		script     map[string][]step
		always     map[string]step
		wantCalls  []string
		wantSlept  []time.Duration
		wantStatus int // 0: success
	}{
		{
			name:      "a failed deployment is retried on another at once",
			cfg:       &config.Config{ModelList: []config.Deployment{dep("g", "a"), dep("g", "b")}},
			always:    map[string]step{"a": {err: err500}},
			wantCalls: nil, // checked below: a then b, or b alone
		},
		{
			name:      "the only deployment is retried after a backoff",
			cfg:       &config.Config{ModelList: []config.Deployment{dep("g", "a")}},
			script:    map[string][]step{"a": {{err: err500}, {err: err500}}},
			wantCalls: []string{"a", "a", "a"},
			wantSlept: []time.Duration{500 * time.Millisecond, time.Second},
		},
		{
			name:      "retry-after is honoured",
			cfg:       &config.Config{ModelList: []config.Deployment{dep("g", "a")}},
			script:    map[string][]step{"a": {{err: &provider.Error{Status: 429, Retryable: true, RetryAfter: 3 * time.Second}}}},
			wantCalls: []string{"a", "a"},
			wantSlept: []time.Duration{3 * time.Second},
		},
		{
			name: "a retry-after past the timeout is not waited for",
			cfg: &config.Config{ModelList: []config.Deployment{dep("g", "a")},
				RouterSettings: config.RouterSettings{Timeout: 2}},
			script:     map[string][]step{"a": {{err: &provider.Error{Status: 429, Retryable: true, RetryAfter: 30 * time.Second}}}},
			wantCalls:  []string{"a"},
			wantStatus: 429,
		},
		{
			name:       "num_retries bounds the attempts",
			cfg:        &config.Config{ModelList: []config.Deployment{dep("g", "a")}, LiteLLMSettings: config.LiteLLMSettings{NumRetries: ptr(1)}},
			always:     map[string]step{"a": {err: err500}},
			wantCalls:  []string{"a", "a"},
			wantSlept:  []time.Duration{500 * time.Millisecond},
			wantStatus: 500,
		},
		{
			name: "router_settings.num_retries beats litellm_settings",
			cfg: &config.Config{ModelList: []config.Deployment{dep("g", "a")}, LiteLLMSettings: config.LiteLLMSettings{NumRetries: ptr(5)},
				RouterSettings: config.RouterSettings{NumRetries: ptr(0)}},
			always:     map[string]step{"a": {err: err500}},
			wantCalls:  []string{"a"},
			wantStatus: 500,
		},
		{
			name:       "a bad request is not retried",
			cfg:        &config.Config{ModelList: []config.Deployment{dep("g", "a"), dep("g", "b")}},
			always:     map[string]step{"a": {err: err400}, "b": {err: err400}},
			wantCalls:  []string{"?"},
			wantStatus: 400,
		},
		{
			name: "max_retries retries the same deployment",
			cfg: &config.Config{ModelList: []config.Deployment{{ModelName: "g", LiteLLMParams: config.LiteLLMParams{Model: "fake/g", APIBase: "a", MaxRetries: ptr(1)}}},
				RouterSettings: config.RouterSettings{NumRetries: ptr(0)}},
			script:    map[string][]step{"a": {{err: err500}}},
			wantCalls: []string{"a", "a"},
			wantSlept: []time.Duration{500 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			for k, v := range tt.script {
				f.fake.script[k] = v
			}
			for k, v := range tt.always {
				f.fake.always[k] = v
			}
			_, _, err := f.do(t, "g")
			status := 0
			var oe *openai.Error
			if errors.As(err, &oe) {
				status = oe.Status
			} else if err != nil {
				t.Fatalf("err = %v, want *openai.Error", err)
			}
			if status != tt.wantStatus {
				t.Errorf("status = %d (%v), want %d", status, err, tt.wantStatus)
			}
			calls := f.fake.Calls()
			switch {
			case tt.wantCalls == nil:
				if calls[len(calls)-1] != "b" || len(calls) > 2 {
					t.Errorf("calls = %v, want b to answer without more retries", calls)
				}
			case tt.wantCalls[0] == "?":
				if len(calls) != 1 {
					t.Errorf("calls = %v, want one", calls)
				}
			case !slices.Equal(calls, tt.wantCalls):
				t.Errorf("calls = %v, want %v", calls, tt.wantCalls)
			}
			if !slices.Equal(f.clock.slept, tt.wantSlept) {
				t.Errorf("slept %v, want %v", f.clock.slept, tt.wantSlept)
			}
		})
	}
}

func TestFallbacks(t *testing.T) {
	base := func() *config.Config {
		return &config.Config{ModelList: []config.Deployment{dep("big", "a"), dep("small", "b"), dep("huge", "c")},
			RouterSettings: config.RouterSettings{NumRetries: ptr(0)}}
	}
	tests := []struct {
		name       string
		edit       func(*config.Config)
		failWith   *provider.Error
		wantModel  string
		wantStatus int
		wantCode   string
	}{
		{"fallbacks after the group fails", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"big": {"small"}}}
		}, err500, "small", 0, ""},
		{"litellm_settings fallbacks", func(c *config.Config) {
			c.LiteLLMSettings.Fallbacks = []map[string][]string{{"big": {"missing", "small"}}}
		}, err429, "small", 0, ""},
		{"default fallbacks", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"*": {"small"}}}
		}, err500, "small", 0, ""},
		{"no fallback for a bad request", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"big": {"small"}}}
		}, err400, "big", 400, "400"},
		{"context window fallbacks", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"big": {"small"}}}
			c.RouterSettings.ContextWindowFallbacks = []map[string][]string{{"big": {"huge"}}}
		}, errCtx, "huge", 0, ""},
		{"context window error without fallbacks", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"big": {"small"}}}
		}, errCtx, "big", 400, "context_length_exceeded"},
		{"the group's error when fallbacks fail too", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"big": {"big"}}}
		}, err429, "big", 429, "429"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.edit(cfg)
			f := newFixture(t, cfg)
			f.fake.always["a"] = step{err: tt.failWith}
			_, res, err := f.do(t, "big")
			if res.Model != tt.wantModel {
				t.Errorf("answered by group %q, want %q", res.Model, tt.wantModel)
			}
			var oe *openai.Error
			errors.As(err, &oe)
			switch {
			case tt.wantStatus == 0 && err != nil:
				t.Errorf("err = %v, want success", err)
			case tt.wantStatus != 0 && (oe == nil || oe.Status != tt.wantStatus || oe.Code != tt.wantCode):
				t.Errorf("err = %+v, want status %d code %q", oe, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestCooldown(t *testing.T) {
	cfg := &config.Config{ModelList: []config.Deployment{dep("g", "a"), dep("g", "b")},
		RouterSettings: config.RouterSettings{AllowedFails: ptr(1), CooldownTime: ptr(30.0), NumRetries: ptr(0)}}
	f := newFixture(t, cfg)
	a, b := f.r.Deployments()[0], f.r.Deployments()[1]

	// Failures up to allowed_fails leave a in the rotation; one more cools it down.
	r := f.r
	r.fail(a, 2, 500)
	if cooled, _ := a.CooledDown(f.clock.Now()); cooled {
		t.Fatal("cooled down after allowed_fails failures, want after more")
	}
	r.fail(a, 2, 500)
	if cooled, _ := a.CooledDown(f.clock.Now()); !cooled {
		t.Fatal("not cooled down after allowed_fails+1 failures")
	}
	for range 20 {
		if _, res, err := f.do(t, "g"); err != nil || res.Deployment != b {
			t.Fatalf("a cooled-down deployment served a call (err %v)", err)
		}
	}
	f.clock.advance(31 * time.Second)
	seen := map[*Deployment]bool{}
	for range 20 {
		_, res, _ := f.do(t, "g")
		seen[res.Deployment] = true
	}
	if !seen[a] {
		t.Error("a did not come back after cooldown_time")
	}

	// A 429 cools a deployment down at once; a bad request never does.
	r.fail(b, 2, 400)
	if cooled, _ := b.CooledDown(f.clock.Now()); cooled {
		t.Error("a 400 cooled the deployment down")
	}
	r.fail(b, 2, 429)
	if cooled, _ := b.CooledDown(f.clock.Now()); !cooled {
		t.Error("a 429 did not cool the deployment down")
	}
	// The only deployment of a group is never cooled down.
	r.fail(a, 1, 429)
	if cooled, _ := a.CooledDown(f.clock.Now()); cooled {
		t.Error("the only deployment of a group was cooled down")
	}
}

func TestAllDeploymentsCooledDown_Is429NoDeployments(t *testing.T) {
	cfg := &config.Config{ModelList: []config.Deployment{dep("g", "a"), dep("g", "b")},
		RouterSettings: config.RouterSettings{CooldownTime: ptr(30.0)}}
	f := newFixture(t, cfg)
	f.fake.always["a"] = step{err: err429}
	f.fake.always["b"] = step{err: err429}
	_, _, err := f.do(t, "g")
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.Status != 429 || oe.Message != "slow down" {
		t.Fatalf("first call: err = %v, want the upstream's 429", err)
	}
	if calls := f.fake.Calls(); len(calls) != 2 {
		t.Errorf("calls = %v, want each deployment once, then no waiting on cooled-down ones", calls)
	}
	_, res, err := f.do(t, "g")
	if !errors.As(err, &oe) || oe.Status != 429 || !strings.HasPrefix(oe.Message, "No deployments available for selected model") {
		t.Fatalf("second call: err = %v, want 429 No deployments available", err)
	}
	if oe.Header.Get("Retry-After") != "30" || res.Deployment != nil {
		t.Errorf("retry-after %q deployment %v, want 30 and none", oe.Header.Get("Retry-After"), res.Deployment)
	}
}

func TestTimeouts(t *testing.T) {
	cfg := &config.Config{ModelList: []config.Deployment{{ModelName: "g", LiteLLMParams: config.LiteLLMParams{Model: "fake/g", APIBase: "a", Timeout: 0.05, StreamTimeout: 0.05}}},
		RouterSettings: config.RouterSettings{NumRetries: ptr(0)}}
	f := newFixture(t, cfg)
	f.fake.always["a"] = step{hang: true}
	rt, _ := f.r.Resolve("g")
	for _, stream := range []bool{false, true} {
		var err error
		if stream {
			_, _, err = f.r.Stream(context.Background(), rt, provider.Call{Request: &openai.Request{}})
		} else {
			_, _, err = f.r.Do(context.Background(), rt, provider.Call{Request: &openai.Request{}})
		}
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.Status != http.StatusRequestTimeout || oe.Type != openai.TypeTimeout {
			t.Errorf("stream=%v: err = %v, want 408 timeout_error", stream, err)
		}
	}
}

func TestClientCancel_StopsWithTheContextError(t *testing.T) {
	f := newFixture(t, &config.Config{ModelList: []config.Deployment{dep("g", "a")}})
	f.fake.always["a"] = step{hang: true}
	rt, _ := f.r.Resolve("g")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := f.r.Do(ctx, rt, provider.Call{Request: &openai.Request{}})
	if !errors.Is(err, context.DeadlineExceeded) || len(f.fake.Calls()) != 1 {
		t.Errorf("err = %v after %d calls, want the context's error after one", err, len(f.fake.Calls()))
	}
}

func TestStream_RetriesBeforeTheFirstChunkOnly(t *testing.T) {
	cfg := &config.Config{ModelList: []config.Deployment{dep("g", "a"), dep("g", "b")}}
	f := newFixture(t, cfg)
	f.fake.always["a"] = step{err: err500}
	rt, _ := f.r.Resolve("g")
	s, res, err := f.r.Stream(context.Background(), rt, provider.Call{Request: &openai.Request{}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		chunk, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(chunk))
	}
	s.Close()
	if !slices.Equal(got, []string{"b", "b", "b"}) || res.Deployment.Config.LiteLLMParams.APIBase != "b" {
		t.Errorf("chunks %v from %s, want all 3 from b", got, res.Deployment.Config.LiteLLMParams.APIBase)
	}
	if n := res.Deployment.InFlight(); n != 0 {
		t.Errorf("in flight after Close = %d, want 0", n)
	}

	f.fake.always["a"] = step{midFail: true}
	f.fake.always["b"] = step{midFail: true}
	s, _, err = f.r.Stream(context.Background(), rt, provider.Call{Request: &openai.Request{}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Next(); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	calls := len(f.fake.Calls())
	if _, err := s.Next(); !errors.Is(err, err500) {
		t.Errorf("mid-stream error = %v, want the upstream's error passed through", err)
	}
	if n := len(f.fake.Calls()); n != calls {
		t.Errorf("a mid-stream failure made %d more calls, want none", n-calls)
	}
}

func TestMockResponse_TakesEffectOnlyOnMockDeploymentsOrForAdmins(t *testing.T) {
	mockDep := config.Deployment{ModelName: "m", LiteLLMParams: config.LiteLLMParams{Model: "mock/demo"}}
	canned := config.Deployment{ModelName: "c", LiteLLMParams: config.LiteLLMParams{Model: "fake/c", APIBase: "c", MockResponse: "canned"}}
	tests := []struct {
		name, model string
		admin       bool
		wantStatus  int // 0: the mock's answer
	}{
		{"admin on a real deployment", "g", true, 0},
		{"key on a real deployment", "g", false, http.StatusForbidden},
		{"key on a mock/ deployment", "m", false, 0},
		{"key on a deployment with a configured mock_response", "c", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, &config.Config{ModelList: []config.Deployment{dep("g", "a"), mockDep, canned}})
			rt, _ := f.r.Resolve(tt.model)
			text := "hi from the mock"
			resp, _, err := f.r.Do(context.Background(), rt, provider.Call{Kind: provider.Chat, Body: []byte(`{}`),
				Request: &openai.Request{MockResponse: &text}, MockTesting: tt.admin})
			if len(f.fake.Calls()) != 0 {
				t.Errorf("%d upstream calls, want none", len(f.fake.Calls()))
			}
			if tt.wantStatus != 0 {
				var oe *openai.Error
				if !errors.As(err, &oe) || oe.Status != tt.wantStatus || oe.Param == nil || *oe.Param != "mock_response" {
					t.Fatalf("err = %v, want a %d naming mock_response", err, tt.wantStatus)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(resp.Body), text) {
				t.Errorf("body %s, want the mock text", resp.Body)
			}
		})
	}
}

// A caller's own mocked failure says nothing about the deployment: it must not cool the
// real deployments of a group down for everyone else (it did: one key's
// mock_response "litellm.RateLimitError" made the group answer 429 to all).
func TestRequestMockFailure_NeverCoolsDown(t *testing.T) {
	f := newFixture(t, &config.Config{ModelList: []config.Deployment{dep("g", "a"), dep("g", "b")}})
	rt, _ := f.r.Resolve("g")
	fail := mock.RateLimitError
	for range 5 {
		_, _, err := f.r.Do(context.Background(), rt, provider.Call{Kind: provider.Chat, Body: []byte(`{}`),
			Request: &openai.Request{MockResponse: &fail}, MockTesting: true})
		var oe *openai.Error
		if !errors.As(err, &oe) || oe.Status != http.StatusTooManyRequests {
			t.Fatalf("err = %v, want the mocked 429", err)
		}
	}
	for _, d := range rt.Group.Deployments {
		if cooled, _ := d.CooledDown(f.clock.Now()); cooled {
			t.Errorf("deployment %s cooled down by a caller's mock_response", d.Config.LiteLLMParams.APIBase)
		}
	}
	if _, _, err := f.do(t, "g"); err != nil {
		t.Errorf("a plain call after the mocked failures: %v", err)
	}
}

func TestUnknownProvider_FailsTheCallNotTheRouter(t *testing.T) {
	f := newFixture(t, &config.Config{ModelList: []config.Deployment{{ModelName: "g", LiteLLMParams: config.LiteLLMParams{Model: "nope/x"}}}})
	_, _, err := f.do(t, "g")
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.Status != 500 || !strings.Contains(oe.Message, `no provider for "nope"`) {
		t.Errorf("err = %v, want a 500 naming the provider", err)
	}
}

func TestTargets_AreEveryDeploymentTheCallCanReach(t *testing.T) {
	cheap := config.Deployment{ModelName: "g", LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o-mini", APIBase: "a", MaxTokens: 100}}
	dear := config.Deployment{ModelName: "g", LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o", APIBase: "b"}}
	free := config.Deployment{ModelName: "free", LiteLLMParams: config.LiteLLMParams{Model: "openai/local"},
		ModelInfo: config.ModelInfo{InputCostPerToken: ptr(0.0), OutputCostPerToken: ptr(0.0)}}
	wild := config.Deployment{ModelName: "openai/*", LiteLLMParams: config.LiteLLMParams{Model: "openai/*"}}
	big := config.Deployment{ModelName: "big", LiteLLMParams: config.LiteLLMParams{Model: "anthropic/claude-sonnet-4-20250514"}}
	cfg := &config.Config{ModelList: []config.Deployment{cheap, dear, free, wild, big}}
	cfg.RouterSettings.Fallbacks = []map[string][]string{{"free": {"g"}}}
	cfg.RouterSettings.ContextWindowFallbacks = []map[string][]string{{"free": {"big", "missing"}}}
	f := newFixture(t, cfg)
	tests := []struct {
		model string
		want  []string // model, max_tokens
	}{
		{"g", []string{"openai/gpt-4o-mini 100", "openai/gpt-4o 0"}},
		{"free", []string{"openai/local 0", "openai/gpt-4o-mini 100", "openai/gpt-4o 0", "anthropic/claude-sonnet-4-20250514 0"}},
		{"openai/gpt-4o-mini", []string{"openai/gpt-4o-mini 0"}},                                                 // wildcard: the requested model
		{"big>g", []string{"anthropic/claude-sonnet-4-20250514 0", "openai/gpt-4o-mini 100", "openai/gpt-4o 0"}}, // the request's fallback
	}
	for _, tt := range tests {
		model, fallback, _ := strings.Cut(tt.model, ">")
		rt, _ := f.r.Resolve(model)
		if fallback != "" {
			rt.Overrides.Fallbacks = []string{fallback}
		}
		var got []string
		for _, tg := range f.r.Targets(rt) {
			got = append(got, fmt.Sprintf("%s %d", tg.Model, tg.MaxTokens))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Targets = %q, want %q", tt.model, got, tt.want)
		}
	}
}

func TestPin_CallsOnlyThatDeploymentAndNeverFallsBack(t *testing.T) {
	cfg := &config.Config{ModelList: []config.Deployment{dep("big", "a"), dep("big", "b"), dep("small", "c")},
		RouterSettings: config.RouterSettings{NumRetries: ptr(3),
			Fallbacks:              []map[string][]string{{"big": {"small"}}},
			ContextWindowFallbacks: []map[string][]string{{"big": {"small"}}}}}
	cfg.ModelList[1].ModelInfo.ID = "big-b"
	f := newFixture(t, cfg)
	rt, _ := f.r.Resolve("big")
	pinned, ok := rt.Pin("big-b")
	if !ok {
		t.Fatal("Pin(big-b) found no deployment")
	}
	for range 5 {
		if _, res, err := f.r.Do(context.Background(), pinned, provider.Call{Kind: provider.Chat}); err != nil || res.Deployment.ID != "big-b" {
			t.Fatalf("pinned call: %v, deployment %v", err, res.Deployment)
		}
	}
	if calls := f.fake.Calls(); slices.ContainsFunc(calls, func(b string) bool { return b != "b" }) {
		t.Errorf("pinned calls reached %v, want only b", calls)
	}
	if got := f.r.Targets(pinned); len(got) != 1 {
		t.Errorf("pinned route's targets %v, want the one deployment", got)
	}
	for _, fail := range []*provider.Error{err500, errCtx} {
		f.fake.always["b"] = step{err: fail}
		if _, res, err := f.r.Do(context.Background(), pinned, provider.Call{Kind: provider.Chat}); err == nil || res.Model != "big" || res.Fallbacks != 0 {
			t.Errorf("pinned call failing with %v: err %v, answered by %q after %d fallbacks; want the deployment's error", fail, err, res.Model, res.Fallbacks)
		}
	}
	if _, ok := rt.Pin("nope"); ok {
		t.Error("Pin of a deployment outside the group succeeded")
	}
	if prt, ok := f.r.Pinned("big-b"); !ok || prt.Model != "big" || len(prt.Group.Deployments) != 1 {
		t.Errorf("Pinned(big-b) = %+v, %v", prt, ok)
	}
	if _, ok := f.r.Pinned("nope"); ok {
		t.Error("Pinned of an unknown deployment succeeded")
	}
}

// With Route.MayUse (enforce_fallback_model_access), a configured fallback to a group the
// caller may not use is never called, nor priced; with none left the caller gets the
// failing group's own error. The request's own fallbacks were checked like its model.
func TestFallbacks_SkipGroupsTheCallerMayNotUse(t *testing.T) {
	onlySmall := func(g string) bool { return g == "big" || g == "small" }
	tests := []struct {
		name       string
		edit       func(*config.Config)
		failWith   *provider.Error
		request    []string // the request's own fallbacks
		wantModel  string
		wantCalls  string // api_bases called, in order
		wantStatus int
	}{
		{"the first usable fallback serves", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"big": {"huge", "small"}}}
		}, err500, nil, "small", "a b", 0},
		{"no usable fallback: the group's error", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"big": {"huge"}}}
		}, err500, nil, "big", "a", 500},
		{"default fallbacks", func(c *config.Config) {
			c.LiteLLMSettings.Fallbacks = []map[string][]string{{"*": {"huge"}}}
		}, err429, nil, "big", "a", 429},
		{"context window fallbacks", func(c *config.Config) {
			c.RouterSettings.ContextWindowFallbacks = []map[string][]string{{"big": {"huge"}}}
		}, errCtx, nil, "big", "a", 400},
		{"the request's own fallbacks are not filtered", func(c *config.Config) {
			c.RouterSettings.Fallbacks = []map[string][]string{{"big": {"small"}}}
		}, err500, []string{"huge"}, "huge", "a c", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{ModelList: []config.Deployment{dep("big", "a"), dep("small", "b"), dep("huge", "c")},
				RouterSettings: config.RouterSettings{NumRetries: ptr(0)}}
			tt.edit(cfg)
			f := newFixture(t, cfg)
			f.fake.always["a"] = step{err: tt.failWith}
			rt, _ := f.r.Resolve("big")
			rt.MayUse, rt.Overrides.Fallbacks = onlySmall, tt.request
			_, res, err := f.r.Do(context.Background(), rt, provider.Call{Kind: provider.Chat, Request: &openai.Request{Model: "big"}})
			if calls := strings.Join(f.fake.Calls(), " "); res.Model != tt.wantModel || calls != tt.wantCalls {
				t.Errorf("answered by %q after calls %q, want %q after %q", res.Model, calls, tt.wantModel, tt.wantCalls)
			}
			var oe *openai.Error
			if errors.As(err, &oe) != (tt.wantStatus != 0) || oe != nil && oe.Status != tt.wantStatus {
				t.Errorf("err = %v, want status %d", err, tt.wantStatus)
			}
			for _, tg := range f.r.Targets(rt) {
				if tg.Model == "fake/huge" && tt.request == nil {
					t.Errorf("Targets price %s, which the caller may not reach", tg.Model)
				}
			}
		})
	}
}
