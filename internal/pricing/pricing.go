// Package pricing prices LLM calls with LiteLLM's model cost map: an embedded snapshot of
// model_prices_and_context_window.json (or a newer file named by
// llmgate_settings.cost_map_path), overridden per deployment by the prices in its
// model_info or litellm_params, as LiteLLM does.
package pricing

import (
	"cmp"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"unicode"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// snapshot is LiteLLM's cost map as of the reference snapshot (MIT licensed, by BerriAI).
//
//go:embed model_prices_and_context_window.json
var snapshot string

// Entry is one model of the cost map: the fields llmgate prices with. Prices are USD per token.
type Entry struct {
	InputCostPerToken  float64
	OutputCostPerToken float64
	// CacheReadInputTokenCost and CacheCreationInputTokenCost are nil when the map has no
	// separate price: cached tokens then cost as much as other input tokens.
	CacheReadInputTokenCost     *float64
	CacheCreationInputTokenCost *float64
	// CacheCreation1hInputTokenCost (cache_creation_input_token_cost_above_1hr) prices cache
	// writes with a 1-hour TTL; nil: as other cache writes.
	CacheCreation1hInputTokenCost *float64
	MaxInputTokens                int
	MaxOutputTokens               int
	MaxTokens                     int
	Mode                          string
	Provider                      string
	// SupportsReasoning and SupportsPDFInput are the map's supports_reasoning and
	// supports_pdf_input.
	SupportsReasoning, SupportsPDFInput bool
	// InputCostPerPixel, InputCostPerImage and OutputCostPerImage price generated images
	// (see ImagePrices); has* say the map set them (0 is a price).
	InputCostPerPixel, InputCostPerImage, OutputCostPerImage float64
	hasInput, hasOutput                                      bool
	hasPixel, hasInputImage, hasOutputImage                  bool
	// tiers are the map's prices above a prompt size (input_cost_per_token_above_200k_tokens...).
	tiers []config.TierCost
	// priority holds the prices of the priority service tier (the map's *_priority keys,
	// without the suffix); nil when the map has none.
	priority *Entry
}

// CostMap is a parsed LiteLLM-format cost map, keyed as LiteLLM keys it ("gpt-4o",
// "azure/gpt-4o", "groq/llama-3.1-8b-instant", ...).
type CostMap struct {
	entries map[string]Entry
	// images are the map's per-size prices of image models ("hd/1024-x-1024/dall-e-3"),
	// keyed by the model with its provider prefix, if any ("dall-e-3", "azure/dall-e-3").
	images map[string][]SizedImage
}

// Parse reads a LiteLLM-format cost map. Entries that are not models (the map's
// "sample_spec" documentation, whose fields hold prose, and its "last_updated" date) are
// skipped: so is any entry with a field of the wrong type. It reads the JSON with gjson
// rather than encoding/json, as a cold start reads the 1.5 MB snapshot: 4 ms instead of 35.
func Parse(data []byte) (*CostMap, error) {
	if !gjson.ValidBytes(data) {
		return nil, errors.New("parse cost map: not valid JSON")
	}
	return parseValid(gjson.ParseBytes(data))
}

// parseValid reads a cost map from valid JSON. The embedded snapshot, tested, comes here
// straight, so a cold start neither validates it again nor copies it.
func parseValid(root gjson.Result) (*CostMap, error) {
	if !root.IsObject() {
		return nil, errors.New("parse cost map: not a JSON object")
	}
	m := &CostMap{entries: make(map[string]Entry, 4096), images: map[string][]SizedImage{}}
	root.ForEach(func(name, v gjson.Result) bool {
		if e, ok := parseEntry(v); ok {
			key := strings.Clone(name.String()) // not a substring that holds all of data
			m.entries[key] = e
			m.addSizedImage(key, e)
		}
		return true
	})
	return m, nil
}

// parseEntry reads the fields llmgate prices with from one model's object. Token counts are
// sometimes written as 2000000.0, so they are read as numbers and truncated.
func parseEntry(v gjson.Result) (e Entry, ok bool) {
	if !v.IsObject() {
		return Entry{}, false
	}
	ok = true
	num := func(x gjson.Result) (float64, bool) {
		switch x.Type {
		case gjson.Number:
			return x.Num, true
		case gjson.Null:
			return 0, false
		}
		ok = false
		return 0, false
	}
	flag := func(x gjson.Result) bool {
		if x.Type != gjson.True && x.Type != gjson.False && x.Type != gjson.Null {
			ok = false
		}
		return x.Type == gjson.True
	}
	str := func(x gjson.Result) string {
		if x.Type != gjson.String && x.Type != gjson.Null {
			ok = false
		}
		return strings.Clone(x.Str)
	}
	v.ForEach(func(field, x gjson.Result) bool {
		e, name := &e, field.Str
		if base, prio := strings.CutSuffix(name, "_priority"); prio {
			if e.priority == nil {
				e.priority = &Entry{}
			}
			e, name = e.priority, base
		}
		switch name {
		case "input_cost_per_token":
			e.InputCostPerToken, e.hasInput = num(x)
		case "output_cost_per_token":
			e.OutputCostPerToken, e.hasOutput = num(x)
		case "cache_read_input_token_cost":
			if f, set := num(x); set {
				e.CacheReadInputTokenCost = &f
			}
		case "cache_creation_input_token_cost":
			if f, set := num(x); set {
				e.CacheCreationInputTokenCost = &f
			}
		case "cache_creation_input_token_cost_above_1hr":
			if f, set := num(x); set {
				e.CacheCreation1hInputTokenCost = &f
			}
		case "max_input_tokens":
			f, _ := num(x)
			e.MaxInputTokens = int(f)
		case "max_output_tokens":
			f, _ := num(x)
			e.MaxOutputTokens = int(f)
		case "max_tokens":
			f, _ := num(x)
			e.MaxTokens = int(f)
		case "mode":
			e.Mode = str(x)
		case "litellm_provider":
			e.Provider = str(x)
		case "supports_reasoning":
			e.SupportsReasoning = flag(x)
		case "supports_pdf_input":
			e.SupportsPDFInput = flag(x)
		case "input_cost_per_pixel":
			e.InputCostPerPixel, e.hasPixel = num(x)
		case "input_cost_per_image":
			e.InputCostPerImage, e.hasInputImage = num(x)
		case "output_cost_per_image":
			e.OutputCostPerImage, e.hasOutputImage = num(x)
		default:
			if base, above, tier := config.TierKey(name); tier {
				if f, set := num(x); set {
					e.tiers = append(e.tiers, config.TierCost{Base: base, Above: above, Cost: f})
				}
			}
		}
		return ok
	})
	return e, ok
}

// embedded parses the snapshot on first use.
var embedded = sync.OnceValue(func() *CostMap {
	m, err := parseValid(gjson.Parse(snapshot))
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

// Models lists the models the map prices for a provider (litellm_provider), by name without
// the provider prefix, sorted.
func (m *CostMap) Models(provider string) []string {
	seen := map[string]bool{}
	for key, e := range m.entries {
		if e.Provider != provider {
			continue
		}
		name := strings.TrimPrefix(key, provider+"/")
		if !strings.Contains(name, "/") {
			seen[name] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Lookup finds a deployment's model as LiteLLM does: the exact key first
// ("azure/gpt-4o", "groq/llama-3.1-8b-instant"), then the name without the provider prefix
// ("openai/gpt-4o" → "gpt-4o").
//
// A name that is not found as given is looked up again normalized (surrounding spaces and
// invisible format characters such as zero-width spaces removed, lower case), so a caller
// of a wildcard group cannot dodge its price by spelling "openai/GPT-4o ".
func (m *CostMap) Lookup(model string) (Entry, bool) { return find(m.entries, model) }

// find looks model up in a map keyed as the cost map is, as Lookup describes.
func find[V any](m map[string]V, model string) (V, bool) {
	if v, ok := findAsGiven(m, model); ok {
		return v, true
	}
	if n := normalize(model); n != model {
		return findAsGiven(m, n)
	}
	var zero V
	return zero, false
}

func findAsGiven[V any](m map[string]V, model string) (V, bool) {
	if v, ok := m[model]; ok {
		return v, true
	}
	if _, name, ok := strings.Cut(model, "/"); ok {
		v, ok := m[name]
		return v, ok
	}
	var zero V
	return zero, false
}

// normalize is a model name without spaces around it, format characters (Unicode Cf:
// zero-width spaces and joiners, bidi marks) or upper case.
func normalize(model string) string {
	return strings.ToLower(strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, model)))
}

// Models lists the models the cost map prices for a provider (see CostMap.Models).
func (p *Pricer) Models(provider string) []string { return p.costs.Models(provider) }

// Price is what one deployment charges, in USD per token, with its token limits.
type Price struct {
	Input, Output, CacheRead, CacheCreation float64
	// CacheCreation1h prices cache writes with a 1-hour TTL (CacheCreation when the model has
	// no such price).
	CacheCreation1h                 float64
	MaxInputTokens, MaxOutputTokens int
	// Known is true when the cost map or the config priced the model.
	Known bool
	// Free is true when input and output are explicitly priced at zero: LiteLLM skips budget
	// checks for such models.
	Free bool
	// Reasoning and PDFInput say the model takes chat's reasoning_effort and PDF file parts
	// (supports_reasoning, supports_pdf_input of model_info, else of the cost map), for
	// translations that send only what the model takes.
	Reasoning, PDFInput bool
	// Tiers are the prices of a call whose prompt is above a size, by ascending Above.
	Tiers []Tier
	// TierAtThreshold: a prompt of exactly Above tokens is priced at the tier (xAI bills so).
	TierAtThreshold bool
	// Images prices image generation.
	Images ImagePrices
	// Priority is what a call served at the priority service tier costs (the cost map's
	// *_priority prices, each falling back to its standard price); nil when the model has no
	// such prices.
	Priority *Price
}

// Tier is what every token of a call costs when its prompt is above Above tokens (LiteLLM's
// *_above_<N>k_tokens prices: the whole call, not only the tokens past the threshold).
type Tier struct {
	Above                                                    int
	Input, Output, CacheRead, CacheCreation, CacheCreation1h float64
}

// at is the tier a prompt of prompt tokens is priced at: the highest that applies, else the
// base prices.
func (p Price) at(prompt int) Tier {
	for _, t := range slices.Backward(p.Tiers) {
		if p.applies(t, prompt) {
			return t
		}
	}
	return p.base()
}

// base is the prices below every tier.
func (p Price) base() Tier {
	return Tier{Input: p.Input, Output: p.Output, CacheRead: p.CacheRead, CacheCreation: p.CacheCreation, CacheCreation1h: p.CacheCreation1h}
}

// applies reports whether t prices a call whose prompt has prompt tokens.
func (p Price) applies(t Tier, prompt int) bool {
	return prompt > t.Above || (p.TierAtThreshold && prompt == t.Above)
}

// Cost is the price of a call's usage. PromptTokens counts every prompt token, including
// the cached reads (prompt_tokens_details.cached_tokens) and cache writes
// (cache_creation_input_tokens) that are priced separately, as LiteLLM reports usage; it
// also picks the tier. The cache writes with a 1-hour TTL are priced at CacheCreation1h,
// the others at CacheCreation. A usage served at the priority service tier is priced at
// Priority. Embeddings report prompt tokens only.
func (p Price) Cost(u openai.Usage) float64 {
	if u.ServiceTier == openai.ServiceTierPriority && p.Priority != nil {
		p = *p.Priority
	}
	cached := 0
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	r := p.at(u.PromptTokens)
	plain := max(u.PromptTokens-cached-u.CacheCreationInputTokens, 0)
	write1h := min(max(u.CacheCreation1hInputTokens, 0), max(u.CacheCreationInputTokens, 0))
	return float64(plain)*r.Input + float64(cached)*r.CacheRead +
		float64(u.CacheCreationInputTokens-write1h)*r.CacheCreation + float64(write1h)*r.CacheCreation1h +
		float64(u.CompletionTokens)*r.Output
}

// Pricer prices deployments: the cost map with each deployment's config overrides.
type Pricer struct {
	costs  *CostMap
	log    *slog.Logger
	warned warnedSet
}

// maxWarned bounds how many unknown models a Pricer remembers having warned about: a
// wildcard group prices whatever model name a caller sends, so the names are untrusted.
const maxWarned = 1024

// maxLoggedName bounds a model name in the warning.
const maxLoggedName = 256

// warnedSet remembers up to maxWarned model names (as hashes, whatever their length); when
// full it starts over, so a warning may repeat but memory stays fixed.
type warnedSet struct {
	mu   sync.Mutex
	seen map[[sha256.Size]byte]struct{}
}

// first reports whether name is new, and remembers it.
func (w *warnedSet) first(name string) bool {
	h := sha256.Sum256([]byte(name))
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.seen[h]; ok {
		return false
	}
	if w.seen == nil || len(w.seen) >= maxWarned {
		w.seen = make(map[[sha256.Size]byte]struct{}, 16)
	}
	w.seen[h] = struct{}{}
	return true
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
	pr, hasInput, hasOutput := tokenPrices(e, found, d.ModelInfo, d.LiteLLMParams)
	pr.MaxInputTokens, pr.MaxOutputTokens = e.MaxInputTokens, e.MaxOutputTokens
	if pr.MaxOutputTokens == 0 {
		pr.MaxOutputTokens = e.MaxTokens
	}
	mi, lp := d.ModelInfo, d.LiteLLMParams
	pr.TierAtThreshold = e.Provider == "xai"
	// The priority service tier's prices: model_info's *_priority keys, over the map's. A
	// config that prices the model itself prices it at every service tier (its standard
	// prices where it has no priority ones): the map's priority prices are for the map's
	// standard ones.
	prioInfo, configPrio := mi.WithPriority()
	mapPrio := e.priority != nil && !pricedByConfig(mi, lp)
	if mapPrio || configPrio {
		pe := e
		if mapPrio {
			pe = e.withPriority()
		}
		prio, _, _ := tokenPrices(pe, found, prioInfo, lp)
		prio.TierAtThreshold = pr.TierAtThreshold
		pr.Priority = &prio
	}
	if mi.MaxInputTokens > 0 {
		pr.MaxInputTokens = mi.MaxInputTokens
	}
	if mi.MaxOutputTokens > 0 {
		pr.MaxOutputTokens = mi.MaxOutputTokens
	} else if mi.MaxTokens > 0 {
		pr.MaxOutputTokens = mi.MaxTokens
	}
	pr.Reasoning, pr.PDFInput = e.SupportsReasoning, e.SupportsPDFInput
	if mi.SupportsReasoning != nil {
		pr.Reasoning = *mi.SupportsReasoning
	}
	if mi.SupportsPDFInput != nil {
		pr.PDFInput = *mi.SupportsPDFInput
	}
	pr.Images = p.imagePrices(d.ModelInfo, e, found, lookup)
	if isMock(model) {
		pr.Images = ImagePrices{Flat: true}
	}
	pr.Known = hasInput || hasOutput || isMock(model) // the mock provider has no upstream to pay
	// Free: the base input and output prices are zero, and so is every price of every tier
	// and of the priority service tier (reachable's first element is the base).
	pr.Free = hasInput && hasOutput && pr.Input == 0 && pr.Output == 0 && !slices.ContainsFunc(pr.reachable(math.MaxInt)[1:], func(t Tier) bool {
		return t.Input != 0 || t.Output != 0 || t.CacheRead != 0 || t.CacheCreation != 0 || t.CacheCreation1h != 0
	})
	if !pr.Known {
		if p.warned.first(lookup) {
			name := lookup
			if len(name) > maxLoggedName {
				name = name[:maxLoggedName] + "..."
			}
			p.log.Warn("model has no price: its calls cost 0; set model_info.input_cost_per_token and output_cost_per_token",
				"model", name, "model_group", d.ModelName)
		}
	}
	return pr
}

// tokenPrices are the per-token prices of a model the cost map has as e (found: at all),
// overridden by the deployment's config, with whether input and output are priced.
func tokenPrices(e Entry, found bool, mi config.ModelInfo, lp config.LiteLLMParams) (pr Price, hasInput, hasOutput bool) {
	pr.Input, pr.Output = e.InputCostPerToken, e.OutputCostPerToken
	hasInput, hasOutput = found && e.hasInput, found && e.hasOutput
	if v := first(mi.InputCostPerToken, lp.InputCostPerToken); v != nil {
		pr.Input, hasInput = *v, true
	}
	if v := first(mi.OutputCostPerToken, lp.OutputCostPerToken); v != nil {
		pr.Output, hasOutput = *v, true
	}
	pr.CacheRead, pr.CacheCreation = pr.Input, pr.Input
	cacheRead := first(mi.CacheReadInputTokenCost, e.CacheReadInputTokenCost)
	if cacheRead != nil {
		pr.CacheRead = *cacheRead
	}
	cacheCreation := first(mi.CacheCreationInputTokenCost, e.CacheCreationInputTokenCost)
	if cacheCreation != nil {
		pr.CacheCreation = *cacheCreation
	}
	pr.CacheCreation1h = pr.CacheCreation
	cacheCreation1h := first(mi.CacheCreationInputTokenCostAbove1hr, e.CacheCreation1hInputTokenCost)
	if cacheCreation1h != nil {
		pr.CacheCreation1h = *cacheCreation1h
	}
	// A config that prices the model itself prices its tiers too: the map's tiers are for
	// the map's base prices.
	tiers := e.tiers
	if pricedByConfig(mi, lp) {
		tiers = nil
	}
	pr.Tiers = priceTiers(append(slices.Clone(tiers), mi.PriceTiers()...), pr, cacheRead, cacheCreation, cacheCreation1h)
	return pr, hasInput, hasOutput
}

// pricedByConfig reports whether the deployment's config sets its input or output price.
func pricedByConfig(mi config.ModelInfo, lp config.LiteLLMParams) bool {
	return first(mi.InputCostPerToken, lp.InputCostPerToken, mi.OutputCostPerToken, lp.OutputCostPerToken) != nil
}

// withPriority is e with its priority service tier's prices in place of the standard ones
// it has them for (LiteLLM falls back to the standard price of a key without _priority).
func (e Entry) withPriority() Entry {
	p := *e.priority
	if p.hasInput {
		e.InputCostPerToken, e.hasInput = p.InputCostPerToken, true
	}
	if p.hasOutput {
		e.OutputCostPerToken, e.hasOutput = p.OutputCostPerToken, true
	}
	e.CacheReadInputTokenCost = cmp.Or(p.CacheReadInputTokenCost, e.CacheReadInputTokenCost)
	e.CacheCreationInputTokenCost = cmp.Or(p.CacheCreationInputTokenCost, e.CacheCreationInputTokenCost)
	e.CacheCreation1hInputTokenCost = cmp.Or(p.CacheCreation1hInputTokenCost, e.CacheCreation1hInputTokenCost)
	e.tiers = append(slices.Clone(e.tiers), p.tiers...) // a later price wins in priceTiers
	e.priority = nil
	return e
}

// priceTiers builds the tiers from their prices (a later one wins for the same price and
// threshold), as LiteLLM reads them: a threshold is a tier when it prices input; a price it
// leaves out is the base price (cache prices: the base's own, else the tier's input price,
// as cached tokens without a price of their own cost as much as other input).
func priceTiers(costs []config.TierCost, base Price, cacheRead, cacheCreation, cacheCreation1h *float64) []Tier {
	byAbove := map[int]map[string]float64{}
	for _, c := range costs {
		if byAbove[c.Above] == nil {
			byAbove[c.Above] = map[string]float64{}
		}
		byAbove[c.Above][c.Base] = c.Cost
	}
	var out []Tier
	for above, m := range byAbove {
		in, ok := m["input_cost_per_token"]
		if !ok {
			continue
		}
		t := Tier{Above: above, Input: in, Output: base.Output, CacheRead: in, CacheCreation: in}
		if v, ok := m["output_cost_per_token"]; ok {
			t.Output = v
		}
		if v, ok := m["cache_read_input_token_cost"]; ok {
			t.CacheRead = v
		} else if cacheRead != nil {
			t.CacheRead = *cacheRead
		}
		if v, ok := m["cache_creation_input_token_cost"]; ok {
			t.CacheCreation = v
		} else if cacheCreation != nil {
			t.CacheCreation = *cacheCreation
		}
		t.CacheCreation1h = t.CacheCreation
		if v, ok := m["cache_creation_input_token_cost_above_1hr"]; ok {
			t.CacheCreation1h = v
		} else if cacheCreation1h != nil {
			t.CacheCreation1h = *cacheCreation1h
		}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Tier) int { return cmp.Compare(a.Above, b.Above) })
	return out
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
