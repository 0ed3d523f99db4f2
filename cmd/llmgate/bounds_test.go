package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// boundsConfig has a group of two real deployments on the fake upstream at %[1]s ("pair",
// which can be cooled down), and a mock group.
const boundsConfig = `
model_list:
  - model_name: demo
    litellm_params:
      model: mock/demo
  - model_name: pair
    litellm_params:
      model: openai/up-ok
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      id: pair-1
  - model_name: pair
    litellm_params:
      model: openai/up-ok
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      id: pair-2
router_settings:
  num_retries: 0
  cooldown_time: 600
general_settings:
  master_key: ` + masterKey + `
`

// chatError is the error object of an OpenAI-format error answer.
type chatError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
}

func errorOf(t *testing.T, body []byte) chatError {
	t.Helper()
	var e struct {
		Error chatError `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an OpenAI error: %s", body)
	}
	return e.Error
}

func chat(model string, extra map[string]any) map[string]any {
	body := map[string]any{"model": model, "messages": []map[string]any{{"role": "user", "content": "hi"}}}
	for k, v := range extra {
		body[k] = v
	}
	return body
}

// mock_response takes effect for a key only on mock deployments; a proxy admin may use it
// anywhere, and the failures it asks for never cool a deployment down for others. On the
// old code a key's mock_response "litellm.RateLimitError" on "pair" was answered by the mock
// on the real deployments and cooled both down: the next plain call got 429 "No deployments
// available".
func TestBounds_MockResponseIsGatedAndNeverCoolsDown(t *testing.T) {
	up := newUpstream(t)
	s := start(t, fmt.Sprintf(boundsConfig, up.URL))
	key := s.admin(t, "POST", "/key/generate", map[string]any{"max_budget": 0.001})["key"].(string)

	for range 2 {
		resp, b := s.request(t, key, "POST", "/v1/chat/completions", chat("pair", map[string]any{"mock_response": "litellm.RateLimitError"}))
		if e := errorOf(t, b); resp.StatusCode != http.StatusForbidden || e.Param == nil || *e.Param != "mock_response" {
			t.Fatalf("key's mock_response on a real deployment: %d %s, want 403 naming mock_response", resp.StatusCode, b)
		}
	}
	resp, b := s.request(t, key, "POST", "/v1/chat/completions", chat("demo", map[string]any{"mock_response": "canned answer"}))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "canned answer") {
		t.Errorf("key's mock_response on a mock deployment: %d %s, want the canned answer", resp.StatusCode, b)
	}
	for range 3 {
		resp, b := s.request(t, masterKey, "POST", "/v1/chat/completions", chat("pair", map[string]any{"mock_response": "litellm.RateLimitError"}))
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("admin's mocked rate limit: %d %s, want 429", resp.StatusCode, b)
		}
	}
	calls := up.count()
	resp, b = s.request(t, key, "POST", "/v1/chat/completions", chat("pair", nil))
	if resp.StatusCode != http.StatusOK || up.count() != calls+1 {
		t.Errorf("plain call after mocked failures: %d %s (%d upstream calls), want 200 from the upstream", resp.StatusCode, b, up.count()-calls)
	}
}
