package lambdahttp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCORS(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	tests := []struct {
		origins, origin, want string
	}{
		{"", "https://a.example", ""},
		{"https://a.example,https://b.example", "https://b.example", "https://b.example"},
		{"https://a.example", "https://evil.example", ""},
		{"*", "https://any.example", "*"},
		{"*", "", ""},
	}
	for _, tt := range tests {
		t.Setenv(EnvCORSOrigins, tt.origins)
		r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		w := httptest.NewRecorder()
		CORS(ok).ServeHTTP(w, r)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.want {
			t.Errorf("origins %q, Origin %q: Access-Control-Allow-Origin %q, want %q", tt.origins, tt.origin, got, tt.want)
		}
	}
}
