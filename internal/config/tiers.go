package config

import (
	"math"
	"strconv"
	"strings"
)

// TierCost is one price that applies to a whole call whose prompt is above Above tokens:
// LiteLLM's "<base>_above_<N>[k]_tokens" keys (input_cost_per_token_above_200k_tokens).
type TierCost struct {
	Base  string // input_cost_per_token, output_cost_per_token, cache_read_input_token_cost, cache_creation_input_token_cost or cache_creation_input_token_cost_above_1hr
	Above int
	Cost  float64
}

// tierBases are the prices a tier key can raise.
var tierBases = map[string]bool{
	"input_cost_per_token": true, "output_cost_per_token": true,
	"cache_read_input_token_cost": true, "cache_creation_input_token_cost": true,
	"cache_creation_input_token_cost_above_1hr": true,
}

// TierKey reads a tiered price's name: "<base>_above_<N>_tokens" or "<base>_above_<N>k_tokens"
// (k = 1,000 tokens), the base being one of tierBases (the 1-hour cache write price too:
// cache_creation_input_token_cost_above_1hr_above_200k_tokens). Other "_above_" keys (the
// 1-hour price itself, service-tier variants such as ..._above_200k_tokens_priority, whose
// suffix the caller strips, per-character prices) are not.
func TierKey(key string) (base string, above int, ok bool) {
	i := strings.LastIndex(key, "_above_")
	if i < 0 {
		return "", 0, false
	}
	base = key[:i]
	num, isTokens := strings.CutSuffix(key[i+len("_above_"):], "_tokens")
	if !isTokens || !tierBases[base] {
		return "", 0, false
	}
	scale := 1
	if n, k := strings.CutSuffix(num, "k"); k {
		num, scale = n, 1000
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 || n > math.MaxInt32/scale || num[0] == '+' {
		return "", 0, false
	}
	return base, n * scale, true
}

// PriceTiers are the tiered prices model_info sets, in no particular order.
func (mi ModelInfo) PriceTiers() []TierCost {
	var out []TierCost
	for k, v := range mi.Other {
		base, above, ok := TierKey(k)
		if !ok {
			continue
		}
		switch f := v.(type) {
		case float64:
			out = append(out, TierCost{base, above, f})
		case int:
			out = append(out, TierCost{base, above, float64(f)})
		}
	}
	return out
}
