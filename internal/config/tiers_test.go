package config

import (
	"maps"
	"testing"
)

func TestTierKey(t *testing.T) {
	tests := []struct {
		key   string
		base  string
		above int
	}{
		{"input_cost_per_token_above_200k_tokens", "input_cost_per_token", 200_000},
		{"output_cost_per_token_above_128_tokens", "output_cost_per_token", 128},
		{"cache_read_input_token_cost_above_272k_tokens", "cache_read_input_token_cost", 272_000},
		{"cache_creation_input_token_cost_above_200k_tokens", "cache_creation_input_token_cost", 200_000},
		{"cache_creation_input_token_cost_above_1hr", "", 0},
		{"cache_creation_input_token_cost_above_1hr_above_200k_tokens", "cache_creation_input_token_cost_above_1hr", 200_000},
		{"input_cost_per_token_above_200k_tokens_priority", "", 0},
		{"input_cost_per_character_above_128k_tokens", "", 0},
		{"input_cost_per_token_above_-5k_tokens", "", 0},
		{"input_cost_per_token_above_+5k_tokens", "", 0},
		{"input_cost_per_token_above_0_tokens", "", 0},
		{"input_cost_per_token_above_99999999999k_tokens", "", 0},
		{"input_cost_per_token_above_k_tokens", "", 0},
	}
	for _, tt := range tests {
		base, above, ok := TierKey(tt.key)
		if base != tt.base || above != tt.above || ok != (tt.base != "") {
			t.Errorf("TierKey(%q) = %q %d %v, want %q %d", tt.key, base, above, ok, tt.base, tt.above)
		}
	}
}

func TestParse_ModelInfoTieredPrices(t *testing.T) {
	cfg, warnings, err := Parse([]byte("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"+
		"    model_info: {input_cost_per_token: 1e-6, input_cost_per_token_above_200k_tokens: 2e-6, output_cost_per_token_above_200k_tokens: 3, supports_vision: true}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || warnings[0] != "model_list[0].model_info.supports_vision: unknown or unsupported setting, ignored" {
		t.Errorf("warnings %q, want only the unknown key's", warnings)
	}
	got := map[TierCost]bool{}
	for _, tc := range cfg.ModelList[0].ModelInfo.PriceTiers() {
		got[tc] = true
	}
	want := map[TierCost]bool{{"input_cost_per_token", 200_000, 2e-6}: true, {"output_cost_per_token", 200_000, 3}: true}
	if !maps.Equal(got, want) {
		t.Errorf("PriceTiers %v, want %v", got, want)
	}
}

func TestPriorityKey(t *testing.T) {
	tests := []struct{ key, base string }{
		{"input_cost_per_token_priority", "input_cost_per_token"},
		{"output_cost_per_token_priority", "output_cost_per_token"},
		{"cache_read_input_token_cost_priority", "cache_read_input_token_cost"},
		{"cache_creation_input_token_cost_above_1hr_priority", "cache_creation_input_token_cost_above_1hr"},
		{"input_cost_per_token_above_200k_tokens_priority", "input_cost_per_token_above_200k_tokens"},
		{"input_cost_per_token", ""},
		{"input_cost_per_character_priority", ""},
		{"input_cost_per_token_flex", ""},
		{"priority", ""},
	}
	for _, tt := range tests {
		base, ok := PriorityKey(tt.key)
		if base != tt.base || ok != (tt.base != "") {
			t.Errorf("PriorityKey(%q) = %q %v, want %q", tt.key, base, ok, tt.base)
		}
	}
}

// model_info's *_priority prices are read (whole numbers too) without a warning, and
// WithPriority puts them in place of the standard prices they name. The old code warned
// "unknown or unsupported setting, ignored" for each.
func TestParse_ModelInfoPriorityPrices(t *testing.T) {
	cfg, warnings, err := Parse([]byte("model_list:\n  - model_name: a\n    litellm_params: {model: openai/x}\n"+
		"    model_info: {input_cost_per_token: 1, output_cost_per_token: 2, input_cost_per_token_priority: 5,\n"+
		"      cache_read_input_token_cost_priority: 0.5, input_cost_per_token_above_10_tokens_priority: 7}\n"),
		func(string) (string, bool) { return "", false })
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Parse: %v, warnings %q; want neither", err, warnings)
	}
	mi := cfg.ModelList[0].ModelInfo
	prio, ok := mi.WithPriority()
	if !ok || *prio.InputCostPerToken != 5 || *prio.OutputCostPerToken != 2 || *prio.CacheReadInputTokenCost != 0.5 {
		t.Errorf("WithPriority = %+v, %v; want input 5, output 2 (standard), cache read 0.5", prio, ok)
	}
	if got := prio.PriceTiers(); len(got) != 1 || got[0] != (TierCost{"input_cost_per_token", 10, 7}) {
		t.Errorf("priority tiers %v, want input above 10 tokens at 7", got)
	}
	if *mi.InputCostPerToken != 1 || len(mi.PriceTiers()) != 0 {
		t.Errorf("WithPriority changed the standard prices: %+v", mi)
	}
	if _, ok := (ModelInfo{InputCostPerToken: mi.InputCostPerToken}).WithPriority(); ok {
		t.Error("WithPriority of model_info without priority prices reports some")
	}
}
