package anthropic

import (
	"encoding/json"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// DefaultMaxTokens is max_tokens when neither the request nor litellm_params sets it:
// Anthropic requires the field, and 4096 is within every current Claude model's output limit.
const DefaultMaxTokens = 4096

// messagesRequest is the body of POST /v1/messages.
type messagesRequest struct {
	Model         string      `json:"model"`
	MaxTokens     int         `json:"max_tokens"`
	System        []block     `json:"system,omitempty"`
	Messages      []message   `json:"messages"`
	Temperature   *float64    `json:"temperature,omitempty"`
	TopP          *float64    `json:"top_p,omitempty"`
	StopSequences []string    `json:"stop_sequences,omitempty"`
	Tools         []tool      `json:"tools,omitempty"`
	ToolChoice    *toolChoice `json:"tool_choice,omitempty"`
	Metadata      *metadata   `json:"metadata,omitempty"`
	Stream        bool        `json:"stream,omitempty"`
}

type message struct {
	Role    string  `json:"role"`
	Content []block `json:"content"`
}

// block is a content block, in requests and answers.
type block struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	Source       *imageSource    `json:"source,omitempty"`
	ID           string          `json:"id,omitempty"`    // tool_use
	Name         string          `json:"name,omitempty"`  // tool_use
	Input        json.RawMessage `json:"input,omitempty"` // tool_use
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      []block         `json:"content,omitempty"` // tool_result
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type imageSource struct {
	Type      string `json:"type"` // "base64" or "url"
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type metadata struct {
	UserID string `json:"user_id"`
}

// emptySchema is the input_schema of a function declared without parameters.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// buildRequest translates an OpenAI chat request into a Messages API request. System and
// developer messages become the system blocks; tool results become tool_result blocks of a
// user turn; consecutive turns of one role are merged, as Anthropic requires alternation.
func buildRequest(r *translate.Request, model string, params config.LiteLLMParams) (*messagesRequest, error) {
	out := &messagesRequest{
		Model:         model,
		MaxTokens:     DefaultMaxTokens,
		Temperature:   r.Temperature,
		TopP:          r.TopP,
		StopSequences: r.Stop,
	}
	if n := r.OutputLimit(); n != nil {
		out.MaxTokens = *n
	} else if params.MaxTokens > 0 {
		out.MaxTokens = params.MaxTokens
	}
	if r.User != "" {
		out.Metadata = &metadata{UserID: r.User}
	}
	for i := range r.Messages {
		m := &r.Messages[i]
		if m.IsSystem() {
			out.System = append(out.System, withCacheControl(textBlocks(m.Content), m.CacheControl)...)
			continue
		}
		role, blocks, err := convertMessage(m)
		if err != nil {
			return nil, translate.BadRequest(name, "messages[%d]: %v", i, err)
		}
		blocks = withCacheControl(blocks, m.CacheControl)
		if len(blocks) == 0 {
			continue
		}
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			continue
		}
		out.Messages = append(out.Messages, message{Role: role, Content: blocks})
	}
	if len(r.Tools) > 0 {
		for _, t := range r.Tools {
			schema := t.Function.Parameters
			if len(schema) == 0 || string(schema) == "null" {
				schema = emptySchema
			}
			out.Tools = append(out.Tools, tool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
		}
		out.ToolChoice = convertToolChoice(r.ToolChoice, r.ParallelToolCalls)
	}
	return out, nil
}

func convertMessage(m *translate.Message) (role string, blocks []block, err error) {
	switch m.Role {
	case translate.RoleTool:
		res := block{Type: "tool_result", ToolUseID: m.ToolCallID, Content: contentBlocks(m.Content)}
		return translate.RoleUser, []block{res}, nil
	case translate.RoleAssistant:
		blocks = textBlocks(m.Content)
		for _, tc := range m.ToolCalls {
			input, err := tc.Function.ArgumentsObject()
			if err != nil {
				return "", nil, err
			}
			blocks = append(blocks, block{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
		}
		return translate.RoleAssistant, blocks, nil
	default:
		return translate.RoleUser, contentBlocks(m.Content), nil
	}
}

// textBlocks converts the text parts; Anthropic refuses empty text blocks, so they are dropped.
func textBlocks(c translate.Content) []block {
	var out []block
	for _, p := range c {
		if p.Type == translate.PartText && p.Text != "" {
			out = append(out, block{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
		}
	}
	return out
}

// contentBlocks converts text and image parts.
func contentBlocks(c translate.Content) []block {
	var out []block
	for _, p := range c {
		switch p.Type {
		case translate.PartText:
			if p.Text != "" {
				out = append(out, block{Type: "text", Text: p.Text, CacheControl: p.CacheControl})
			}
		case translate.PartImageURL:
			src := &imageSource{Type: "url", URL: p.ImageURL.URL}
			if d, ok := translate.ParseDataURL(p.ImageURL.URL); ok {
				src = &imageSource{Type: "base64", MediaType: d.MediaType, Data: d.Base64}
			}
			out = append(out, block{Type: "image", Source: src, CacheControl: p.CacheControl})
		}
	}
	return out
}

// withCacheControl puts a message-level cache_control on the message's last block.
func withCacheControl(blocks []block, cc json.RawMessage) []block {
	if len(cc) > 0 && len(blocks) > 0 {
		blocks[len(blocks)-1].CacheControl = cc
	}
	return blocks
}

func convertToolChoice(tc *translate.ToolChoice, parallel *bool) *toolChoice {
	out := &toolChoice{Type: "auto"}
	if tc != nil {
		switch tc.Mode {
		case translate.ToolChoiceNone:
			return &toolChoice{Type: "none"}
		case translate.ToolChoiceRequired:
			out.Type = "any"
		case translate.ToolChoiceFunction:
			out.Type, out.Name = "tool", tc.Name
		}
	}
	if parallel != nil && !*parallel {
		out.DisableParallelToolUse = true
	} else if tc == nil {
		return nil // Anthropic's default is auto
	}
	return out
}
