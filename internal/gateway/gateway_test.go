package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/llmcall"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/mock"
	"github.com/llmgate/llmgate/internal/router"
)

// fakeProvider behaves as its upstream model name says: "ok" answers, "err429" and
// "err500" fail, "midfail" streams one chunk then fails, "hang" streams nothing until the
// call's context ends (and then reports it on canceled).
type fakeProvider struct {
	mu       sync.Mutex
	bodies   [][]byte
	canceled chan struct{}
}

func (f *fakeProvider) record(c *provider.Call) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bodies = append(f.bodies, bytes.Clone(c.Body))
}

func (f *fakeProvider) calls() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bodies
}

var fakeUsage = openai.Usage{PromptTokens: 1000, CompletionTokens: 100, TotalTokens: 1100}

func (f *fakeProvider) fail(model string) error {
	switch model {
	case "err429":
		return &provider.Error{Status: 429, Type: openai.TypeRateLimit, Message: "upstream says slow down", Retryable: true, RetryAfter: time.Hour}
	case "err500":
		return &provider.Error{Status: 500, Type: openai.TypeServer, Message: "upstream broke", Retryable: true}
	case "panic":
		panic("fake provider panics")
	}
	return nil
}

func (f *fakeProvider) Do(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	f.record(c)
	if err := f.fail(c.Model); err != nil {
		return nil, err
	}
	return &provider.Response{Body: []byte(`{"id":"x","object":"chat.completion","model":"` + c.Model + `","choices":[]}`), Usage: fakeUsage}, nil
}

func (f *fakeProvider) Stream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	f.record(c)
	if err := f.fail(c.Model); err != nil {
		return nil, err
	}
	return &fakeStream{ctx: ctx, model: c.Model, canceled: f.canceled}, nil
}

type fakeStream struct {
	ctx      context.Context
	model    string
	n        int
	canceled chan struct{}
}

func (s *fakeStream) Next() ([]byte, error) {
	s.n++
	switch {
	case s.model == "hang" && s.n > 1:
		<-s.ctx.Done()
		close(s.canceled)
		return nil, s.ctx.Err()
	case s.model == "midfail" && s.n > 1:
		return nil, &provider.Error{Status: 500, Type: openai.TypeServer, Message: "upstream died"}
	case s.n > 2:
		return nil, io.EOF
	}
	return []byte(`{"n":` + strconv.Itoa(s.n) + `}`), nil
}
func (s *fakeStream) Usage() openai.Usage { return fakeUsage }
func (s *fakeStream) Close() error        { return nil }

func ptr[T any](v T) *T { return &v }

func testConfig() *config.Config {
	cfg := &config.Config{
		ModelList: []config.Deployment{
			{ModelName: "demo", LiteLLMParams: config.LiteLLMParams{Model: "mock/demo"},
				ModelInfo: config.ModelInfo{ID: "demo-1", InputCostPerToken: ptr(1e-06), OutputCostPerToken: ptr(2e-06), MaxOutputTokens: 1000}},
			{ModelName: "embed", LiteLLMParams: config.LiteLLMParams{Model: "mock/embed"}},
			{ModelName: "gpt", LiteLLMParams: config.LiteLLMParams{Model: "fake/ok", APIKey: "sk-upstream-secret", APIBase: "https://up.example/v1?key=qsecret",
				AWSSecretAccessKey: "aws-secret"}, ModelInfo: config.ModelInfo{ID: "gpt-1", InputCostPerToken: ptr(1e-06), OutputCostPerToken: ptr(1e-05)}},
			{ModelName: "limited", LiteLLMParams: config.LiteLLMParams{Model: "fake/err429"}},
			{ModelName: "broken", LiteLLMParams: config.LiteLLMParams{Model: "fake/err500"}},
			{ModelName: "midfail", LiteLLMParams: config.LiteLLMParams{Model: "fake/midfail"}},
			{ModelName: "hang", LiteLLMParams: config.LiteLLMParams{Model: "fake/hang"}},
			{ModelName: "panic", LiteLLMParams: config.LiteLLMParams{Model: "fake/panic"}},
		},
		RouterSettings: config.RouterSettings{NumRetries: ptr(0), Fallbacks: []map[string][]string{{"broken": {"gpt"}}}},
	}
	cfg.Settings.MaxRequestBodyBytes = 4 << 10
	return cfg
}

type harness struct {
	srv  *httptest.Server
	fake *fakeProvider
	logs *bytes.Buffer
}

func newHarness(t testing.TB, cfg *config.Config, auth llmcall.Authenticator, lim llmcall.Limiter) *harness {
	t.Helper()
	h := &harness{fake: &fakeProvider{canceled: make(chan struct{})}, logs: &bytes.Buffer{}}
	m := mock.New()
	rtr, err := router.New(router.Options{Config: cfg, Providers: router.ProviderFunc(func(prefix string) (provider.Provider, error) {
		switch prefix {
		case "mock":
			return m, nil
		case "fake":
			return h.fake, nil
		}
		return nil, errors.New("no such provider")
	})})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(&lockedWriter{w: h.logs}, nil))
	gw, err := New(Options{Config: cfg, Logger: log, Router: rtr, Authenticator: auth, Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(gw)
	t.Cleanup(h.srv.Close)
	return h
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *harness) post(t testing.TB, path, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(h.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readError(t *testing.T, resp *http.Response) openai.Error {
	t.Helper()
	var e struct{ Error openai.Error }
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatalf("error body: %v", err)
	}
	return e.Error
}

func TestChat_AnswersWithLiteLLMHeaders(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	resp := h.post(t, "/v1/chat/completions", `{"model":"gpt","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := map[string]string{
		"Content-Type":     "application/json",
		HeaderModelID:      "gpt-1",
		HeaderModelAPIBase: "https://up.example/v1",
		HeaderResponseCost: strconv.FormatFloat(1000*1e-06+100*1e-05, 'g', -1, 64),
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if len(resp.Header.Get(HeaderCallID)) != 36 {
		t.Errorf("%s = %q, want a UUID", HeaderCallID, resp.Header.Get(HeaderCallID))
	}
	if ms, err := strconv.ParseFloat(resp.Header.Get(HeaderDuration), 64); err != nil || ms <= 0 {
		t.Errorf("%s = %q, want a positive duration", HeaderDuration, resp.Header.Get(HeaderDuration))
	}
	if b := h.fake.calls(); len(b) != 1 || !strings.Contains(string(b[0]), `"tools":[{"type":"function"`) {
		t.Errorf("upstream got %q, want the body with its tools passed through", b)
	}
}

func TestRoutes_ServeWithAndWithoutV1(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	tests := []struct {
		path, body, wantObject string
	}{
		{"/chat/completions", `{"model":"demo","messages":[{"role":"user","content":"hi"}]}`, "chat.completion"},
		{"/completions", `{"model":"demo","prompt":"hi"}`, "text_completion"},
		{"/embeddings", `{"model":"embed","input":"hi"}`, "list"},
	}
	for _, tt := range tests {
		for _, prefix := range []string{"/v1", ""} {
			t.Run(prefix+tt.path, func(t *testing.T) {
				resp := h.post(t, prefix+tt.path, tt.body)
				var got struct{ Object string }
				_ = json.NewDecoder(resp.Body).Decode(&got)
				if resp.StatusCode != 200 || got.Object != tt.wantObject {
					t.Errorf("status %d object %q, want 200 %q", resp.StatusCode, got.Object, tt.wantObject)
				}
			})
		}
	}
}

func TestErrors(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	big := `{"model":"demo","messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`
	tests := []struct {
		name       string
		body       string
		chunked    bool
		wantStatus int
		wantType   string
		wantIn     string
	}{
		{"malformed JSON", `{"model":`, false, 400, openai.TypeInvalidRequest, "could not parse the JSON body"},
		{"wrong JSON type", `{"model":5}`, false, 400, openai.TypeInvalidRequest, "could not parse the JSON body"},
		{"missing model", `{"messages":[]}`, false, 400, openai.TypeInvalidRequest, "you must provide a model parameter"},
		{"unknown model", `{"model":"nope","messages":[]}`, false, 400, openai.TypeInvalidRequest, "/chat/completions: Invalid model name passed in model=nope. Call `/v1/models`"},
		{"body over the limit", big, false, 413, openai.TypeInvalidRequest, "too large"},
		{"chunked body over the limit", big, true, 413, openai.TypeInvalidRequest, "too large"},
		{"upstream 429 after retries", `{"model":"limited","messages":[]}`, false, 429, openai.TypeRateLimit, "slow down"},
		{"context window", `{"model":"demo","mock_response":"litellm.ContextWindowExceededError","messages":[]}`, false, 400, openai.TypeInvalidRequest, "context length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			resp, err := http.Post(h.srv.URL+"/v1/chat/completions", "application/json", body)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			e := readError(t, resp)
			if resp.StatusCode != tt.wantStatus || e.Type != tt.wantType || !strings.Contains(e.Message, tt.wantIn) {
				t.Errorf("got %d %+v, want %d %s containing %q", resp.StatusCode, e, tt.wantStatus, tt.wantType, tt.wantIn)
			}
			if resp.Header.Get(HeaderCallID) == "" {
				t.Error("no call id on an error")
			}
		})
	}
	if resp := h.post(t, "/v1/chat/completions", `{"model":"demo","mock_response":"litellm.ContextWindowExceededError","messages":[]}`); readError(t, resp).Code != "context_length_exceeded" {
		t.Error("context window error without code context_length_exceeded")
	}
	if resp := h.post(t, "/v1/chat/completions", `{"model":"limited","messages":[]}`); resp.Header.Get("Retry-After") != "3600" {
		t.Errorf("retry-after = %q, want the upstream's 3600", resp.Header.Get("Retry-After"))
	}
}

func TestFallback_AnswersFromTheFallbackGroup(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	resp := h.post(t, "/v1/chat/completions", `{"model":"broken","messages":[]}`)
	if resp.StatusCode != 200 || resp.Header.Get(HeaderModelID) != "gpt-1" {
		t.Errorf("status %d model id %q, want 200 from gpt-1", resp.StatusCode, resp.Header.Get(HeaderModelID))
	}
}

// events reads an SSE body into its data payloads, checking OpenAI's framing.
func events(t *testing.T, body io.Reader) []string {
	t.Helper()
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range strings.SplitAfter(string(raw), "\n\n") {
		if ev == "" {
			continue
		}
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || !strings.HasSuffix(data, "\n\n") || strings.Count(data, "\n") != 2 {
			t.Fatalf("event %q is not framed as data: <json>\\n\\n", ev)
		}
		out = append(out, strings.TrimSuffix(data, "\n\n"))
	}
	return out
}

func TestStream_FramesChunksAsOpenAIDoes(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	for _, includeUsage := range []bool{false, true} {
		body := `{"model":"demo","stream":true,"messages":[{"role":"user","content":"one two three"}]`
		if includeUsage {
			body += `,"stream_options":{"include_usage":true}`
		}
		resp := h.post(t, "/v1/chat/completions", body+"}")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		evs := events(t, resp.Body)
		if evs[len(evs)-1] != "[DONE]" {
			t.Fatalf("last event %q, want [DONE]", evs[len(evs)-1])
		}
		var text strings.Builder
		usageChunks := 0
		for _, ev := range evs[:len(evs)-1] {
			var ch struct {
				Choices []struct {
					Delta struct{ Content string }
				}
				Usage *openai.Usage
			}
			if err := json.Unmarshal([]byte(ev), &ch); err != nil {
				t.Fatalf("event %q: %v", ev, err)
			}
			if ch.Usage != nil {
				usageChunks++
			}
			for _, c := range ch.Choices {
				text.WriteString(c.Delta.Content)
			}
		}
		if text.String() != "Echo: one two three" {
			t.Errorf("streamed %q", text.String())
		}
		if want := map[bool]int{false: 0, true: 1}[includeUsage]; usageChunks != want {
			t.Errorf("include_usage=%v: %d usage chunks, want %d", includeUsage, usageChunks, want)
		}
		if cost, err := strconv.ParseFloat(resp.Trailer.Get(HeaderResponseCost), 64); err != nil || cost <= 0 {
			t.Errorf("trailer %s = %q, want the cost", HeaderResponseCost, resp.Trailer.Get(HeaderResponseCost))
		}
	}
}

func TestStream_FailureAfterTheFirstChunkEndsWithAnErrorEvent(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	resp := h.post(t, "/v1/chat/completions", `{"model":"midfail","stream":true,"messages":[]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, want 200 (headers went out with the first chunk)", resp.StatusCode)
	}
	evs := events(t, resp.Body)
	if len(evs) != 2 || evs[0] != `{"n":1}` {
		t.Fatalf("events %q, want the first chunk then an error", evs)
	}
	var e struct{ Error openai.Error }
	if err := json.Unmarshal([]byte(evs[1]), &e); err != nil || e.Error.Message != "upstream died" || e.Error.Type != openai.TypeServer {
		t.Errorf("last event %q, want an OpenAI error object", evs[1])
	}
}

func TestStream_FailureBeforeTheFirstChunkIsAJSONError(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	resp := h.post(t, "/v1/chat/completions", `{"model":"limited","stream":true,"messages":[]}`)
	if e := readError(t, resp); resp.StatusCode != 429 || e.Type != openai.TypeRateLimit {
		t.Errorf("got %d %+v, want a 429 JSON error", resp.StatusCode, e)
	}
}

// TestStream_ClientThatLeavesDoesNotEndTheUpstreamCall: the upstream bills what it goes on
// generating, so the gateway reads on (without writing) until the stream ends or the
// router's timeout passes, and a stream that never reported usage is charged its
// reservation.
func TestStream_ClientThatLeavesDoesNotEndTheUpstreamCall(t *testing.T) {
	cfg := testConfig()
	cfg.RouterSettings.Timeout = 0.5
	lim := &fakeLimiter{}
	h := newHarness(t, cfg, nil, lim)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"hang","stream":true,"max_tokens":10,"messages":[]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: {\"n\":1}\n" {
		t.Fatalf("first line %q (%v), want the first chunk flushed before the stream ends", line, err)
	}
	cancel()
	select {
	case <-h.fake.canceled:
		t.Fatal("the upstream call was canceled when the client went away")
	case <-time.After(100 * time.Millisecond):
	}
	lim.waitOutcomes(t, 1)
	lim.mu.Lock()
	defer lim.mu.Unlock()
	if ch, o := lim.charges[0], lim.outcomes[0]; o.Cost != ch.Cost || o.Usage.TotalTokens != ch.Tokens {
		t.Errorf("outcome cost %g usage %+v, want the reservation's %g and %d tokens", o.Cost, o.Usage, ch.Cost, ch.Tokens)
	}
}

func TestLogLine_HasTheFactsButNoContentOrKeys(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	resp := h.post(t, "/v1/chat/completions", `{"model":"gpt","messages":[{"role":"user","content":"my secret prompt"}]}`)
	resp.Body.Close()
	var line map[string]any
	deadline := time.Now().Add(2 * time.Second)
	for line == nil && time.Now().Before(deadline) { // the line is written after the body
		for _, l := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
			if strings.Contains(l, `"llm request"`) {
				_ = json.Unmarshal([]byte(l), &line)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if line == nil {
		t.Fatalf("no request log line in %s", h.logs.String())
	}
	for k, want := range map[string]any{"request_id": resp.Header.Get(HeaderCallID), "model": "gpt", "deployment": "gpt-1", "status": 200.0, "prompt_tokens": 1000.0, "completion_tokens": 100.0} {
		if line[k] != want {
			t.Errorf("log %s = %v, want %v", k, line[k], want)
		}
	}
	for _, secret := range []string{"my secret prompt", "sk-upstream-secret"} {
		if strings.Contains(h.logs.String(), secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

func TestUnknownRoute_IsAnOpenAIError(t *testing.T) {
	h := newHarness(t, testConfig(), nil, nil)
	resp := h.post(t, "/v1/audio/speech", `{}`)
	if e := readError(t, resp); resp.StatusCode != 404 || e.Type != openai.TypeNotFound {
		t.Errorf("got %d %+v, want a 404 not_found_error", resp.StatusCode, e)
	}
}
