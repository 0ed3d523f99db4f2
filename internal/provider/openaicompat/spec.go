package openaicompat

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/llmgate/llmgate/internal/provider"
)

// Spec describes one OpenAI-compatible provider: its default base URL and where its key
// comes from. Every Spec authenticates with "Authorization: Bearer <key>".
type Spec struct {
	// Prefix is the litellm_params.model prefix: "groq" in "groq/llama-3.3-70b-versatile".
	Prefix string
	// BaseURL is the default api_base; empty when api_base (or BaseEnv) must be set.
	BaseURL string
	// BaseEnv are environment variables read, in order, when api_base is empty.
	BaseEnv []string
	// KeyEnv are environment variables read, in order, when api_key is empty, as LiteLLM does.
	KeyEnv []string
	// KeyOptional is true for servers that usually run without authentication. Without a
	// key, no Authorization header is sent. A call to any provider's default base URL
	// without a key fails before it is sent; a custom api_base may do without one.
	KeyOptional bool
	// Suffix is appended to an api_base that does not end with it: Ollama's api_base is the
	// server root in LiteLLM configs, and its OpenAI-compatible API lives under /v1.
	Suffix string
	// NoStreamOptions is true for upstreams that reject (or ignore) stream_options and
	// report usage in their last chunk on their own; the field is removed from requests.
	NoStreamOptions bool
	// Responses is true for upstreams that serve OpenAI's Responses API themselves: calls of
	// kind Responses pass through. Other providers serve them translated to chat.
	Responses bool
}

// Specs are the OpenAI-compatible providers, with base URLs and key variables as LiteLLM
// resolves them (litellm/litellm_core_utils/get_llm_provider_logic.py and each provider's
// _get_openai_compatible_provider_info).
var Specs = []Spec{
	{Prefix: "openai", BaseURL: "https://api.openai.com/v1", BaseEnv: []string{"OPENAI_BASE_URL", "OPENAI_API_BASE"}, KeyEnv: []string{"OPENAI_API_KEY"}, Responses: true},
	{Prefix: "groq", BaseURL: "https://api.groq.com/openai/v1", BaseEnv: []string{"GROQ_API_BASE"}, KeyEnv: []string{"GROQ_API_KEY"}},
	{Prefix: "together_ai", BaseURL: "https://api.together.xyz/v1", BaseEnv: []string{"TOGETHER_AI_API_BASE"}, KeyEnv: []string{"TOGETHER_API_KEY", "TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_TOKEN"}},
	{Prefix: "fireworks_ai", BaseURL: "https://api.fireworks.ai/inference/v1", BaseEnv: []string{"FIREWORKS_API_BASE", "FIREWORKS_AI_API_BASE"}, KeyEnv: []string{"FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"}},
	// LiteLLM uses DeepSeek's /beta base, which also serves FIM /completions.
	{Prefix: "deepseek", BaseURL: "https://api.deepseek.com/beta", BaseEnv: []string{"DEEPSEEK_API_BASE"}, KeyEnv: []string{"DEEPSEEK_API_KEY"}},
	// Mistral answers 422 "extra_forbidden" to stream_options and always sends usage last.
	{Prefix: "mistral", BaseURL: "https://api.mistral.ai/v1", BaseEnv: []string{"MISTRAL_API_BASE"}, KeyEnv: []string{"MISTRAL_API_KEY"}, NoStreamOptions: true},
	// Perplexity sends usage on every chunk and does not document stream_options.
	{Prefix: "perplexity", BaseURL: "https://api.perplexity.ai", BaseEnv: []string{"PERPLEXITY_API_BASE"}, KeyEnv: []string{"PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"}, NoStreamOptions: true},
	{Prefix: "openrouter", BaseURL: "https://openrouter.ai/api/v1", BaseEnv: []string{"OPENROUTER_API_BASE"}, KeyEnv: []string{"OPENROUTER_API_KEY", "OR_API_KEY"}},
	{Prefix: "xai", BaseURL: "https://api.x.ai/v1", BaseEnv: []string{"XAI_API_BASE"}, KeyEnv: []string{"XAI_API_KEY"}},
	{Prefix: "deepinfra", BaseURL: "https://api.deepinfra.com/v1/openai", BaseEnv: []string{"DEEPINFRA_API_BASE"}, KeyEnv: []string{"DEEPINFRA_API_KEY"}},
	{Prefix: "cerebras", BaseURL: "https://api.cerebras.ai/v1", BaseEnv: []string{"CEREBRAS_API_BASE"}, KeyEnv: []string{"CEREBRAS_API_KEY"}},
	{Prefix: "sambanova", BaseURL: "https://api.sambanova.ai/v1", BaseEnv: []string{"SAMBANOVA_API_BASE"}, KeyEnv: []string{"SAMBANOVA_API_KEY"}},
	{Prefix: "nvidia_nim", BaseURL: "https://integrate.api.nvidia.com/v1", BaseEnv: []string{"NVIDIA_NIM_API_BASE"}, KeyEnv: []string{"NVIDIA_NIM_API_KEY"}},
	{Prefix: "hosted_vllm", BaseEnv: []string{"HOSTED_VLLM_API_BASE"}, KeyEnv: []string{"HOSTED_VLLM_API_KEY"}, KeyOptional: true},
	{Prefix: "ollama", BaseURL: "http://localhost:11434", BaseEnv: []string{"OLLAMA_API_BASE"}, KeyEnv: []string{"OLLAMA_API_KEY"}, KeyOptional: true, Suffix: "/v1"},
	{Prefix: "ollama_chat", BaseURL: "http://localhost:11434", BaseEnv: []string{"OLLAMA_API_BASE"}, KeyEnv: []string{"OLLAMA_API_KEY"}, KeyOptional: true, Suffix: "/v1"},
	// LiteLLM has no default for LM Studio; this is LM Studio's own default server address.
	{Prefix: "lm_studio", BaseURL: "http://localhost:1234/v1", BaseEnv: []string{"LM_STUDIO_API_BASE"}, KeyEnv: []string{"LM_STUDIO_API_KEY"}, KeyOptional: true},
}

// paths are the endpoint paths under the base URL, by kind of call.
var paths = map[provider.Kind]string{
	provider.Chat:            "/chat/completions",
	provider.Completion:      "/completions",
	provider.Embedding:       "/embeddings",
	provider.Moderation:      "/moderations",
	provider.ImageGeneration: "/images/generations",
	provider.Responses:       "/responses",
	// Stored responses are under the Responses endpoint (see Client.stored).
	provider.StoredResponse: "/responses",
}

// Path returns the endpoint path of a kind of call under an OpenAI-style base URL.
func Path(k provider.Kind) (string, error) {
	p, ok := paths[k]
	if !ok {
		return "", fmt.Errorf("unsupported kind of call %q", k)
	}
	return p, nil
}

// Resolve returns the endpoint of call c for this provider: api_base (or the environment,
// or the default) plus the kind's path, and the bearer key from api_key or the environment.
func (s Spec) Resolve(c *provider.Call) (Endpoint, error) {
	path, err := Path(c.Kind)
	if err != nil {
		return Endpoint{}, err
	}
	base, custom := c.Params.APIBase, true
	if base == "" {
		base = firstEnv(s.BaseEnv)
	}
	if base == "" {
		base, custom = s.BaseURL, false
	}
	if base == "" {
		return Endpoint{}, fmt.Errorf("%s: api_base is required (litellm_params.api_base or %s)", s.Prefix, strings.Join(s.BaseEnv, ", "))
	}
	if _, err := url.Parse(base); err != nil {
		return Endpoint{}, fmt.Errorf("%s: invalid api_base", s.Prefix) // the URL may hold secrets
	}
	base = strings.TrimRight(base, "/")
	if s.Suffix != "" && !strings.HasSuffix(base, s.Suffix) {
		base += s.Suffix
	}
	key := c.Params.APIKey
	if key == "" {
		key = firstEnv(s.KeyEnv)
	}
	if key == "" && !s.KeyOptional && !custom {
		return Endpoint{}, fmt.Errorf("%s: no API key: set litellm_params.api_key or %s", s.Prefix, strings.Join(s.KeyEnv, ", "))
	}
	h := make(http.Header, 2+len(c.Params.Headers)+len(c.Params.ExtraHeaders))
	if key != "" {
		h["Authorization"] = []string{"Bearer " + key}
	}
	AddHeaders(h, c)
	return Endpoint{URL: base + path, Header: h, Secret: key, StreamOptions: !s.NoStreamOptions}, nil
}

// AddHeaders adds litellm_params.headers and then extra_headers to h, so extra_headers win.
func AddHeaders(h http.Header, c *provider.Call) {
	for k, v := range c.Params.Headers {
		h.Set(k, v)
	}
	for k, v := range c.Params.ExtraHeaders {
		h.Set(k, v)
	}
}

func firstEnv(names []string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
