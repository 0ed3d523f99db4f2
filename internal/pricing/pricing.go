// Package pricing prices LLM calls with LiteLLM's model cost map: an embedded snapshot of
// model_prices_and_context_window.json (or a newer file named by
// llmgate_settings.cost_map_path), overridden per deployment by the prices in its
// model_info or litellm_params, as LiteLLM does.
package pricing

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// snapshot is LiteLLM's cost map as of the reference snapshot (MIT licensed, by BerriAI).
//
//go:embed model_prices_and_context_window.json
var snapshot []byte

// Entry is one model of the cost map: the fields llmgate prices with. Prices are USD per token.
type Entry struct {
	InputCostPerToken  float64
	OutputCostPerToken float64
	// CacheReadInputTokenCost and CacheCreationInputTokenCost are nil when the map has no
	// separate price: cached tokens then cost as much as other input tokens.
	CacheReadInputTokenCost     *float64
	CacheCreationInputTokenCost *float64
	MaxInputTokens              int
	MaxOutputTokens             int
	MaxTokens                   int
	Mode                        string
	Provider                    string
	hasInput, hasOutput         bool
}

// rawEntry is an Entry as the JSON has it (token counts are sometimes written as 2000000.0).
type rawEntry struct {
	Input         *float64 `json:"input_cost_per_token"`
	Output        *float64 `json:"output_cost_per_token"`
	CacheRead     *float64 `json:"cache_read_input_token_cost"`
	CacheCreation *float64 `json:"cache_creation_input_token_cost"`
	MaxInput      float64  `json:"max_input_tokens"`
	MaxOutput     float64  `json:"max_output_tokens"`
	Max           float64  `json:"max_tokens"`
	Mode          string   `json:"mode"`
	Provider      string   `json:"litellm_provider"`
}

// CostMap is a parsed LiteLLM-format cost map, keyed as LiteLLM keys it ("gpt-4o",
// "azure/gpt-4o", "groq/llama-3.1-8b-instant", ...).
type CostMap struct {
	entries map[string]Entry
}

// Parse reads a LiteLLM-format cost map. Entries that are not models (the map's
// "sample_spec" documentation and its "last_updated" date) are skipped.
func Parse(data []byte) (*CostMap, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse cost map: %w", err)
	}
	m := &CostMap{entries: make(map[string]Entry, len(raw))}
	for name, msg := range raw {
		var r rawEntry
		if err := json.Unmarshal(msg, &r); err != nil {
			continue
		}
		e := Entry{
			CacheReadInputTokenCost:     r.CacheRead,
			CacheCreationInputTokenCost: r.CacheCreation,
			MaxInputTokens:              int(r.MaxInput),
			MaxOutputTokens:             int(r.MaxOutput),
			MaxTokens:                   int(r.Max),
			Mode:                        r.Mode,
			Provider:                    r.Provider,
		}
		if r.Input != nil {
			e.InputCostPerToken, e.hasInput = *r.Input, true
		}
		if r.Output != nil {
			e.OutputCostPerToken, e.hasOutput = *r.Output, true
		}
		m.entries[name] = e
	}
	return m, nil
}

// embedded parses the snapshot on first use.
var embedded = sync.OnceValue(func() *CostMap {
	m, err := Parse(snapshot)
	if err != nil {
		panic("pricing: embedded cost map: " + err.Error()) // the snapshot is tested
	}
	return m
})

// Embedded returns the embedded snapshot, parsed once.
func Embedded() *CostMap { return embedded() }

// LoadFile reads a cost map file.
func LoadFile(path string) (*CostMap, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cost map: %w", err)
	}
	return Parse(data)
}

// Len is the number of models in the map.
func (m *CostMap) Len() int { return len(m.entries) }

// Lookup finds a deployment's model as LiteLLM does: the exact key first
// ("azure/gpt-4o", "groq/llama-3.1-8b-instant"), then the name without the provider prefix
// ("openai/gpt-4o" → "gpt-4o").
func (m *CostMap) Lookup(model string) (Entry, bool) {
	if e, ok := m.entries[model]; ok {
		return e, true
	}
	if _, name, ok := strings.Cut(model, "/"); ok {
		e, ok := m.entries[name]
		return e, ok
	}
	return Entry{}, false
}

// Price is what one deployment charges, in USD per token, with its token limits.
type Price struct {
	Input, Output, CacheRead, CacheCreation float64
	MaxInputTokens, MaxOutputTokens         int
	// Known is true when the cost map or the config priced the model.
	Known bool
	// Free is true when input and output are explicitly priced at zero: LiteLLM skips budget
	// checks for such models.
	Free bool
}

// Cost is the price of a call's usage. PromptTokens counts every prompt token, including
// the cached reads (prompt_tokens_details.cached_tokens) and cache writes
// (cache_creation_input_tokens) that are priced separately, as LiteLLM reports usage.
// Embeddings report prompt tokens only.
func (p Price) Cost(u openai.Usage) float64 {
	cached := 0
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	plain := max(u.PromptTokens-cached-u.CacheCreationInputTokens, 0)
	return float64(plain)*p.Input + float64(cached)*p.CacheRead +
		float64(u.CacheCreationInputTokens)*p.CacheCreation + float64(u.CompletionTokens)*p.Output
}

// WorstCase is the most a call can cost: its prompt plus maxTokens of output.
func (p Price) WorstCase(promptTokens, maxTokens int) float64 {
	return float64(promptTokens)*p.Input + float64(maxTokens)*p.Output
}

// Pricer prices deployments: the cost map with each deployment's config overrides.
type Pricer struct {
	costs  *CostMap
	log    *slog.Logger
	warned sync.Map // model → struct{}: unknown models already warned about
}

// New returns a Pricer on the embedded snapshot, or on the file named by
// llmgate_settings.cost_map_path.
func New(s config.Settings, log *slog.Logger) (*Pricer, error) {
	costs := Embedded()
	if s.CostMapPath != "" {
		var err error
		if costs, err = LoadFile(s.CostMapPath); err != nil {
			return nil, fmt.Errorf("llmgate_settings.cost_map_path: %w", err)
		}
	}
	return NewWithMap(costs, log), nil
}

// NewWithMap returns a Pricer on the given cost map.
func NewWithMap(costs *CostMap, log *slog.Logger) *Pricer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pricer{costs: costs, log: log}
}

// Price prices deployment d when it serves model, its litellm_params.model (after a
// wildcard group substituted the requested name). model_info.base_model, when set, is
// looked up instead. Prices in model_info, then litellm_params, override the cost map.
// A model neither the map nor the config prices costs 0, with a warning logged once.
func (p *Pricer) Price(d config.Deployment, model string) Price {
	lookup := model
	if d.ModelInfo.BaseModel != "" {
		lookup = d.ModelInfo.BaseModel
	}
	e, found := p.costs.Lookup(lookup)
	if !found && d.ModelInfo.BaseModel != "" {
		e, found = p.costs.Lookup(model)
	}
	pr := Price{
		Input:           e.InputCostPerToken,
		Output:          e.OutputCostPerToken,
		MaxInputTokens:  e.MaxInputTokens,
		MaxOutputTokens: e.MaxOutputTokens,
	}
	if pr.MaxOutputTokens == 0 {
		pr.MaxOutputTokens = e.MaxTokens
	}
	hasInput, hasOutput := found && e.hasInput, found && e.hasOutput
	mi, lp := d.ModelInfo, d.LiteLLMParams
	if v := first(mi.InputCostPerToken, lp.InputCostPerToken); v != nil {
		pr.Input, hasInput = *v, true
	}
	if v := first(mi.OutputCostPerToken, lp.OutputCostPerToken); v != nil {
		pr.Output, hasOutput = *v, true
	}
	pr.CacheRead, pr.CacheCreation = pr.Input, pr.Input
	if v := first(mi.CacheReadInputTokenCost, e.CacheReadInputTokenCost); v != nil {
		pr.CacheRead = *v
	}
	if v := first(mi.CacheCreationInputTokenCost, e.CacheCreationInputTokenCost); v != nil {
		pr.CacheCreation = *v
	}
	if mi.MaxInputTokens > 0 {
		pr.MaxInputTokens = mi.MaxInputTokens
	}
	if mi.MaxOutputTokens > 0 {
		pr.MaxOutputTokens = mi.MaxOutputTokens
	} else if mi.MaxTokens > 0 {
		pr.MaxOutputTokens = mi.MaxTokens
	}
	pr.Known = hasInput || hasOutput
	pr.Free = hasInput && hasOutput && pr.Input == 0 && pr.Output == 0
	if !pr.Known && !isMock(model) {
		if _, warned := p.warned.LoadOrStore(lookup, struct{}{}); !warned {
			p.log.Warn("model has no price: its calls cost 0; set model_info.input_cost_per_token and output_cost_per_token",
				"model", lookup, "model_group", d.ModelName)
		}
	}
	return pr
}

// isMock reports whether model is served by the mock provider, which needs no price.
func isMock(model string) bool {
	prefix, _ := provider.Split(model)
	return prefix == "mock"
}

func first(vs ...*float64) *float64 {
	for _, v := range vs {
		if v != nil {
			return v
		}
	}
	return nil
}
