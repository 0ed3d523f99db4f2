package lambdahttp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/aws/aws-lambda-go/events"

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
func Streaming(h http.Handler, log *slog.Logger) func(context.Context, events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (*events.APIGatewayProxyStreamingResponse, error) {
		reqCtx, cancel := context.WithCancel(ctx)
		r, handler := request(reqCtx, ev, h)
		pr, pw := io.Pipe()
		w := &streamWriter{header: http.Header{}, body: pw, ready: make(chan head, 1)}
		go func() {
			defer cancel()
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
	sent   bool // headers committed; only the handler goroutine touches it
	ready  chan head
}

func (w *streamWriter) Header() http.Header { return w.header }

// WriteHeader commits the status and a copy of the headers; later calls are ignored, as are
// informational (1xx) statuses, which API Gateway cannot relay.
func (w *streamWriter) WriteHeader(status int) {
	if status < http.StatusOK {
		return
	}
	w.once.Do(func() {
		w.sent = true
		w.ready <- head{status: status, header: w.header.Clone()}
	})
}

// Write sends p to the runtime; it returns once the runtime has taken all of it.
func (w *streamWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush commits the headers. Written bytes need no flushing: Write hands them to the runtime,
// which sends each read as one chunk.
func (w *streamWriter) Flush() { w.WriteHeader(http.StatusOK) }

func (w *streamWriter) fail() {
	if w.sent {
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
