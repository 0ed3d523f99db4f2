package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
)

// FuzzRequestDecoding sends arbitrary bodies to the LLM routes of a gateway whose models
// are mock deployments. Whatever the body, the gateway must answer (no panic, no dropped
// connection), never with a 5xx unless the body asked the mock for one (mock_response
// "litellm...."), and every refusal must be an OpenAI-format error.
func FuzzRequestDecoding(f *testing.F) {
	cfg := testConfig()
	var mocks []config.Deployment
	for _, d := range cfg.ModelList {
		if strings.HasPrefix(d.LiteLLMParams.Model, "mock/") {
			mocks = append(mocks, d)
		}
	}
	cfg.ModelList = mocks
	h := newHarness(f, cfg, nil, nil)

	for _, seed := range []struct {
		route uint8
		body  string
	}{
		{0, `{"model":"demo","messages":[{"role":"user","content":"Hello"}]}`},
		{0, `{"model":"demo","messages":[{"role":"user","content":"Hello"}],"stream":true,"stream_options":{"include_usage":true}}`},
		{0, `{"model":"demo","messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"n":2,"metadata":{"tags":["a"]}}`},
		{0, `{"model":"demo","messages":[],"max_completion_tokens":-1}`},
		{0, `{"model":"demo","messages":"not a list","tools":[{"type":"function"}]}`},
		{0, `{"model":"nope","messages":[{"role":"user","content":"\u0000"}]}`},
		{0, `{"model":["demo"]}`},
		{0, `[[[[[[[[[[]]]]]]]]]]`},
		{0, "{\"model\":\"demo\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\"}]}"},
		{1, `{"model":"demo","prompt":"Say this is a test","max_tokens":7}`},
		{1, `{"model":"demo","prompt":["a","b"],"stream":true}`},
		{2, `{"model":"embed","input":["one","two"],"encoding_format":"base64"}`},
		{2, `{"model":"embed","input":[[1,2,3]],"dimensions":4}`},
	} {
		f.Add(seed.route, seed.body)
	}
	routes := []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings"}

	f.Fuzz(func(t *testing.T, route uint8, body string) {
		resp, err := http.Post(h.srv.URL+routes[int(route)%len(routes)], "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("no answer (did the handler panic?): %v", err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer cut short: %v", err)
		}
		if resp.StatusCode >= 500 && !strings.Contains(body, "litellm.") {
			t.Fatalf("status %d for a request body: %s", resp.StatusCode, b)
		}
		if resp.StatusCode == http.StatusOK {
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") && !json.Valid(b) {
				t.Fatalf("200 with a body that is not JSON: %q", b)
			}
			return
		}
		var e struct {
			Error *struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error == nil || e.Error.Message == "" || e.Error.Type == "" {
			t.Fatalf("status %d without an OpenAI-format error: %q", resp.StatusCode, b)
		}
	})
}
