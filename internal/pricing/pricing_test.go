package pricing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
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

func TestPrice_WorstCase(t *testing.T) {
	pr := Price{Input: 1e-06, Output: 3e-06}
	if got, want := pr.WorstCase(1000, 500), 1000*1e-06+500*3e-06; !near(got, want) {
		t.Errorf("WorstCase = %g, want %g", got, want)
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
		MaxInput      float64  `json:"max_input_tokens"`
		MaxOutput     float64  `json:"max_output_tokens"`
		Max           float64  `json:"max_tokens"`
		Mode          string   `json:"mode"`
		Provider      string   `json:"litellm_provider"`
		Reasoning     bool     `json:"supports_reasoning"`
		PDFInput      bool     `json:"supports_pdf_input"`
	}
	want := map[string]Entry{}
	for name, msg := range raw {
		var r rawEntry
		if json.Unmarshal(msg, &r) != nil {
			continue
		}
		e := Entry{CacheReadInputTokenCost: r.CacheRead, CacheCreationInputTokenCost: r.CacheCreation,
			MaxInputTokens: int(r.MaxInput), MaxOutputTokens: int(r.MaxOutput), MaxTokens: int(r.Max), Mode: r.Mode, Provider: r.Provider,
			SupportsReasoning: r.Reasoning, SupportsPDFInput: r.PDFInput}
		if r.Input != nil {
			e.InputCostPerToken, e.hasInput = *r.Input, true
		}
		if r.Output != nil {
			e.OutputCostPerToken, e.hasOutput = *r.Output, true
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
		if !eqPtr(g.CacheReadInputTokenCost, w.CacheReadInputTokenCost) || !eqPtr(g.CacheCreationInputTokenCost, w.CacheCreationInputTokenCost) {
			t.Errorf("%s: cache prices differ", name)
		}
		g.CacheReadInputTokenCost, g.CacheCreationInputTokenCost = nil, nil
		w.CacheReadInputTokenCost, w.CacheCreationInputTokenCost = nil, nil
		if g != w {
			t.Errorf("%s: Parse %+v, encoding/json %+v", name, g, w)
		}
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
