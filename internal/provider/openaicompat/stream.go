package openaicompat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/sse"
)

// Draining after [DONE] lets the transport reuse the connection; it is bounded so an
// upstream that keeps the connection open after [DONE] cannot hold Close.
const (
	drainTimeout = 100 * time.Millisecond
	maxDrain     = 4 << 10
)

// errClosed is the cancellation cause once the stream is closed.
var errClosed = errors.New("stream closed")

// stream is a provider.Stream over an OpenAI-format SSE answer. Next and Close may be
// called from different goroutines: Close aborts a Next that waits for the upstream.
type stream struct {
	c           *Client
	ep          Endpoint
	ctx         context.Context
	cancel      context.CancelCauseFunc
	timer       *time.Timer // nil without Call.Timeout
	timeout     time.Duration
	body        io.ReadCloser
	events      *sse.Reader
	clientUsage bool // the client asked for the usage chunk
	// responses is true for a Responses API stream: named events, no [DONE]; it ends after
	// response.completed (or .incomplete, .failed), which carries the usage.
	responses bool
	finished  bool // a Responses stream sent its final event

	usage  openai.Usage
	err    error // sticky: once Next fails it keeps failing the same way
	done   atomic.Bool
	closed atomic.Bool
}

// Next returns the next chunk's JSON, or io.EOF after [DONE]. Any other end of the stream
// is an error that wraps io.ErrUnexpectedEOF (so the gateway charges for what was served)
// and also a *provider.Error (an error event, a timeout, a cut or reset connection) or the
// context's error (the caller cancelled).
func (s *stream) Next() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	for {
		ev, err := s.events.Next()
		if err != nil {
			if s.finished && errors.Is(err, io.EOF) {
				s.done.Store(true)
				s.err = io.EOF
				return nil, io.EOF
			}
			s.err = s.readError(err)
			return nil, s.err
		}
		if s.timer != nil {
			s.timer.Reset(s.timeout)
		}
		data := ev.Data
		if s.responses {
			return s.responsesEvent(data)
		}
		if string(data) == "[DONE]" {
			s.done.Store(true)
			s.err = io.EOF
			return nil, io.EOF
		}
		if ev.Name == "error" || (hasObjectMember(data, `"error":`) && isErrorChunk(data)) {
			s.err = fmt.Errorf("%w: %w", s.c.errorFromBody(0, nil, data, s.ep.Secret), io.ErrUnexpectedEOF)
			return nil, s.err
		}
		if hasObjectMember(data, `"usage":`) { // OpenAI sends "usage":null on every chunk
			if u := gjson.GetBytes(data, "usage"); u.IsObject() {
				s.usage = parseUsage(u, gjson.GetBytes(data, "service_tier"))
				if !s.clientUsage && gjson.GetBytes(data, "choices.#").Int() == 0 {
					continue // the usage chunk only the gateway asked for
				}
			} else if u := gjson.GetBytes(data, "x_groq.usage"); u.IsObject() {
				s.usage = parseUsage(u, gjson.GetBytes(data, "service_tier")) // Groq's own place for it
			}
		}
		return data, nil
	}
}

// responsesEvent reads a Responses event's usage, or its error.
func (s *stream) responsesEvent(data []byte) ([]byte, error) {
	switch typ := gjson.GetBytes(data, "type").Str; typ {
	case "response.completed", "response.incomplete", "response.failed":
		s.finished = true
		if u := gjson.GetBytes(data, "response.usage"); u.IsObject() {
			s.usage = parseUsage(u, gjson.GetBytes(data, "response.service_tier"))
		}
	case "error":
		s.err = fmt.Errorf("%w: %w", s.c.errorFromBody(0, nil, []byte(`{"error":`+string(data)+`}`), s.ep.Secret), io.ErrUnexpectedEOF)
		return nil, s.err
	}
	return data, nil
}

// Buffered reports whether the next event has already been read from the upstream.
func (s *stream) Buffered() bool { return s.err == nil && s.events.Buffered() }

// hasObjectMember is a quick filter before parsing: it reports whether data has the key
// (quoted, with its colon) followed by an object. Outside strings only a key can be
// followed by a colon, and inside strings quotes are escaped, so it finds keys only,
// though possibly nested ones.
func hasObjectMember(data []byte, key string) bool {
	for {
		i := bytes.Index(data, []byte(key))
		if i < 0 {
			return false
		}
		data = bytes.TrimLeft(data[i+len(key):], " \t\r\n")
		if len(data) > 0 && data[0] == '{' {
			return true
		}
	}
}

// isErrorChunk reports whether a chunk is an error object rather than a completion chunk.
func isErrorChunk(data []byte) bool {
	e := gjson.GetBytes(data, "error")
	return e.Exists() && e.Type != gjson.Null
}

// readError turns a read failure into the error Next returns.
func (s *stream) readError(err error) error {
	switch cause := context.Cause(s.ctx); {
	case errors.Is(cause, errClosed):
		return fmt.Errorf("%s: %w", s.c.name, errClosed)
	case cause == nil && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		err = &provider.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Provider: s.c.name,
			Message: "upstream stream ended before [DONE]", Retryable: true}
	default: // timeout, caller's cancellation, connection reset, oversized event
		err = s.c.transportError(s.ctx, err)
	}
	return fmt.Errorf("%w: %w", err, io.ErrUnexpectedEOF)
}

// Usage returns the usage reported so far; it is complete after Next returned io.EOF.
func (s *stream) Usage() openai.Usage { return s.usage }

// Close releases the upstream connection. After [DONE] it first reads the little that is
// left, so the connection can be reused. It is safe to call more than once.
func (s *stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.done.Load() {
		t := time.AfterFunc(drainTimeout, func() { s.cancel(errClosed) })
		_, _ = io.CopyN(io.Discard, s.body, maxDrain)
		t.Stop()
	}
	s.stop()
	return s.body.Close()
}

// stop ends the timer and the request context.
func (s *stream) stop() {
	if s.timer != nil {
		s.timer.Stop()
	}
	s.cancel(errClosed)
}
