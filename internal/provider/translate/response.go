package translate

import (
	"crypto/rand"
	"encoding/hex"

	"github.com/llmgate/llmgate/internal/openai"
)

// OpenAI finish reasons.
const (
	FinishStop          = "stop"
	FinishLength        = "length"
	FinishToolCalls     = "tool_calls"
	FinishContentFilter = "content_filter"
)

// Completion is a chat.completion object.
type Completion struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []Choice      `json:"choices"`
	Usage   *openai.Usage `json:"usage,omitempty"`
}

// NewCompletion returns a chat.completion with the given identity and no choices yet.
func NewCompletion(id string, created int64, model string) *Completion {
	return &Completion{ID: id, Object: "chat.completion", Created: created, Model: model}
}

// Choice is one choice of a chat.completion.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     any             `json:"logprobs"` // always null
}

// ResponseMessage is the assistant message of a choice. Content is null when the model only
// called tools, as OpenAI answers.
type ResponseMessage struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// NewResponseMessage builds an assistant message from its text and tool calls.
func NewResponseMessage(text string, calls []ToolCall) ResponseMessage {
	m := ResponseMessage{Role: RoleAssistant, ToolCalls: calls}
	if text != "" || len(calls) == 0 {
		m.Content = &text
	}
	return m
}

// Chunk is a chat.completion.chunk object. Choices is [] (never null) in the usage chunk.
type Chunk struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []ChunkChoice `json:"choices"`
	Usage   *openai.Usage `json:"usage,omitempty"`
}

// ChunkChoice is one choice's delta in a chunk. FinishReason is null until the last one.
type ChunkChoice struct {
	Index        int     `json:"index"`
	Delta        Delta   `json:"delta"`
	FinishReason *string `json:"finish_reason"`
	Logprobs     any     `json:"logprobs"` // always null
}

// Delta is what a chunk adds to a choice's message.
type Delta struct {
	Role      string          `json:"role,omitempty"`
	Content   *string         `json:"content,omitempty"`
	ToolCalls []ToolCallDelta `json:"tool_calls,omitempty"`
}

// TextDelta is a delta that adds text.
func TextDelta(s string) Delta { return Delta{Content: &s} }

// ToolCallDelta is a piece of a tool call: the first carries the id, type and name, later ones
// append to the arguments of the call at Index.
type ToolCallDelta struct {
	Index    int          `json:"index"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// Usage builds OpenAI usage from a provider's counts. input excludes cached tokens, as
// Anthropic and Bedrock count them; prompt_tokens is input + cache reads + cache writes, as
// LiteLLM reports it, with the reads in prompt_tokens_details.cached_tokens.
func Usage(input, output, cacheRead, cacheWrite int) openai.Usage {
	u := openai.Usage{
		PromptTokens:             input + cacheRead + cacheWrite,
		CompletionTokens:         output,
		CacheCreationInputTokens: cacheWrite,
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	if cacheRead > 0 {
		u.PromptTokensDetails = &openai.PromptTokensDetails{CachedTokens: cacheRead}
	}
	return u
}

// NewID returns prefix followed by 24 random hex digits ("chatcmpl-…", "call_…").
func NewID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b[:])
}
