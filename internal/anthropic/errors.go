package anthropic

import (
	"encoding/json"
	"net/http"

	"github.com/llmgate/llmgate/internal/openai"
)

// Anthropic's error types.
const (
	ErrInvalidRequest = "invalid_request_error"
	ErrAuthentication = "authentication_error"
	ErrPermission     = "permission_error"
	ErrNotFound       = "not_found_error"
	ErrTooLarge       = "request_too_large"
	ErrRateLimit      = "rate_limit_error"
	ErrAPI            = "api_error"
	ErrTimeout        = "timeout_error"
	ErrOverloaded     = "overloaded_error"
)

// StatusOverloaded is the status Anthropic answers overloaded_error with.
const StatusOverloaded = 529

// ErrorBody is the error object of an error answer or error event.
type ErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ErrorType is the Anthropic error type for an HTTP status, as Anthropic pairs them.
func ErrorType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return ErrInvalidRequest
	case http.StatusUnauthorized:
		return ErrAuthentication
	case http.StatusForbidden:
		return ErrPermission
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusTooManyRequests:
		return ErrRateLimit
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return ErrTimeout
	case StatusOverloaded, http.StatusServiceUnavailable:
		return ErrOverloaded
	}
	if status >= 400 && status < 500 {
		return ErrInvalidRequest
	}
	return ErrAPI
}

// FromOpenAI is e in Anthropic's terms: the same status and message (which keeps LiteLLM's
// wording, such as "Budget has been exceeded"), the type for the status.
func FromOpenAI(e *openai.Error) ErrorBody {
	return ErrorBody{Type: ErrorType(e.Status), Message: e.Message}
}

// AppendError appends the JSON of {"type":"error","error":{...}}.
func AppendError(b []byte, e ErrorBody) []byte {
	data, _ := json.Marshal(struct {
		Type  string    `json:"type"`
		Error ErrorBody `json:"error"`
	}{EventError, e})
	return append(b, data...)
}

// WriteError writes err as Anthropic writes errors, with the status of the *openai.Error it
// is (other errors: a 500 that says nothing of internals) and its extra headers
// (retry-after).
func WriteError(w http.ResponseWriter, err error) {
	e := openai.AsError(err)
	openai.WriteErrorBody(w, e, append(AppendError(nil, FromOpenAI(e)), '\n'))
}
