// Package provider is the seam between the gateway and LLM providers. Each provider family
// lives in its own subpackage and turns an OpenAI-format request into its wire format and
// the answer back into OpenAI format, streaming included.
package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
)

// Kind is the kind of call.
type Kind string

// Kinds of calls.
const (
	Chat       Kind = "chat"       // /v1/chat/completions
	Completion Kind = "completion" // /v1/completions
	Embedding  Kind = "embedding"  // /v1/embeddings
	// Moderation is /v1/moderations: billed for its input only; answers carry no usage, so
	// a call is charged its reservation (nothing for the free moderation models).
	Moderation Kind = "moderation"
	// ImageGeneration is /v1/images/generations: priced per image (pricing.ImagePrices),
	// never streamed.
	ImageGeneration Kind = "image_generation"
	// Messages is Anthropic's Messages API (/v1/messages): Body, Response.Body and stream
	// chunks are in Anthropic's format (each chunk one event object with its "type").
	Messages Kind = "messages"
	// CountTokens is Anthropic's /v1/messages/count_tokens: Body is a Messages request,
	// Response.Body {"input_tokens": n}. It costs nothing.
	CountTokens Kind = "count_tokens"
	// Responses is OpenAI's Responses API (/v1/responses): Body, Response.Body and stream
	// chunks are in its format (each chunk one response.* event object).
	Responses Kind = "responses"
	// StoredResponse is a call on a response the upstream keeps (GET or DELETE
	// /v1/responses/{id}, GET /v1/responses/{id}/input_items, POST
	// /v1/responses/{id}/cancel): Call.Stored says which,
	// Body is empty and Response.Body is the upstream's answer. Only providers that serve
	// Responses natively serve it.
	StoredResponse Kind = "stored_response"
)

// InputOnly reports whether calls of kind k have no completion tokens to bound or clamp and
// cannot be streamed (embeddings, moderations, image generations).
func (k Kind) InputOnly() bool { return k == Embedding || k == Moderation || k == ImageGeneration }

// Stored is a StoredResponse call.
type Stored struct {
	Method string // http.MethodGet, http.MethodDelete, or http.MethodPost for StoredCancel
	ID     string // the upstream's response id
	Part   string // the path after the id: "" (the response itself), StoredInputItems or StoredCancel
	Query  string // the client's raw query (input_items paging: after, before, limit, order, include)
}

// The parts of a stored response.
const (
	StoredInputItems = "input_items" // GET: the response's input items
	StoredCancel     = "cancel"      // POST: cancel a background response
)

// Native is implemented by a provider that serves some of the Messages, CountTokens and
// Responses kinds in their own wire format (a pass-through); any other provider serves
// them through a translation to chat (see provider/viachat). model is the call's upstream
// model (Call.Model): Bedrock speaks Anthropic's format for its Claude models only.
type Native interface {
	Native(k Kind, model string) bool
}

// Call is one request to one deployment.
type Call struct {
	Kind Kind
	// Body is the OpenAI-format request JSON as the client sent it (after the gateway's own
	// edits, such as a clamped max_tokens). OpenAI-compatible providers forward it with
	// "model" replaced, so fields the gateway does not model pass through unchanged.
	Body []byte
	// Request is the part of Body the gateway reads.
	Request *openai.Request
	// Header holds the client's headers a pass-through forwards (anthropic-version,
	// anthropic-beta); nil for translated calls.
	Header http.Header
	// Reasoning and PDFInput say the model takes chat's reasoning_effort and PDF file parts
	// (model_info / cost map supports_reasoning, supports_pdf_input): a translation to chat
	// sends them only then.
	Reasoning, PDFInput bool
	// Stored is the call's target when Kind is StoredResponse.
	Stored *Stored
	// Model is the upstream model name: litellm_params.model without the provider prefix.
	Model string
	// Params are the deployment's litellm_params (api_base, api_key, api_version, ...).
	Params config.LiteLLMParams
	// Timeout bounds the upstream call (0: none beyond ctx): all of it for Do; for Stream, the
	// wait for the answer's headers and then for each event, so a long answer that keeps
	// coming is not cut off. A stream whose upstream stalls longer fails with a retryable
	// 408 timeout error.
	Timeout time.Duration
	// MockTesting is true when the caller may use mock_response and the mock_testing_*
	// flags on any deployment: a proxy admin, or any key when the operator set
	// llmgate_settings.allow_client_mock_testing. Otherwise they take effect only on mock
	// deployments (see router), so a key cannot fake an upstream's answers or failures.
	MockTesting bool
}

// Response is a complete (non-streamed) answer in OpenAI format.
type Response struct {
	Body  []byte       // OpenAI-format response JSON
	Usage openai.Usage // usage as the provider reported it
}

// Stream yields OpenAI-format chat.completion.chunk (or completion) JSON objects.
type Stream interface {
	// Next returns the next chunk's JSON (no "data: " framing) or io.EOF after the last.
	// Usage-only chunks the client did not ask for are never returned; their usage is kept.
	Next() ([]byte, error)
	// Usage is the usage reported so far (complete after io.EOF).
	Usage() openai.Usage
	// Close releases the upstream connection; it is safe to call more than once.
	Close() error
}

// Buffered is implemented by a Stream that can tell whether its next chunk has already
// arrived, so Next returns it without waiting for the upstream. The gateway flushes only
// when it has not: chunks that arrived together are sent together, and none is held back.
type Buffered interface {
	Buffered() bool
}

// Provider calls one provider family.
type Provider interface {
	// Do makes a non-streaming call.
	Do(ctx context.Context, c *Call) (*Response, error)
	// Stream makes a streaming call. The provider asks the upstream for usage (e.g.
	// stream_options.include_usage) whatever the client asked; the stream strips the usage
	// chunk when the client did not ask for it.
	Stream(ctx context.Context, c *Call) (Stream, error)
}

// Error is an upstream failure, classified so the router can retry, fall back or cool down.
// Message must never contain API keys.
type Error struct {
	Status     int    // HTTP status to answer with (upstream's, or 502/504 for transport errors)
	Type       string // OpenAI error type
	Code       string // OpenAI error code ("context_length_exceeded", ...), may be empty
	Param      string // the request field at fault, if any
	Message    string
	Provider   string
	RetryAfter time.Duration // from the upstream's retry-after, if any
	// Retryable is true for failures another attempt or deployment may not hit: 429, 5xx,
	// timeouts and connection errors.
	Retryable bool
	// ContextWindow is true when the prompt did not fit the model's context window.
	ContextWindow bool
	// Mocked is true for a failure the caller asked for (the request's mock_response or a
	// mock_testing_* flag): it says nothing about the deployment, so it never cools it down.
	Mocked bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d %s", e.Provider, e.Status, e.Message)
}

// OpenAI converts e to the error the client sees.
func (e *Error) OpenAI() *openai.Error {
	typ := e.Type
	if typ == "" {
		typ = openai.TypeServer
	}
	oe := openai.Errorf(e.Status, typ, e.Message)
	if e.Code != "" {
		oe.Code = e.Code
	}
	if e.Param != "" {
		oe = oe.WithParam(e.Param)
	}
	if e.RetryAfter > 0 {
		oe.Header = http.Header{"Retry-After": {fmt.Sprint(int(e.RetryAfter.Seconds() + 0.999))}}
	}
	return oe
}

// AnswerTooLarge is the error of an upstream answer over the gateway's size limit
// (llmgate_settings.max_response_body_bytes), which the shared HTTP client enforces. It is
// a 400, not an upstream failure: the request asked for that much (many inputs or choices),
// so no other deployment would do better and the deployment is not cooled down.
type AnswerTooLarge struct{ Limit int64 }

func (e *AnswerTooLarge) Error() string {
	return fmt.Sprintf("the upstream's answer is larger than llmgate's limit of %d bytes (llmgate_settings.max_response_body_bytes); ask for less", e.Limit)
}

// TooLargeError returns the *Error for err if it is (or wraps) an *AnswerTooLarge.
func TooLargeError(name string, err error) (*Error, bool) {
	var tl *AnswerTooLarge
	if !errors.As(err, &tl) {
		return nil, false
	}
	return &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Provider: name, Message: name + ": " + tl.Error()}, true
}

// Split splits litellm_params.model into the provider prefix and the upstream model name:
// "openai/gpt-4o" → ("openai", "gpt-4o"); "azure/my-deploy" → ("azure", "my-deploy");
// a bare "gpt-4o" is OpenAI's, as LiteLLM treats it.
func Split(model string) (prefix, name string) {
	if p, n, ok := strings.Cut(model, "/"); ok {
		return p, n
	}
	return "openai", model
}
