package admin_test

import (
	"strings"
	"testing"
)

// Paths and methods no admin route serves get OpenAI-format 404s, as on the gateway.
func TestUnknownRoutes_OpenAIFormat404(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/key/nope"},
		{"GET", "/healthz"},
		{"POST", "/team/nope"},
		{"GET", "/key/generate"},       // POST-only route
		{"DELETE", "/health/liveness"}, // GET-only route
	} {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := newRecorder()
			e.h.ServeHTTP(rec, newRequest(tt.method, tt.path))
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q, want JSON", ct)
			}
			wantError(t, rec.Code, decodeBody(t, rec.Body.Bytes()), 404, "not_found_error",
				"Invalid URL ("+tt.method+" "+tt.path+")")
		})
	}
	// Routes still answer.
	if code, _ := e.raw("GET", "/health/liveliness", "", nil); code != 200 {
		t.Errorf("/health/liveliness = %d", code)
	}
	code, body := e.call("GET", "/key/info", "", nil)
	wantError(t, code, body, 401, "auth_error", "")
}
