package faulttest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// chunkedReader hides a body's length, so the request is sent without Content-Length.
type chunkedReader struct{ io.Reader }

// TestBadInput_ClearErrorNothingServed sends malformed, hostile and absurd requests to the
// handlers internal/app builds, in this process. Each must get a 4xx with an OpenAI-format
// error of the expected type, reach no upstream, and charge nothing; none may crash the
// handler.
func TestBadInput_ClearErrorNothingServed(t *testing.T) {
	up := fakeopenai.Start(fakeopenai.Options{})
	defer up.Close()
	g := startGateway(t, "", configYAML([]deployment{{"chat", "chat-1", up.BaseURL}},
		"llmgate_settings:\n  max_request_body_bytes: 65536\n"))
	budgetKey, token := g.generateKey(t, `{"max_budget": 1}`)
	h := g.app.Handler()

	msg := func(extra string) string {
		return `{"model":"chat","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	cases := []struct {
		name       string
		key        string // default: the master key
		path       string // default: /v1/chat/completions
		body       string
		chunked    bool
		wantStatus int
		wantType   string
	}{
		{name: "body over the size limit", body: msg(`,"pad":"` + strings.Repeat("x", 70000) + `"`), wantStatus: 413, wantType: "invalid_request_error"},
		{name: "body over the size limit without Content-Length", body: msg(`,"pad":"` + strings.Repeat("x", 70000) + `"`), chunked: true, wantStatus: 413, wantType: "invalid_request_error"},
		{name: "empty body", body: "", wantStatus: 400, wantType: "invalid_request_error"},
		{name: "not JSON", body: "model=chat", wantStatus: 400, wantType: "invalid_request_error"},
		{name: "JSON array", body: `[{"model":"chat"}]`, wantStatus: 400, wantType: "invalid_request_error"},
		{name: "deeply nested JSON", body: msg(`,"x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000)), wantStatus: 400, wantType: "invalid_request_error"},
		{name: "invalid UTF-8 in a message", body: "{\"model\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\xfd\"}]}", wantStatus: 400, wantType: "invalid_request_error"},
		{name: "invalid UTF-8 in the model name", body: "{\"model\":\"ch\xffat\",\"messages\":[]}", wantStatus: 400, wantType: "invalid_request_error"},
		{name: "model is a number", body: `{"model":5,"messages":[]}`, wantStatus: 400, wantType: "invalid_request_error"},
		{name: "model missing", body: `{"messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error"},
		{name: "unknown model", body: `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error"},
		{name: "CRLF in the model name", body: `{"model":"chat\r\nX-Injected: yes","messages":[{"role":"user","content":"hi"}]}`, wantStatus: 400, wantType: "invalid_request_error"},
		{name: "max_tokens beyond int64", body: msg(`,"max_tokens":99999999999999999999999`), wantStatus: 400, wantType: "invalid_request_error"},
		{name: "max_tokens not an integer", body: msg(`,"max_tokens":1e300`), wantStatus: 400, wantType: "invalid_request_error"},
		{name: "negative max_tokens", body: msg(`,"max_tokens":-1`), wantStatus: 400, wantType: "invalid_request_error"},
		{name: "negative max_completion_tokens", body: msg(`,"max_completion_tokens":-5`), wantStatus: 400, wantType: "invalid_request_error"},
		{name: "negative n", body: msg(`,"n":-3`), wantStatus: 400, wantType: "invalid_request_error"},
		{name: "max_tokens above the bound", key: budgetKey, body: msg(`,"max_tokens":1000000000000000`), wantStatus: 400, wantType: "invalid_request_error"},
		{name: "n and max_tokens that would wrap int64", key: budgetKey, body: msg(`,"max_tokens":1099511627776,"n":1099511627776`), wantStatus: 400, wantType: "invalid_request_error"},
		{name: "largest max_tokens and n on a budget", key: budgetKey, body: msg(`,"max_tokens":1000000,"n":128`), wantStatus: 400, wantType: "budget_exceeded"},
		{name: "unknown key with a NUL byte", key: "sk-unknown\x00key", body: msg(""), wantStatus: 401, wantType: "token_not_found_in_db"},
		{name: "unknown route", path: "/v1/no-such-route", body: msg(""), wantStatus: 404, wantType: "not_found_error"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := up.Requests()
			path := tc.path
			if path == "" {
				path = "/v1/chat/completions"
			}
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = chunkedReader{body}
			}
			req := httptest.NewRequest(http.MethodPost, path, body)
			if tc.chunked {
				req.ContentLength = -1
			}
			key := tc.key
			if key == "" {
				key = masterKey
			}
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			e := decodeError(t, rec.Body.Bytes())
			if rec.Code != tc.wantStatus || e.Error.Type != tc.wantType {
				t.Errorf("got %d %s (%q); want %d %s", rec.Code, e.Error.Type, e.Error.Message, tc.wantStatus, tc.wantType)
			}
			for name, vs := range rec.Header() {
				for _, v := range vs {
					if strings.ContainsAny(v, "\r\n") {
						t.Errorf("response header %s carries a line break from the request: %q", name, v)
					}
				}
			}
			if n := up.Requests() - before; n != 0 {
				t.Errorf("%d requests reached the upstream; want none", n)
			}
		})
	}
	if l := g.ledger(t, token); l.spend != 0 {
		t.Errorf("the budgeted key spent %g on refused calls; want 0", l.spend)
	}
}
