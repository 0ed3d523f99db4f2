package pricing

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/tokens"
)

func ptr[T any](v T) *T { return &v }

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12+1e-9*math.Abs(b) }

func TestEmbedded_ParsesTheSnapshot(t *testing.T) {
	m := Embedded()
	if m.Len() != 2983 {
		t.Fatalf("Len = %d, want the snapshot's 2985 entries but sample_spec and last_updated", m.Len())
	}
	if _, ok := m.Lookup("sample_spec"); ok {
		t.Error("sample_spec (documentation, not a model) was kept")
	}
}

func TestCostMapLookup(t *testing.T) {
	tests := []struct {
		model     string
		wantFound bool
		wantIn    float64
		wantOut   float64
		wantMaxIn int
	}{
		{"gpt-4o", true, 2.5e-06, 1e-05, 128000},
		{"openai/gpt-4o", true, 2.5e-06, 1e-05, 128000}, // prefix stripped
		{"azure/gpt-4o", true, 2.5e-06, 1e-05, 128000},  // exact provider key
		{"groq/llama-3.1-8b-instant", true, 0, 0, 0},    // exact provider key (prices checked below)
		{"gemini/gemini-2.0-flash", true, 1e-07, 4e-07, 1048576},
		{"bedrock/meta.llama3-1-70b-instruct-v1:0", true, 9.9e-07, 9.9e-07, 128000},
		{"openai/no-such-model", false, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			e, ok := Embedded().Lookup(tt.model)
			if ok != tt.wantFound {
				t.Fatalf("found = %v, want %v", ok, tt.wantFound)
			}
			if !ok || strings.HasPrefix(tt.model, "groq/") {
				return
			}
			if e.InputCostPerToken != tt.wantIn || e.OutputCostPerToken != tt.wantOut || e.MaxInputTokens != tt.wantMaxIn {
				t.Errorf("entry = in %g out %g maxIn %d, want in %g out %g maxIn %d",
					e.InputCostPerToken, e.OutputCostPerToken, e.MaxInputTokens, tt.wantIn, tt.wantOut, tt.wantMaxIn)
			}
		})
	}
}

func TestPriceCost(t *testing.T) {
	p := NewWithMap(Embedded(), nil)
	dep := func(model string) config.Deployment {
		return config.Deployment{ModelName: "g", LiteLLMParams: config.LiteLLMParams{Model: model}}
	}
	withInfo := func(d config.Deployment, mi config.ModelInfo) config.Deployment { d.ModelInfo = mi; return d }
	tests := []struct {
		name  string
		dep   config.Deployment
		usage openai.Usage
		want  float64
	}{
		{
			name:  "gpt-4o input and output",
			dep:   dep("openai/gpt-4o"),
			usage: openai.Usage{PromptTokens: 1000, CompletionTokens: 500},
			want:  1000*2.5e-06 + 500*1e-05,
		},
		{
			name: "cached prompt tokens at the cache read price",
			dep:  dep("openai/gpt-4o"),
			usage: openai.Usage{PromptTokens: 1000, CompletionTokens: 10,
				PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 800}},
			want: 200*2.5e-06 + 800*1.25e-06 + 10*1e-05,
		},
		{
			name: "anthropic cache writes at the cache creation price",
			dep:  dep("anthropic/claude-sonnet-4-5"),
			usage: openai.Usage{PromptTokens: 3000, CompletionTokens: 100, CacheCreationInputTokens: 2000,
				PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: 500}},
			want: 500*3e-06 + 500*3e-07 + 2000*3.75e-06 + 100*1.5e-05,
		},
		{
			name:  "embedding input tokens",
			dep:   dep("openai/text-embedding-3-small"),
			usage: openai.Usage{PromptTokens: 10000, TotalTokens: 10000},
			want:  10000 * 2e-08,
		},
		{
			name: "model_info prices override the map",
			dep: withInfo(dep("openai/gpt-4o"), config.ModelInfo{
				InputCostPerToken: ptr(1e-06), OutputCostPerToken: ptr(2e-06)}),
			usage: openai.Usage{PromptTokens: 100, CompletionTokens: 100},
			want:  100*1e-06 + 100*2e-06,
		},
		{
			name: "litellm_params prices override the map",
			dep: config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o",
				InputCostPerToken: ptr(3e-06), OutputCostPerToken: ptr(4e-06)}},
			usage: openai.Usage{PromptTokens: 10, CompletionTokens: 10},
			want:  10*3e-06 + 10*4e-06,
		},
		{
			name:  "base_model prices a custom deployment name",
			dep:   withInfo(dep("azure/my-deploy"), config.ModelInfo{BaseModel: "azure/gpt-4o"}),
			usage: openai.Usage{PromptTokens: 1000, CompletionTokens: 1000},
			want:  1000*2.5e-06 + 1000*1e-05,
		},
		{
			name:  "unknown model costs nothing",
			dep:   dep("openai/my-finetune"),
			usage: openai.Usage{PromptTokens: 1000, CompletionTokens: 1000},
			want:  0,
		},
		{
			name:  "unknown model priced by config",
			dep:   withInfo(dep("openai/my-finetune"), config.ModelInfo{InputCostPerToken: ptr(1e-06)}),
			usage: openai.Usage{PromptTokens: 1000, CompletionTokens: 1000},
			want:  1000 * 1e-06,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Price(tt.dep, tt.dep.LiteLLMParams.Model).Cost(tt.usage)
			if !near(got, tt.want) {
				t.Errorf("Cost = %g, want %g", got, tt.want)
			}
		})
	}
}

func TestPrice_FreeAndLimits(t *testing.T) {
	p := NewWithMap(Embedded(), nil)
	tests := []struct {
		name       string
		dep        config.Deployment
		wantFree   bool
		wantKnown  bool
		wantMaxOut int
	}{
		{"priced model is not free", config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o-mini"}}, false, true, 16384},
		{"explicit zero price is free", config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o-mini"},
			ModelInfo: config.ModelInfo{InputCostPerToken: ptr(0.0), OutputCostPerToken: ptr(0.0)}}, true, true, 16384},
		{"unknown model is not free", config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: "openai/mystery"}}, false, false, 0},
		{"model_info max_output_tokens wins", config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o-mini"},
			ModelInfo: config.ModelInfo{MaxOutputTokens: 1000}}, false, true, 1000},
		{"max_tokens when the map has no max_output_tokens", config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: "openai/text-embedding-3-small"}}, false, true, 8191},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := p.Price(tt.dep, tt.dep.LiteLLMParams.Model)
			if pr.Free != tt.wantFree || pr.Known != tt.wantKnown || pr.MaxOutputTokens != tt.wantMaxOut {
				t.Errorf("Free %v Known %v MaxOutputTokens %d, want %v %v %d", pr.Free, pr.Known, pr.MaxOutputTokens, tt.wantFree, tt.wantKnown, tt.wantMaxOut)
			}
		})
	}
}

func TestPricer_WarnsOncePerUnknownModel(t *testing.T) {
	var buf bytes.Buffer
	p := NewWithMap(Embedded(), slog.New(slog.NewJSONHandler(&buf, nil)))
	d := config.Deployment{ModelName: "ft", LiteLLMParams: config.LiteLLMParams{Model: "openai/my-finetune"}}
	for range 3 {
		p.Price(d, d.LiteLLMParams.Model)
	}
	p.Price(config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: "mock/demo"}}, "mock/demo")
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("logged %d warnings, want 1:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "openai/my-finetune") {
		t.Errorf("warning does not name the model: %s", buf.String())
	}
}

// Wildcard groups price whatever model name a caller sends: distinct 2 MB names each stayed
// in the old "already warned" map, so memory grew without bound.
func TestPricer_WarnedModelsAreAFixedSizeSet(t *testing.T) {
	var buf bytes.Buffer
	p := NewWithMap(Embedded(), slog.New(slog.NewJSONHandler(&buf, nil)))
	long := strings.Repeat("x", 64<<10)
	for i := range 3 * maxWarned {
		p.Price(config.Deployment{ModelName: "openai/*"}, fmt.Sprintf("openai/%d-%s", i, long))
	}
	if n := len(p.warned.seen); n > maxWarned {
		t.Errorf("%d models remembered, want at most %d", n, maxWarned)
	}
	if line, _, _ := strings.Cut(buf.String(), "\n"); len(line) > 2*maxLoggedName+200 {
		t.Errorf("a warning of %d bytes, want the model name cut to %d", len(line), maxLoggedName)
	}
}

func TestNew_CostMapPathReplacesTheSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "costs.json")
	data, _ := json.Marshal(map[string]any{"my-model": map[string]any{
		"input_cost_per_token": 0.5, "output_cost_per_token": 1.5, "litellm_provider": "openai", "mode": "chat"}})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := New(config.Settings{CostMapPath: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Price(config.Deployment{}, "openai/my-model").Cost(openai.Usage{PromptTokens: 2, CompletionTokens: 2}); got != 4 {
		t.Errorf("cost = %g, want 4", got)
	}
	if got := p.Price(config.Deployment{}, "openai/gpt-4o"); got.Known {
		t.Errorf("gpt-4o priced from the embedded snapshot, want only the file's models: %+v", got)
	}
	if _, err := New(config.Settings{CostMapPath: filepath.Join(t.TempDir(), "missing.json")}, nil); err == nil {
		t.Error("missing cost map file: no error")
	}
}

// TestParse_ReadsEveryEntryAsEncodingJSONDoes compares Parse with a reference reading of the
// embedded snapshot through encoding/json: the same models, each with the same fields.
func TestParse_ReadsEveryEntryAsEncodingJSONDoes(t *testing.T) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(snapshot), &raw); err != nil {
		t.Fatal(err)
	}
	type rawEntry struct {
		Input         *float64 `json:"input_cost_per_token"`
		Output        *float64 `json:"output_cost_per_token"`
		CacheRead     *float64 `json:"cache_read_input_token_cost"`
		CacheCreation *float64 `json:"cache_creation_input_token_cost"`
		Cache1h       *float64 `json:"cache_creation_input_token_cost_above_1hr"`
		MaxInput      float64  `json:"max_input_tokens"`
		MaxOutput     float64  `json:"max_output_tokens"`
		Max           float64  `json:"max_tokens"`
		Mode          string   `json:"mode"`
		Provider      string   `json:"litellm_provider"`
		Reasoning     bool     `json:"supports_reasoning"`
		PDFInput      bool     `json:"supports_pdf_input"`
		Pixel         *float64 `json:"input_cost_per_pixel"`
		InputImage    *float64 `json:"input_cost_per_image"`
		OutputImage   *float64 `json:"output_cost_per_image"`
	}
	want := map[string]Entry{}
	for name, msg := range raw {
		var r rawEntry
		if json.Unmarshal(msg, &r) != nil {
			continue
		}
		e := Entry{CacheReadInputTokenCost: r.CacheRead, CacheCreationInputTokenCost: r.CacheCreation, CacheCreation1hInputTokenCost: r.Cache1h,
			MaxInputTokens: int(r.MaxInput), MaxOutputTokens: int(r.MaxOutput), MaxTokens: int(r.Max), Mode: r.Mode, Provider: r.Provider,
			SupportsReasoning: r.Reasoning, SupportsPDFInput: r.PDFInput}
		if r.Input != nil {
			e.InputCostPerToken, e.hasInput = *r.Input, true
		}
		if r.Output != nil {
			e.OutputCostPerToken, e.hasOutput = *r.Output, true
		}
		if r.Pixel != nil {
			e.InputCostPerPixel, e.hasPixel = *r.Pixel, true
		}
		if r.InputImage != nil {
			e.InputCostPerImage, e.hasInputImage = *r.InputImage, true
		}
		if r.OutputImage != nil {
			e.OutputCostPerImage, e.hasOutputImage = *r.OutputImage, true
		}
		var fields map[string]any
		_ = json.Unmarshal(msg, &fields)
		for k, v := range fields {
			f, isNum := v.(float64)
			if !isNum {
				continue
			}
			in := &e
			if base, prio := strings.CutSuffix(k, "_priority"); prio {
				if e.priority == nil {
					e.priority = &Entry{}
				}
				in, k = e.priority, base
			}
			switch k {
			case "input_cost_per_token":
				in.InputCostPerToken, in.hasInput = f, true
			case "output_cost_per_token":
				in.OutputCostPerToken, in.hasOutput = f, true
			case "cache_read_input_token_cost":
				in.CacheReadInputTokenCost = &f
			case "cache_creation_input_token_cost":
				in.CacheCreationInputTokenCost = &f
			}
			if base, above, ok := config.TierKey(k); ok {
				in.tiers = append(in.tiers, config.TierCost{Base: base, Above: above, Cost: f})
			}
		}
		want[name] = e
	}
	got, err := Parse([]byte(snapshot))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.entries) != len(want) {
		t.Errorf("Parse kept %d models, encoding/json %d", len(got.entries), len(want))
	}
	eqPtr := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	for name, w := range want {
		g, ok := got.entries[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if (g.priority == nil) != (w.priority == nil) {
			t.Errorf("%s: priority prices: Parse %v, encoding/json %v", name, g.priority, w.priority)
			continue
		}
		same := func(what string, g, w *Entry) {
			if !eqPtr(g.CacheReadInputTokenCost, w.CacheReadInputTokenCost) || !eqPtr(g.CacheCreationInputTokenCost, w.CacheCreationInputTokenCost) ||
				!eqPtr(g.CacheCreation1hInputTokenCost, w.CacheCreation1hInputTokenCost) {
				t.Errorf("%s%s: cache prices differ", name, what)
			}
			byKey := func(a, b config.TierCost) int {
				return cmp.Or(strings.Compare(a.Base, b.Base), cmp.Compare(a.Above, b.Above))
			}
			slices.SortFunc(g.tiers, byKey)
			slices.SortFunc(w.tiers, byKey)
			if !slices.Equal(g.tiers, w.tiers) {
				t.Errorf("%s%s: tiers %v, encoding/json %v", name, what, g.tiers, w.tiers)
			}
			g.CacheReadInputTokenCost, g.CacheCreationInputTokenCost, g.CacheCreation1hInputTokenCost, g.tiers, g.priority = nil, nil, nil, nil, nil
			w.CacheReadInputTokenCost, w.CacheCreationInputTokenCost, w.CacheCreation1hInputTokenCost, w.tiers, w.priority = nil, nil, nil, nil, nil
			if !reflect.DeepEqual(*g, *w) {
				t.Errorf("%s%s: Parse %+v, encoding/json %+v", name, what, *g, *w)
			}
		}
		if g.priority != nil {
			same(" (priority)", g.priority, w.priority)
		}
		same("", &g, &w)
	}
}

func TestParse_RejectsWhatIsNotACostMap(t *testing.T) {
	for _, in := range []string{``, `{"a":`, `[1,2]`, `"text"`} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

// BenchmarkParseSnapshot is the cold start's read of the embedded snapshot.
func BenchmarkParseSnapshot(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseValid(gjson.Parse(snapshot)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPrice_ReasoningAndPDFInputFromTheMapOrModelInfo(t *testing.T) {
	p := NewWithMap(Embedded(), nil)
	no := false
	for _, tc := range []struct {
		model          string
		mi             config.ModelInfo
		reasoning, pdf bool
	}{
		{"openai/o3-mini", config.ModelInfo{}, true, false},
		{"openai/gpt-4o", config.ModelInfo{}, false, true},
		{"groq/llama-3.1-8b-instant", config.ModelInfo{}, false, false},
		{"openai/o3-mini", config.ModelInfo{SupportsReasoning: &no}, false, false},
	} {
		pr := p.Price(config.Deployment{ModelName: "g", LiteLLMParams: config.LiteLLMParams{Model: tc.model}, ModelInfo: tc.mi}, tc.model)
		if pr.Reasoning != tc.reasoning || pr.PDFInput != tc.pdf {
			t.Errorf("%s %+v: reasoning %v pdf %v, want %v %v", tc.model, tc.mi, pr.Reasoning, pr.PDFInput, tc.reasoning, tc.pdf)
		}
	}
}

// TestPrice_TiersPriceTheWholeCallAboveTheirThreshold: LiteLLM's *_above_<N>k_tokens prices
// (cost map and model_info) apply to every token of a call whose prompt is above N tokens
// (from N for xAI); a price a tier leaves out is the base one.
func TestPrice_TiersPriceTheWholeCallAboveTheirThreshold(t *testing.T) {
	p := NewWithMap(Embedded(), nil)
	usage := func(prompt, cached, written, out int) openai.Usage {
		return openai.Usage{PromptTokens: prompt, CompletionTokens: out, CacheCreationInputTokens: written,
			PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: cached}}
	}
	dep := func(model string, mi config.ModelInfo) config.Deployment {
		return config.Deployment{LiteLLMParams: config.LiteLLMParams{Model: model}, ModelInfo: mi}
	}
	tiered := config.ModelInfo{InputCostPerToken: ptr(1e-6), OutputCostPerToken: ptr(2e-6), Other: map[string]any{
		"input_cost_per_token_above_128k_tokens": 3e-6, "cache_read_input_token_cost_above_128k_tokens": 1,
		"input_cost_per_token_above_1000_tokens": 2e-6, "output_cost_per_token_above_1000_tokens": 4e-6,
		"output_cost_per_token_above_64k_tokens": 9.0, // no input price at 64k: not a tier, as in LiteLLM
		"supports_vision":                        true,
	}}
	tests := []struct {
		name string
		dep  config.Deployment
		u    openai.Usage
		want float64
	}{
		{"claude at the threshold: base", dep("anthropic/claude-sonnet-4-20250514", config.ModelInfo{}), usage(200_000, 100_000, 50_000, 1000),
			50_000*3e-6 + 100_000*3e-7 + 50_000*3.75e-6 + 1000*1.5e-5},
		{"claude above: every token at the tier", dep("anthropic/claude-sonnet-4-20250514", config.ModelInfo{}), usage(200_001, 100_000, 50_000, 1000),
			50_001*6e-6 + 100_000*6e-7 + 50_000*7.5e-6 + 1000*2.25e-5},
		{"gpt-5.4 above 272k", dep("openai/gpt-5.4", config.ModelInfo{}), usage(300_000, 0, 0, 10), 300_000*5e-6 + 10*2.25e-5},
		{"xai from the threshold", dep("xai/grok-4-fast-reasoning", config.ModelInfo{}), usage(128_000, 0, 0, 10), 128_000*4e-7 + 10*1e-6},
		{"xai below", dep("xai/grok-4-fast-reasoning", config.ModelInfo{}), usage(127_999, 0, 0, 10), 127_999*2e-7 + 10*5e-7},
		{"model_info tiers: below", dep("openai/mine", tiered), usage(1000, 0, 0, 10), 1000*1e-6 + 10*2e-6},
		{"model_info tiers: the lower one", dep("openai/mine", tiered), usage(100_000, 0, 0, 10), 100_000*2e-6 + 10*4e-6},
		{"model_info tiers: the highest, output at the base price", dep("openai/mine", tiered), usage(130_000, 30_000, 0, 10),
			100_000*3e-6 + 30_000*1 + 10*2e-6},
		{"a config price replaces the map's tiers", dep("anthropic/claude-sonnet-4-20250514", config.ModelInfo{InputCostPerToken: ptr(1e-6)}),
			usage(300_000, 0, 0, 10), 300_000*1e-6 + 10*1.5e-5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.Price(tt.dep, tt.dep.LiteLLMParams.Model).Cost(tt.u); !near(got, tt.want) {
				t.Errorf("cost %g, want %g", got, tt.want)
			}
		})
	}
	free := config.ModelInfo{InputCostPerToken: ptr(0.0), OutputCostPerToken: ptr(0.0), Other: map[string]any{"input_cost_per_token_above_1k_tokens": 1e-6}}
	if p.Price(dep("openai/mine", free), "openai/mine").Free {
		t.Error("a model with a priced tier is not free")
	}
}

// TestPrice_OneHourCacheWritesAndThePriorityTier: cache writes with a 1-hour TTL are charged
// at cache_creation_input_token_cost_above_1hr (the others at the 5-minute price), an answer
// served at the priority service tier at the *_priority prices (tiers included, each price
// falling back to its standard one), and the reservation covers both whatever the request
// says. On the code before, neither price was read: every case below charged the standard
// 5-minute price and the bound was 3,020.
func TestPrice_OneHourCacheWritesAndThePriorityTier(t *testing.T) {
	costs, err := Parse([]byte(`{"m": {"input_cost_per_token": 1, "output_cost_per_token": 2,
		"cache_creation_input_token_cost": 1.5, "cache_creation_input_token_cost_above_1hr": 2,
		"input_cost_per_token_above_10_tokens": 3, "cache_creation_input_token_cost_above_1hr_above_10_tokens": 4,
		"input_cost_per_token_priority": 5, "input_cost_per_token_above_10_tokens_priority": 7}}`))
	if err != nil {
		t.Fatal(err)
	}
	p := NewWithMap(costs, nil).Price(config.Deployment{}, "m")
	usage := func(prompt, written, written1h int, tier string) openai.Usage {
		return openai.Usage{PromptTokens: prompt, CompletionTokens: 1, CacheCreationInputTokens: written,
			CacheCreation1hInputTokens: written1h, ServiceTier: tier}
	}
	tests := []struct {
		name string
		u    openai.Usage
		want float64
	}{
		{"5-minute writes", usage(10, 4, 0, ""), 6*1 + 4*1.5 + 2},
		{"1-hour writes at their price", usage(10, 4, 3, "default"), 6*1 + 1*1.5 + 3*2 + 2},
		{"more 1-hour writes than writes: as many as the writes", usage(10, 4, 9, ""), 6*1 + 4*2 + 2},
		{"above the tier: its 1-hour price", usage(20, 4, 3, ""), 16*3 + 1*1.5 + 3*4 + 2},
		{"priority", usage(10, 4, 3, "priority"), 6*5 + 1*1.5 + 3*2 + 2},
		{"priority above the tier", usage(20, 4, 3, "priority"), 16*7 + 1*1.5 + 3*4 + 2},
	}
	for _, tt := range tests {
		if got := p.Cost(tt.u); got != tt.want {
			t.Errorf("%s: cost %g, want %g", tt.name, got, tt.want)
		}
	}
	b := tokens.Billable{Prompt: tokens.Prompt{TextBytes: 1000 - tokens.RequestOverhead}, MaxOutput: 10, Choices: 1}
	if got, want := ReservationBound(b, []Target{{Model: "m", Price: p}}).Cost, 1000*7+10*2.0; got != want {
		t.Errorf("reserved %g, want %g (prompt at the priority tier's input price)", got, want)
	}

	// The embedded map: Claude's 1-hour writes, gpt-4o's priority prices; a deployment that
	// prices gpt-4o itself has no priority prices (the map's are for the map's prices).
	emb := NewWithMap(Embedded(), nil)
	claude := emb.Price(config.Deployment{}, "anthropic/claude-sonnet-4-20250514")
	if got, want := claude.Cost(usage(1000, 600, 400, "")), 400*3e-6+200*3.75e-6+400*6e-6+1.5e-5; !near(got, want) {
		t.Errorf("claude-sonnet-4: cost %g, want %g", got, want)
	}
	gpt := emb.Price(config.Deployment{}, "openai/gpt-4o")
	if got, want := gpt.Cost(usage(1000, 0, 0, "priority")), 1000*4.25e-6+1.7e-5; !near(got, want) {
		t.Errorf("gpt-4o at priority: cost %g, want %g", got, want)
	}
	own := emb.Price(config.Deployment{ModelInfo: config.ModelInfo{InputCostPerToken: ptr(1e-6), OutputCostPerToken: ptr(1e-6)}}, "openai/gpt-4o")
	if own.Priority != nil {
		t.Errorf("gpt-4o priced by the config: priority prices %+v, want none", *own.Priority)
	}
}

// model_info's *_priority prices price an answer served at the priority service tier, as the
// cost map's do: over the config's own prices (a price without a priority key stays the
// standard one), over the map's priority prices, tiers included; and the reservation covers
// them. On the old code they were ignored: the priority answers cost the standard prices.
func TestPrice_ConfigPriorityPrices(t *testing.T) {
	info := func(kv ...any) config.ModelInfo {
		mi := config.ModelInfo{Other: map[string]any{}}
		for i := 0; i < len(kv); i += 2 {
			mi.Other[kv[i].(string)] = kv[i+1]
		}
		return mi
	}
	own := info("input_cost_per_token_priority", 5, "output_cost_per_token_priority", 6.0,
		"input_cost_per_token_above_10_tokens", 3.0, "input_cost_per_token_above_10_tokens_priority", 7.0)
	own.InputCostPerToken, own.OutputCostPerToken = ptr(1.0), ptr(2.0)
	inputOnly := info("input_cost_per_token_priority", 5.0)
	inputOnly.InputCostPerToken, inputOnly.OutputCostPerToken = ptr(1.0), ptr(2.0)
	emb := NewWithMap(Embedded(), nil)
	usage := func(prompt int, tier string) openai.Usage {
		return openai.Usage{PromptTokens: prompt, CompletionTokens: 1, ServiceTier: tier}
	}
	tests := []struct {
		name  string
		mi    config.ModelInfo
		model string
		u     openai.Usage
		want  float64
	}{
		{"the config's prices, standard", own, "openai/mine", usage(10, ""), 10*1 + 2},
		{"the config's priority prices", own, "openai/mine", usage(10, "priority"), 10*5 + 6},
		{"the config's priority tier", own, "openai/mine", usage(20, "priority"), 20*7 + 6},
		{"a price without a priority key: the standard one", inputOnly, "openai/mine", usage(10, "priority"), 10*5 + 2},
		{"over the map's priority prices", info("input_cost_per_token_priority", 1e-5), "openai/gpt-4o", usage(1000, "priority"), 1000*1e-5 + 1.7e-5},
	}
	for _, tt := range tests {
		p := emb.Price(config.Deployment{ModelInfo: tt.mi}, tt.model)
		if got := p.Cost(tt.u); !near(got, tt.want) {
			t.Errorf("%s: cost %g, want %g", tt.name, got, tt.want)
		}
	}
	b := tokens.Billable{Prompt: tokens.Prompt{TextBytes: 1000 - tokens.RequestOverhead}, MaxOutput: 10, Choices: 1}
	p := emb.Price(config.Deployment{ModelInfo: own}, "openai/mine")
	if got, want := ReservationBound(b, []Target{{Model: "openai/mine", Price: p}}).Cost, 1000*7+10*6.0; got != want {
		t.Errorf("reserved %g, want %g (at the priority tier's prices)", got, want)
	}
}
