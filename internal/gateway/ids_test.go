package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/responseid"
)

// Every answer and stream event carries llmgate's id for the call, not the upstream's: the
// upstream's prefix and the call id (x-litellm-call-id), or for the Responses API a sealed id
// that holds the call. That id names the call, so /spend/logs?request_id= finds the log with
// no index of upstream ids; the call settles with it as its spend log's response_id, except
// a sealed id, which is not kept (it would take the log past 1 KB).
func TestResponseIDs_NameTheCall(t *testing.T) {
	ids := responseid.New("") // the harness runs with no master key
	for _, tc := range []struct {
		name, path, body string
		header           map[string][]string
		// idsOf returns the response ids the answer carries (every one a stream event has).
		idsOf func(t *testing.T, body []byte) []string
		// prefix is what the id starts with before the call id; "sealed" for Responses.
		prefix string
	}{
		{"chat", "/v1/chat/completions", `{"model":"gpt-chat","messages":[{"role":"user","content":"hi"}]}`, nil, topID, "chatcmpl-"},
		{"chat stream", "/v1/chat/completions", `{"model":"gpt-chat","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil, dataIDs("id"), "chatcmpl-"},
		{"messages", "/v1/messages", `{"model":"claude","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`, anthropicHeaders, topID, "msg_"},
		{"messages stream", "/v1/messages", `{"model":"claude","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, anthropicHeaders, dataIDs("message.id"), "msg_"},
		{"messages translated to chat", "/v1/messages", `{"model":"gpt-chat","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, anthropicHeaders, dataIDs("message.id"), ""},
		{"responses", "/v1/responses", `{"model":"gpt-resp","input":"hi"}`, nil, topID, "sealed"},
		{"responses stream", "/v1/responses", `{"model":"gpt-resp","input":"hi","stream":true}`, nil, dataIDs("response.id"), "sealed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lim := &fakeLimiter{}
			h := newWireHarness(t, nil, lim)
			resp := h.do(t, "POST", tc.path, tc.header, tc.body)
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			call := resp.Header.Get(HeaderCallID)
			got := tc.idsOf(t, body)
			if len(got) == 0 {
				t.Fatalf("no response id in %s", body)
			}
			for _, id := range got {
				if id != got[0] {
					t.Errorf("ids %v: a stream's events carry different ids", got)
				}
			}
			id := got[0]
			switch {
			case tc.prefix == "sealed":
				if ref, ok := ids.Open(id); !ok || ref.Call != call || ref.Deployment != "resp-1" {
					t.Errorf("id %q opens to %+v, %v; want call %s on resp-1", id, ref, ok, call)
				}
			case tc.prefix != "" && id != tc.prefix+call:
				t.Errorf("id %q, want %q", id, tc.prefix+call)
			}
			if c, ok := ids.CallOf(id); !ok || c != call {
				t.Errorf("CallOf(%q) = %q, %v; want the call %s", id, c, ok, call)
			}
			lim.waitOutcomes(t, 1)
			logged := id
			if tc.prefix == "sealed" {
				logged = ""
			}
			if o := lim.outcomes[0]; o.ResponseID != logged {
				t.Errorf("settled with response id %q, want %q", o.ResponseID, logged)
			}
		})
	}
}

// topID returns the answer's id.
func topID(_ *testing.T, body []byte) []string {
	if id := gjson.GetBytes(body, "id").String(); id != "" {
		return []string{id}
	}
	return nil
}

// dataIDs returns the ids at path of the stream's events that have one (an upstream id
// left in any event shows as a second id).
func dataIDs(path string) func(t *testing.T, body []byte) []string {
	return func(t *testing.T, body []byte) []string {
		var out []string
		for line := range bytes.Lines(body) {
			data, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data: "))
			if !ok || string(data) == "[DONE]" {
				continue
			}
			if !json.Valid(data) {
				t.Fatalf("event %q is not JSON", data)
			}
			if id := gjson.GetBytes(data, path); id.Exists() {
				out = append(out, id.String())
			}
		}
		return out
	}
}
