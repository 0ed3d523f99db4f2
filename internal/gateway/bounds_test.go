package gateway

import (
	"fmt"
	"strings"
	"testing"
)

// Every size a request can set is bounded and refused with a 400 naming the field; the old
// code passed them to the mock, which ran out of memory (n, dimensions) or panicked
// (dimensions 2^62), or to the worst-case cost as they were.
func TestBounds_RequestSizesAreRefusedNamingTheField(t *testing.T) {
	cfg := testConfig()
	cfg.Settings.MaxRequestBodyBytes = 2 * MaxInputBytes
	h := newHarness(t, cfg, nil, nil)
	tests := []struct {
		path, body, wantParam string
	}{
		{"/v1/chat/completions", `{"model":"demo","n":5000000,"messages":[]}`, "n"},
		{"/v1/chat/completions", `{"model":"demo","n":0,"messages":[]}`, "n"},
		{"/v1/chat/completions", `{"model":"demo","max_tokens":4611686018427387904,"messages":[]}`, "max_tokens"},
		{"/v1/chat/completions", `{"model":"demo","max_completion_tokens":1000001,"messages":[]}`, "max_completion_tokens"},
		{"/v1/completions", `{"model":"demo","best_of":21,"prompt":"x"}`, "best_of"},
		{"/v1/embeddings", `{"model":"embed","input":"x","dimensions":300000000}`, "dimensions"},
		{"/v1/embeddings", `{"model":"embed","input":"x","dimensions":4611686018427387904}`, "dimensions"},
		{"/v1/embeddings", `{"model":"embed","input":"x","dimensions":0}`, "dimensions"},
		{"/v1/embeddings", `{"model":"embed","input":[` + strings.Repeat(`"x",`, MaxInputItems) + `"x"]}`, "input"},
		{"/v1/embeddings", `{"model":"embed","input":[` + strings.Repeat(`[1,2,3],`, MaxInputItems) + `[1]]}`, "input"},
		{"/v1/embeddings", `{"model":"embed","input":["` + strings.Repeat("x", MaxInputBytes) + `"]}`, "input"},
		{"/v1/chat/completions", fmt.Sprintf(`{"model":"demo","mock_response":%q,"messages":[]}`, strings.Repeat("w ", MaxMockResponseBytes/2+1)), "mock_response"},
		{"/v1/chat/completions", fmt.Sprintf(`{"model":"openai/%s","messages":[]}`, strings.Repeat("m", MaxModelNameBytes)), "model"},
		{"/v1/responses", `{"model":"demo","input":"x","max_output_tokens":1000001}`, "max_output_tokens"},
		{"/v1/messages", `{"model":"demo","max_tokens":1000001,"messages":[{"role":"user","content":"x"}]}`, "max_tokens"},
	}
	for _, tt := range tests {
		name := tt.body
		if len(name) > 80 {
			name = name[:80]
		}
		t.Run(name, func(t *testing.T) {
			resp := h.post(t, tt.path, tt.body)
			if resp.StatusCode != 400 {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			// Anthropic's error format has no param: its message names the field.
			e := readError(t, resp)
			named := e.Param != nil && *e.Param == tt.wantParam || e.Param == nil && strings.Contains(e.Message, "'"+tt.wantParam+"'")
			if !named {
				t.Errorf("error %+v, want param %s", e, tt.wantParam)
			}
		})
	}
}

// A body nested millions of levels deep is a 400 like any invalid body. The old strict parse
// spelled out every level's path, quadratic in the depth: 10 MB of "[" was killed out of memory.
func TestBounds_DeeplyNestedBodyIsA400(t *testing.T) {
	cfg := testConfig()
	cfg.Settings.MaxRequestBodyBytes = 10 << 20
	h := newHarness(t, cfg, nil, nil)
	depth := 4 << 20
	body := `{"model":"demo","messages":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}"
	resp := h.post(t, "/v1/chat/completions", body)
	if resp.StatusCode != 400 {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if e := readError(t, resp); !strings.Contains(e.Message, "nests deeper") && !strings.Contains(e.Message, "depth") {
		t.Errorf("error %+v, want one about the nesting", e)
	}
}
