// Package anthropic holds the wire types of Anthropic's Messages API that llmgate serves on
// /v1/messages (requests, answers, stream events) and writes errors in Anthropic's format:
// {"type":"error","error":{"type","message"}}.
package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
)

// Version is the anthropic-version llmgate speaks.
const Version = "2023-06-01"

// Request is a Messages API request, with every field llmgate reads or translates. Fields
// it does not know reach an anthropic/ deployment anyway: the pass-through forwards the
// client's bytes.
type Request struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	System        Content         `json:"system,omitempty"`
	Messages      []Message       `json:"messages"`
	Tools         []Tool          `json:"tools,omitempty"`
	ToolChoice    *ToolChoice     `json:"tool_choice,omitempty"`
	Thinking      *Thinking       `json:"thinking,omitempty"`
	Metadata      *Metadata       `json:"metadata,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	TopK          *int            `json:"top_k,omitempty"`
	ServiceTier   string          `json:"service_tier,omitempty"`
	Container     json.RawMessage `json:"container,omitempty"`
}

// Message is one turn.
type Message struct {
	Role    string  `json:"role"` // "user" or "assistant"
	Content Content `json:"content"`
}

// Content is a string (one text block) or an array of blocks.
type Content []Block

// UnmarshalJSON accepts a string or an array of blocks.
func (c *Content) UnmarshalJSON(b []byte) error {
	return openai.DecodeStringOrList(b, (*[]Block)(c), func(s string) Block { return Block{Type: BlockText, Text: s} }, "content")
}

// Text joins the text blocks.
func (c Content) Text() string {
	var b bytes.Buffer
	for _, bl := range c {
		if bl.Type == BlockText {
			b.WriteString(bl.Text)
		}
	}
	return b.String()
}

// Content block types.
const (
	BlockText             = "text"
	BlockImage            = "image"
	BlockDocument         = "document"
	BlockToolUse          = "tool_use"
	BlockToolResult       = "tool_result"
	BlockThinking         = "thinking"
	BlockRedactedThinking = "redacted_thinking"
)

// Block is a content block, in requests and answers; the fields used depend on Type.
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	Source    *Source         `json:"source,omitempty"`      // image, document
	Title     string          `json:"title,omitempty"`       // document
	ID        string          `json:"id,omitempty"`          // tool_use
	Name      string          `json:"name,omitempty"`        // tool_use
	Input     json.RawMessage `json:"input,omitempty"`       // tool_use
	ToolUseID string          `json:"tool_use_id,omitempty"` // tool_result
	Content   *Content        `json:"content,omitempty"`     // tool_result
	IsError   bool            `json:"is_error,omitempty"`    // tool_result
	Thinking  *string         `json:"thinking,omitempty"`    // thinking
	Signature *string         `json:"signature,omitempty"`   // thinking
	Data      string          `json:"data,omitempty"`        // redacted_thinking
	// CacheControl is the prompt-caching marker ({"type":"ephemeral"}).
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// Source is an image's or a document's data: base64, url or (documents) text.
type Source struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// Tool is a client tool (name, description, input_schema). Server tools (web_search, ...)
// have a Type and no input_schema.
type Tool struct {
	Type         string          `json:"type,omitempty"`
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// ToolChoice is tool_choice: auto, any, tool (with Name) or none.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// Thinking is extended thinking: {"type":"enabled","budget_tokens":n} or disabled.
type Thinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens,omitempty"`
}

// Metadata is the request's metadata.
type Metadata struct {
	UserID string `json:"user_id,omitempty"`
}

// Response is a Messages API answer, and message_start's message (with empty content).
type Response struct {
	ID           string  `json:"id"`
	Type         string  `json:"type"` // "message"
	Role         string  `json:"role"` // "assistant"
	Model        string  `json:"model"`
	Content      []Block `json:"content"`
	StopReason   *string `json:"stop_reason"`
	StopSequence *string `json:"stop_sequence"`
	Usage        Usage   `json:"usage"`
}

// Usage is Anthropic's usage. InputTokens excludes the cache reads and writes.
type Usage struct {
	InputTokens              int `json:"input_tokens"`
	OutputTokens             int `json:"output_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
}

// Stop reasons.
const (
	StopEndTurn      = "end_turn"
	StopMaxTokens    = "max_tokens"
	StopSequence     = "stop_sequence"
	StopToolUse      = "tool_use"
	StopRefusal      = "refusal"
	StopPauseTurn    = "pause_turn"
	StopContextLimit = "model_context_window_exceeded"
)

// Event is a stream event; the fields used depend on Type.
type Event struct {
	Type         string      `json:"type"`
	Message      *Response   `json:"message,omitempty"`       // message_start
	Index        *int        `json:"index,omitempty"`         // content_block_*
	ContentBlock *Block      `json:"content_block,omitempty"` // content_block_start
	Delta        *EventDelta `json:"delta,omitempty"`         // content_block_delta, message_delta
	Usage        *Usage      `json:"usage,omitempty"`         // message_delta (cumulative)
	Error        *ErrorBody  `json:"error,omitempty"`         // error
}

// EventDelta is a content_block_delta's or message_delta's delta.
type EventDelta struct {
	Type         string  `json:"type,omitempty"` // text_delta, input_json_delta, thinking_delta, signature_delta
	Text         *string `json:"text,omitempty"`
	PartialJSON  *string `json:"partial_json,omitempty"`
	Thinking     *string `json:"thinking,omitempty"`
	Signature    *string `json:"signature,omitempty"`
	StopReason   *string `json:"stop_reason,omitempty"` // message_delta
	StopSequence *string `json:"stop_sequence,omitempty"`
}

// Event types.
const (
	EventMessageStart      = "message_start"
	EventContentBlockStart = "content_block_start"
	EventContentBlockDelta = "content_block_delta"
	EventContentBlockStop  = "content_block_stop"
	EventMessageDelta      = "message_delta"
	EventMessageStop       = "message_stop"
	EventPing              = "ping"
	EventError             = "error"
)

// DecodeRequest parses a Messages (or count_tokens) request. What else Anthropic requires of
// it is left to Anthropic on the pass-through (Claude Code sends roles beyond user and
// assistant), and to the translation otherwise.
func DecodeRequest(body []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("invalid Messages request: %w", err)
	}
	return &r, nil
}

// Model is one entry of Anthropic's GET /v1/models.
type Model struct {
	Type        string `json:"type"` // "model"
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"` // RFC 3339
}

// ModelList is the body of Anthropic's GET /v1/models (one page holds every model).
type ModelList struct {
	Data    []Model `json:"data"`
	HasMore bool    `json:"has_more"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
}

// NewModelList lists the models named, all created at created.
func NewModelList(names []string, created time.Time) ModelList {
	l := ModelList{Data: []Model{}}
	for _, n := range names {
		l.Data = append(l.Data, Model{Type: "model", ID: n, DisplayName: n, CreatedAt: created.UTC().Format(time.RFC3339)})
	}
	if len(names) > 0 {
		l.FirstID, l.LastID = &names[0], &names[len(names)-1]
	}
	return l
}
