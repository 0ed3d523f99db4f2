// Package gateway is the http.Handler for the OpenAI-compatible LLM routes.
package gateway

import (
	"log/slog"
	"net/http"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
)

// Options are the gateway's dependencies.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
}

// New returns the gateway handler.
func New(o Options) http.Handler {
	mux := http.NewServeMux()
	for _, route := range []string{
		"POST /v1/chat/completions", "POST /chat/completions",
		"POST /v1/completions", "POST /completions",
		"POST /v1/embeddings", "POST /embeddings",
		"GET /v1/models", "GET /models", "GET /model/info", "GET /v1/model/info",
	} {
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			openai.WriteError(w, openai.NotImplemented(r.URL.Path))
		})
	}
	return mux
}
