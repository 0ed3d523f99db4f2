// Package viachat serves Anthropic Messages and OpenAI Responses calls with a provider that
// speaks only OpenAI chat: the request is translated to a chat request, the chat answer (or
// stream of chunks) back into the call's own format. Providers that serve a kind natively
// (provider.Native) get the call as it is.
package viachat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// Wrap returns a provider that serves every kind of call: chat, completion and embedding
// calls and the kinds p serves natively go to p as they are; Messages, CountTokens and
// Responses calls through a translation to chat.
func Wrap(p provider.Provider) provider.Provider { return &adapter{p: p} }

type adapter struct{ p provider.Provider }

// translated reports whether a call of kind k to model goes through chat.
func (a *adapter) translated(k provider.Kind, model string) bool {
	switch k {
	case provider.Messages, provider.CountTokens, provider.Responses, provider.StoredResponse:
		n, ok := a.p.(provider.Native)
		return !ok || !n.Native(k, model)
	}
	return false
}

// Native reports the kinds the wrapped provider serves natively, so a wrapper of a wrapper
// does not translate twice.
func (a *adapter) Native(k provider.Kind, model string) bool { return !a.translated(k, model) }

func (a *adapter) Do(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	if !a.translated(c.Kind, c.Model) {
		return a.p.Do(ctx, c)
	}
	switch c.Kind {
	case provider.CountTokens:
		return countTokens(c)
	case provider.Messages:
		return a.doMessages(ctx, c)
	case provider.StoredResponse:
		return nil, badRequest("this model's deployment translates the Responses API to chat and keeps no responses, so they cannot be read, deleted or cancelled (it answers every response at once: there are no background responses); llmgate does not store them either. Send the whole conversation as input instead.")
	}
	return a.doResponses(ctx, c)
}

func (a *adapter) Stream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	if !a.translated(c.Kind, c.Model) {
		return a.p.Stream(ctx, c)
	}
	switch c.Kind {
	case provider.Messages:
		return a.streamMessages(ctx, c)
	case provider.Responses:
		return a.streamResponses(ctx, c)
	}
	return nil, badRequest("%s calls cannot be streamed", c.Kind)
}

// chatRequest is the chat request a translation sends.
type chatRequest struct {
	Model             string                `json:"model"`
	Messages          []translate.Message   `json:"messages"`
	MaxTokens         *int                  `json:"max_tokens,omitempty"`
	Temperature       *float64              `json:"temperature,omitempty"`
	TopP              *float64              `json:"top_p,omitempty"`
	Stop              []string              `json:"stop,omitempty"`
	Tools             []translate.Tool      `json:"tools,omitempty"`
	ToolChoice        any                   `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool                 `json:"parallel_tool_calls,omitempty"`
	ReasoningEffort   string                `json:"reasoning_effort,omitempty"`
	TopK              *int                  `json:"top_k,omitempty"`
	ResponseFormat    json.RawMessage       `json:"response_format,omitempty"`
	User              string                `json:"user,omitempty"`
	Stream            bool                  `json:"stream,omitempty"`
	StreamOptions     *openai.StreamOptions `json:"stream_options,omitempty"`
}

// accepts is what the deployment's chat API takes beyond the basics, so a translation sends
// a setting only where it cannot make the call fail.
type accepts struct {
	reasoning bool // reasoning_effort: the model reasons (supports_reasoning)
	pdf       bool // PDF file parts (supports_pdf_input)
	topK      bool // top_k: the provider's chat API takes it
}

// topKProviders are the providers whose OpenAI-compatible chat API takes top_k (OpenAI's
// own refuses it as an unknown argument).
var topKProviders = map[string]bool{
	"hosted_vllm": true, "vllm": true, "together_ai": true, "fireworks_ai": true, "deepinfra": true,
	"ollama": true, "ollama_chat": true, "lm_studio": true, "openrouter": true,
}

func acceptsOf(c *provider.Call) accepts {
	prefix, _ := provider.Split(c.Params.Model)
	return accepts{reasoning: c.Reasoning, pdf: c.PDFInput, topK: topKProviders[prefix]}
}

// reasoningEffort is chat's reasoning_effort for a thinking budget of n tokens.
func reasoningEffort(n int) string {
	switch {
	case n >= 16384:
		return "high"
	case n >= 4096:
		return "medium"
	}
	return "low"
}

// pdfPart is a PDF as a chat file part: file_data (a data: URL) or a file_id.
func pdfPart(data, fileID, filename string) translate.Part {
	if filename == "" && fileID == "" {
		filename = "document.pdf"
	}
	return translate.Part{Type: translate.PartFile, File: &translate.File{FileData: data, FileID: fileID, Filename: filename}}
}

// chatCall is the chat call for c with the translated request cr. A stream asks for the
// usage chunk, which the translation reads.
func chatCall(c *provider.Call, cr *chatRequest, stream bool) (*provider.Call, error) {
	cr.Model = c.Model
	cr.Stream = stream
	if stream {
		cr.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	body, err := json.Marshal(cr)
	if err != nil {
		return nil, fmt.Errorf("viachat: encode chat request: %w", err)
	}
	msgs, _ := json.Marshal(cr.Messages)
	req := &openai.Request{Model: cr.Model, Stream: stream, StreamOptions: cr.StreamOptions, MaxTokens: cr.MaxTokens, User: cr.User, Messages: msgs}
	if c.Request != nil {
		req.MockResponse = c.Request.MockResponse
	}
	return &provider.Call{Kind: provider.Chat, Body: body, Request: req, Model: c.Model, Params: c.Params, Timeout: c.Timeout}, nil
}

// chatCompletion is the part of a chat.completion a translation reads.
type chatCompletion struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Created int64  `json:"created"`
	Choices []struct {
		Message struct {
			Content          *string              `json:"content"`
			ReasoningContent string               `json:"reasoning_content"`
			ToolCalls        []translate.ToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
}

// chatChunk is the part of a chat.completion.chunk a translation reads.
type chatChunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content          *string                   `json:"content"`
			ReasoningContent *string                   `json:"reasoning_content"`
			ToolCalls        []translate.ToolCallDelta `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// answer is what a translation reads of a chat answer: its first choice.
type answer struct {
	reasoning, text, finish string
	calls                   []translate.ToolCall
	usage                   openai.Usage
}

// do makes the (non-streamed) chat call for cr and reads its answer.
func (a *adapter) do(ctx context.Context, c *provider.Call, cr *chatRequest) (*answer, error) {
	call, err := chatCall(c, cr, false)
	if err != nil {
		return nil, err
	}
	resp, err := a.p.Do(ctx, call)
	if err != nil {
		return nil, err
	}
	var cc chatCompletion
	if err := json.Unmarshal(resp.Body, &cc); err != nil {
		return nil, &provider.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Message: "viachat: the upstream's chat answer is not valid JSON", Retryable: true}
	}
	ans := &answer{usage: resp.Usage}
	if len(cc.Choices) > 0 {
		ch := cc.Choices[0]
		ans.reasoning, ans.finish, ans.calls = ch.Message.ReasoningContent, ch.FinishReason, ch.Message.ToolCalls
		if ch.Message.Content != nil {
			ans.text = *ch.Message.Content
		}
	}
	return ans, nil
}

// stream makes the streamed chat call for cr.
func (a *adapter) stream(ctx context.Context, c *provider.Call, cr *chatRequest) (provider.Stream, error) {
	call, err := chatCall(c, cr, true)
	if err != nil {
		return nil, err
	}
	return a.p.Stream(ctx, call)
}

// chunkSource yields the chat chunks of a stream, decoded.
type chunkSource struct{ s provider.Stream }

func (cs chunkSource) next() (*chatChunk, error) {
	data, err := cs.s.Next()
	if err != nil {
		return nil, err
	}
	var ch chatChunk
	if err := json.Unmarshal(data, &ch); err != nil {
		return nil, &provider.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Message: "viachat: the upstream sent a chunk that is not valid JSON"}
	}
	return &ch, nil
}

// deltas receives what a chat stream adds to its first choice, in order.
type deltas interface {
	reasoning(text string)
	text(text string)
	toolCall(id, name string) // a new tool call starts
	arguments(args string)    // more of the current tool call's arguments
}

// dispatch hands the first choice's delta in ch to d and returns its finish_reason ("" if
// none yet).
func dispatch(ch *chatChunk, d deltas) (finish string) {
	for _, choice := range ch.Choices {
		if choice.Index != 0 {
			continue
		}
		delta := choice.Delta
		if t := delta.ReasoningContent; t != nil && *t != "" {
			d.reasoning(*t)
		}
		if t := delta.Content; t != nil && *t != "" {
			d.text(*t)
		}
		for _, tc := range delta.ToolCalls {
			if tc.ID != "" || tc.Function.Name != "" {
				d.toolCall(tc.ID, tc.Function.Name)
			}
			if tc.Function.Arguments != "" {
				d.arguments(tc.Function.Arguments)
			}
		}
		if choice.FinishReason != nil {
			finish = *choice.FinishReason
		}
	}
	return finish
}

// queue is a provider.Stream that yields the events its fill function queues, reading the
// chat stream underneath one chunk at a time.
type queue struct {
	chat   provider.Stream
	events [][]byte
	err    error
	// fill reads from the chat stream and queues events; it returns io.EOF after queueing
	// the last ones.
	fill func() error
}

func (q *queue) push(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		q.err = fmt.Errorf("viachat: encode event: %w", err)
		return
	}
	q.events = append(q.events, data)
}

func (q *queue) Next() ([]byte, error) {
	for len(q.events) == 0 {
		if q.err != nil {
			return nil, q.err
		}
		if err := q.fill(); err != nil {
			q.err = err
		}
	}
	ev := q.events[0]
	q.events = q.events[1:]
	return ev, nil
}

func (q *queue) Usage() openai.Usage { return q.chat.Usage() }
func (q *queue) Close() error        { return q.chat.Close() }

// Buffered reports whether Next returns without waiting for the upstream.
func (q *queue) Buffered() bool {
	if len(q.events) > 0 {
		return true
	}
	b, ok := q.chat.(provider.Buffered)
	return ok && q.err == nil && b.Buffered()
}

func badRequest(format string, args ...any) *provider.Error {
	return &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Provider: "llmgate",
		Message: fmt.Sprintf(format, args...)}
}
