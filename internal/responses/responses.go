// Package responses holds the wire types of OpenAI's Responses API that llmgate serves on
// /v1/responses: requests, input and output items, the response object, usage and the
// streamed response.* events.
package responses

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/llmgate/llmgate/internal/openai"
)

// Request is a Responses request, with every field llmgate reads or translates. Fields it
// does not know reach an openai/ or azure/ deployment anyway: the pass-through forwards the
// client's bytes.
type Request struct {
	Model              string          `json:"model"`
	Input              Input           `json:"input"`
	Instructions       string          `json:"instructions,omitempty"`
	Tools              []Tool          `json:"tools,omitempty"`
	ToolChoice         json.RawMessage `json:"tool_choice,omitempty"`
	ParallelToolCalls  *bool           `json:"parallel_tool_calls,omitempty"`
	MaxOutputTokens    *int            `json:"max_output_tokens,omitempty"`
	Temperature        *float64        `json:"temperature,omitempty"`
	TopP               *float64        `json:"top_p,omitempty"`
	Stream             bool            `json:"stream,omitempty"`
	Store              *bool           `json:"store,omitempty"`
	PreviousResponseID string          `json:"previous_response_id,omitempty"`
	Reasoning          *Reasoning      `json:"reasoning,omitempty"`
	Include            []string        `json:"include,omitempty"`
	Text               json.RawMessage `json:"text,omitempty"`
	User               string          `json:"user,omitempty"`
	Metadata           json.RawMessage `json:"metadata,omitempty"`
}

// Reasoning is the request's reasoning configuration.
type Reasoning struct {
	Effort  string `json:"effort,omitempty"`
	Summary string `json:"summary,omitempty"`
}

// Input is the request's input: a string (one user message) or a list of items.
type Input []Item

// UnmarshalJSON accepts a string or an array of items.
func (in *Input) UnmarshalJSON(b []byte) error {
	return openai.DecodeStringOrList(b, (*[]Item)(in), func(s string) Item {
		return Item{Type: ItemMessage, Role: "user", Content: Content{{Type: PartInputText, Text: s}}}
	}, "input")
}

// Item types.
const (
	ItemMessage            = "message"
	ItemFunctionCall       = "function_call"
	ItemFunctionCallOutput = "function_call_output"
	ItemReasoning          = "reasoning"
)

// Item is an input or output item; the fields used depend on Type (a message without a
// type is a message).
type Item struct {
	Type      string          `json:"type,omitempty"`
	ID        string          `json:"id,omitempty"`
	Status    string          `json:"status,omitempty"`
	Role      string          `json:"role,omitempty"`      // message
	Content   Content         `json:"content,omitempty"`   // message
	CallID    string          `json:"call_id,omitempty"`   // function_call, function_call_output
	Name      string          `json:"name,omitempty"`      // function_call
	Arguments *string         `json:"arguments,omitempty"` // function_call
	Output    json.RawMessage `json:"output,omitempty"`    // function_call_output: a string or parts
	Summary   []SummaryPart   `json:"summary,omitempty"`   // reasoning
	// EncryptedContent is a reasoning item's opaque state (include reasoning.encrypted_content).
	EncryptedContent *string `json:"encrypted_content,omitempty"`
}

// Content is a message's content: a string (one text part) or parts.
type Content []Part

// UnmarshalJSON accepts a string or an array of parts.
func (c *Content) UnmarshalJSON(b []byte) error {
	return openai.DecodeStringOrList(b, (*[]Part)(c), func(s string) Part { return Part{Type: PartInputText, Text: s} }, "content")
}

// Content part types.
const (
	PartInputText   = "input_text"
	PartInputImage  = "input_image"
	PartInputFile   = "input_file"
	PartOutputText  = "output_text"
	PartRefusal     = "refusal"
	PartSummaryText = "summary_text"
)

// Part is a content part. Text and annotations are always sent: clients append to an
// output_text part's text and read its annotations.
type Part struct {
	Type        string  `json:"type"`
	Text        string  `json:"text"`
	ImageURL    string  `json:"image_url,omitempty"` // input_image
	FileData    string  `json:"file_data,omitempty"` // input_file: a data: URL
	FileID      string  `json:"file_id,omitempty"`   // input_file
	Filename    string  `json:"filename,omitempty"`  // input_file
	Refusal     string  `json:"refusal,omitempty"`
	Annotations []any   `json:"annotations"`
	Detail      *string `json:"detail,omitempty"`
}

// SummaryPart is a part of a reasoning item's summary.
type SummaryPart struct {
	Type string `json:"type"` // summary_text
	Text string `json:"text"`
}

// Tool is a tool; only function tools (name, parameters) can be translated.
type Tool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// Response is the response object.
type Response struct {
	ID                 string          `json:"id"`
	Object             string          `json:"object"` // "response"
	CreatedAt          int64           `json:"created_at"`
	Status             string          `json:"status"` // in_progress, completed, incomplete, failed
	Model              string          `json:"model"`
	Output             []Item          `json:"output"`
	Usage              *Usage          `json:"usage"`
	Error              *ErrorObject    `json:"error"`
	IncompleteDetails  *Incomplete     `json:"incomplete_details"`
	Instructions       *string         `json:"instructions"`
	PreviousResponseID *string         `json:"previous_response_id"`
	ParallelToolCalls  bool            `json:"parallel_tool_calls"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	Tools              []Tool          `json:"tools"`
	Store              bool            `json:"store"`
}

// Incomplete says why a response is incomplete.
type Incomplete struct {
	Reason string `json:"reason"` // max_output_tokens, content_filter
}

// ErrorObject is a failed response's error.
type ErrorObject struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Usage is the Responses usage: input_tokens includes the cached ones, output_tokens the
// reasoning ones.
type Usage struct {
	InputTokens         int           `json:"input_tokens"`
	InputTokensDetails  InputDetails  `json:"input_tokens_details"`
	OutputTokens        int           `json:"output_tokens"`
	OutputTokensDetails OutputDetails `json:"output_tokens_details"`
	TotalTokens         int           `json:"total_tokens"`
}

// InputDetails breaks input tokens down.
type InputDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// OutputDetails breaks output tokens down.
type OutputDetails struct {
	ReasoningTokens int `json:"reasoning_tokens"`
}

// OpenAI is u in chat's terms, as the gateway prices it.
func (u Usage) OpenAI() openai.Usage {
	out := openai.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
	if u.InputTokensDetails.CachedTokens > 0 {
		out.PromptTokensDetails = &openai.PromptTokensDetails{CachedTokens: u.InputTokensDetails.CachedTokens}
	}
	if out.TotalTokens == 0 {
		out.TotalTokens = out.PromptTokens + out.CompletionTokens
	}
	return out
}

// Streamed event types.
const (
	EventCreated          = "response.created"
	EventInProgress       = "response.in_progress"
	EventCompleted        = "response.completed"
	EventIncomplete       = "response.incomplete"
	EventFailed           = "response.failed"
	EventOutputItemAdded  = "response.output_item.added"
	EventOutputItemDone   = "response.output_item.done"
	EventContentPartAdded = "response.content_part.added"
	EventContentPartDone  = "response.content_part.done"
	EventOutputTextDelta  = "response.output_text.delta"
	EventOutputTextDone   = "response.output_text.done"
	EventArgumentsDelta   = "response.function_call_arguments.delta"
	EventArgumentsDone    = "response.function_call_arguments.done"
	EventSummaryPartAdded = "response.reasoning_summary_part.added"
	EventSummaryPartDone  = "response.reasoning_summary_part.done"
	EventSummaryTextDelta = "response.reasoning_summary_text.delta"
	EventSummaryTextDone  = "response.reasoning_summary_text.done"
	EventError            = "error"
)

// DecodeRequest parses a Responses request.
func DecodeRequest(body []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("We could not parse the JSON body of your request: %w", err)
	}
	if r.Model == "" {
		return nil, errors.New("Missing required parameter: 'model'.")
	}
	return &r, nil
}

// AppendFailed appends a response.failed event for a stream that failed after it started.
func AppendFailed(b []byte, e *openai.Error) []byte {
	data, _ := json.Marshal(struct {
		Type     string   `json:"type"`
		Response Response `json:"response"`
	}{EventFailed, Response{Object: "response", Status: "failed", Output: []Item{}, Error: &ErrorObject{Code: e.Code, Message: e.Message}}})
	return append(b, data...)
}
