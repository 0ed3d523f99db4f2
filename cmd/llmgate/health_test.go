package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// healthConfig has a healthy chat deployment, an embedding one, one whose upstream fails
// and a mock; %[1]s is the good upstream's /v1, %[2]s the failing one's.
const healthConfig = `
model_list:
  - model_name: chat
    litellm_params: {model: openai/gpt-4o-mini, api_base: %[1]s, api_key: ` + upstreamKey + `}
    model_info: {id: chat-1}
  - model_name: embed
    litellm_params: {model: openai/text-embedding-3-small, api_base: %[1]s, api_key: ` + upstreamKey + `}
    model_info: {id: embed-1, mode: embedding}
  - model_name: broken
    litellm_params: {model: openai/gpt-4o-mini, api_base: %[2]s, api_key: ` + upstreamKey + `}
    model_info: {id: broken-1}
  - model_name: mocked
    litellm_params: {model: mock/demo}
    model_info: {id: mock-1}
  - model_name: "openai/*"
    litellm_params: {model: "openai/*", api_base: %[1]s, api_key: ` + upstreamKey + `}
general_settings:
  master_key: ` + masterKey + `
`

type healthAnswer struct {
	Healthy        []map[string]any `json:"healthy_endpoints"`
	Unhealthy      []map[string]any `json:"unhealthy_endpoints"`
	HealthyCount   int              `json:"healthy_count"`
	UnhealthyCount int              `json:"unhealthy_count"`
}

func ids(eps []map[string]any) []string {
	var out []string
	for _, e := range eps {
		out = append(out, fmt.Sprint(e["model_id"]))
	}
	slices.Sort(out)
	return out
}

// TestHealth_ChecksEachDeployment ports LiteLLM's GET /health (test_health.py's use in its
// e2e suite): each deployment gets a one-token call of its mode, ?model= picks a group, the
// answer names endpoints without secrets, and only proxy admins may run it; the
// liveliness and readiness probes stay open.
func TestHealth_ChecksEachDeployment(t *testing.T) {
	t.Parallel()
	good := fakeopenai.Start(fakeopenai.Options{})
	t.Cleanup(good.Close)
	bad := fakeopenai.Start(fakeopenai.Options{Fault: func(int64) fakeopenai.Fault { return fakeopenai.ServerError }})
	t.Cleanup(bad.Close)
	s := start(t, fmt.Sprintf(healthConfig, good.BaseURL, bad.BaseURL))
	key := s.admin(t, "POST", "/key/generate", map[string]any{})["key"].(string)

	get := func(who, path string) (int, healthAnswer, string) {
		resp, body := s.request(t, who, "GET", path, nil)
		var a healthAnswer
		_ = json.Unmarshal(body, &a)
		return resp.StatusCode, a, string(body)
	}
	if status, _, body := get("", "/health"); status != http.StatusUnauthorized {
		t.Errorf("/health without a key: %d %s, want 401", status, body)
	}
	if status, _, body := get(key, "/health"); status != http.StatusForbidden {
		t.Errorf("/health as a virtual key: %d %s, want 403", status, body)
	}
	for _, p := range []string{"/health/liveliness", "/health/readiness"} {
		if status, _, body := get("", p); status != http.StatusOK {
			t.Errorf("%s: %d %s, want 200 without a key", p, status, body)
		}
	}

	before := good.Requests()
	status, a, body := get(masterKey, "/health")
	if status != http.StatusOK || a.HealthyCount != 3 || a.UnhealthyCount != 1 ||
		!slices.Equal(ids(a.Healthy), []string{"chat-1", "embed-1", "mock-1"}) || !slices.Equal(ids(a.Unhealthy), []string{"broken-1"}) {
		t.Fatalf("/health: %d %s; want chat, embed and mock healthy, broken unhealthy (wildcard left out)", status, body)
	}
	if got := good.Requests() - before; got != 2 {
		t.Errorf("the good upstream got %d calls, want 2 (chat and embedding)", got)
	}
	if e := a.Unhealthy[0]; e["error"] == "" || e["model_name"] != "broken" || e["api_base"] != bad.BaseURL {
		t.Errorf("unhealthy endpoint %v, want its error, group and api_base", e)
	}
	if strings.Contains(body, upstreamKey) {
		t.Errorf("/health shows the upstream key: %s", body)
	}

	status, a, body = get(masterKey, "/health?model=broken")
	if status != http.StatusOK || a.HealthyCount != 0 || !slices.Equal(ids(a.Unhealthy), []string{"broken-1"}) {
		t.Errorf("/health?model=broken: %d %s, want broken only", status, body)
	}
	if status, _, body := get(masterKey, "/health?model=nope"); status != http.StatusBadRequest {
		t.Errorf("/health?model=nope: %d %s, want 400", status, body)
	}
}
