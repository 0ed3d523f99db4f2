package anthropic

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// messagesResponse is the answer of POST /v1/messages (and message_start's message).
type messagesResponse struct {
	ID         string  `json:"id"`
	Model      string  `json:"model"`
	Content    []block `json:"content"`
	StopReason string  `json:"stop_reason"`
	Usage      usage   `json:"usage"`
}

type usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	// CacheCreation splits the cache writes by TTL (prompt caching with "ttl": "1h").
	CacheCreation struct {
		Ephemeral1hInputTokens int `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
	ServiceTier string `json:"service_tier"`
}

func (u usage) openAI() openai.Usage {
	o := translate.Usage(u.InputTokens, u.OutputTokens, u.CacheReadInputTokens, u.CacheCreationInputTokens)
	o.CacheCreation1hInputTokens, o.ServiceTier = u.CacheCreation.Ephemeral1hInputTokens, u.ServiceTier
	return o
}

// finishReason maps Anthropic's stop_reason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return translate.FinishLength
	case "tool_use":
		return translate.FinishToolCalls
	case "refusal":
		return translate.FinishContentFilter
	}
	return translate.FinishStop // end_turn, stop_sequence, pause_turn
}

// toOpenAI translates the answer into a chat.completion. Text blocks are joined; tool_use
// blocks become tool calls; thinking blocks are dropped.
func (mr *messagesResponse) toOpenAI(created int64) (*provider.Response, error) {
	var text strings.Builder
	var calls []translate.ToolCall
	for _, b := range mr.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			args := string(b.Input)
			if args == "" {
				args = "{}"
			}
			calls = append(calls, translate.ToolCall{ID: b.ID, Type: "function", Function: translate.FunctionCall{Name: b.Name, Arguments: args}})
		}
	}
	u := mr.Usage.openAI()
	c := translate.NewCompletion(mr.ID, created, mr.Model)
	c.Choices = []translate.Choice{{
		Message:      translate.NewResponseMessage(text.String(), calls),
		FinishReason: finishReason(mr.StopReason),
	}}
	c.Usage = &u
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%s: encode response: %w", name, err)
	}
	return &provider.Response{Body: body, Usage: u}, nil
}
