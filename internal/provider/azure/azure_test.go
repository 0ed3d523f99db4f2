package azure_test

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
	"github.com/llmgate/llmgate/internal/provider/azure"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

const key = "0123456789abcdef0123456789abcdef"

func clearEnv(t *testing.T) {
	for _, n := range []string{azure.EnvAPIKey, azure.EnvAPIBase, azure.EnvAPIVersion} {
		t.Setenv(n, "")
	}
}

func call(kind provider.Kind, base string) *provider.Call {
	return &provider.Call{
		Kind:   kind,
		Body:   []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"seed":1}`),
		Model:  "my-gpt4o-deployment",
		Params: config.LiteLLMParams{Model: "azure/my-gpt4o-deployment", APIBase: base, APIKey: key, APIVersion: "2025-01-01-preview"},
	}
}

func TestDo_DeploymentURLAPIVersionAndKeyHeader(t *testing.T) {
	tests := []struct {
		kind provider.Kind
		path string
	}{
		{provider.Chat, "/openai/deployments/my-gpt4o-deployment/chat/completions"},
		{provider.Completion, "/openai/deployments/my-gpt4o-deployment/completions"},
		{provider.Embedding, "/openai/deployments/my-gpt4o-deployment/embeddings"},
		{provider.ImageGeneration, "/openai/deployments/my-gpt4o-deployment/images/generations"},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			clearEnv(t)
			const answer = `{"object":"list","data":[],"model":"x","usage":{"prompt_tokens":3,"total_tokens":3}}`
			u := providertest.NewUpstream(t, providertest.JSON(200, answer))
			resp, err := azure.New(u.Client()).Do(context.Background(), call(tt.kind, u.URL+"/"))
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if string(resp.Body) != answer || resp.Usage.PromptTokens != 3 {
				t.Errorf("response = %s, usage %+v", resp.Body, resp.Usage)
			}
			req := u.Last(t)
			if req.Path != tt.path || req.Query != "api-version=2025-01-01-preview" {
				t.Errorf("request = %s?%s, want %s?api-version=2025-01-01-preview", req.Path, req.Query, tt.path)
			}
			if got := req.Header.Get("Api-Key"); got != key {
				t.Errorf("api-key = %q, want the key", got)
			}
			if got := req.Header.Get("Authorization"); got != "" {
				t.Errorf("Authorization = %q, want none", got)
			}
			if got := req.DecodeBody(t)["model"]; got != "my-gpt4o-deployment" {
				t.Errorf("body model = %v, want the deployment", got)
			}
		})
	}
}

func TestResolve_Defaults(t *testing.T) {
	clearEnv(t)
	c := &provider.Call{Kind: provider.Chat, Model: "dep", Params: config.LiteLLMParams{APIBase: "https://res.openai.azure.com/openai/", APIKey: key}}
	ep, err := azure.Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://res.openai.azure.com/openai/deployments/dep/chat/completions?api-version=" + azure.DefaultAPIVersion; ep.URL != want {
		t.Errorf("URL = %s, want %s", ep.URL, want)
	}

	t.Setenv(azure.EnvAPIBase, "https://env.openai.azure.com")
	t.Setenv(azure.EnvAPIKey, "env-key")
	t.Setenv(azure.EnvAPIVersion, "2024-06-01")
	ep, err = azure.Resolve(&provider.Call{Kind: provider.Embedding, Model: "emb"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://env.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-06-01"; ep.URL != want {
		t.Errorf("URL from environment = %s, want %s", ep.URL, want)
	}
	if ep.Header.Get("Api-Key") != "env-key" {
		t.Errorf("api-key = %q, want env-key", ep.Header.Get("Api-Key"))
	}
}

func TestResolve_ConfigurationErrors(t *testing.T) {
	clearEnv(t)
	tests := []struct {
		name   string
		call   provider.Call
		wantIn string
	}{
		{"no api_base", provider.Call{Kind: provider.Chat, Model: "d", Params: config.LiteLLMParams{APIKey: key}}, "AZURE_API_BASE"},
		{"no key", provider.Call{Kind: provider.Chat, Model: "d", Params: config.LiteLLMParams{APIBase: "https://r"}}, "AZURE_API_KEY"},
		{"no deployment", provider.Call{Kind: provider.Chat, Params: config.LiteLLMParams{APIBase: "https://r", APIKey: key}}, "deployment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := azure.Resolve(&tt.call); err == nil || !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("err = %v, want one naming %s", err, tt.wantIn)
			}
		})
	}
}

func TestStream_StreamOptionsByAPIVersion(t *testing.T) {
	tests := []struct {
		version     string
		wantOptions bool
	}{
		{"2024-02-01", false},
		{"2024-08-01-preview", false},
		{"2024-09-01-preview", true},
		{"2024-10-21", true},
		{"2025-04-01-preview", true},
		{"preview", true},
	}
	chunk := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}`
	usage := `{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":1,"total_tokens":5}}`
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			clearEnv(t)
			u := providertest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
				providertest.WriteSSE(w, providertest.Event{Data: chunk}, providertest.Event{Data: usage}, providertest.Event{Data: "[DONE]"})
			})
			c := call(provider.Chat, u.URL)
			c.Params.APIVersion = tt.version
			s, err := azure.New(u.Client()).Stream(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got []string
			for {
				b, err := s.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(b))
			}
			if len(got) != 1 || got[0] != chunk {
				t.Errorf("chunks = %q, want only the content chunk", got)
			}
			if s.Usage().TotalTokens != 5 {
				t.Errorf("usage = %+v, want 5 tokens", s.Usage())
			}
			_, has := u.Last(t).DecodeBody(t)["stream_options"]
			if has != tt.wantOptions {
				t.Errorf("stream_options sent = %v, want %v", has, tt.wantOptions)
			}
		})
	}
}

func TestDo_AzureErrors(t *testing.T) {
	clearEnv(t)
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "12")
		providertest.JSON(429, `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier."}}`)(w, r)
	})
	_, err := azure.New(u.Client()).Do(context.Background(), call(provider.Chat, u.URL))
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *provider.Error", err)
	}
	if pe.Provider != "azure" || pe.Status != 429 || pe.Type != openai.TypeRateLimit || pe.RetryAfter != 12*time.Second || !pe.Retryable {
		t.Errorf("error = %+v, want azure 429 rate_limit_error retry-after 12s retryable", pe)
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("error leaks the key: %v", err)
	}
}

func TestDo_StoredResponseKeepsTheAPIVersionAndAddsTheClientsQuery(t *testing.T) {
	clearEnv(t)
	u := providertest.NewUpstream(t, providertest.JSON(200, `{"object":"list","data":[]}`))
	c := call(provider.StoredResponse, u.URL)
	c.Body = nil
	c.Stored = &provider.Stored{Method: http.MethodGet, ID: "resp_1", Part: provider.StoredInputItems, Query: "limit=2&api-version=evil"}
	if _, err := azure.New(u.Client()).Do(context.Background(), c); err != nil {
		t.Fatalf("Do: %v", err)
	}
	req := u.Last(t)
	if req.Method != "GET" || req.Path != "/openai/responses/resp_1/input_items" || req.Query != "api-version=2025-03-01-preview&limit=2" || len(req.Body) != 0 {
		t.Errorf("request = %s %s?%s body %q", req.Method, req.Path, req.Query, req.Body)
	}
	if req.Header.Get("Api-Key") != key {
		t.Error("no api-key header")
	}
}
