package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/anthropic"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/responses"
)

// wire is a route's wire format: all that differs between the routes that share the
// pipeline (authenticate, read, resolve, reserve, route, stream, settle). The provider
// seam carries the body in the route's format (provider.Kind says which); providers that
// do not speak it translate.
type wire struct {
	kind provider.Kind
	// parse reads a request body into what the pipeline reads: the model, stream, the
	// output-token limit (MaxTokens or MaxCompTokens), metadata and the prompt that
	// pricing estimates. Its errors are *openai.Error.
	parse func(body []byte, r *openai.Request) error
	// outputField is the body's output-token limit a budget clamp sets; "" for chat's
	// max_tokens / max_completion_tokens.
	outputField string
	// writeError writes an error answer in the format's shape.
	writeError func(http.ResponseWriter, error)
	// named is true for formats whose stream events are named after their "type" (event:
	// <type>) and end without data: [DONE].
	named bool
	// appendErrorEvent frames a failure after the stream started.
	appendErrorEvent func(b []byte, e *openai.Error) []byte
	// headers are the client headers a pass-through provider forwards.
	headers []string
	// streamID is the path of the response id in a stream event, which llmgate replaces
	// with its own (call.ownID); "" where the ids are sealed (Responses).
	streamID string
}

// openAIWire is the format of the chat, completion and embedding routes.
func openAIWire(kind provider.Kind) *wire {
	return &wire{kind: kind, parse: parseOpenAI, writeError: openai.WriteError, appendErrorEvent: appendErrorEvent, streamID: "id"}
}

func parseOpenAI(body []byte, r *openai.Request) error {
	if err := json.Unmarshal(body, r); err != nil {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest,
			"We could not parse the JSON body of your request. The API expects a JSON payload: "+jsonProblem(err))
	}
	return validCounts(r, "max_tokens")
}

// messagesWire is Anthropic's Messages API (kind Messages) or its count_tokens.
func messagesWire(kind provider.Kind) *wire {
	parse := func(body []byte, r *openai.Request) error {
		if err := parseMessages(body, r); err != nil {
			return err
		}
		if r.MaxTokens == nil && kind == provider.Messages {
			return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, "max_tokens: Field required").WithParam("max_tokens")
		}
		return nil
	}
	return &wire{kind: kind, parse: parse, outputField: "max_tokens", writeError: anthropic.WriteError, named: true,
		appendErrorEvent: func(b []byte, e *openai.Error) []byte {
			return frame(b, anthropic.EventError, anthropic.AppendError(nil, anthropic.FromOpenAI(e)))
		},
		headers:  []string{"anthropic-version", "anthropic-beta"},
		streamID: "message.id", // in message_start only
	}
}

// parseMessages reads a Messages request. The prompt side of the bound is measured from the
// whole body (tokens.Scan): system, tools and messages all reach the model.
func parseMessages(body []byte, r *openai.Request) error {
	req, err := anthropic.DecodeRequest(body)
	if err != nil {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, err.Error())
	}
	r.Model, r.Stream, r.MaxTokens = req.Model, req.Stream, req.MaxTokens
	if req.Metadata != nil {
		r.User = req.Metadata.UserID
	}
	return validCounts(r, "max_tokens")
}

// responsesWire is OpenAI's Responses API.
func responsesWire() *wire {
	return &wire{kind: provider.Responses, parse: parseResponses, outputField: "max_output_tokens", writeError: openai.WriteError, named: true,
		appendErrorEvent: func(b []byte, e *openai.Error) []byte {
			return frame(b, responses.EventFailed, responses.AppendFailed(nil, e))
		},
	}
}

func parseResponses(body []byte, r *openai.Request) error {
	req, err := responses.DecodeRequest(body)
	if err != nil {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, err.Error())
	}
	r.Model, r.Stream, r.MaxTokens, r.User, r.Metadata = req.Model, req.Stream, req.MaxOutputTokens, req.User, req.Metadata
	return validCounts(r, "max_output_tokens")
}

// passHeaders are the client's headers that the wire's pass-through forwards.
func (wf *wire) passHeaders(r *http.Request) http.Header {
	if len(wf.headers) == 0 {
		return nil
	}
	h := http.Header{}
	for _, k := range wf.headers {
		if v := r.Header.Values(k); len(v) > 0 {
			h[http.CanonicalHeaderKey(k)] = v
		}
	}
	return h
}

// SSE framing of named events.
var (
	eventPrefix = []byte("event: ")
	newline     = []byte("\n")
)

// frame appends a named event.
func frame(b []byte, name string, data []byte) []byte {
	b = append(append(append(b, eventPrefix...), name...), '\n')
	return append(append(append(b, dataPrefix...), data...), eventEnd...)
}

// eventName is a named format's event name for a chunk: its "type".
func eventName(chunk []byte) string {
	return gjson.GetBytes(chunk, "type").String()
}
