package openaicompat_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/openaicompat"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

const testKey = "sk-test-0123456789abcdef"

// openAISpec is the openai row of the table.
func openAISpec(t *testing.T) openaicompat.Spec {
	t.Helper()
	for _, s := range openaicompat.Specs {
		if s.Prefix == "openai" {
			return s
		}
	}
	t.Fatal("no openai spec")
	return openaicompat.Spec{}
}

// call is a chat call to the fake upstream u.
func call(u *providertest.Upstream, body string) *provider.Call {
	return &provider.Call{
		Kind:   provider.Chat,
		Body:   []byte(body),
		Model:  "gpt-4o-2024-08-06",
		Params: config.LiteLLMParams{Model: "openai/gpt-4o-2024-08-06", APIBase: u.URL + "/v1", APIKey: testKey},
	}
}

const chatResponse = `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-2024-08-06",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0}},` +
	`"system_fingerprint":"fp_1","service_tier":"default"}`

func TestDo_ForwardsBodyWithOnlyModelReplaced(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.JSON(200, chatResponse))
	c := openaicompat.New(u.Client(), openAISpec(t))
	body := `{"model":"my-alias","messages":[{"role":"user","content":"Hi"}],` +
		`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto",` +
		`"response_format":{"type":"json_object"},"logprobs":true,"top_logprobs":2,"seed":7,"n":2,"user":"u-1",` +
		`"metadata":{"tags":["a"]},"mock_response":"x","unknown_future_field":{"nested":[1,2,"é\u0000"]}}`

	resp, err := c.Do(context.Background(), call(u, body))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if string(resp.Body) != chatResponse {
		t.Errorf("response body changed:\ngot:  %s\nwant: %s", resp.Body, chatResponse)
	}
	wantUsage := openai.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15, PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 4}, ServiceTier: "default"}
	if got := resp.Usage; got.PromptTokens != 12 || got.CompletionTokens != 3 || got.TotalTokens != 15 ||
		got.PromptTokensDetails == nil || got.PromptTokensDetails.CachedTokens != 4 || got.ServiceTier != "default" { // the tier prices it
		t.Errorf("usage = %+v, want %+v", got, wantUsage)
	}

	req := u.Last(t)
	if req.Method != http.MethodPost || req.Path != "/v1/chat/completions" {
		t.Errorf("request = %s %s, want POST /v1/chat/completions", req.Method, req.Path)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer "+testKey {
		t.Errorf("Authorization = %q, want the bearer key", got)
	}
	if got := req.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	want := `{"model":"gpt-4o-2024-08-06","messages":[{"role":"user","content":"Hi"}],` +
		`"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto",` +
		`"response_format":{"type":"json_object"},"logprobs":true,"top_logprobs":2,"seed":7,"n":2,"user":"u-1",` +
		`"unknown_future_field":{"nested":[1,2,"é\u0000"]}}`
	if string(req.Body) != want {
		t.Errorf("upstream body:\ngot:  %s\nwant: %s", req.Body, want)
	}
}

func TestDo_DoesNotModifyTheCallersBody(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.JSON(200, chatResponse))
	c := openaicompat.New(u.Client(), openAISpec(t))
	body := `{"model":"alias","messages":[],"metadata":{"a":"b"}}`
	cl := call(u, body)
	if _, err := c.Do(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	if string(cl.Body) != body {
		t.Errorf("Call.Body = %s, want it unchanged %s", cl.Body, body)
	}
}

func TestDo_Kinds(t *testing.T) {
	tests := []struct {
		kind      provider.Kind
		path      string
		response  string
		wantUsage openai.Usage
	}{
		{provider.Chat, "/v1/chat/completions", chatResponse, openai.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15}},
		{provider.Completion, "/v1/completions",
			`{"id":"cmpl-1","object":"text_completion","created":1,"model":"gpt-3.5-turbo-instruct","choices":[{"text":" there","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":2,"completion_tokens":5,"total_tokens":7}}`,
			openai.Usage{PromptTokens: 2, CompletionTokens: 5, TotalTokens: 7}},
		{provider.Embedding, "/v1/embeddings",
			`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0093]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}`,
			openai.Usage{PromptTokens: 8, TotalTokens: 8}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			u := providertest.NewUpstream(t, providertest.JSON(200, tt.response))
			cl := call(u, `{"model":"x","input":"hello"}`)
			cl.Kind = tt.kind
			resp, err := openaicompat.New(u.Client(), openAISpec(t)).Do(context.Background(), cl)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if got := u.Last(t).Path; got != tt.path {
				t.Errorf("path = %s, want %s", got, tt.path)
			}
			if string(resp.Body) != tt.response {
				t.Errorf("body = %s, want %s", resp.Body, tt.response)
			}
			if g := resp.Usage; g.PromptTokens != tt.wantUsage.PromptTokens || g.CompletionTokens != tt.wantUsage.CompletionTokens || g.TotalTokens != tt.wantUsage.TotalTokens {
				t.Errorf("usage = %+v, want %+v", g, tt.wantUsage)
			}
		})
	}
}

func TestDo_SendsHeadersAndExtraHeaders(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.JSON(200, chatResponse))
	cl := call(u, `{"model":"x"}`)
	cl.Params.Headers = map[string]string{"X-Tenant": "a", "OpenAI-Organization": "org-1"}
	cl.Params.ExtraHeaders = map[string]string{"X-Tenant": "b", "HTTP-Referer": "https://example.com"}
	if _, err := openaicompat.New(u.Client(), openAISpec(t)).Do(context.Background(), cl); err != nil {
		t.Fatal(err)
	}
	h := u.Last(t).Header
	for k, want := range map[string]string{"X-Tenant": "b", "OpenAI-Organization": "org-1", "HTTP-Referer": "https://example.com"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestDo_UpstreamErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    provider.Error
		wantIn  string // a fragment of the message
	}{
		{
			name: "context length exceeded (OpenAI)",
			handler: providertest.JSON(400, `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",`+
				`"type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`),
			want:   provider.Error{Status: 400, Type: openai.TypeInvalidRequest, Code: "context_length_exceeded", ContextWindow: true},
			wantIn: "maximum context length is 128000",
		},
		{
			name:    "context length exceeded (vLLM, no code)",
			handler: providertest.JSON(400, `{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400}`),
			want:    provider.Error{Status: 400, Type: openai.TypeInvalidRequest, Code: "context_length_exceeded", ContextWindow: true},
			wantIn:  "maximum context length is 4096",
		},
		{
			name:    "plain bad request",
			handler: providertest.JSON(400, `{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`),
			want:    provider.Error{Status: 400, Type: openai.TypeInvalidRequest, Code: "invalid_value"},
			wantIn:  "Invalid value for 'temperature'",
		},
		{
			name:    "unauthorized, key echoed back is redacted",
			handler: providertest.JSON(401, `{"error":{"message":"Incorrect API key provided: `+testKey+`.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`),
			want:    provider.Error{Status: 401, Type: openai.TypeAuth, Code: "invalid_api_key"},
			wantIn:  "Incorrect API key provided: [redacted].",
		},
		{
			name: "rate limited with retry-after seconds",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "7")
				providertest.JSON(429, `{"error":{"message":"Rate limit reached for gpt-4o","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)(w, r)
			},
			want:   provider.Error{Status: 429, Type: openai.TypeRateLimit, Code: "rate_limit_exceeded", RetryAfter: 7 * time.Second, Retryable: true},
			wantIn: "Rate limit reached",
		},
		{
			name: "rate limited with retry-after-ms",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After-Ms", "1500")
				w.Header().Set("Retry-After", "2")
				providertest.JSON(429, `{"error":{"message":"slow down","type":"tokens"}}`)(w, r)
			},
			want:   provider.Error{Status: 429, Type: openai.TypeRateLimit, RetryAfter: 1500 * time.Millisecond, Retryable: true},
			wantIn: "slow down",
		},
		{
			name:    "server error",
			handler: providertest.JSON(500, `{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`),
			want:    provider.Error{Status: 500, Type: openai.TypeServer, Retryable: true},
			wantIn:  "server had an error",
		},
		{
			name: "unavailable with an HTML page",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(503)
				_, _ = w.Write([]byte("<html><body>503 Service Temporarily Unavailable</body></html>"))
			},
			want:   provider.Error{Status: 503, Type: openai.TypeUnavailable, Retryable: true},
			wantIn: "upstream answered 503 Service Unavailable",
		},
		{
			name:    "Mistral validation error object",
			handler: providertest.JSON(422, `{"object":"error","message":{"detail":[{"type":"extra_forbidden","loc":["body","foo"],"msg":"Extra inputs are not permitted"}]},"type":"invalid_request_error","param":null,"code":null}`),
			want:    provider.Error{Status: 422, Type: openai.TypeInvalidRequest},
			wantIn:  "Extra inputs are not permitted",
		},
		{
			name:    "FastAPI detail",
			handler: providertest.JSON(404, `{"detail":"Not Found"}`),
			want:    provider.Error{Status: 404, Type: openai.TypeInvalidRequest},
			wantIn:  "Not Found",
		},
		{
			name:    "200 with invalid JSON",
			handler: providertest.JSON(200, `{"id":"chatcmpl-1","choices":[`),
			want:    provider.Error{Status: 502, Type: openai.TypeServer, Retryable: true},
			wantIn:  "invalid JSON",
		},
		{
			name:    "200 with an error object carrying the status (OpenRouter)",
			handler: providertest.JSON(200, `{"error":{"message":"Provider returned error","code":429,"metadata":{"provider_name":"X"}}}`),
			want:    provider.Error{Status: 429, Type: openai.TypeRateLimit, Retryable: true},
			wantIn:  "Provider returned error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, tt.handler)
			_, err := openaicompat.New(u.Client(), openAISpec(t)).Do(context.Background(), call(u, `{"model":"x","messages":[]}`))
			checkError(t, err, tt.want, tt.wantIn)
		})
	}
}

// checkError fails t unless err is a *provider.Error that matches want in status, type,
// code, retry-after and flags, whose message contains wantIn and holds no secret.
func checkError(t *testing.T, err error, want provider.Error, wantIn string) {
	t.Helper()
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *provider.Error", err, err)
	}
	if pe.Status != want.Status || pe.Type != want.Type || pe.Code != want.Code || pe.RetryAfter != want.RetryAfter ||
		pe.Retryable != want.Retryable || pe.ContextWindow != want.ContextWindow {
		t.Errorf("error = {Status:%d Type:%q Code:%q RetryAfter:%v Retryable:%v ContextWindow:%v}, want {Status:%d Type:%q Code:%q RetryAfter:%v Retryable:%v ContextWindow:%v}",
			pe.Status, pe.Type, pe.Code, pe.RetryAfter, pe.Retryable, pe.ContextWindow,
			want.Status, want.Type, want.Code, want.RetryAfter, want.Retryable, want.ContextWindow)
	}
	if pe.Provider != "openai" {
		t.Errorf("provider = %q, want openai", pe.Provider)
	}
	if !strings.Contains(pe.Message, wantIn) {
		t.Errorf("message = %q, want it to contain %q", pe.Message, wantIn)
	}
	if strings.Contains(err.Error(), testKey) || strings.Contains(pe.Message, testKey) {
		t.Errorf("error leaks the API key: %q", err)
	}
}

func TestDo_ConnectionReset(t *testing.T) {
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		providertest.Hijack(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":")
	})
	_, err := openaicompat.New(u.Client(), openAISpec(t)).Do(context.Background(), call(u, `{"model":"x"}`))
	checkError(t, err, provider.Error{Status: 502, Type: openai.TypeServer, Retryable: true}, "upstream request failed")
}

func TestDo_UnreachableUpstreamDoesNotLeakTheURL(t *testing.T) {
	u := providertest.NewUpstream(t, providertest.JSON(200, chatResponse))
	cl := call(u, `{"model":"x"}`)
	u.Close()
	cl.Params.APIBase = u.URL + "/v1?api-key=query-secret-value"
	_, err := openaicompat.New(u.Client(), openAISpec(t)).Do(context.Background(), cl)
	checkError(t, err, provider.Error{Status: 502, Type: openai.TypeServer, Retryable: true}, "upstream request failed")
	if strings.Contains(err.Error(), "query-secret-value") || strings.Contains(err.Error(), u.URL) {
		t.Errorf("error leaks the upstream URL: %v", err)
	}
}

func TestDo_TimeoutAbortsASlowUpstream(t *testing.T) {
	aborted := make(chan struct{})
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			close(aborted)
		case <-time.After(5 * time.Second):
		}
	})
	cl := call(u, `{"model":"x"}`)
	cl.Timeout = 50 * time.Millisecond
	start := time.Now()
	_, err := openaicompat.New(u.Client(), openAISpec(t)).Do(context.Background(), cl)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Do took %v with a 50ms timeout", took)
	}
	checkError(t, err, provider.Error{Status: 408, Type: openai.TypeTimeout, Retryable: true}, "timed out")
	waitClosed(t, aborted, "upstream request was not aborted")
}

func TestDo_CallerCancelAbortsTheUpstreamRequest(t *testing.T) {
	arrived, aborted := make(chan struct{}), make(chan struct{})
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-r.Context().Done()
		close(aborted)
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, err := openaicompat.New(u.Client(), openAISpec(t)).Do(ctx, call(u, `{"model":"x"}`))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		t.Errorf("err = %v: a cancelled call is not an upstream failure", pe)
	}
	waitClosed(t, aborted, "upstream request was not aborted")
}

func TestDo_ConfigurationErrors(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	t.Setenv("OPENAI_BASE_URL", "")
	t.Setenv("OPENAI_API_BASE", "")
	c := openaicompat.New(http.DefaultClient, openAISpec(t))
	cl := &provider.Call{Kind: provider.Chat, Body: []byte(`{}`), Model: "gpt-4o"}
	_, err := c.Do(context.Background(), cl)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != 500 || !pe.Retryable || !strings.Contains(pe.Message, "OPENAI_API_KEY") {
		t.Errorf("missing key: err = %v, want a retryable 500 naming OPENAI_API_KEY", err)
	}
	cl.Params.APIKey = testKey
	cl.Kind = "images"
	if _, err := c.Do(context.Background(), cl); !errors.As(err, &pe) || pe.Status != 400 {
		t.Errorf("unknown kind: err = %v, want 400", err)
	}
	cl.Kind = provider.Chat
	cl.Body = []byte(`[1,2]`)
	if _, err := c.Do(context.Background(), cl); !errors.As(err, &pe) || pe.Status != 400 {
		t.Errorf("array body: err = %v, want 400", err)
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Error(msg)
	}
}

// TestDo_AppliesTheDeploymentsMaxTokens: litellm_params.max_tokens limits a request that
// sets no limit (the gateway reserves for it), and only such a request.
func TestDo_AppliesTheDeploymentsMaxTokens(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"model":"a","messages":[]}`, `"max_tokens":77`},
		{`{"model":"a","messages":[],"max_tokens":5}`, `"max_tokens":5`},
		{`{"model":"a","messages":[],"max_completion_tokens":5}`, `"max_completion_tokens":5}`},
	}
	for _, tt := range tests {
		u := providertest.NewUpstream(t, providertest.JSON(200, chatResponse))
		c := openaicompat.New(u.Client(), openAISpec(t))
		cl := call(u, tt.body)
		cl.Params.MaxTokens = 77
		cl.Request = &openai.Request{}
		if err := json.Unmarshal([]byte(tt.body), cl.Request); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Do(context.Background(), cl); err != nil {
			t.Fatal(err)
		}
		if got := string(u.Last(t).Body); !strings.Contains(got, tt.want) || strings.Count(got, "max_") != 1 {
			t.Errorf("%s: upstream body %s, want only %s", tt.body, got, tt.want)
		}
	}
}

func TestDo_StoredResponses(t *testing.T) {
	for _, tc := range []struct {
		stored      provider.Stored
		method, url string
	}{
		{provider.Stored{Method: http.MethodGet, ID: "resp_1"}, "GET", "/v1/responses/resp_1"},
		{provider.Stored{Method: http.MethodDelete, ID: "resp_1"}, "DELETE", "/v1/responses/resp_1"},
		{provider.Stored{Method: http.MethodGet, ID: "resp_1", Part: provider.StoredInputItems, Query: "after=item_1&order=asc"}, "GET", "/v1/responses/resp_1/input_items?after=item_1&order=asc"},
		{provider.Stored{Method: http.MethodPost, ID: "resp_1", Part: provider.StoredCancel}, "POST", "/v1/responses/resp_1/cancel"},
		{provider.Stored{Method: http.MethodGet, ID: "../chat/completions"}, "GET", "/v1/responses/..%2Fchat%2Fcompletions"},
	} {
		var got string
		u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			got = r.Method + " " + r.URL.RequestURI()
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"id":"resp_1","object":"response"}`)
		})
		cl := call(u, "")
		cl.Kind, cl.Body, cl.Stored = provider.StoredResponse, nil, &tc.stored
		resp, err := openaicompat.New(u.Client(), openAISpec(t)).Do(context.Background(), cl)
		if err != nil || string(resp.Body) != `{"id":"resp_1","object":"response"}` {
			t.Fatalf("%+v: %v %v", tc.stored, resp, err)
		}
		if want := tc.method + " " + tc.url; got != want {
			t.Errorf("upstream got %q, want %q", got, want)
		}
	}
}

func TestDo_StoredResponsesRefusesOtherCalls(t *testing.T) {
	for _, st := range []provider.Stored{
		{Method: http.MethodPost, ID: "resp_1"},
		{Method: http.MethodGet, ID: "resp_1", Part: provider.StoredCancel},
		{Method: http.MethodDelete, ID: "resp_1", Part: provider.StoredInputItems},
		{Method: http.MethodPost, ID: "resp_1", Part: "../../chat/completions"},
		{Method: http.MethodPost, Part: provider.StoredCancel},
	} {
		u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			t.Errorf("%+v reached the upstream: %s %s", st, r.Method, r.URL)
		})
		cl := call(u, "")
		cl.Kind, cl.Body, cl.Stored = provider.StoredResponse, nil, &st
		var pe *provider.Error
		if _, err := openaicompat.New(u.Client(), openAISpec(t)).Do(context.Background(), cl); !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
			t.Errorf("%+v: err %v, want a 400", st, err)
		}
	}
}
