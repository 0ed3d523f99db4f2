package gemini

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// generateResponse is a generateContent answer and each streamed chunk of one.
type generateResponse struct {
	Candidates     []candidate `json:"candidates"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata *usageMetadata `json:"usageMetadata"`
	ModelVersion  string         `json:"modelVersion"`
	ResponseID    string         `json:"responseId"`
}

type candidate struct {
	Content      content `json:"content"`
	FinishReason string  `json:"finishReason"`
	Index        int     `json:"index"`
}

type usageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
}

// openAI converts usage: promptTokenCount includes the cached tokens; thinking tokens are
// billed as output, so they count as completion tokens (as LiteLLM counts them).
func (u *usageMetadata) openAI() openai.Usage {
	if u == nil {
		return openai.Usage{}
	}
	return translate.Usage(u.PromptTokenCount-u.CachedContentTokenCount,
		u.CandidatesTokenCount+u.ThoughtsTokenCount, u.CachedContentTokenCount, 0)
}

// finishReason maps Gemini's finishReason; STOP with function calls is tool_calls.
func finishReason(reason string, calledTools bool) string {
	switch reason {
	case "MAX_TOKENS":
		return translate.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return translate.FinishContentFilter
	}
	if calledTools {
		return translate.FinishToolCalls
	}
	return translate.FinishStop // STOP, OTHER, MALFORMED_FUNCTION_CALL, ...
}

// toolCall converts a functionCall part. Gemini's calls usually have no id, so one is made;
// a thought signature rides along in it.
func toolCall(p part) translate.ToolCall {
	fc := p.FunctionCall
	id := fc.ID
	if id == "" {
		id = translate.NewID("call_")
	}
	if p.ThoughtSignature != "" {
		id += thoughtSeparator + p.ThoughtSignature
	}
	args := string(fc.Args)
	if args == "" || args == "null" {
		args = "{}"
	}
	return translate.ToolCall{ID: id, Type: "function", Function: translate.FunctionCall{Name: fc.Name, Arguments: args}}
}

// toOpenAI translates the answer into a chat.completion, one choice per candidate. Thought
// parts are dropped. A prompt blocked before any candidate is a content_filter choice.
func (gr *generateResponse) toOpenAI(model string, created int64) (*provider.Response, error) {
	if gr.ModelVersion != "" {
		model = gr.ModelVersion
	}
	id := gr.ResponseID
	if id == "" {
		id = translate.NewID("chatcmpl-")
	}
	c := translate.NewCompletion(id, created, model)
	for _, cand := range gr.Candidates {
		var text strings.Builder
		var calls []translate.ToolCall
		for _, p := range cand.Content.Parts {
			switch {
			case p.Thought:
			case p.FunctionCall != nil:
				calls = append(calls, toolCall(p))
			default:
				text.WriteString(p.Text)
			}
		}
		c.Choices = append(c.Choices, translate.Choice{
			Index:        cand.Index,
			Message:      translate.NewResponseMessage(text.String(), calls),
			FinishReason: finishReason(cand.FinishReason, len(calls) > 0),
		})
	}
	if len(c.Choices) == 0 {
		reason := translate.FinishStop
		if gr.PromptFeedback != nil && gr.PromptFeedback.BlockReason != "" {
			reason = translate.FinishContentFilter
		}
		c.Choices = []translate.Choice{{Message: translate.NewResponseMessage("", nil), FinishReason: reason}}
	}
	u := gr.UsageMetadata.openAI()
	c.Usage = &u
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%s: encode response: %w", name, err)
	}
	return &provider.Response{Body: body, Usage: u}, nil
}
