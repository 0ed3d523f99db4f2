package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// moderationsConfig: the free OpenAI moderation model (priced 0 by the cost map) at the fake
// upstream %[1]s, a priced one, and a mock.
const moderationsConfig = `
model_list:
  - model_name: moderation
    litellm_params: {model: openai/omni-moderation-latest, api_base: %[1]s, api_key: ` + upstreamKey + `}
  - model_name: priced-moderation
    litellm_params: {model: openai/custom-moderation, api_base: %[1]s, api_key: ` + upstreamKey + `}
    model_info: {input_cost_per_token: 0.001, output_cost_per_token: 0}
  - model_name: mock-moderation
    litellm_params: {model: mock/moderation}
  - model_name: other
    litellm_params: {model: mock/other}
general_settings:
  master_key: ` + masterKey + `
`

// TestModerations ports test_openai_endpoints.py's moderation test: POST /v1/moderations
// goes through the key's model access, the budget reservation and the spend log like the
// other routes; a moderation answer has no usage, so a call is charged its reservation,
// which is nothing for the free moderation models.
func TestModerations(t *testing.T) {
	t.Parallel()
	up := fakeopenai.Start(fakeopenai.Options{})
	t.Cleanup(up.Close)
	s := start(t, fmt.Sprintf(moderationsConfig, up.BaseURL))
	key := s.admin(t, "POST", "/key/generate", map[string]any{"max_budget": 1, "models": []string{"moderation", "priced-moderation", "mock-moderation"}})["key"].(string)

	moderate := func(path string, body map[string]any) (*http.Response, map[string]any, string) {
		resp, b := s.request(t, key, "POST", path, body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp, out, string(b)
	}
	for _, path := range []string{"/v1/moderations", "/moderations"} {
		resp, out, body := moderate(path, map[string]any{"model": "moderation", "input": []string{"first text", "second text"}})
		results, _ := out["results"].([]any)
		if resp.StatusCode != http.StatusOK || len(results) != 2 || out["id"] == nil {
			t.Fatalf("%s: %d %s, want two results", path, resp.StatusCode, body)
		}
		if got := up.Last(); got.URL != "/v1/moderations" || !strings.Contains(string(got.Body), `"omni-moderation-latest"`) {
			t.Errorf("upstream got %s %s, want /v1/moderations for omni-moderation-latest", got.URL, got.Body)
		}
		if cost, err := strconv.ParseFloat(resp.Header.Get("x-litellm-response-cost"), 64); err != nil || cost != 0 {
			t.Errorf("free moderation cost %q, want 0", resp.Header.Get("x-litellm-response-cost"))
		}
	}
	resp, _, body := moderate("/v1/moderations", map[string]any{"model": "priced-moderation", "input": "some text to check"})
	cost, _ := strconv.ParseFloat(resp.Header.Get("x-litellm-response-cost"), 64)
	if resp.StatusCode != http.StatusOK || cost <= 0 {
		t.Errorf("priced moderation: %d cost %v %s, want 200 charged its input (no usage: the reservation)", resp.StatusCode, cost, body)
	}
	if resp, out, body := moderate("/v1/moderations", map[string]any{"model": "mock-moderation", "input": "x"}); resp.StatusCode != http.StatusOK || len(out["results"].([]any)) != 1 {
		t.Errorf("mock moderation: %d %s", resp.StatusCode, body)
	}
	if resp, _, body := moderate("/v1/moderations", map[string]any{"model": "other", "input": "x"}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a model the key may not use: %d %s, want 401", resp.StatusCode, body)
	}
	info := s.admin(t, "GET", "/key/info?key="+key, nil)["info"].(map[string]any)
	if spend, _ := info["spend"].(float64); !costIs(strconv.FormatFloat(spend, 'g', -1, 64), cost) {
		t.Errorf("key spend %v, want the priced call's %v", info["spend"], cost)
	}
}
