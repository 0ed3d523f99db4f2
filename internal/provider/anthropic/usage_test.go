package anthropic

import (
	"testing"

	"github.com/llmgate/llmgate/internal/openai"
)

// TestAnswerUsage_ReadsTheOneHourCacheWrites: the cache writes with a 1-hour TTL
// (usage.cache_creation.ephemeral_1h_input_tokens) are kept apart, to be priced at their
// own price, and so is the service tier.
func TestAnswerUsage_ReadsTheOneHourCacheWrites(t *testing.T) {
	u, err := AnswerUsage([]byte(`{"usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":20,
		"cache_creation_input_tokens":30,"cache_creation":{"ephemeral_5m_input_tokens":12,"ephemeral_1h_input_tokens":18},
		"service_tier":"priority"}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := openai.Usage{PromptTokens: 60, CompletionTokens: 5, TotalTokens: 65, CacheCreationInputTokens: 30,
		CacheCreation1hInputTokens: 18, ServiceTier: "priority"}
	if u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != 20 {
		t.Fatalf("cached tokens %+v, want 20", u.PromptTokensDetails)
	}
	u.PromptTokensDetails = nil
	if u != want {
		t.Errorf("usage %+v, want %+v", u, want)
	}
}
