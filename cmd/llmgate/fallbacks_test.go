package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// fallbackAccessConfig has "primary" (a 500 from the fake upstream at %[1]s), "other" (a
// 429) and "secret" (answers; dear), with configured fallbacks to "secret" from "primary"
// and by default. %[2]s is general_settings' enforce_fallback_model_access line.
const fallbackAccessConfig = `
model_list:
  - model_name: primary
    litellm_params:
      model: openai/up-500
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000001
  - model_name: other
    litellm_params:
      model: openai/up-429
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000001
  - model_name: secret
    litellm_params:
      model: openai/up-ok
      api_base: %[1]s/v1
      api_key: ` + upstreamKey + `
    model_info:
      input_cost_per_token: 0.01
      output_cost_per_token: 0.01
router_settings:
  num_retries: 0
  fallbacks: [{"primary": ["secret"]}, {"*": ["secret"]}]
general_settings:
  master_key: ` + masterKey + `
  %[2]s
`

// served counts the upstream calls for an upstream model.
func (u *upstream) served(model string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, b := range u.bodies {
		if b["model"] == model {
			n++
		}
	}
	return n
}

// A configured fallback never serves a key a model group it may not call: the call gets
// the failing group's own error and the upstream of the fallback is not called; a key that
// may call the fallback is served by it. The reservation prices only what the key can
// reach: a key with $0.05 is admitted on "primary" although "secret" would cost more. On the
// old code the restricted key was served by "secret" (and with a budget, refused by it).
// enforce_fallback_model_access: false restores LiteLLM's default.
func TestFallbacks_HonourTheCallersModelAccess(t *testing.T) {
	up := newUpstream(t)
	s := start(t, fmt.Sprintf(fallbackAccessConfig, up.URL, ""))
	key := func(body map[string]any) string { return s.admin(t, "POST", "/key/generate", body)["key"].(string) }
	restricted := key(map[string]any{"models": []string{"primary", "other"}})
	budgeted := key(map[string]any{"models": []string{"primary"}, "max_budget": 0.05})
	allowed := key(map[string]any{"models": []string{"primary", "secret"}})

	refused := []struct {
		name, key, model string
		extra            map[string]any
		wantStatus       int
	}{
		{"fallbacks", restricted, "primary", nil, http.StatusInternalServerError},
		{"fallbacks, streamed", restricted, "primary", map[string]any{"stream": true}, http.StatusInternalServerError},
		{"default fallbacks", restricted, "other", nil, http.StatusTooManyRequests},
		{"reservation of what the key can reach", budgeted, "primary", map[string]any{"max_tokens": 1000}, http.StatusInternalServerError},
		{"the request's own fallbacks", restricted, "primary", map[string]any{"fallbacks": []string{"secret"}}, http.StatusUnauthorized},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := up.served("up-ok")
			resp, b := s.request(t, tt.key, "POST", "/v1/chat/completions", chat(tt.model, tt.extra))
			if resp.StatusCode != tt.wantStatus || strings.Contains(string(b), "Hello from upstream") {
				t.Errorf("%d %s, want the failing group's own %d", resp.StatusCode, b, tt.wantStatus)
			}
			if n := up.served("up-ok") - before; n != 0 {
				t.Errorf("the fallback the key may not use was called %d times", n)
			}
		})
	}
	for _, caller := range []struct{ name, key string }{{"key that may use the fallback", allowed}, {"master key", masterKey}} {
		t.Run(caller.name, func(t *testing.T) {
			resp, b := s.request(t, caller.key, "POST", "/v1/chat/completions", chat("primary", nil))
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Hello from upstream") {
				t.Errorf("%d %s, want the fallback's answer", resp.StatusCode, b)
			}
			if got := resp.Header.Get("X-Litellm-Attempted-Fallbacks"); got != "1" {
				t.Errorf("x-litellm-attempted-fallbacks = %q, want 1", got)
			}
		})
	}

	t.Run("enforce_fallback_model_access: false", func(t *testing.T) {
		off := start(t, fmt.Sprintf(fallbackAccessConfig, up.URL, "enforce_fallback_model_access: false"))
		k := off.admin(t, "POST", "/key/generate", map[string]any{"models": []string{"primary"}})["key"].(string)
		resp, b := off.request(t, k, "POST", "/v1/chat/completions", chat("primary", nil))
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "Hello from upstream") {
			t.Errorf("%d %s, want LiteLLM's default: served by the fallback", resp.StatusCode, b)
		}
	})
}
