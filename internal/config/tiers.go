package config

import (
	"maps"
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
		if f, isNum := number(v); ok && isNum {
			out = append(out, TierCost{base, above, f})
		}
	}
	return out
}

// PriorityKey reads the name of a price at the priority service tier, "<price>_priority", as
// the cost map names them: <price> is a token price (input_cost_per_token_priority) or a
// tiered one (input_cost_per_token_above_200k_tokens_priority).
func PriorityKey(key string) (base string, ok bool) {
	base, ok = strings.CutSuffix(key, "_priority")
	if !ok {
		return "", false
	}
	if _, _, tier := TierKey(base); tier || tierBases[base] {
		return base, true
	}
	return "", false
}

// WithPriority is mi with the prices of the priority service tier (its *_priority keys) in
// place of the standard prices they name, and whether mi has any. A price without a
// priority key stays the standard one, as LiteLLM falls back.
func (mi ModelInfo) WithPriority() (ModelInfo, bool) {
	out, found := mi, false
	for k, v := range mi.Other {
		base, ok := PriorityKey(k)
		f, isNum := number(v)
		if !ok || !isNum {
			continue
		}
		if !found {
			out.Other, found = maps.Clone(mi.Other), true
		}
		switch base {
		case "input_cost_per_token":
			out.InputCostPerToken = &f
		case "output_cost_per_token":
			out.OutputCostPerToken = &f
		case "cache_read_input_token_cost":
			out.CacheReadInputTokenCost = &f
		case "cache_creation_input_token_cost":
			out.CacheCreationInputTokenCost = &f
		case "cache_creation_input_token_cost_above_1hr":
			out.CacheCreationInputTokenCostAbove1hr = &f
		default: // a tiered price (see PriceTiers)
			out.Other[base] = f
		}
	}
	return out, found
}

// isPriceKey reports whether a model_info key without a field of its own is a price (tiered,
// or of the priority service tier): it is read into ModelInfo.Other.
func isPriceKey(key string) bool {
	_, _, tier := TierKey(key)
	_, priority := PriorityKey(key)
	return tier || priority
}

// number is a YAML number decoded into an any.
func number(v any) (float64, bool) {
	switch f := v.(type) {
	case float64:
		return f, true
	case int:
		return float64(f), true
	}
	return 0, false
}
