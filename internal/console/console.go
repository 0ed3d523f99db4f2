// Package console serves llmgate's admin console: a browser app at /ui that calls the
// management API with the signed-in key, so the API's permission model decides what a
// person sees and may do. Every asset is embedded; nothing is loaded from the network.
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/llmgate/llmgate/internal/openai"
)

//go:embed static
var static embed.FS

// csp allows only the console's own script, style and API calls: no inline code, no other
// origin, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves GET /ui (a redirect to /ui/) and the console's files under /ui/. Links
// and API calls in the console are relative, so it works under an API Gateway stage path
// or any base path in front of it.
func Handler() http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.URL.Path == "/ui" {
			// Relative, so a stage or base path in front is kept.
			h.Set("Location", "ui/")
			w.WriteHeader(http.StatusFound)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, "/ui/")
		if name == "" {
			name = "index.html"
		}
		b, err := fs.ReadFile(files, path.Clean(name))
		if err != nil || strings.Contains(name, "..") {
			openai.InvalidURL(w, r)
			return
		}
		switch path.Ext(name) {
		case ".html":
			h.Set("Content-Type", "text/html; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
		case ".js":
			h.Set("Content-Type", "text/javascript; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
		case ".css":
			h.Set("Content-Type", "text/css; charset=utf-8")
			h.Set("Cache-Control", "no-cache")
		case ".svg":
			h.Set("Content-Type", "image/svg+xml")
		}
		_, _ = w.Write(b)
	})
}
