package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

const testKey = "AIza-test-secret"

func call(kind provider.Kind, base, body string) *provider.Call {
	return &provider.Call{
		Kind:   kind,
		Body:   []byte(body),
		Model:  "gemini-2.5-flash",
		Params: config.LiteLLMParams{APIKey: testKey, APIBase: base},
	}
}

func TestDo_TranslatesAnswer(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{
		"candidates":[{"index":0,"finishReason":"STOP","content":{"role":"model","parts":[
			{"text":"thinking...","thought":true},{"text":"Checking "},{"text":"now."},
			{"functionCall":{"name":"weather","args":{"city":"Paris"}}}]}}],
		"usageMetadata":{"promptTokenCount":120,"candidatesTokenCount":30,"thoughtsTokenCount":10,"cachedContentTokenCount":100,"totalTokenCount":160},
		"modelVersion":"gemini-2.5-flash-001","responseId":"resp-1"}`))
	resp, err := (&Provider{}).Do(context.Background(), call(provider.Chat, up.URL, `{"messages":[{"role":"user","content":"Weather?"}]}`))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	req := up.Last(t)
	if req.Path != "/v1beta/models/gemini-2.5-flash:generateContent" || req.Header.Get("X-Goog-Api-Key") != testKey {
		t.Errorf("request %s with key header %q, want generateContent with the key", req.Path, req.Header.Get("X-Goog-Api-Key"))
	}
	if strings.Contains(req.Query, testKey) {
		t.Error("the key was sent in the URL")
	}
	var got struct {
		ID      string
		Model   string
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct {
				Content   *string
				ToolCalls []struct {
					ID       string
					Type     string
					Function struct{ Name, Arguments string }
				} `json:"tool_calls"`
			}
		}
	}
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "resp-1" || got.Model != "gemini-2.5-flash-001" || len(got.Choices) != 1 {
		t.Fatalf("id %q model %q choices %d, want resp-1, gemini-2.5-flash-001, 1", got.ID, got.Model, len(got.Choices))
	}
	ch := got.Choices[0]
	if ch.FinishReason != "tool_calls" || ch.Message.Content == nil || *ch.Message.Content != "Checking now." {
		t.Errorf("finish %q content %v, want tool_calls and the text without thoughts", ch.FinishReason, ch.Message.Content)
	}
	if len(ch.Message.ToolCalls) != 1 || !strings.HasPrefix(ch.Message.ToolCalls[0].ID, "call_") ||
		ch.Message.ToolCalls[0].Function.Name != "weather" || ch.Message.ToolCalls[0].Function.Arguments != `{"city":"Paris"}` {
		t.Errorf("tool calls = %+v, want one weather call with a generated id", ch.Message.ToolCalls)
	}
	u := resp.Usage
	if u.PromptTokens != 120 || u.CompletionTokens != 40 || u.TotalTokens != 160 || u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 100 {
		t.Errorf("usage = %+v, want 120 prompt (100 cached), 40 completion (thoughts included), 160 total", u)
	}
}

func TestDo_BlockedPromptIsContentFilter(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{"promptFeedback":{"blockReason":"SAFETY"},"usageMetadata":{"promptTokenCount":8}}`))
	resp, err := (&Provider{}).Do(context.Background(), call(provider.Chat, up.URL, `{"messages":[{"role":"user","content":"x"}]}`))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	providertest.JSONEqual(t, []byte(providertest.WithoutCreated(t, resp.Body)), []byte(`{"id":"`+providertest.ID(t, resp.Body)+`","object":"chat.completion","model":"gemini-2.5-flash",
		"choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter","logprobs":null}],
		"usage":{"prompt_tokens":8,"completion_tokens":0,"total_tokens":8}}`))
}

func TestDo_ClassifiesErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		wantStatus    int
		wantRetryable bool
		wantContext   bool
		wantAfter     time.Duration
	}{
		{"quota exhaustion is retryable after RetryInfo's delay", 429,
			`{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"36s"}]}}`,
			429, true, false, 36 * time.Second},
		{"unavailable is retryable", 503, `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, 503, true, false, 0},
		{"too many input tokens is a context window error", 400,
			`{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`,
			400, false, true, 0},
		{"an invalid key is final", 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}`, 400, false, false, 0},
		{"an unknown model is not found", 404, `{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}`, 404, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, providertest.JSON(tt.status, tt.body))
			_, err := (&Provider{}).Do(context.Background(), call(provider.Chat, up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *provider.Error", err)
			}
			if pe.Status != tt.wantStatus || pe.Retryable != tt.wantRetryable || pe.ContextWindow != tt.wantContext || pe.RetryAfter != tt.wantAfter {
				t.Errorf("got status %d retryable %v context %v retry-after %v, want %d %v %v %v",
					pe.Status, pe.Retryable, pe.ContextWindow, pe.RetryAfter, tt.wantStatus, tt.wantRetryable, tt.wantContext, tt.wantAfter)
			}
		})
	}
}

func TestDo_ErrorsNeverContainTheKey(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(400, `{"error":{"code":400,"message":"API key `+testKey+` not valid","status":"INVALID_ARGUMENT"}}`))
	_, err := (&Provider{}).Do(context.Background(), call(provider.Chat, up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
	if err == nil || strings.Contains(err.Error(), testKey) {
		t.Fatalf("err = %v, want an error without the API key", err)
	}
}

func TestDo_NoKeyIsAnAuthError(t *testing.T) {
	t.Setenv(KeyEnv, "")
	c := call(provider.Chat, "http://127.0.0.1:1", `{"messages":[{"role":"user","content":"Hi"}]}`)
	c.Params.APIKey = ""
	_, err := (&Provider{}).Do(context.Background(), c)
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized {
		t.Fatalf("err = %v, want a 401 *provider.Error", err)
	}
}

func TestEmbed(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		answer     string
		wantReq    string
		wantData   string
		wantTokens int
	}{
		{
			name:   "an array of strings is one batch; usage is estimated when Gemini reports none",
			body:   `{"model":"e","input":["hello world!","abc"],"dimensions":3}`,
			answer: `{"embeddings":[{"values":[0.1,0.2,0.3]},{"values":[0.4,0.5,0.6]}]}`,
			wantReq: `{"requests":[
				{"model":"models/gemini-2.5-flash","content":{"parts":[{"text":"hello world!"}]},"outputDimensionality":3},
				{"model":"models/gemini-2.5-flash","content":{"parts":[{"text":"abc"}]},"outputDimensionality":3}]}`,
			wantData:   `[{"object":"embedding","index":0,"embedding":[0.1,0.2,0.3]},{"object":"embedding","index":1,"embedding":[0.4,0.5,0.6]}]`,
			wantTokens: 4, // 12 bytes → 3, 3 bytes → 1
		},
		{
			name:       "a string input, base64 encoding and reported usage",
			body:       `{"model":"e","input":"hi","encoding_format":"base64"}`,
			answer:     `{"embeddings":[{"values":[1,0.5]}],"usageMetadata":{"promptTokenCount":7}}`,
			wantReq:    `{"requests":[{"model":"models/gemini-2.5-flash","content":{"parts":[{"text":"hi"}]}}]}`,
			wantData:   `[{"object":"embedding","index":0,"embedding":"AACAPwAAAD8="}]`,
			wantTokens: 7,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, providertest.JSON(200, tt.answer))
			resp, err := (&Provider{}).Do(context.Background(), call(provider.Embedding, up.URL, tt.body))
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			req := up.Last(t)
			if req.Path != "/v1beta/models/gemini-2.5-flash:batchEmbedContents" {
				t.Errorf("path = %s, want batchEmbedContents", req.Path)
			}
			providertest.JSONEqual(t, req.Body, []byte(tt.wantReq))
			var got struct {
				Object string
				Data   json.RawMessage
				Usage  struct{ PromptTokens, TotalTokens int } `json:"usage"`
			}
			if err := json.Unmarshal(resp.Body, &got); err != nil {
				t.Fatal(err)
			}
			providertest.JSONEqual(t, got.Data, []byte(tt.wantData))
			if got.Object != "list" || resp.Usage.PromptTokens != tt.wantTokens || resp.Usage.TotalTokens != tt.wantTokens {
				t.Errorf("object %q usage %+v, want list and %d tokens", got.Object, resp.Usage, tt.wantTokens)
			}
		})
	}
}

func TestEmbed_CountMismatchIsAnUpstreamError(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{"embeddings":[]}`))
	_, err := (&Provider{}).Do(context.Background(), call(provider.Embedding, up.URL, `{"input":["a"]}`))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusBadGateway {
		t.Fatalf("err = %v, want a 502 *provider.Error", err)
	}
}

func TestThoughtSignaturesSurviveTheClientRoundTrip(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{"candidates":[{"index":0,"finishReason":"STOP","content":{"role":"model","parts":[
		{"functionCall":{"name":"now","args":{}},"thoughtSignature":"c2lnbmF0dXJl"}]}}]}`))
	resp, err := (&Provider{}).Do(context.Background(), call(provider.Chat, up.URL, `{"messages":[{"role":"user","content":"Time?"}]}`))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	var first struct {
		Choices []struct {
			Message struct {
				ToolCalls []json.RawMessage `json:"tool_calls"`
			}
		}
	}
	if err := json.Unmarshal(resp.Body, &first); err != nil || len(first.Choices) != 1 || len(first.Choices[0].Message.ToolCalls) != 1 {
		t.Fatalf("answer %s: want one tool call (%v)", resp.Body, err)
	}
	id := providertest.ID(t, first.Choices[0].Message.ToolCalls[0])
	if !strings.HasSuffix(id, "__thought__c2lnbmF0dXJl") {
		t.Fatalf("tool call id %q does not carry the thought signature", id)
	}

	next := `{"messages":[{"role":"user","content":"Time?"},{"role":"assistant","tool_calls":[` + string(first.Choices[0].Message.ToolCalls[0]) + `]},
		{"role":"tool","tool_call_id":"` + id + `","content":"noon"}]}`
	if _, err := (&Provider{}).Do(context.Background(), call(provider.Chat, up.URL, next)); err != nil {
		t.Fatalf("second Do: %v", err)
	}
	providertest.JSONEqual(t, up.Last(t).Body, []byte(`{"contents":[{"role":"user","parts":[{"text":"Time?"}]},
		{"role":"model","parts":[{"functionCall":{"name":"now","args":{}},"thoughtSignature":"c2lnbmF0dXJl"}]},
		{"role":"user","parts":[{"functionResponse":{"name":"now","response":{"content":"noon"}}}]}],"generationConfig":{}}`))
}

func TestDo_CompletionGoesThroughChat(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{"candidates":[{"index":0,"finishReason":"MAX_TOKENS","content":{"role":"model","parts":[{"text":"Hi"}]}}],
		"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1},"responseId":"r-2"}`))
	resp, err := (&Provider{}).Do(context.Background(), call(provider.Completion, up.URL, `{"prompt":"Say hi","max_tokens":1}`))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	providertest.JSONEqual(t, up.Last(t).Body, []byte(`{"contents":[{"role":"user","parts":[{"text":"Say hi"}]}],"generationConfig":{"maxOutputTokens":1}}`))
	providertest.JSONEqual(t, []byte(providertest.WithoutCreated(t, resp.Body)), []byte(`{"id":"r-2","object":"text_completion","model":"gemini-2.5-flash",
		"choices":[{"index":0,"text":"Hi","logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`))
}
