package console

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHandler_ServesEmbeddedFilesWithAStrictPolicy(t *testing.T) {
	for _, tc := range []struct {
		path, typ, has string
	}{
		{"/ui/", "text/html; charset=utf-8", `<script src="app.js"`},
		{"/ui/index.html", "text/html; charset=utf-8", "Sign in"},
		{"/ui/app.js", "text/javascript; charset=utf-8", "sessionStorage"},
		{"/ui/app.css", "text/css; charset=utf-8", ":root"},
	} {
		res, body := get(t, tc.path)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != tc.typ || !strings.Contains(body, tc.has) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, res.StatusCode, res.Header.Get("Content-Type"), tc.has, strings.Contains(body, tc.has))
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("GET %s: CSP %q", tc.path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", tc.path, res.Header)
		}
	}
}

func TestHandler_RedirectsRelativelySoABasePathIsKept(t *testing.T) {
	res, _ := get(t, "/ui")
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "ui/" {
		t.Errorf("GET /ui: %d Location %q, want 302 ui/", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestHandler_UnknownFileIsAnOpenAIError(t *testing.T) {
	for _, p := range []string{"/ui/nope.js", "/ui/../console.go", "/ui/static/app.js"} {
		res, body := get(t, p)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s: %d %s", p, res.StatusCode, body)
		}
	}
}

// The policy forbids inline code, so the files must not need it; and untrusted text must
// never reach innerHTML. Nothing may load from another origin.
func TestAssets_NoInlineCodeNoHTMLInjectionNoRemoteLoads(t *testing.T) {
	_, html := get(t, "/ui/")
	_, js := get(t, "/ui/app.js")
	_, css := get(t, "/ui/app.css")
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle=`),
		regexp.MustCompile(`\son[a-z]+=`),
		regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	} {
		if bad.MatchString(html) {
			t.Errorf("index.html matches %s", bad)
		}
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "localStorage", "http://", "https://"} {
		if strings.Contains(strings.ReplaceAll(js, "http://www.w3.org/2000/svg", ""), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	if strings.Contains(css, "url(") || strings.Contains(css, "@import") {
		t.Error("app.css loads something")
	}
}
