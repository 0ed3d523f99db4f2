package openaicompat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// maxMessage bounds the upstream text copied into an error message.
const maxMessage = 1024

// contextWindowPhrases are lower-case fragments of the messages upstreams send when a prompt
// does not fit the model (OpenAI, vLLM, Groq, Together, Mistral, DeepSeek, Ollama).
var contextWindowPhrases = []string{
	"context_length_exceeded",
	"maximum context length",
	"context length exceeded",
	"context window",
	"reduce the length of the messages",
	"prompt is too long",
	"input is too long",
	"`inputs` tokens + `max_new_tokens`",
	"exceeds the model's context",
	"exceeds maximum input length",
	"too many input tokens",
}

// errorFromBody classifies an upstream error answer. status is the HTTP status, or 0 when
// the error came inside a successful answer (a stream's error event, a 200 with an error
// object): then a numeric error.code in 400-599 gives the status, else 502.
func (c *Client) errorFromBody(status int, h http.Header, body []byte, secret string) *provider.Error {
	msg, code, numCode := "", "", 0
	if gjson.ValidBytes(body) {
		root := gjson.ParseBytes(body)
		ev := root.Get("error")
		switch {
		case ev.IsObject():
			msg = text(ev.Get("message"))
			code, numCode = codeOf(ev.Get("code"))
		case ev.Type == gjson.String:
			msg = ev.Str
		}
		if msg == "" { // Mistral {"object":"error","message":...}, FastAPI {"detail":...}
			msg = text(root.Get("message"))
			if msg == "" {
				msg = text(root.Get("detail"))
			}
			if code == "" && numCode == 0 {
				code, numCode = codeOf(root.Get("code"))
			}
		}
	} else if b := bytes.TrimSpace(body); len(b) > 0 && b[0] != '<' { // plain text, not an HTML page
		msg = string(b)
	}
	if status == 0 {
		status = http.StatusBadGateway
		if numCode >= 400 && numCode <= 599 {
			status = numCode
		}
	}
	if msg == "" {
		msg = fmt.Sprintf("upstream answered %d %s", status, http.StatusText(status))
	}
	if len(msg) > maxMessage {
		n := maxMessage
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n] + "…"
	}
	e := &provider.Error{
		Status:    status,
		Type:      typeFor(status),
		Code:      code,
		Message:   translate.Redact(msg, secret),
		Provider:  c.name,
		Retryable: status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500,
	}
	if h != nil {
		e.RetryAfter = translate.RetryAfter(h)
	}
	if (status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity) &&
		isContextWindow(code, msg) {
		e.Status, e.Type, e.Code, e.ContextWindow = http.StatusBadRequest, openai.TypeInvalidRequest, "context_length_exceeded", true
	}
	return e
}

// transportError classifies a failure to reach the upstream or to read its answer: a
// timeout is a 408, anything else (refused, reset, cut) a 502. A call the caller cancelled
// returns the context's error, not a *provider.Error.
func (c *Client) transportError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		if errors.Is(cause, errTimeout) || errors.Is(cause, context.DeadlineExceeded) {
			return c.timeoutError()
		}
		return fmt.Errorf("%s: %w", c.name, cause)
	}
	if e, ok := provider.TooLargeError(c.name, err); ok {
		return e
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error's text carries the URL, which may hold secrets
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return c.timeoutError()
	}
	return &provider.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Provider: c.name,
		Message: "upstream request failed: " + err.Error(), Retryable: true}
}

func (c *Client) timeoutError() *provider.Error {
	return &provider.Error{Status: http.StatusRequestTimeout, Type: openai.TypeTimeout, Provider: c.name,
		Message: "upstream timed out", Retryable: true}
}

// typeFor is the OpenAI error type the client sees for an upstream status.
func typeFor(status int) string {
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return openai.TypeAuth
	case status == http.StatusRequestTimeout:
		return openai.TypeTimeout
	case status == http.StatusTooManyRequests:
		return openai.TypeRateLimit
	case status == http.StatusServiceUnavailable:
		return openai.TypeUnavailable
	case status >= 500:
		return openai.TypeServer
	}
	return openai.TypeInvalidRequest
}

func isContextWindow(code, msg string) bool {
	if code == "context_length_exceeded" {
		return true
	}
	m := strings.ToLower(msg)
	for _, p := range contextWindowPhrases {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// text is a message field as text: a string as is, anything else (Mistral's validation
// details, for one) as its JSON.
func text(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.Str
	case gjson.Null:
		return ""
	}
	return r.Raw
}

// codeOf reads error.code, a string ("context_length_exceeded") or a number (429).
func codeOf(r gjson.Result) (string, int) {
	switch r.Type {
	case gjson.String:
		return r.Str, 0
	case gjson.Number:
		return "", int(r.Int())
	}
	return "", 0
}
