package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// litellmConfig is the part of LiteLLM's proxy_server_config.yaml its end-to-end tests
// (BerriAI/litellm tests/test_*.py) rely on, with the fake OpenAI upstream at %[1]s in place
// of its fake endpoint server.
const litellmConfig = `
model_list:
  - model_name: gpt-3.5-turbo
    litellm_params:
      model: openai/gpt-3.5-turbo
      api_base: %[1]s
      api_key: ` + upstreamKey + `
    model_info:
      id: gpt35-1
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_base: %[1]s
      api_key: ` + upstreamKey + `
    model_info:
      id: fake-1
general_settings:
  master_key: ` + masterKey + `
`

// TestLiteLLM runs scenarios of LiteLLM Proxy's own end-to-end tests against one llmgate.
func TestLiteLLM(t *testing.T) {
	t.Parallel()
	up := fakeopenai.Start(fakeopenai.Options{})
	t.Cleanup(up.Close)
	s := start(t, fmt.Sprintf(litellmConfig, up.BaseURL))
	key := s.admin(t, "POST", "/key/generate", map[string]any{"models": []string{}})["key"].(string)

	// test_spend_logs.py: the spend log of a call is found by the response's id.
	t.Run("spend log by response id", func(t *testing.T) {
		for _, stream := range []bool{false, true} {
			resp, b := s.request(t, key, "POST", "/chat/completions", map[string]any{
				"model": "gpt-3.5-turbo", "stream": stream, "messages": []any{map[string]any{"role": "user", "content": "hi"}},
			})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("stream=%v: %d %s", stream, resp.StatusCode, b)
			}
			id, callID := responseIDOf(t, b, stream), resp.Header.Get("X-Litellm-Call-Id")
			resp, b = s.request(t, masterKey, "GET", "/spend/logs?request_id="+id, nil)
			var logs []map[string]any
			if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &logs) != nil || len(logs) != 1 {
				t.Fatalf("stream=%v: /spend/logs?request_id=%s = %d %s, want one log", stream, id, resp.StatusCode, b)
			}
			if logs[0]["request_id"] != callID || logs[0]["model"] != "gpt-3.5-turbo" || logs[0]["spend"].(float64) <= 0 {
				t.Errorf("stream=%v: log %v", stream, logs[0])
			}
		}
	})
}

// responseIDOf is the "id" of a chat completion, or of a stream's first chunk.
func responseIDOf(t *testing.T, body []byte, stream bool) string {
	t.Helper()
	if stream {
		const prefix = "data: "
		end := len(body)
		for i := range body {
			if body[i] == '\n' {
				end = i
				break
			}
		}
		body = body[len(prefix):end]
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.ID == "" {
		t.Fatalf("no response id in %s", body)
	}
	return v.ID
}
