package lambdahttp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/openai"
)

// errHandlerPanicked breaks a stream whose handler panicked after sending its headers; the
// Lambda runtime reports it to API Gateway, which cuts the client's connection.
var errHandlerPanicked = errors.New("lambdahttp: handler panicked after the response started")

// Streaming adapts h to a streaming REST proxy integration. h runs in its own goroutine and
// writes into a pipe that the Lambda runtime reads as the response body. The function returns
// (so API Gateway gets status and headers) as soon as h calls WriteHeader, Write or Flush; every
// Write reaches the runtime before it returns, so Flush only commits the headers.
// The request context is cancelled when h returns or when the invocation ends (the runtime
// closes the body), whichever comes first; writes after that fail. Panics are logged and
// answered with an OpenAI-format 500, or break the stream if headers were already sent.
//
// A JSON answer (a POST to an LLM route without "stream": true) that is not ready within
// KeepAliveAfter is kept alive: API Gateway cuts a streamed response that sends nothing for
// its idle timeout (5 minutes on Regional endpoints), so the status (200) and
// Content-Type: application/json are sent then, and a newline every KeepAliveEvery until the
// answer follows. Whitespace before a JSON value is valid JSON. The handler's own status and
// headers are lost from then on: an error after that point arrives as an OpenAI error body
// with status 200.
func Streaming(h http.Handler, log *slog.Logger) func(context.Context, events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
	return streaming(h, log, KeepAliveAfter, KeepAliveEvery)
}

// KeepAliveAfter and KeepAliveEvery time the keep-alive of slow JSON answers: well inside
// API Gateway's 5-minute idle timeout, late enough that nearly every call keeps its own
// status.
const (
	KeepAliveAfter = 4 * time.Minute
	KeepAliveEvery = time.Minute
)

// keepAlivePaths are the routes whose non-streamed answers are JSON.
var keepAlivePaths = []string{"/chat/completions", "/completions", "/embeddings", "/responses", "/messages"}

// answersJSON reports whether ev asks for a JSON answer that may take long: a POST to an
// LLM route whose body does not ask for a stream.
func answersJSON(ev events.APIGatewayProxyRequest, r *http.Request) bool {
	if r.Method != http.MethodPost || !slices.ContainsFunc(keepAlivePaths, func(p string) bool { return strings.HasSuffix(r.URL.Path, p) }) {
		return false
	}
	body := ev.Body
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return false
		}
		body = string(b)
	}
	return gjson.Valid(body) && gjson.Get(body, "@this").IsObject() && !gjson.Get(body, "stream").Bool()
}

func streaming(h http.Handler, log *slog.Logger, keepAfter, keepEvery time.Duration) func(context.Context, events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
		reqCtx, cancel := context.WithCancel(ctx)
		r, handler := request(reqCtx, ev, h)
		pr, pw := io.Pipe()
		w := &streamWriter{header: http.Header{}, body: pw, ready: make(chan head, 1)}
		stopKeepAlive := func() {}
		if answersJSON(ev, r) {
			stopKeepAlive = w.keepAlive(keepAfter, keepEvery)
		}
		go func() {
			defer cancel()
			defer stopKeepAlive()
			serve(handler, w, r, log)
			if ctx.Err() == nil { // a handler that wrote nothing still answers, unless the invocation is over
				w.WriteHeader(http.StatusOK)
			}
			_ = pw.Close()
		}()
		respond := func(hd head) *events.APIGatewayProxyStreamingResponse {
			single, multi := splitHeaders(hd.header)
			return &events.APIGatewayProxyStreamingResponse{
				StatusCode:        hd.status,
				Headers:           single,
				MultiValueHeaders: multi,
				Body:              &streamBody{PipeReader: pr, cancel: cancel},
			}
		}
		select {
		case hd := <-w.ready:
			return respond(hd), nil
		case <-ctx.Done():
			select {
			case hd := <-w.ready:
				return respond(hd), nil
			default:
			}
			cancel()
			_ = pr.CloseWithError(ctx.Err())
			return nil, fmt.Errorf("lambdahttp: invocation ended before the handler sent headers: %w", ctx.Err())
		}
	}
}

// request converts ev for h; an event that cannot be converted is answered with a 400 instead.
func request(ctx context.Context, ev events.APIGatewayProxyRequest, h http.Handler) (*http.Request, http.Handler) {
	r, err := NewRequest(ctx, ev)
	if err == nil {
		return r, h
	}
	r, _ = http.NewRequestWithContext(ctx, http.MethodGet, "/", http.NoBody)
	return r, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		openai.WriteError(w, openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, err.Error()))
	})
}

// head is the status and headers a streaming response starts with.
type head struct {
	status int
	header http.Header
}

// streamWriter is the http.ResponseWriter of a streaming invocation.
type streamWriter struct {
	header http.Header
	body   *io.PipeWriter
	once   sync.Once
	ready  chan head
	// mu orders the handler's output after the keep-alive's; sent says the headers are
	// committed, answering that the handler has written (or flushed) something.
	mu       sync.Mutex
	sent     bool
	answered bool
}

func (w *streamWriter) Header() http.Header { return w.header }

// WriteHeader commits the status and a copy of the headers; later calls are ignored, as are
// informational (1xx) statuses, which API Gateway cannot relay.
func (w *streamWriter) WriteHeader(status int) {
	if status < http.StatusOK {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answered = true
	w.commit(status, w.header.Clone())
}

// commit sends the response head once; w.mu is held.
func (w *streamWriter) commit(status int, h http.Header) {
	w.once.Do(func() {
		w.sent = true
		w.ready <- head{status: status, header: h}
	})
}

// Write sends p to the runtime; it returns once the runtime has taken all of it.
func (w *streamWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// keepAlive commits a 200 JSON head if the handler has not answered after `after`, then
// writes a newline every `every` until it does. The returned func stops it.
func (w *streamWriter) keepAlive(after, every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTimer(after)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			w.mu.Lock()
			if w.answered {
				w.mu.Unlock()
				return
			}
			w.commit(http.StatusOK, http.Header{"Content-Type": {"application/json"}})
			_, err := w.body.Write([]byte("\n"))
			w.mu.Unlock()
			if err != nil {
				return
			}
			t.Reset(every)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// Flush commits the headers. Written bytes need no flushing: Write hands them to the runtime,
// which sends each read as one chunk.
func (w *streamWriter) Flush() { w.WriteHeader(http.StatusOK) }

func (w *streamWriter) fail() {
	w.mu.Lock()
	sent := w.sent
	w.mu.Unlock()
	if sent {
		_ = w.body.CloseWithError(errHandlerPanicked)
		return
	}
	clear(w.header)
	openai.WriteError(w, internalError())
}

// streamBody is the response body the runtime reads; closing it (the runtime does when the
// invocation ends) cancels the request context and fails the handler's further writes.
type streamBody struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (b *streamBody) Close() error {
	b.cancel()
	return b.PipeReader.Close()
}
