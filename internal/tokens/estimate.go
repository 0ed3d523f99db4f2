package tokens

import (
	"encoding/json"

	"github.com/llmgate/llmgate/internal/openai"
)

// Estimates: what a call probably used, for the mock provider's usage and for providers
// that report none for embeddings. They are NOT bounds (reservations use Billable): they
// follow OpenAI's rule of thumb, one token per four bytes of text, rounded up, plus three
// tokens of framing per chat message and three for the reply's priming. Each image part
// counts as ImageTokens. Token-array prompts count one token per element.
const (
	bytesPerToken    = 4
	tokensPerMessage = 3
	tokensPerReply   = 3
	// ImageTokens is what one image in a chat message is estimated to cost (OpenAI's price
	// of a 512×512 high-detail tile plus the base, rounded up).
	ImageTokens = 765
)

// EstimateText estimates the tokens of a text.
func EstimateText(s string) int { return EstimateBytes(len(s)) }

// EstimateBytes estimates the tokens of n bytes of text.
func EstimateBytes(n int) int { return (n + bytesPerToken - 1) / bytesPerToken }

// EstimatePrompt estimates the prompt tokens of a chat (messages), completion (prompt) or
// embedding (input) request. Content it cannot read counts as its JSON size.
func EstimatePrompt(r *openai.Request) int {
	switch {
	case len(r.Messages) > 0:
		return messageTokens(r.Messages)
	case len(r.Prompt) > 0:
		return inputTokens(r.Prompt)
	case len(r.Input) > 0:
		return inputTokens(r.Input)
	}
	return 0
}

// chatMessage is the part of a chat message the estimator reads.
type chatMessage struct {
	Role      string          `json:"role"`
	Name      string          `json:"name"`
	Content   json.RawMessage `json:"content"`
	ToolCalls json.RawMessage `json:"tool_calls"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func messageTokens(raw json.RawMessage) int {
	var msgs []chatMessage
	if err := json.Unmarshal(raw, &msgs); err != nil {
		return rawTokens(raw)
	}
	n := tokensPerReply
	for _, m := range msgs {
		n += tokensPerMessage + EstimateText(m.Role) + EstimateText(m.Name) + rawTokens(m.ToolCalls)
		n += contentTokens(m.Content)
	}
	return n
}

func contentTokens(raw json.RawMessage) int {
	if len(raw) == 0 || raw[0] == 'n' { // absent or null
		return 0
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return EstimateText(s)
		}
		return rawTokens(raw)
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return rawTokens(raw)
	}
	n := 0
	for _, p := range parts {
		switch p.Type {
		case "text", "input_text":
			n += EstimateText(p.Text)
		default: // image_url, input_audio, file: a fixed estimate, never the base64 size
			n += ImageTokens
		}
	}
	return n
}

// inputTokens estimates a completion prompt or an embedding input: a string, an array of
// strings, an array of token ids or an array of token-id arrays.
func inputTokens(raw json.RawMessage) int {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return EstimateText(s)
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		n := 0
		for _, s := range ss {
			n += EstimateText(s)
		}
		return n
	}
	var ids []int
	if json.Unmarshal(raw, &ids) == nil {
		return len(ids)
	}
	var idss [][]int
	if json.Unmarshal(raw, &idss) == nil {
		n := 0
		for _, ids := range idss {
			n += len(ids)
		}
		return n
	}
	return rawTokens(raw)
}

func rawTokens(raw json.RawMessage) int {
	if len(raw) == 0 || string(raw) == "null" {
		return 0
	}
	return EstimateBytes(len(raw))
}
