package openaicompat_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/openaicompat"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

// wantSpecs are the default base URLs and first key variables, as LiteLLM has them.
var wantSpecs = map[string]struct {
	base        string // default api_base; "" = required
	keyEnv      string
	keyOptional bool
}{
	"openai":       {"https://api.openai.com/v1", "OPENAI_API_KEY", false},
	"groq":         {"https://api.groq.com/openai/v1", "GROQ_API_KEY", false},
	"together_ai":  {"https://api.together.xyz/v1", "TOGETHER_API_KEY", false},
	"fireworks_ai": {"https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", false},
	"deepseek":     {"https://api.deepseek.com/beta", "DEEPSEEK_API_KEY", false},
	"mistral":      {"https://api.mistral.ai/v1", "MISTRAL_API_KEY", false},
	"perplexity":   {"https://api.perplexity.ai", "PERPLEXITYAI_API_KEY", false},
	"openrouter":   {"https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", false},
	"xai":          {"https://api.x.ai/v1", "XAI_API_KEY", false},
	"deepinfra":    {"https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY", false},
	"cerebras":     {"https://api.cerebras.ai/v1", "CEREBRAS_API_KEY", false},
	"sambanova":    {"https://api.sambanova.ai/v1", "SAMBANOVA_API_KEY", false},
	"nvidia_nim":   {"https://integrate.api.nvidia.com/v1", "NVIDIA_NIM_API_KEY", false},
	"hosted_vllm":  {"", "HOSTED_VLLM_API_KEY", true},
	"ollama":       {"http://localhost:11434/v1", "OLLAMA_API_KEY", true},
	"ollama_chat":  {"http://localhost:11434/v1", "OLLAMA_API_KEY", true},
	"lm_studio":    {"http://localhost:1234/v1", "LM_STUDIO_API_KEY", true},
}

// clearEnv unsets every variable a spec reads, so the machine's environment cannot leak in.
func clearEnv(t *testing.T, s openaicompat.Spec) {
	for _, n := range append(append([]string(nil), s.BaseEnv...), s.KeyEnv...) {
		t.Setenv(n, "")
	}
}

func TestSpecs_DefaultBaseURLAndKeyVariable(t *testing.T) {
	if len(openaicompat.Specs) != len(wantSpecs) {
		t.Errorf("%d specs, want %d", len(openaicompat.Specs), len(wantSpecs))
	}
	for _, s := range openaicompat.Specs {
		t.Run(s.Prefix, func(t *testing.T) {
			w, ok := wantSpecs[s.Prefix]
			if !ok {
				t.Fatalf("unexpected prefix %q", s.Prefix)
			}
			clearEnv(t, s)
			cl := &provider.Call{Kind: provider.Chat, Body: []byte(`{}`), Model: "m"}

			ep, err := s.Resolve(cl)
			switch {
			case w.base == "":
				if err == nil || !strings.Contains(err.Error(), "api_base is required") {
					t.Errorf("Resolve without api_base: err = %v, want api_base is required", err)
				}
			case w.keyOptional:
				if err != nil || ep.URL != w.base+"/chat/completions" || ep.Header.Get("Authorization") != "" {
					t.Errorf("Resolve = %q %v, %v; want %s/chat/completions without Authorization", ep.URL, ep.Header, err, w.base)
				}
			default:
				if err == nil || !strings.Contains(err.Error(), w.keyEnv) {
					t.Errorf("Resolve without a key: err = %v, want it to name %s", err, w.keyEnv)
				}
				cl.Params.APIKey = "k"
				if ep, err := s.Resolve(cl); err != nil || ep.URL != w.base+"/chat/completions" {
					t.Errorf("Resolve = %q, %v; want %s/chat/completions", ep.URL, err, w.base)
				}
			}

			// The same path on the fake upstream's host; the key comes from the environment.
			u := providertest.NewUpstream(t, providertest.JSON(200, chatResponse))
			base := w.base
			if base == "" {
				base = "http://vllm.internal:8000/v1"
			}
			if s.Suffix != "" {
				base = strings.TrimSuffix(base, s.Suffix) // as LiteLLM configs write Ollama's api_base
			}
			bu, _ := url.Parse(base)
			t.Setenv(w.keyEnv, "env-key-for-"+s.Prefix)
			cl = &provider.Call{Kind: provider.Chat, Body: []byte(`{"model":"x","messages":[]}`), Model: "m",
				Params: config.LiteLLMParams{APIBase: u.URL + bu.Path}}
			if _, err := openaicompat.New(u.Client(), s).Do(context.Background(), cl); err != nil {
				t.Fatalf("Do: %v", err)
			}
			req := u.Last(t)
			wantPath := bu.Path + s.Suffix
			if req.Path != wantPath+"/chat/completions" {
				t.Errorf("path = %s, want %s/chat/completions", req.Path, wantPath)
			}
			if got, want := req.Header.Get("Authorization"), "Bearer env-key-for-"+s.Prefix; got != want {
				t.Errorf("Authorization = %q, want %q", got, want)
			}
			if got := req.Header.Get("Api-Key"); got != "" {
				t.Errorf("Api-Key = %q, want none", got)
			}
		})
	}
}

func TestSpecs_KeyPrecedence(t *testing.T) {
	var together openaicompat.Spec
	for _, s := range openaicompat.Specs {
		if s.Prefix == "together_ai" {
			together = s
		}
	}
	clearEnv(t, together)
	cl := &provider.Call{Kind: provider.Chat, Model: "m"}

	t.Setenv("TOGETHERAI_API_KEY", "third-variable")
	if ep, err := together.Resolve(cl); err != nil || ep.Header.Get("Authorization") != "Bearer third-variable" {
		t.Errorf("later variable: Authorization = %q, %v; want Bearer third-variable", ep.Header.Get("Authorization"), err)
	}
	t.Setenv("TOGETHER_API_KEY", "first-variable")
	if ep, _ := together.Resolve(cl); ep.Header.Get("Authorization") != "Bearer first-variable" {
		t.Errorf("first variable: Authorization = %q, want Bearer first-variable", ep.Header.Get("Authorization"))
	}
	cl.Params.APIKey = "from-params"
	if ep, _ := together.Resolve(cl); ep.Header.Get("Authorization") != "Bearer from-params" || ep.Secret != "from-params" {
		t.Errorf("api_key: Authorization = %q, want Bearer from-params", ep.Header.Get("Authorization"))
	}
}

func TestSpecs_BaseURLFromEnvironment(t *testing.T) {
	s := openAISpec(t)
	clearEnv(t, s)
	t.Setenv("OPENAI_API_BASE", "https://proxy.example.com/openai/v1/")
	cl := &provider.Call{Kind: provider.Embedding, Model: "m"}
	ep, err := s.Resolve(cl)
	if err != nil || ep.URL != "https://proxy.example.com/openai/v1/embeddings" {
		t.Errorf("Resolve = %q, %v; want the base from OPENAI_API_BASE", ep.URL, err)
	}
	if ep.Header.Get("Authorization") != "" {
		t.Errorf("Authorization = %q, want none: a custom base may run without a key", ep.Header.Get("Authorization"))
	}
	cl.Params.APIBase = "https://other.example.com/v1"
	if ep, _ := s.Resolve(cl); ep.URL != "https://other.example.com/v1/embeddings" {
		t.Errorf("URL = %q, want api_base to win over the environment", ep.URL)
	}
}
