package translate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// StatusOverloaded is Anthropic's "overloaded" status; clients see 503 instead.
const StatusOverloaded = 529

// maxErrorBody bounds how much of an upstream error answer is read.
const maxErrorBody = 64 << 10

// HTTPError classifies an upstream's error answer by its status: 408, 429, 529 and 5xx are
// retryable; 529 is answered as 503. msg must already be free of secrets (see Redact).
func HTTPError(name string, status int, h http.Header, msg string) *provider.Error {
	e := &provider.Error{Status: status, Message: msg, Provider: name, RetryAfter: RetryAfter(h)}
	switch {
	case status == http.StatusTooManyRequests:
		e.Type, e.Retryable = openai.TypeRateLimit, true
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		e.Type, e.Retryable = openai.TypeTimeout, true
	case status == http.StatusServiceUnavailable || status == StatusOverloaded:
		e.Status, e.Type, e.Retryable = http.StatusServiceUnavailable, openai.TypeUnavailable, true
	case status >= 500:
		e.Type, e.Retryable = openai.TypeServer, true
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Type = openai.TypeAuth
	case status == http.StatusNotFound:
		e.Type = openai.TypeNotFound
	case status >= 400:
		e.Type = openai.TypeInvalidRequest
	default: // an unexpected non-error status where an answer was expected
		e.Status, e.Type, e.Retryable = http.StatusBadGateway, openai.TypeServer, true
	}
	return e
}

// NoAPIKey is the 401 of a call made without an API key: neither litellm_params.api_key nor
// the environment variable env is set.
func NoAPIKey(name, env string) *provider.Error {
	return &provider.Error{
		Status: http.StatusUnauthorized, Type: openai.TypeAuth, Provider: name,
		Message: name + ": no API key: set litellm_params.api_key or " + env,
	}
}

// ContextWindowError is the error for a prompt that does not fit the model's context window:
// 400 context_length_exceeded, which the router answers with context_window_fallbacks.
func ContextWindowError(name, msg string) *provider.Error {
	return &provider.Error{
		Status:        http.StatusBadRequest,
		Type:          openai.TypeInvalidRequest,
		Code:          "context_length_exceeded",
		Message:       msg,
		Provider:      name,
		ContextWindow: true,
	}
}

// TransportError classifies a failure to reach the upstream or to read its answer. A
// cancelled context is not the upstream's fault: it comes back as ctx's error, wrapped, so
// callers can tell with errors.Is(err, context.Canceled) and do not retry it. Timeouts are a
// retryable 408 and anything else (refused or reset connections, broken streams, answers
// that cannot be decoded) a retryable 502.
func TransportError(name string, err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", name, err)
	}
	if e, ok := provider.TooLargeError(name, err); ok {
		return e
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &provider.Error{
			Status: http.StatusRequestTimeout, Type: openai.TypeTimeout, Provider: name, Retryable: true,
			Message: name + ": upstream timed out",
		}
	}
	return &provider.Error{
		Status: http.StatusBadGateway, Type: openai.TypeServer, Provider: name, Retryable: true,
		Message: name + ": upstream request failed: " + err.Error(),
	}
}

// RetryAfter reads retry-after-ms or retry-after (seconds or an HTTP date); 0 if absent.
func RetryAfter(h http.Header) time.Duration { return retryAfter(h, time.Now()) }

// retryAfter is RetryAfter at the time now.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// ReadErrorBody reads at most 64 KiB of an error answer.
func ReadErrorBody(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, maxErrorBody))
	return b
}

// Patterns Redact removes from upstream text.
var (
	urlPattern = regexp.MustCompile(`(?i)\b(?:https?|wss?)://[^\s"'<>()\[\]{}]+`)
	// keyPattern matches what looks like an API key, whole or masked ("sk-proj-abc...",
	// "sk-****wxyz"), Google's (AIza...) and AWS access key ids.
	keyPattern = regexp.MustCompile(`\b(?:sk|pk|rk)[-_][A-Za-z0-9_\-*.]{2,}|\bAIza[0-9A-Za-z_\-]{8,}|\bA[SK]IA[0-9A-Z]{8,}`)
	// wordPattern matches the runs of key characters that may be a fragment of a secret.
	wordPattern = regexp.MustCompile(`[A-Za-z0-9_\-*.]{4,}`)
)

// minFragment is the shortest prefix or suffix of a secret Redact removes on its own.
const minFragment = 4

// Redact removes secrets from upstream text before it reaches a client or a log: every
// secret, any word that is a prefix or suffix of one (an upstream's "sk-...abcd" echo, or a
// key cut where the message was shortened), anything that looks like an API key, and URLs
// (an upstream's own address, which may carry a key in its query).
func Redact(s string, secrets ...string) string {
	for _, k := range secrets {
		if k != "" {
			s = strings.ReplaceAll(s, k, "[redacted]")
		}
	}
	s = urlPattern.ReplaceAllString(s, "[url]")
	s = keyPattern.ReplaceAllString(s, "[redacted]")
	return wordPattern.ReplaceAllStringFunc(s, func(w string) string {
		core := strings.Trim(w, "*.")
		if len(core) < minFragment {
			return w
		}
		for _, k := range secrets {
			if strings.HasPrefix(k, core) || strings.HasSuffix(k, core) {
				return "[redacted]"
			}
		}
		return w
	})
}
