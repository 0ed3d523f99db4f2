// Package translate holds what the providers that translate OpenAI's format share: the full
// OpenAI chat request they read, the chat.completion and chat.completion.chunk objects they
// write, embeddings in and out, and the classification of upstream failures into
// *provider.Error. OpenAI-compatible providers forward bodies and need none of it.
package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// Request is an OpenAI chat completion request with every field a translating provider maps.
type Request struct {
	Model               string                `json:"model"`
	Messages            []Message             `json:"messages"`
	MaxTokens           *int                  `json:"max_tokens"`
	MaxCompletionTokens *int                  `json:"max_completion_tokens"`
	Temperature         *float64              `json:"temperature"`
	TopP                *float64              `json:"top_p"`
	N                   *int                  `json:"n"`
	Stop                Strings               `json:"stop"`
	Tools               []Tool                `json:"tools"`
	ToolChoice          *ToolChoice           `json:"tool_choice"`
	ParallelToolCalls   *bool                 `json:"parallel_tool_calls"`
	ResponseFormat      *ResponseFormat       `json:"response_format"`
	User                string                `json:"user"`
	Stream              bool                  `json:"stream"`
	StreamOptions       *openai.StreamOptions `json:"stream_options"`
}

// OutputLimit is max_completion_tokens, else max_tokens, else nil.
func (r *Request) OutputLimit() *int {
	if r.MaxCompletionTokens != nil {
		return r.MaxCompletionTokens
	}
	return r.MaxTokens
}

// IncludeUsage reports whether the client asked for a usage chunk at the end of a stream.
func (r *Request) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// Message roles.
const (
	RoleSystem    = "system"
	RoleDeveloper = "developer" // OpenAI's newer name for system
	RoleUser      = "user"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
)

// Message is one chat message.
type Message struct {
	Role       string     `json:"role"`
	Content    Content    `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	// CacheControl is LiteLLM's message-level Anthropic prompt-caching marker.
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// IsSystem reports whether m is a system (or developer) message.
func (m *Message) IsSystem() bool { return m.Role == RoleSystem || m.Role == RoleDeveloper }

// Content is a message's content: a string becomes one text part, null or "" no parts.
type Content []Part

// UnmarshalJSON accepts a string, an array of parts or null.
func (c *Content) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*c = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = nil
		if s != "" {
			*c = Content{{Type: PartText, Text: s}}
		}
		return nil
	}
	var parts []Part
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("content: want a string or an array of parts: %w", err)
	}
	*c = parts
	return nil
}

// Text joins the text parts.
func (c Content) Text() string {
	var sb strings.Builder
	for _, p := range c {
		if p.Type == PartText {
			sb.WriteString(p.Text)
		}
	}
	return sb.String()
}

// Content part types.
const (
	PartText     = "text"
	PartImageURL = "image_url"
	PartFile     = "file"
)

// Part is one content part.
type Part struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
	File     *File     `json:"file,omitempty"`
	// CacheControl is passed to Anthropic as the block's cache_control.
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// File is a file part's file (a PDF): its bytes as a data: URL, or an uploaded file's id.
// Only OpenAI-compatible upstreams get file parts; other providers refuse them.
type File struct {
	FileData string `json:"file_data,omitempty"`
	FileID   string `json:"file_id,omitempty"`
	Filename string `json:"filename,omitempty"`
}

// ImageURL is an image part's image: an http(s) URL or a data: URL.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// UnmarshalJSON accepts OpenAI's {"url": ...} object or a bare URL string (as LiteLLM does).
func (u *ImageURL) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*u = ImageURL{URL: s}
		return nil
	}
	type plain ImageURL
	return json.Unmarshal(b, (*plain)(u))
}

// DataURL is a decoded-enough data: URL.
type DataURL struct {
	MediaType string // "image/png"
	Base64    string // the payload, still base64
}

// ParseDataURL parses "data:<media type>;base64,<data>"; ok is false for any other URL.
func ParseDataURL(u string) (d DataURL, ok bool) {
	rest, found := strings.CutPrefix(u, "data:")
	if !found {
		return DataURL{}, false
	}
	meta, data, found := strings.Cut(rest, ",")
	if !found {
		return DataURL{}, false
	}
	mediaType, found := strings.CutSuffix(meta, ";base64")
	if !found || mediaType == "" {
		return DataURL{}, false
	}
	return DataURL{MediaType: mediaType, Base64: data}, true
}

// ToolCall is a function call the assistant made.
type ToolCall struct {
	ID       string       `json:"id"`
	Type     string       `json:"type"`
	Function FunctionCall `json:"function"`
}

// FunctionCall is a called function and its arguments as a JSON string.
type FunctionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// ArgumentsObject returns the arguments as a JSON object; "" becomes {}.
func (f FunctionCall) ArgumentsObject() (json.RawMessage, error) {
	s := strings.TrimSpace(f.Arguments)
	if s == "" {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid([]byte(s)) || s[0] != '{' {
		return nil, fmt.Errorf("tool call %q: arguments are not a JSON object", f.Name)
	}
	return json.RawMessage(s), nil
}

// Tool is a tool the model may call; only "function" tools exist.
type Tool struct {
	Type     string      `json:"type"`
	Function FunctionDef `json:"function"`
}

// FunctionDef declares a function.
type FunctionDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// Tool choice modes.
const (
	ToolChoiceAuto     = "auto"
	ToolChoiceNone     = "none"
	ToolChoiceRequired = "required"
	ToolChoiceFunction = "function" // Name says which
)

// ToolChoice is tool_choice: "auto", "none", "required" or {"type":"function","function":{"name":...}}.
type ToolChoice struct {
	Mode string
	Name string
}

// UnmarshalJSON accepts the string and the object forms.
func (tc *ToolChoice) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case ToolChoiceAuto, ToolChoiceNone, ToolChoiceRequired:
			*tc = ToolChoice{Mode: s}
			return nil
		}
		return fmt.Errorf("tool_choice: unknown value %q", s)
	}
	var o struct {
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return fmt.Errorf("tool_choice: %w", err)
	}
	if o.Function.Name == "" {
		return fmt.Errorf("tool_choice: function.name is required")
	}
	*tc = ToolChoice{Mode: ToolChoiceFunction, Name: o.Function.Name}
	return nil
}

// ResponseFormat is response_format.
type ResponseFormat struct {
	Type       string      `json:"type"` // "text", "json_object", "json_schema"
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is response_format.json_schema.
type JSONSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema,omitempty"`
}

// Strings is a string or an array of strings (stop, embedding input).
type Strings []string

// UnmarshalJSON accepts a string, an array of strings or null.
func (s *Strings) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*s = nil
		return nil
	}
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = Strings{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or an array of strings")
	}
	*s = many
	return nil
}

// DecodeRequest decodes and checks a chat completion body. Its errors are 400 *provider.Error.
func DecodeRequest(name string, body []byte) (*Request, error) {
	var r Request
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, BadRequest(name, "invalid chat completion request: %v", err)
	}
	if len(r.Messages) == 0 {
		return nil, BadRequest(name, "messages: at least one message is required")
	}
	for i, m := range r.Messages {
		switch m.Role {
		case RoleSystem, RoleDeveloper, RoleUser, RoleAssistant:
		case RoleTool:
			if m.ToolCallID == "" {
				return nil, BadRequest(name, "messages[%d]: tool_call_id is required for role tool", i)
			}
		default:
			return nil, BadRequest(name, "messages[%d]: unsupported role %q", i, m.Role)
		}
		for j, p := range m.Content {
			switch p.Type {
			case PartText:
			case PartImageURL:
				if p.ImageURL == nil || p.ImageURL.URL == "" {
					return nil, BadRequest(name, "messages[%d].content[%d]: image_url.url is required", i, j)
				}
			default:
				return nil, BadRequest(name, "messages[%d].content[%d]: content part type %q is not supported", i, j, p.Type)
			}
		}
	}
	for i, t := range r.Tools {
		if t.Type != "function" || t.Function.Name == "" {
			return nil, BadRequest(name, "tools[%d]: only function tools with a name are supported", i)
		}
	}
	return &r, nil
}

// BadRequest is a 400 invalid_request_error that no retry can fix.
func BadRequest(name, format string, args ...any) *provider.Error {
	return &provider.Error{
		Status:   http.StatusBadRequest,
		Type:     openai.TypeInvalidRequest,
		Message:  name + ": " + fmt.Sprintf(format, args...),
		Provider: name,
	}
}
