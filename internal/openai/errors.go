// Package openai holds the OpenAI wire types the gateway needs and writes errors in
// OpenAI's format: {"error":{"message","type","param","code"}}.
package openai

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
)

// Error is an API error in OpenAI's (and LiteLLM Proxy's) format. Status is the HTTP status;
// Code defaults to the status as a string, as LiteLLM sends it.
type Error struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
	// Header holds extra response headers (retry-after on 429s).
	Header http.Header `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// Error types used across the gateway.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuth           = "auth_error"
	TypeNotFound       = "not_found_error"
	TypeBudgetExceeded = "budget_exceeded"
	TypeRateLimit      = "rate_limit_error"
	TypeServer         = "internal_server_error"
	TypeNotImplemented = "not_implemented_error"
	TypeUnavailable    = "service_unavailable_error"
	TypeTimeout        = "timeout_error"
)

// Errorf builds an Error with the given status, type and message.
func Errorf(status int, typ, msg string) *Error {
	return &Error{Status: status, Message: msg, Type: typ, Code: strconv.Itoa(status)}
}

// WithParam sets the param field.
func (e *Error) WithParam(p string) *Error {
	e.Param = &p
	return e
}

// WithCode replaces the code field (OpenAI uses strings such as "context_length_exceeded").
func (e *Error) WithCode(c string) *Error {
	e.Code = c
	return e
}

// NotImplemented is the answer of a route that exists in the API but is not built yet.
func NotImplemented(route string) *Error {
	return Errorf(http.StatusNotImplemented, TypeNotImplemented, route+" is not implemented by llmgate yet")
}

// InvalidURL answers a route or method no handler serves with OpenAI's 404, in place of
// ServeMux's plain-text 404 or 405.
func InvalidURL(w http.ResponseWriter, r *http.Request) {
	WriteError(w, Errorf(http.StatusNotFound, TypeNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")"))
}

// WriteError writes err as an OpenAI-format error. Errors that are not *Error become a 500
// whose message does not leak internals. The answer carries its Content-Length, so it is
// complete for the client once flushed, whatever the handler does next.
func WriteError(w http.ResponseWriter, err error) {
	e := AsError(err)
	body, _ := json.Marshal(struct {
		Error *Error `json:"error"`
	}{e})
	WriteErrorBody(w, e, append(body, '\n'))
}

// AsError is err as an *Error: itself, or a 500 that says nothing of internals.
func AsError(err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		e = Errorf(http.StatusInternalServerError, TypeServer, "internal server error")
	}
	return e
}

// WriteErrorBody writes body, e in some wire format's shape, with e's status and extra
// headers and a Content-Length.
func WriteErrorBody(w http.ResponseWriter, e *Error, body []byte) {
	h := w.Header()
	for k, vs := range e.Header {
		h[k] = vs
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

// WriteJSON writes v as JSON with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
