package gateway

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
)

// TestModelGroupInfo_ExpandsWildcardGroups ports LiteLLM's test_model_group_info_e2e: a
// wildcard group is listed as the cost map's models it serves, each with its own price,
// never as its pattern; other groups are listed as they are.
func TestModelGroupInfo_ExpandsWildcardGroups(t *testing.T) {
	cfg := testConfig()
	cfg.ModelList = append(cfg.ModelList[:1], config.Deployment{ModelName: "anthropic/*", LiteLLMParams: config.LiteLLMParams{Model: "anthropic/*"}})
	h := newHarness(t, cfg, nil, nil)
	resp, err := http.Get(h.srv.URL + "/model_group/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data []modelGroup `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	groups := map[string]modelGroup{}
	for _, g := range out.Data {
		groups[g.ModelGroup] = g
	}
	if _, ok := groups["anthropic/*"]; ok {
		t.Error("anthropic/* listed verbatim")
	}
	haiku, ok := groups["anthropic/claude-3-haiku-20240307"]
	if !ok || haiku.InputCostPerToken != 2.5e-07 || haiku.OutputCostPerToken != 1.25e-06 || haiku.MaxOutputTokens != 4096 ||
		len(haiku.Providers) != 1 || haiku.Providers[0] != "anthropic" {
		t.Errorf("anthropic/claude-3-haiku-20240307: %+v (listed %t), want the cost map's prices and limits, provider anthropic", haiku, ok)
	}
	if _, ok := groups["demo"]; !ok || len(out.Data) < 10 {
		t.Errorf("groups %v: want demo and the expanded anthropic models", groups)
	}
}
