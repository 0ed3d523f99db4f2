package gateway

import (
	"encoding/json"
	"testing"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
)

func TestGeneratedBytes_CountsTheTextAChunkCarries(t *testing.T) {
	tests := []struct {
		name, chunk string
		want        int
	}{
		{"content", `{"choices":[{"index":0,"delta":{"content":"tok "}}]}`, 4},
		{"role only", `{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, 0},
		{"null content", `{"choices":[{"delta":{"content":null},"finish_reason":"stop"}]}`, 0},
		{"spaces around the colon", `{"choices":[{"delta":{"content" : "hello"}}]}`, 5},
		{"escapes count one byte each", `{"choices":[{"delta":{"content":"a\"b\n\u00e9"}}]}`, 5},
		{"quoted names inside the text are not keys", `{"choices":[{"delta":{"content":"\"text\": \"x\""}}]}`, 11},
		{"reasoning and content", `{"choices":[{"delta":{"reasoning_content":"think","content":"say"}}]}`, 8},
		{"tool call arguments", `{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}`, 7},
		{"every choice", `{"choices":[{"index":0,"delta":{"content":"ab"}},{"index":1,"delta":{"content":"cde"}}]}`, 5},
		{"text completion", `{"object":"text_completion","choices":[{"text":"abcdef","index":0}]}`, 6},
		{"content part type is no text", `{"choices":[{"delta":{"content":[{"type":"text","text":"hi"}]}}]}`, 2},
		{"usage chunk", `{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}`, 0},
		{"cut off inside a string", `{"choices":[{"delta":{"content":"abc`, 3},
	}
	for _, tt := range tests {
		if got := generatedBytes([]byte(tt.chunk)); got != tt.want {
			t.Errorf("%s: generatedBytes(%s) = %d, want %d", tt.name, tt.chunk, got, tt.want)
		}
	}
}

func TestStreamUsage_EstimatesWhatAStreamThatEndedEarlyGenerated(t *testing.T) {
	messages := json.RawMessage(`[{"role":"user","content":"Hello there"}]`)
	prompt := pricing.PromptTokens(&openai.Request{Messages: messages})
	reported := openai.Usage{PromptTokens: 20, CompletionTokens: 8, TotalTokens: 28}
	tests := []struct {
		name          string
		maxTokens, n  int
		u             openai.Usage
		complete      bool
		textBytes     int
		want          openai.Usage
		wantEstimated bool
	}{
		{"complete with usage: as reported", 0, 0, reported, true, 400, reported, false},
		{"complete without usage", 0, 0, openai.Usage{}, true, 40, openai.Usage{PromptTokens: prompt, CompletionTokens: 10, TotalTokens: prompt + 10}, true},
		{"cut without usage", 0, 0, openai.Usage{}, false, 41, openai.Usage{PromptTokens: prompt, CompletionTokens: 11, TotalTokens: prompt + 11}, true},
		{"cut with the prompt reported", 0, 0, openai.Usage{PromptTokens: 20, CompletionTokens: 1}, false, 40, openai.Usage{PromptTokens: 20, CompletionTokens: 10, TotalTokens: 30}, true},
		{"cut with more reported than relayed", 0, 0, reported, false, 4, reported, true},
		{"at most max_tokens", 5, 0, openai.Usage{}, false, 400, openai.Usage{PromptTokens: prompt, CompletionTokens: 5, TotalTokens: prompt + 5}, true},
		{"at most n × max_tokens", 5, 3, openai.Usage{}, false, 400, openai.Usage{PromptTokens: prompt, CompletionTokens: 15, TotalTokens: prompt + 15}, true},
		{"at most the model's output limit", 0, 0, openai.Usage{}, false, 4000, openai.Usage{PromptTokens: prompt, CompletionTokens: 100, TotalTokens: prompt + 100}, true},
	}
	for _, tt := range tests {
		c := &call{kind: provider.Chat, req: openai.Request{Messages: messages}}
		if tt.maxTokens > 0 {
			c.req.MaxTokens = &tt.maxTokens
		}
		if tt.n > 0 {
			c.req.N = &tt.n
		}
		got, estimated := c.streamUsage(tt.u, tt.complete, tt.textBytes, 100)
		if got != tt.want || estimated != tt.wantEstimated {
			t.Errorf("%s: usage %+v (estimated %t), want %+v (estimated %t)", tt.name, got, estimated, tt.want, tt.wantEstimated)
		}
	}
}
