package bedrock

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

const (
	claude = "anthropic.claude-3-5-haiku-20241022-v1:0"
	// minimalAnswer is the smallest valid Converse answer.
	minimalAnswer = `{"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn",
		"usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{"latencyMs":1}}`
)

func TestDo_ConverseRequestWireFormat(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{
			name: "system, merged user turns and inference settings",
			body: `{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"a"},{"role":"user","content":"b"}],
				"max_tokens":100,"temperature":0.5,"top_p":0.25,"stop":"END"}`,
			want: `{"system":[{"text":"Be brief."}],"messages":[{"role":"user","content":[{"text":"a"},{"text":"b"}]}],
				"inferenceConfig":{"maxTokens":100,"temperature":0.5,"topP":0.25,"stopSequences":["END"]}}`,
		},
		{
			name: "tool calls become toolUse and tool results toolResult blocks of one user turn",
			body: `{"messages":[{"role":"user","content":"Weather?"},
				{"role":"assistant","content":"Checking.","tool_calls":[
					{"id":"t1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
					{"id":"t2","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},
				{"role":"tool","tool_call_id":"t1","content":"18C"},{"role":"tool","tool_call_id":"t2","content":"21C"}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Weather?"}]},
				{"role":"assistant","content":[{"text":"Checking."},
					{"toolUse":{"toolUseId":"t1","name":"weather","input":{"city":"Paris"}}},
					{"toolUse":{"toolUseId":"t2","name":"weather","input":{"city":"Rome"}}}]},
				{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[{"text":"18C"}]}},
					{"toolResult":{"toolUseId":"t2","content":[{"text":"21C"}]}}]}]}`,
		},
		{
			name: "tools become toolSpecs and a named tool_choice a specific tool",
			body: `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":{"type":"function","function":{"name":"weather"}},"tools":[
				{"type":"function","function":{"name":"weather","description":"Get weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},
				{"type":"function","function":{"name":"now"}}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"toolConfig":{"tools":[
				{"toolSpec":{"name":"weather","description":"Get weather","inputSchema":{"json":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}},
				{"toolSpec":{"name":"now","inputSchema":{"json":{"type":"object","properties":{}}}}}],
				"toolChoice":{"tool":{"name":"weather"}}}}`,
		},
		{
			name: "required tool_choice is any",
			body: `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"required","tools":[{"type":"function","function":{"name":"now"}}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"Hi"}]}],"toolConfig":{"tools":[
				{"toolSpec":{"name":"now","inputSchema":{"json":{"type":"object","properties":{}}}}}],"toolChoice":{"any":{}}}}`,
		},
		{
			name: "data URL images are sent as bytes and s3 URLs as locations",
			body: `{"messages":[{"role":"user","content":[{"type":"text","text":"What?"},
				{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
				{"type":"image_url","image_url":{"url":"s3://bucket/cat.jpg"}}]}]}`,
			want: `{"messages":[{"role":"user","content":[{"text":"What?"},
				{"image":{"format":"png","source":{"bytes":"iVBORw0KGgo="}}},
				{"image":{"format":"jpeg","source":{"s3Location":{"uri":"s3://bucket/cat.jpg"}}}}]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, providertest.JSON(200, minimalAnswer))
			if _, err := new(Provider).Do(context.Background(), testCall(provider.Chat, up, claude, tt.body)); err != nil {
				t.Fatalf("Do: %v", err)
			}
			req := up.Last(t)
			if req.Path != "/model/"+claude+"/converse" {
				t.Errorf("path = %s, want /model/%s/converse", req.Path, claude)
			}
			providertest.JSONEqual(t, req.Body, []byte(tt.want))
		})
	}
}

func TestDo_SignsWithTheDeploymentCredentialsAndRegion(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, minimalAnswer))
	if _, err := new(Provider).Do(context.Background(), testCall(provider.Chat, up, "converse/"+claude, `{"messages":[{"role":"user","content":"Hi"}]}`)); err != nil {
		t.Fatalf("Do: %v", err)
	}
	req := up.Last(t)
	if auth := req.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") || !strings.Contains(auth, "/us-west-2/bedrock/aws4_request") {
		t.Errorf("Authorization = %q, want SigV4 with AKIDTEST in us-west-2", auth)
	}
	if got := req.Header.Get("X-Amz-Security-Token"); got != "token" {
		t.Errorf("X-Amz-Security-Token = %q, want the session token", got)
	}
	if req.Path != "/model/"+claude+"/converse" {
		t.Errorf("path = %s: the converse/ route prefix was not stripped", req.Path)
	}
}

func TestProvider_CachesClientsPerRegionAndCredentials(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, minimalAnswer))
	p := new(Provider)
	body := `{"messages":[{"role":"user","content":"Hi"}]}`
	other := testCall(provider.Chat, up, claude, body)
	other.Params.AWSRegionName = "eu-west-1"
	for _, c := range []*provider.Call{testCall(provider.Chat, up, claude, body), testCall(provider.Chat, up, claude, body), other} {
		if _, err := p.Do(context.Background(), c); err != nil {
			t.Fatalf("Do: %v", err)
		}
	}
	if len(p.clients) != 2 {
		t.Errorf("%d clients cached, want 2 (one per region)", len(p.clients))
	}
}

func TestDo_TranslatesAnswer(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, `{"output":{"message":{"role":"assistant","content":[
		{"reasoningContent":{"reasoningText":{"text":"hmm","signature":"s"}}},{"text":"Checking."},
		{"toolUse":{"toolUseId":"tooluse_1","name":"weather","input":{"city":"Paris"}}}]}},
		"stopReason":"tool_use","usage":{"inputTokens":10,"outputTokens":5,"totalTokens":165,"cacheReadInputTokens":100,"cacheWriteInputTokens":50,
			"cacheDetails":[{"inputTokens":20,"ttl":"5m"},{"inputTokens":30,"ttl":"1h"}]},
		"metrics":{"latencyMs":120}}`))
	resp, err := new(Provider).Do(context.Background(), testCall(provider.Chat, up, claude, `{"messages":[{"role":"user","content":"Weather?"}]}`))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	id := providertest.ID(t, resp.Body)
	providertest.JSONEqual(t, []byte(providertest.WithoutCreated(t, resp.Body)), []byte(`{"id":"`+id+`","object":"chat.completion","model":"`+claude+`",
		"choices":[{"index":0,"finish_reason":"tool_calls","logprobs":null,"message":{"role":"assistant","content":"Checking.",
			"tool_calls":[{"id":"tooluse_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]}}],
		"usage":{"prompt_tokens":160,"completion_tokens":5,"total_tokens":165,"prompt_tokens_details":{"cached_tokens":100},"cache_creation_input_tokens":50}}`))
	if !strings.HasPrefix(id, "chatcmpl-") {
		t.Errorf("id = %q, want chatcmpl-…", id)
	}
	if u := resp.Usage; u.PromptTokens != 160 || u.CacheCreationInputTokens != 50 || u.PromptTokensDetails.CachedTokens != 100 ||
		u.CacheCreation1hInputTokens != 30 {
		t.Errorf("Usage = %+v, want 160 prompt tokens with 100 cached and 50 written, 30 of them for an hour", u)
	}
}

func TestDo_ClassifiesErrors(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		errType       string
		message       string
		wantStatus    int
		wantRetryable bool
		wantContext   bool
	}{
		{"throttling is a retryable 429", 429, "ThrottlingException", "Too many requests, please wait before trying again.", 429, true, false},
		{"input too long is a context window error", 400, "ValidationException", "Input is too long for requested model.", 400, false, true},
		{"other validation errors are final", 400, "ValidationException", "The provided model identifier is invalid.", 400, false, false},
		{"model timeout is a retryable 408", 408, "ModelTimeoutException", "Model has timed out in processing the request.", 408, true, false},
		{"service unavailable is retryable", 503, "ServiceUnavailableException", "Service is unavailable.", 503, true, false},
		{"internal server errors are retryable", 500, "InternalServerException", "Internal error", 500, true, false},
		{"access denied is final", 403, "AccessDeniedException", "You don't have access to the model with the specified model ID.", 403, false, false},
		{"unknown model is not found", 404, "ResourceNotFoundException", "Model not found", 404, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, errorAnswer(tt.status, tt.errType, tt.message))
			_, err := new(Provider).Do(context.Background(), testCall(provider.Chat, up, claude, `{"messages":[{"role":"user","content":"Hi"}]}`))
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *provider.Error", err)
			}
			if pe.Status != tt.wantStatus || pe.Retryable != tt.wantRetryable || pe.ContextWindow != tt.wantContext {
				t.Errorf("got status %d retryable %v context %v, want %d %v %v", pe.Status, pe.Retryable, pe.ContextWindow, tt.wantStatus, tt.wantRetryable, tt.wantContext)
			}
			if !strings.Contains(pe.Message, tt.message) || strings.Contains(pe.Message, "secret") {
				t.Errorf("message %q, want the upstream's message and no secret", pe.Message)
			}
		})
	}
}

func TestDo_TransportFailures(t *testing.T) {
	slow := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	down := providertest.NewUpstream(t, providertest.JSON(200, minimalAnswer))
	down.Close()
	body := `{"messages":[{"role":"user","content":"Hi"}]}`
	timed := testCall(provider.Chat, slow, claude, body)
	timed.Timeout = 50 * time.Millisecond
	tests := []struct {
		name       string
		call       *provider.Call
		wantStatus int
	}{
		{"timeout", timed, http.StatusRequestTimeout},
		{"connection refused", testCall(provider.Chat, down, claude, body), http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := new(Provider).Do(context.Background(), tt.call)
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Status != tt.wantStatus || !pe.Retryable {
				t.Fatalf("err = %v, want a retryable %d *provider.Error", err, tt.wantStatus)
			}
		})
	}
}

func TestDo_RejectsWhatConverseCannotTake(t *testing.T) {
	tests := []struct{ name, body string }{
		{"http image URL", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`},
		{"unsupported image type", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}`},
		{"image data that is not base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,!!"}}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, providertest.JSON(200, minimalAnswer))
			_, err := new(Provider).Do(context.Background(), testCall(provider.Chat, up, claude, tt.body))
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400 *provider.Error", err)
			}
			if n := len(up.Requests()); n != 0 {
				t.Errorf("%d upstream requests, want none", n)
			}
		})
	}
}

func TestDo_CompletionGoesThroughConverse(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(200, minimalAnswer))
	resp, err := new(Provider).Do(context.Background(), testCall(provider.Completion, up, claude, `{"prompt":"Say ok"}`))
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	providertest.JSONEqual(t, up.Last(t).Body, []byte(`{"messages":[{"role":"user","content":[{"text":"Say ok"}]}]}`))
	if !strings.Contains(string(resp.Body), `"object":"text_completion"`) || !strings.Contains(string(resp.Body), `"text":"ok"`) {
		t.Errorf("answer %s, want a text_completion with the text ok", resp.Body)
	}
}

// doerFunc adapts a function to aws.HTTPClient.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

func TestClient_RequestBodiesHideWriteTo(t *testing.T) {
	// See readOnlyBodies: the SDK's closed request bodies answer WriteTo with io.EOF, which
	// made net/http close a connection whose answer was still being read.
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, minimalAnswer)
	})
	var writerTo bool
	p := &Provider{HTTPClient: doerFunc(func(r *http.Request) (*http.Response, error) {
		_, writerTo = r.Body.(io.WriterTo)
		return http.DefaultClient.Do(r)
	})}
	if _, err := p.Do(context.Background(), testCall(provider.Chat, up, claude, `{"messages":[{"role":"user","content":"Hi"}]}`)); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if writerTo {
		t.Error("the request body reached the HTTP client with its WriteTo")
	}
}
