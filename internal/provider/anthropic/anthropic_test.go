package anthropic

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

const testKey = "sk-ant-test-secret"

func chatCall(base, body string) *provider.Call {
	return &provider.Call{
		Kind:   provider.Chat,
		Body:   []byte(body),
		Model:  "claude-sonnet-4",
		Params: config.LiteLLMParams{APIKey: testKey, APIBase: base},
	}
}

func TestDo_TranslatesAnswerAndSendsAuthHeaders(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{
		"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-20250514",
		"content":[{"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"Let me check."},
			{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}}],
		"stop_reason":"tool_use","stop_sequence":null,
		"usage":{"input_tokens":10,"output_tokens":20,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000}}`))
	c := chatCall(up.URL, `{"model":"claude","messages":[{"role":"user","content":"Weather?"}]}`)
	c.Params.ExtraHeaders = map[string]string{"anthropic-beta": "prompt-caching-2024-07-31"}

	resp, err := (&Provider{}).Do(context.Background(), c)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	req := up.Last(t)
	if req.Method != http.MethodPost || req.Path != "/v1/messages" {
		t.Errorf("request = %s %s, want POST /v1/messages", req.Method, req.Path)
	}
	for h, want := range map[string]string{"X-Api-Key": testKey, "Anthropic-Version": "2023-06-01", "Anthropic-Beta": "prompt-caching-2024-07-31", "Content-Type": "application/json"} {
		if got := req.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	providertest.JSONEqual(t, req.Body, []byte(`{"model":"claude-sonnet-4","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"Weather?"}]}]}`))

	providertest.JSONEqual(t, []byte(providertest.WithoutCreated(t, resp.Body)), []byte(`{
		"id":"msg_01","object":"chat.completion","model":"claude-sonnet-4-20250514",
		"choices":[{"index":0,"finish_reason":"tool_calls","logprobs":null,"message":{"role":"assistant","content":"Let me check.",
			"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
		"usage":{"prompt_tokens":1110,"completion_tokens":20,"total_tokens":1130,
			"prompt_tokens_details":{"cached_tokens":1000},"cache_creation_input_tokens":100}}`))
	want := openai.Usage{PromptTokens: 1110, CompletionTokens: 20, TotalTokens: 1130,
		PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 1000}, CacheCreationInputTokens: 100}
	if got := resp.Usage; got.PromptTokens != want.PromptTokens || got.TotalTokens != want.TotalTokens ||
		got.PromptTokensDetails == nil || *got.PromptTokensDetails != *want.PromptTokensDetails || got.CacheCreationInputTokens != 100 {
		t.Errorf("Usage = %+v, want %+v", got, want)
	}
}

func TestDo_APIKeyFromEnvironment(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{"id":"msg","model":"m","content":[],"stop_reason":"end_turn","usage":{}}`))
	t.Setenv(KeyEnv, "env-key")
	c := chatCall(up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`)
	c.Params.APIKey = ""
	if _, err := (&Provider{}).Do(context.Background(), c); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got := up.Last(t).Header.Get("X-Api-Key"); got != "env-key" {
		t.Errorf("x-api-key = %q, want the %s value", got, KeyEnv)
	}

	t.Setenv(KeyEnv, "")
	_, err := (&Provider{}).Do(context.Background(), c)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized {
		t.Errorf("without any key: err = %v, want a 401 *provider.Error", err)
	}
}

func TestDo_ClassifiesErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		header        http.Header
		body          string
		wantStatus    int
		wantRetryable bool
		wantContext   bool
		wantAfter     time.Duration
	}{
		{"rate limit is retryable with retry-after", 429, http.Header{"Retry-After": {"7"}},
			`{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit"}}`, 429, true, false, 7 * time.Second},
		{"overloaded 529 is a retryable 503", 529, nil,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, 503, true, false, 0},
		{"api error 500 is retryable", 500, nil,
			`{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`, 500, true, false, 0},
		{"prompt too long is a context window error", 400, nil,
			`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"}}`, 400, false, true, 0},
		{"other invalid requests are final", 400, nil,
			`{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: must be positive"}}`, 400, false, false, 0},
		{"authentication errors are final", 401, nil,
			`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, 401, false, false, 0},
		{"a non-JSON gateway error is still classified", 502, nil, `<html>Bad Gateway</html>`, 502, true, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				for k, vs := range tt.header {
					w.Header()[k] = vs
				}
				providertest.JSON(tt.status, tt.body)(w, r)
			})
			_, err := (&Provider{}).Do(context.Background(), chatCall(up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *provider.Error", err)
			}
			if pe.Status != tt.wantStatus || pe.Retryable != tt.wantRetryable || pe.ContextWindow != tt.wantContext || pe.RetryAfter != tt.wantAfter {
				t.Errorf("got status %d retryable %v context %v retry-after %v, want %d %v %v %v",
					pe.Status, pe.Retryable, pe.ContextWindow, pe.RetryAfter, tt.wantStatus, tt.wantRetryable, tt.wantContext, tt.wantAfter)
			}
			if pe.Provider != name || !strings.HasPrefix(pe.Message, "anthropic: ") {
				t.Errorf("provider %q message %q, want anthropic and a prefixed message", pe.Provider, pe.Message)
			}
		})
	}
}

func TestDo_ErrorsNeverContainTheKey(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(401,
		`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key `+testKey+`"}}`))
	_, err := (&Provider{}).Do(context.Background(), chatCall(up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
	if err == nil || strings.Contains(err.Error(), testKey) {
		t.Fatalf("err = %v, want an error without the API key", err)
	}
}

func TestDo_TransportFailuresAreRetryable(t *testing.T) {
	slow := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	down := providertest.NewUpstream(t, providertest.JSON(200, `{}`))
	down.Close()
	tests := []struct {
		name       string
		call       *provider.Call
		wantStatus int
	}{
		{"timeout", func() *provider.Call {
			c := chatCall(slow.URL, `{"messages":[{"role":"user","content":"Hi"}]}`)
			c.Timeout = 50 * time.Millisecond
			return c
		}(), http.StatusRequestTimeout},
		{"connection refused", chatCall(down.URL, `{"messages":[{"role":"user","content":"Hi"}]}`), http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Provider{}).Do(context.Background(), tt.call)
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Status != tt.wantStatus || !pe.Retryable {
				t.Fatalf("err = %v, want a retryable %d *provider.Error", err, tt.wantStatus)
			}
		})
	}
}

func TestDo_RefusesOtherKinds(t *testing.T) {
	c := chatCall("http://127.0.0.1:1", `{"input":"x"}`)
	c.Kind = provider.Embedding
	_, err := (&Provider{}).Do(context.Background(), c)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
		t.Fatalf("err = %v, want a 400 *provider.Error", err)
	}
}

func TestCompletionCallsGoThroughChat(t *testing.T) {
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if body, _ := io.ReadAll(r.Body); strings.Contains(string(body), `"stream":true`) {
			providertest.WriteSSE(w, toolStream...)
			return
		}
		providertest.JSON(200, `{"id":"msg_1","model":"claude-x","content":[{"type":"text","text":"Hi!"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}`)(w, r)
	})
	c := chatCall(up.URL, `{"model":"claude","prompt":"Say hi","max_tokens":10}`)
	c.Kind = provider.Completion
	resp, err := (&Provider{}).Do(context.Background(), c)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	providertest.JSONEqual(t, up.Last(t).Body, []byte(`{"model":"claude-sonnet-4","max_tokens":10,"messages":[{"role":"user","content":[{"type":"text","text":"Say hi"}]}]}`))
	providertest.JSONEqual(t, []byte(providertest.WithoutCreated(t, resp.Body)), []byte(`{"id":"msg_1","object":"text_completion","model":"claude-x",
		"choices":[{"index":0,"text":"Hi!","logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`))

	c.Body = []byte(`{"model":"claude","prompt":"Say hi","stream":true}`)
	s, err := (&Provider{}).Stream(context.Background(), c)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	chunks, err := providertest.Drain(t, s)
	if err != nil || len(chunks) != 3 || !strings.Contains(chunks[0], `"object":"text_completion"`) || !strings.Contains(chunks[0], `"text":"Let me "`) {
		t.Errorf("stream chunks %v (err %v), want 3 text_completion chunks: two texts and the finish", chunks, err)
	}
}
