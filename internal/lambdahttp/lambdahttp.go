// Package lambdahttp serves an http.Handler behind an API Gateway REST API proxy
// integration, either streaming (integration ResponseTransferMode STREAM, the function
// returning events.APIGatewayProxyStreamingResponse) or buffered (the classic proxy response,
// for `sam local start-api`, which cannot stream).
package lambdahttp

import (
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/llmgate/llmgate/internal/openai"
)

// EnvBuffered names the environment variable that switches Start to buffered responses when
// it holds a true value ("1", "true"). The CDK stack sets it when streaming is off.
const EnvBuffered = "LLMGATE_LAMBDA_BUFFERED"

// Start runs h as the function's handler and does not return: streaming, or buffered when
// EnvBuffered is true.
func Start(h http.Handler, log *slog.Logger) {
	if buffered, _ := strconv.ParseBool(os.Getenv(EnvBuffered)); buffered {
		lambda.Start(Buffered(h, log))
		return
	}
	lambda.Start(Streaming(h, log))
}

// EnvCORSOrigins names the variable listing the browser origins allowed to call the API
// (comma-separated; "*" for any). The stack sets it from its corsOrigins context.
const EnvCORSOrigins = "LLMGATE_CORS_ORIGINS"

// CORS lets the browser origins EnvCORSOrigins lists read h's answers: a request from one
// of them gets Access-Control-Allow-Origin. API Gateway answers the preflight requests; a
// proxy integration must add the header to the answers itself.
func CORS(h http.Handler) http.Handler {
	var origins []string
	for o := range strings.SplitSeq(os.Getenv(EnvCORSOrigins), ",") {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	if len(origins) == 0 {
		return h
	}
	anyOrigin := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" {
			switch {
			case anyOrigin:
				w.Header().Set("Access-Control-Allow-Origin", "*")
			case slices.Contains(origins, o):
				w.Header().Set("Access-Control-Allow-Origin", o)
				w.Header().Add("Vary", "Origin")
			}
		}
		h.ServeHTTP(w, r)
	})
}

// failer is a response writer that can answer for a handler that panicked.
type failer interface {
	http.ResponseWriter
	// fail ends the response after a panic: an OpenAI-format 500 when nothing was sent yet,
	// otherwise a broken stream.
	fail()
}

// serve runs h and recovers a panic into w.fail, logging it with its stack.
// http.ErrAbortHandler aborts the response without a log line, as net/http does.
func serve(h http.Handler, w failer, r *http.Request, log *slog.Logger) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v != http.ErrAbortHandler {
			log.ErrorContext(r.Context(), "handler panicked", "method", r.Method, "path", r.URL.Path,
				"panic", v, "stack", string(debug.Stack()))
		}
		w.fail()
	}()
	h.ServeHTTP(w, r)
}

// internalError is the answer to a request whose handler panicked before responding.
func internalError() *openai.Error {
	return openai.Errorf(http.StatusInternalServerError, openai.TypeServer, "internal server error")
}

// splitHeaders turns h into API Gateway's two header maps: single values in one, keys with
// several values (Set-Cookie, for instance) in the other.
func splitHeaders(h http.Header) (single map[string]string, multi map[string][]string) {
	for k, vs := range h {
		switch len(vs) {
		case 0:
		case 1:
			if single == nil {
				single = map[string]string{}
			}
			single[k] = vs[0]
		default:
			if multi == nil {
				multi = map[string][]string{}
			}
			multi[k] = append([]string(nil), vs...)
		}
	}
	return single, multi
}
