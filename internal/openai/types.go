package openai

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Usage is the token usage of a call, in OpenAI's shape, with the detail fields the gateway
// prices (cached prompt tokens; Anthropic cache writes).
type Usage struct {
	PromptTokens        int                  `json:"prompt_tokens"`
	CompletionTokens    int                  `json:"completion_tokens"`
	TotalTokens         int                  `json:"total_tokens"`
	PromptTokensDetails *PromptTokensDetails `json:"prompt_tokens_details,omitempty"`
	// CacheCreationInputTokens is Anthropic's cache write count, which LiteLLM also reports.
	CacheCreationInputTokens int `json:"cache_creation_input_tokens,omitempty"`
	// CacheCreation1hInputTokens is the part of CacheCreationInputTokens written with a
	// 1-hour TTL (Anthropic's cache_creation.ephemeral_1h_input_tokens), priced apart. It and
	// ServiceTier are read from the answer for pricing, not part of the usage object.
	CacheCreation1hInputTokens int `json:"-"`
	// ServiceTier is the service tier the answer says served it (OpenAI's service_tier):
	// ServiceTierPriority is priced at the priority prices.
	ServiceTier string `json:"-"`
}

// ServiceTierPriority is OpenAI's priority processing tier.
const ServiceTierPriority = "priority"

// PromptTokensDetails breaks prompt tokens down.
type PromptTokensDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// Model is one entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// Request is the part of a chat, completion or embedding request the gateway itself reads.
// The provider receives the raw body too, so fields the gateway does not model pass through.
type Request struct {
	Model         string          `json:"model"`
	Stream        bool            `json:"stream,omitempty"`
	StreamOptions *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens     *int            `json:"max_tokens,omitempty"`
	MaxCompTokens *int            `json:"max_completion_tokens,omitempty"`
	N             *int            `json:"n,omitempty"`
	BestOf        *int            `json:"best_of,omitempty"`
	Dimensions    *int            `json:"dimensions,omitempty"`
	User          string          `json:"user,omitempty"`
	Messages      json.RawMessage `json:"messages,omitempty"`
	Prompt        json.RawMessage `json:"prompt,omitempty"`
	Input         json.RawMessage `json:"input,omitempty"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
	// Size and Quality are an image generation's ("1024x1024", "hd").
	Size    string `json:"size,omitempty"`
	Quality string `json:"quality,omitempty"`
	// MockResponse is LiteLLM's testing feature: answer with this text, call no upstream.
	MockResponse *string `json:"mock_response,omitempty"`
	// LiteLLM's per-request routing: retries, each attempt's timeout (seconds, a number or a
	// numeric string), fallback model groups (names, or objects with a "model"), and the
	// flags that fail attempts on purpose to test them.
	NumRetries           *int            `json:"num_retries,omitempty"`
	Timeout              json.RawMessage `json:"timeout,omitempty"`
	Fallbacks            json.RawMessage `json:"fallbacks,omitempty"`
	MockTestingFallbacks bool            `json:"mock_testing_fallbacks,omitempty"`
	MockTestingRateLimit bool            `json:"mock_testing_rate_limit_error,omitempty"`
	MockTimeout          bool            `json:"mock_timeout,omitempty"`
}

// StreamOptions is stream_options.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// DecodeStringOrList decodes b, a JSON string or array, into dst: a string becomes the one
// element one(s); an array is decoded element by element. Wire formats use it for content
// that is either a string or a list of parts. what names the field in the error.
func DecodeStringOrList[T any](b []byte, dst *[]T, one func(string) T, what string) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*dst = []T{one(s)}
		return nil
	}
	var list []T
	if err := json.Unmarshal(b, &list); err != nil {
		return errors.New(what + ": want a string or an array")
	}
	*dst = list
	return nil
}
