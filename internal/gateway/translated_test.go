package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/fakeopenai"
	"github.com/llmgate/llmgate/internal/provider/registry"
	"github.com/llmgate/llmgate/internal/router"
)

// newTranslatedHarness serves "smart" (a vLLM model that reasons and reads PDFs, per its
// model_info) and "plain" (a Groq model with neither), both chat-only, from one fake
// OpenAI upstream whose Last request the tests read.
func newTranslatedHarness(t *testing.T) (*httptest.Server, *fakeopenai.Server) {
	t.Helper()
	up := fakeopenai.Start(fakeopenai.Options{Chunks: 2})
	t.Cleanup(up.Close)
	yes := true
	cfg := &config.Config{ModelList: []config.Deployment{
		{ModelName: "smart", LiteLLMParams: config.LiteLLMParams{Model: "hosted_vllm/qwen3", APIBase: up.BaseURL},
			ModelInfo: config.ModelInfo{ID: "smart-1", InputCostPerToken: ptr(1e-06), OutputCostPerToken: ptr(2e-06), SupportsReasoning: &yes, SupportsPDFInput: &yes}},
		{ModelName: "plain", LiteLLMParams: config.LiteLLMParams{Model: "groq/llama", APIBase: up.BaseURL, APIKey: "sk-groq"},
			ModelInfo: config.ModelInfo{ID: "plain-1", InputCostPerToken: ptr(1e-06), OutputCostPerToken: ptr(2e-06)}},
	}, RouterSettings: config.RouterSettings{NumRetries: ptr(0)}}
	rtr, err := router.New(router.Options{Config: cfg, Providers: registry.New(nil)})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(Options{Config: cfg, Router: rtr})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return srv, up
}

// upstreamBody posts body to path and returns the chat request the upstream got.
func upstreamBody(t *testing.T, srv *httptest.Server, up *fakeopenai.Server, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(up.Last().Body, &got); err != nil {
			t.Fatal(err)
		}
	} else {
		_ = json.NewDecoder(resp.Body).Decode(&got)
	}
	return resp.StatusCode, got
}

const pdfDoc = `{"type":"document","title":"report.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQK"}}`

func TestTranslatedMessages_KeepThinkingTopKAndPDFsWhereTheModelTakesThem(t *testing.T) {
	srv, up := newTranslatedHarness(t)
	for _, tc := range []struct{ budget, effort string }{{"2048", "low"}, {"8000", "medium"}, {"31999", "high"}} {
		status, got := upstreamBody(t, srv, up, "/v1/messages", `{"model":"smart","max_tokens":32000,"thinking":{"type":"enabled","budget_tokens":`+tc.budget+`},"top_k":40,`+
			`"messages":[{"role":"user","content":[{"type":"text","text":"summarise"},`+pdfDoc+`]}]}`)
		if status != 200 || got["reasoning_effort"] != tc.effort || got["top_k"] != float64(40) {
			t.Fatalf("budget %s: %d, upstream got %v", tc.budget, status, got)
		}
		parts := got["messages"].([]any)[0].(map[string]any)["content"].([]any)
		file, _ := parts[1].(map[string]any)["file"].(map[string]any)
		if parts[1].(map[string]any)["type"] != "file" || file["file_data"] != "data:application/pdf;base64,JVBERi0xLjQK" || file["filename"] != "report.pdf" {
			t.Errorf("PDF part %v", parts[1])
		}
	}

	status, got := upstreamBody(t, srv, up, "/v1/messages", `{"model":"plain","max_tokens":100,"thinking":{"type":"enabled","budget_tokens":2048},"top_k":40,"messages":[{"role":"user","content":"hi"}]}`)
	if status != 200 {
		t.Fatalf("plain: %d %v", status, got)
	}
	for _, f := range []string{"reasoning_effort", "top_k", "thinking"} {
		if _, ok := got[f]; ok {
			t.Errorf("a model that does not take %s got it: %v", f, got)
		}
	}
	status, got = upstreamBody(t, srv, up, "/v1/messages", `{"model":"plain","max_tokens":100,"messages":[{"role":"user","content":[`+pdfDoc+`]}]}`)
	if msg, _ := got["error"].(map[string]any)["message"].(string); status != 400 || !strings.Contains(msg, "PDF documents are not supported") {
		t.Errorf("PDF to a model without PDF input: %d %v", status, got)
	}
}

func TestTranslatedResponses_KeepReasoningTextFormatAndFiles(t *testing.T) {
	srv, up := newTranslatedHarness(t)
	status, got := upstreamBody(t, srv, up, "/v1/responses", `{"model":"smart","reasoning":{"effort":"high","summary":"auto"},`+
		`"text":{"format":{"type":"json_schema","name":"answer","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}},`+
		`"input":[{"role":"user","content":[{"type":"input_text","text":"read"},{"type":"input_file","filename":"r.pdf","file_data":"data:application/pdf;base64,JVBERi0xLjQK"}]}]}`)
	if status != 200 || got["reasoning_effort"] != "high" {
		t.Fatalf("%d, upstream got %v", status, got)
	}
	rf, _ := json.Marshal(got["response_format"])
	if want := `{"json_schema":{"description":"","name":"answer","schema":{"properties":{"a":{"type":"string"}},"type":"object"},"strict":true},"type":"json_schema"}`; string(rf) != want {
		t.Errorf("response_format %s\nwant %s", rf, want)
	}
	part := got["messages"].([]any)[0].(map[string]any)["content"].([]any)[1].(map[string]any)
	if file, _ := part["file"].(map[string]any); part["type"] != "file" || file["filename"] != "r.pdf" || file["file_data"] != "data:application/pdf;base64,JVBERi0xLjQK" {
		t.Errorf("file part %v", part)
	}

	status, got = upstreamBody(t, srv, up, "/v1/responses", `{"model":"plain","reasoning":{"effort":"high"},"text":{"format":{"type":"json_object"}},"input":"hi"}`)
	if _, ok := got["reasoning_effort"]; status != 200 || ok {
		t.Errorf("plain: %d, upstream got %v (reasoning_effort must be dropped)", status, got)
	}
	if rf, _ := json.Marshal(got["response_format"]); string(rf) != `{"type":"json_object"}` {
		t.Errorf("json_object response_format %s", rf)
	}
	status, got = upstreamBody(t, srv, up, "/v1/responses", `{"model":"plain","input":[{"role":"user","content":[{"type":"input_file","file_data":"data:application/pdf;base64,JVBERi0xLjQK"}]}]}`)
	if status != 400 {
		t.Errorf("input_file to a model without PDF input: %d %v", status, got)
	}
}
