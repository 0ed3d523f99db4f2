package tokens

import (
	"encoding/json"
	"testing"

	"github.com/llmgate/llmgate/internal/openai"
)

func TestEstimatePrompt(t *testing.T) {
	tests := []struct {
		name string
		req  string
		want int
	}{
		{"chat text", `{"messages":[{"role":"user","content":"Hello, how are you?"}]}`, 3 + 3 + 1 + 5},
		{"chat parts with an image", `{"messages":[{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`, 3 + 3 + 1 + 4 + ImageTokens},
		{"null content with tool calls", `{"messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"1"}]}]}`, 3 + 3 + 3 + 3},
		{"completion prompt", `{"prompt":"Say this is a test"}`, 5},
		{"embedding input array", `{"input":["abcd","abcdefgh"]}`, 3},
		{"embedding token ids", `{"input":[1,2,3,4,5]}`, 5},
		{"embedding token id arrays", `{"input":[[1,2],[3]]}`, 3},
		{"nothing", `{}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r openai.Request
			if err := json.Unmarshal([]byte(tt.req), &r); err != nil {
				t.Fatal(err)
			}
			if got := EstimatePrompt(&r); got != tt.want {
				t.Errorf("EstimatePrompt = %d, want %d", got, tt.want)
			}
		})
	}
}
