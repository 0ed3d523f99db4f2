package gateway

import (
	"net/http"
	"strings"
	"testing"
)

func TestOverrides_RefusesBadRoutingParameters(t *testing.T) {
	h := newHarness(t, testConfig(), fakeAuth{allowed: []string{"demo"}}, nil)
	tests := []struct {
		name, body, header string
		wantStatus         int
		wantParam          string
	}{
		{"negative num_retries", `{"model":"demo","messages":[],"num_retries":-1}`, "", 400, "num_retries"},
		{"zero timeout", `{"model":"demo","messages":[],"timeout":0}`, "", 400, "timeout"},
		{"timeout not a number", `{"model":"demo","messages":[],"timeout":"soon"}`, "", 400, "timeout"},
		{"bad x-litellm-timeout", `{"model":"demo","messages":[]}`, "NaN", 400, "x-litellm-timeout"},
		{"fallbacks not a list", `{"model":"demo","messages":[],"fallbacks":"embed"}`, "", 400, "fallbacks"},
		{"fallback object without model", `{"model":"demo","messages":[],"fallbacks":[{"messages":[]}]}`, "", 400, "fallbacks"},
		{"fallback the key may not use", `{"model":"demo","messages":[],"fallbacks":["gpt"]}`, "", 401, ""},
		{"numeric string timeout", `{"model":"demo","messages":[],"timeout":"2.5"}`, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := postWithHeader(t, h, tt.body, tt.header)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantParam != "" {
				if e := readError(t, resp); e.Param == nil || *e.Param != tt.wantParam {
					t.Errorf("param %v, want %q", e.Param, tt.wantParam)
				}
			}
		})
	}
}

// postWithHeader posts a chat body as a valid key, with x-litellm-timeout when timeout is set.
func postWithHeader(t *testing.T, h *harness, body, timeout string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", h.srv.URL+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sk-good")
	if timeout != "" {
		req.Header.Set(HeaderTimeout, timeout)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
