package lambdahttp

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/llmgate/llmgate/internal/openai"
)

// Buffered adapts h to a classic (buffered) REST proxy integration: the whole response is
// collected and returned at once, base64-encoded when it is not valid UTF-8. Flush is
// accepted and does nothing, so streaming handlers work but deliver everything at the end.
// Panics are logged and answered with an OpenAI-format 500.
func Buffered(h http.Handler, log *slog.Logger) func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r, handler := request(ctx, ev, h)
		w := &bufferWriter{header: http.Header{}}
		serve(handler, w, r, log)
		if w.status == 0 {
			w.status = http.StatusOK
		}
		single, multi := splitHeaders(w.header)
		resp := events.APIGatewayProxyResponse{StatusCode: w.status, Headers: single, MultiValueHeaders: multi}
		if b := w.body.Bytes(); utf8.Valid(b) {
			resp.Body = string(b)
		} else {
			resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(b), true
		}
		return resp, nil
	}
}

// bufferWriter collects a response in memory.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.header }

func (w *bufferWriter) WriteHeader(status int) {
	if w.status == 0 && status >= http.StatusOK {
		w.status = status
	}
}

func (w *bufferWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush does nothing: the response goes out when the handler returns.
func (w *bufferWriter) Flush() {}

// fail replaces whatever the handler produced: nothing has left the function yet.
func (w *bufferWriter) fail() {
	clear(w.header)
	w.status = 0
	w.body.Reset()
	openai.WriteError(w, internalError())
}
