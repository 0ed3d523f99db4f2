package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
)

// fakeAuth lets in the key "sk-good", whose caller may use allowed and maps "alias" to
// "demo".
type fakeAuth struct{ allowed []string }

type fakeCaller struct{ allowed []string }

func (a fakeAuth) Authenticate(ctx context.Context, r *http.Request) (llmcall.Caller, error) {
	if r.Header.Get("Authorization") != "Bearer sk-good" {
		return nil, openai.Errorf(401, openai.TypeAuth, "Authentication Error, invalid key")
	}
	return fakeCaller(a), nil
}

func (c fakeCaller) ResolveModel(requested string) (string, error) {
	if requested == "alias" {
		requested = "demo"
	}
	if !c.Allowed(requested) {
		return "", openai.Errorf(401, "key_model_access_denied", "key not allowed to access model").WithParam("model")
	}
	return requested, nil
}

func (c fakeCaller) IsProxyAdmin() bool { return false }

func (c fakeCaller) MayRoute(group string) bool { return c.Allowed(group) }

func (c fakeCaller) Allowed(model string) bool {
	for _, m := range c.allowed {
		if m == model {
			return true
		}
	}
	return false
}

// fakeLimiter records what the gateway reserves and settles.
type fakeLimiter struct {
	mu        sync.Mutex
	refuse    error
	maxTokens int
	charges   []llmcall.Charge
	outcomes  []llmcall.Outcome
	settleCtx []error // ctx.Err() as Settle saw it
	settled   chan struct{}
	// hold, if set, makes Settle wait until it is closed (at most 2 s); held records
	// whether it was closed in time.
	hold chan struct{}
	held []bool
}

func (l *fakeLimiter) Reserve(ctx context.Context, c llmcall.Caller, ch llmcall.Charge) (llmcall.Reservation, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.charges = append(l.charges, ch)
	if l.refuse != nil {
		return nil, l.refuse
	}
	return l, nil
}

func (l *fakeLimiter) Header() http.Header {
	return http.Header{"X-Litellm-Key-Spend": {"1.5"}}
}

func (l *fakeLimiter) MaxTokens() int { return l.maxTokens }

func (l *fakeLimiter) Settle(ctx context.Context, o llmcall.Outcome) error {
	if l.hold != nil {
		held := true
		select {
		case <-l.hold:
		case <-time.After(2 * time.Second):
			held = false
		}
		l.mu.Lock()
		l.held = append(l.held, held)
		l.mu.Unlock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes = append(l.outcomes, o)
	l.settleCtx = append(l.settleCtx, ctx.Err())
	if l.settled != nil {
		l.settled <- struct{}{}
	}
	return nil
}

// waitOutcomes waits until n calls are settled: the gateway settles after the answer is out.
func (l *fakeLimiter) waitOutcomes(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		l.mu.Lock()
		got := len(l.outcomes)
		l.mu.Unlock()
		if got >= n {
			return
		}
	}
	t.Fatalf("%d calls not settled", n)
}

func postWithKey(t *testing.T, h *harness, path, key, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestAuth(t *testing.T) {
	h := newHarness(t, testConfig(), fakeAuth{allowed: []string{"demo", "embed"}}, nil)
	tests := []struct {
		name, key, model string
		wantStatus       int
		wantType         string
	}{
		{"valid key and allowed model", "sk-good", "demo", 200, ""},
		{"key alias", "sk-good", "alias", 200, ""},
		{"invalid key", "sk-bad", "demo", 401, openai.TypeAuth},
		{"model not allowed", "sk-good", "gpt", 401, "key_model_access_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postWithKey(t, h, "/v1/chat/completions", tt.key, `{"model":"`+tt.model+`","messages":[]}`)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantType != "" {
				if e := readError(t, resp); e.Type != tt.wantType {
					t.Errorf("type %q, want %q", e.Type, tt.wantType)
				}
			}
		})
	}
}

func TestModels_ListsWhatTheCallerMayUse(t *testing.T) {
	h := newHarness(t, testConfig(), fakeAuth{allowed: []string{"demo", "embed"}}, nil)
	for _, path := range []string{"/v1/models", "/models"} {
		req, _ := http.NewRequest("GET", h.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer sk-good")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got openai.ModelList
		_ = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if got.Object != "list" || len(got.Data) != 2 || got.Data[0].ID != "demo" || got.Data[1].ID != "embed" ||
			got.Data[0].Object != "model" || got.Data[0].Created != modelCreated {
			t.Errorf("%s = %+v, want demo and embed in OpenAI's list format", path, got)
		}
	}
	resp, _ := http.Get(h.srv.URL + "/v1/models")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without a key: status %d, want 401", resp.StatusCode)
	}
}

func TestModelInfo_ShowsNoSecrets(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	for _, path := range []string{"/model/info", "/v1/model/info"} {
		resp, err := http.Get(h.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Data []struct {
				ModelName     string         `json:"model_name"`
				LiteLLMParams map[string]any `json:"litellm_params"`
				ModelInfo     map[string]any `json:"model_info"`
			}
		}
		raw := new(strings.Builder)
		_ = json.NewDecoder(teeReader(resp, raw)).Decode(&got)
		resp.Body.Close()
		if len(got.Data) != len(testConfig().ModelList) {
			t.Fatalf("%d entries, want one per deployment", len(got.Data))
		}
		for _, secret := range []string{"sk-upstream-secret", "aws-secret", "qsecret", "api_key"} {
			if strings.Contains(raw.String(), secret) {
				t.Errorf("%s shows %q", path, secret)
			}
		}
		gpt := got.Data[2]
		if gpt.ModelName != "gpt" || gpt.ModelInfo["id"] != "gpt-1" || gpt.ModelInfo["output_cost_per_token"] != 1e-05 ||
			gpt.LiteLLMParams["api_base"] != "https://up.example/v1" {
			t.Errorf("gpt entry = %+v", gpt)
		}
	}
}

func teeReader(resp *http.Response, sb *strings.Builder) *strings.Reader {
	b := new(strings.Builder)
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	sb.WriteString(b.String())
	return strings.NewReader(b.String())
}

func TestLimiter_ReservesThenSettlesOnce(t *testing.T) {
	lim := &fakeLimiter{}
	h := newHarness(t, testConfig(), nil, lim)
	resp := h.post(t, "/v1/chat/completions", `{"model":"demo","max_tokens":50,"n":2,"metadata":{"tags":["t1"]},"messages":[{"role":"user","content":"hello"}]}`)
	if resp.StatusCode != 200 || resp.Header.Get("X-Litellm-Key-Spend") != "1.5" {
		t.Fatalf("status %d key spend header %q, want 200 and the reservation's header", resp.StatusCode, resp.Header.Get("X-Litellm-Key-Spend"))
	}
	lim.waitOutcomes(t, 1)
	time.Sleep(20 * time.Millisecond) // a second settle would come now
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if len(lim.charges) != 1 || len(lim.outcomes) != 1 {
		t.Fatalf("%d reserves and %d settles, want one each", len(lim.charges), len(lim.outcomes))
	}
	ch := lim.charges[0]
	wantCost := float64(ch.PromptTokens)*1e-06 + 2*50*2e-06
	if ch.Model != "demo" || ch.Route != "/chat/completions" || ch.MaxTokens != 50 || ch.PromptTokens == 0 || ch.Tokens != ch.PromptTokens+2*50 ||
		math.Abs(ch.Cost-wantCost) > 1e-15 || ch.OutputCostPerToken != 2e-06 || ch.Free || len(ch.Tags) != 1 ||
		ch.RequestID != resp.Header.Get(HeaderCallID) {
		t.Errorf("charge = %+v, want the worst case of demo (cost %g)", ch, wantCost)
	}
	o := lim.outcomes[0]
	if !o.Success || o.Status != 200 || o.Deployment != "demo-1" || o.Provider != "mock" || o.Model != "demo" ||
		o.Usage.CompletionTokens == 0 || o.Cost <= 0 || o.End.Before(o.Start) {
		t.Errorf("outcome = %+v", o)
	}
}

func TestLimiter_MaxOutputTokensWhenTheRequestSetsNone(t *testing.T) {
	lim := &fakeLimiter{}
	h := newHarness(t, testConfig(), nil, lim)
	h.post(t, "/v1/chat/completions", `{"model":"demo","messages":[]}`)
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if got := lim.charges[0].MaxTokens; got != 1000 {
		t.Errorf("MaxTokens = %d, want the model's max_output_tokens 1000", got)
	}
}

func TestLimiter_RefusalStopsTheCall(t *testing.T) {
	lim := &fakeLimiter{refuse: openai.Errorf(400, openai.TypeBudgetExceeded, "Budget has been exceeded!")}
	h := newHarness(t, testConfig(), nil, lim)
	resp := h.post(t, "/v1/chat/completions", `{"model":"gpt","messages":[]}`)
	if e := readError(t, resp); resp.StatusCode != 400 || e.Type != openai.TypeBudgetExceeded {
		t.Errorf("got %d %+v, want the limiter's error", resp.StatusCode, e)
	}
	if len(h.fake.calls()) != 0 || len(lim.outcomes) != 0 {
		t.Errorf("%d upstream calls and %d settles after a refusal, want none", len(h.fake.calls()), len(lim.outcomes))
	}
}

func TestLimiter_ClampsMaxTokens(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{`{"model":"gpt","messages":[]}`, `"max_tokens":7`},
		{`{"model":"gpt","max_tokens":100,"messages":[]}`, `"max_tokens":7`},
		{`{"model":"gpt","max_completion_tokens":100,"messages":[]}`, `"max_completion_tokens":7`},
		{`{"model":"gpt","max_tokens":5,"messages":[]}`, `"max_tokens":5`},
	}
	for _, tt := range tests {
		lim := &fakeLimiter{maxTokens: 7}
		h := newHarness(t, testConfig(), nil, lim)
		h.post(t, "/v1/chat/completions", tt.body)
		if b := h.fake.calls(); len(b) != 1 || !strings.Contains(string(b[0]), tt.want) {
			t.Errorf("%s: upstream got %s, want %s", tt.body, b, tt.want)
		}
	}
}

func TestLimiter_SettlesFailuresAndDisconnects(t *testing.T) {
	lim := &fakeLimiter{}
	cfg := testConfig()
	cfg.RouterSettings.Timeout = 0.5 // how long a stream the client left is read on
	h := newHarness(t, cfg, nil, lim)
	h.post(t, "/v1/chat/completions", `{"model":"limited","messages":[]}`)
	lim.waitOutcomes(t, 1)
	lim.mu.Lock()
	if len(lim.outcomes) != 1 || lim.outcomes[0].Success || lim.outcomes[0].Status != 429 || lim.outcomes[0].ErrorType != openai.TypeRateLimit {
		t.Errorf("outcomes = %+v, want one failed 429", lim.outcomes)
	}
	lim.settled = make(chan struct{}, 1)
	lim.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", h.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"hang","stream":true,"messages":[]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = resp.Body.Read(make([]byte, 1))
	cancel()
	resp.Body.Close()
	select {
	case <-lim.settled:
	case <-time.After(5 * time.Second):
		t.Fatal("a stream the client left was not settled")
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	o := lim.outcomes[1]
	if o.Success || o.Status != statusClientClosed || lim.settleCtx[1] != nil || o.Usage.PromptTokens == 0 {
		t.Errorf("outcome %+v settled with ctx err %v, want an unsuccessful 499 with usage, settled on a live context", o, lim.settleCtx[1])
	}
}

// TestSettle_AfterTheClientHasTheWholeAnswer holds Settle until the client has read the
// whole answer (a body of its Content-Length, or a stream up to its last event): settle
// latency must not add to the client's.
func TestSettle_AfterTheClientHasTheWholeAnswer(t *testing.T) {
	tests := []struct {
		name, body string
		lastEvent  string // "" for a JSON answer, read to its end
	}{
		{"answer", `{"model":"gpt","messages":[]}`, ""},
		{"upstream error", `{"model":"limited","messages":[]}`, ""},
		{"stream", `{"model":"gpt","stream":true,"messages":[]}`, "data: [DONE]"},
		{"stream error", `{"model":"midfail","stream":true,"messages":[]}`, `data: {"error"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := &fakeLimiter{hold: make(chan struct{})}
			h := newHarness(t, testConfig(), nil, lim)
			resp := h.post(t, "/v1/chat/completions", tt.body)
			if tt.lastEvent == "" {
				if _, err := io.ReadAll(resp.Body); err != nil {
					t.Fatal(err)
				}
			} else {
				sc := bufio.NewScanner(resp.Body)
				for sc.Scan() && !strings.HasPrefix(sc.Text(), tt.lastEvent) {
				}
			}
			close(lim.hold)
			lim.waitOutcomes(t, 1)
			lim.mu.Lock()
			defer lim.mu.Unlock()
			if len(lim.held) != 1 || !lim.held[0] {
				t.Errorf("settle waited 2 s for the client to have the answer; want the answer complete before settle")
			}
		})
	}
}

// TestLimiter_SettlesAfterAPanic: a panic between reserve and settle must not leave the
// reservation to expire (holding the budget and a parallel slot for its whole TTL).
func TestLimiter_SettlesAfterAPanic(t *testing.T) {
	lim := &fakeLimiter{}
	h := newHarness(t, testConfig(), nil, lim)
	req, _ := http.NewRequest("POST", h.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"panic","messages":[]}`))
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	lim.waitOutcomes(t, 1)
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if o := lim.outcomes[0]; o.Success || o.Status != http.StatusInternalServerError {
		t.Errorf("outcome %+v, want a failed 500", o)
	}
}
