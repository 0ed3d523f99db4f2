// Package admin is the http.Handler for llmgate's management API, compatible with LiteLLM
// Proxy's: keys, users, teams, spend, and the health routes.
package admin

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
)

// Pinger reports whether the state table is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Options are the admin handler's dependencies.
type Options struct {
	Config *config.Config
	Store  Pinger
	Logger *slog.Logger
}

// New returns the admin handler.
func New(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/liveliness", liveliness)
	mux.HandleFunc("GET /health/liveness", liveliness)
	mux.HandleFunc("GET /health/readiness", readiness(o.Store, o.Logger))
	for _, route := range []string{
		"POST /key/generate", "GET /key/info", "POST /key/update", "POST /key/delete",
		"POST /key/block", "POST /key/unblock", "POST /key/regenerate", "POST /key/{key}/regenerate",
		"GET /key/list", "POST /key/{key}/reset_spend",
		"POST /user/new", "GET /user/info", "POST /user/update", "POST /user/delete", "GET /user/list",
		"POST /team/new", "GET /team/info", "POST /team/update", "POST /team/delete",
		"POST /team/member_add", "POST /team/member_delete", "POST /team/block", "POST /team/unblock",
		"GET /team/list", "GET /spend/logs",
	} {
		mux.Handle(route, notImplemented())
	}
	return mux
}

func notImplemented() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		openai.WriteError(w, openai.NotImplemented(r.URL.Path))
	})
}

func liveliness(w http.ResponseWriter, _ *http.Request) {
	openai.WriteJSON(w, http.StatusOK, "I'm alive!")
}

func readiness(s Pinger, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ping(r.Context()); err != nil {
			log.WarnContext(r.Context(), "readiness: table unreachable", "error", err)
			openai.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unhealthy", "db": "Not connected"})
			return
		}
		openai.WriteJSON(w, http.StatusOK, map[string]string{"status": "healthy", "db": "connected"})
	}
}
