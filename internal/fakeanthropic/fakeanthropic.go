// Package fakeanthropic is a fake Anthropic Messages API upstream, in Anthropic's wire format:
// POST /v1/messages (plain and streamed with the full event sequence) and
// /v1/messages/count_tokens. It answers Answer, or, when the request offers tools and its
// last user turn mentions "weather", calls the first tool with {"city":"Paris"}; a turn
// that carries a tool_result is answered "The tool said: <result>". It records the last
// request's headers and body for tests.
//
// It also serves the same answers as Claude on Amazon Bedrock does, in Bedrock's wire format
// (see fakebedrock): POST /model/{id}/invoke answers the message JSON, and
// /model/{id}/invoke-with-response-stream the same events, each in an event-stream chunk, the
// last one with Bedrock's invocation metrics. It checks the request as Bedrock does: a SigV4
// signature, anthropic_version "bedrock-2023-05-31", no model or stream key, anthropic_beta
// a list; failures are Bedrock's errors.
package fakeanthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/llmgate/llmgate/internal/fakebedrock"
)

// Answer is the text the fake answers with.
const Answer = "Hello from the fake Anthropic upstream."

// Usage the fake reports: InputTokens, with CacheRead of them read from the cache (and,
// when the request marks a block for caching for an hour, `"ttl":"1h"`, CacheWrite1h of them
// written to the cache with a 1-hour TTL), and one output token per word of the answer.
const (
	InputTokens  = 25
	CacheRead    = 5
	CacheWrite1h = 10
)

// Server is a running fake.
type Server struct {
	*httptest.Server
	mu      sync.Mutex
	header  http.Header
	body    []byte
	paths   []string
	FailAll bool // answer every request with a 529 overloaded_error
}

// Start starts a fake on a loopback port; Close it when done.
func Start() *Server {
	s := &Server{}
	s.Server = httptest.NewServer(s)
	return s
}

// Last returns the last request's headers and body.
func (s *Server) Last() (http.Header, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.header, s.body
}

// Paths returns the paths requested so far.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

type request struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
}

type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
}

// ServeHTTP serves the Messages API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	s.mu.Lock()
	s.header, s.body, s.paths = r.Header.Clone(), body, append(s.paths, r.URL.Path)
	fail := s.FailAll
	s.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, bedrockPrefix) {
		serveBedrock(w, r, body, fail)
		return
	}
	if r.Header.Get("x-api-key") == "" || r.Header.Get("anthropic-version") == "" {
		writeError(w, http.StatusUnauthorized, "authentication_error", "x-api-key and anthropic-version are required")
		return
	}
	if fail {
		writeError(w, 529, "overloaded_error", "Overloaded")
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "request body is not JSON")
		return
	}
	switch r.URL.Path {
	case "/v1/messages/count_tokens":
		writeJSON(w, map[string]int{"input_tokens": len(body) / 4})
	case "/v1/messages":
		content, stop := answer(req)
		written := cacheWrites(body)
		if req.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			fl, _ := w.(http.Flusher)
			for _, ev := range events(req.Model, content, stop, written) {
				data, _ := json.Marshal(ev)
				fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev["type"], data)
				if fl != nil {
					fl.Flush()
				}
			}
			return
		}
		writeJSON(w, message(req.Model, content, stop, written))
	default:
		writeError(w, http.StatusNotFound, "not_found_error", "Not found: "+r.URL.Path)
	}
}

// answer is the content and stop reason for req.
func answer(req request) ([]block, string) {
	if len(req.Messages) == 0 {
		return []block{{Type: "text", Text: Answer}}, "end_turn"
	}
	last := req.Messages[len(req.Messages)-1]
	var blocks []block
	if err := json.Unmarshal(last.Content, &blocks); err != nil {
		var s string
		_ = json.Unmarshal(last.Content, &s)
		blocks = []block{{Type: "text", Text: s}}
	}
	for _, b := range blocks {
		if b.Type == "tool_result" {
			return []block{{Type: "text", Text: "The tool said: " + resultText(b.Content)}}, "end_turn"
		}
	}
	for _, b := range blocks {
		if b.Type == "text" && strings.Contains(strings.ToLower(b.Text), "weather") && len(req.Tools) > 0 {
			return []block{
				{Type: "text", Text: "Let me check."},
				{Type: "tool_use", ID: "toolu_fake1", Name: req.Tools[0].Name, Input: json.RawMessage(`{"city":"Paris"}`)},
			}, "tool_use"
		}
	}
	return []block{{Type: "text", Text: Answer}}, "end_turn"
}

func resultText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var blocks []block
	_ = json.Unmarshal(raw, &blocks)
	var sb strings.Builder
	for _, b := range blocks {
		sb.WriteString(b.Text)
	}
	return sb.String()
}

func outputTokens(content []block) int {
	n := 0
	for _, b := range content {
		n += len(strings.Fields(b.Text)) + len(b.Input)/4
	}
	return n
}

// cacheWrites is how many prompt tokens a request writes to the cache with a 1-hour TTL.
func cacheWrites(body []byte) int {
	if bytes.Contains(body, []byte(`"ttl":"1h"`)) {
		return CacheWrite1h
	}
	return 0
}

func usage(output, written1h int) map[string]any {
	return map[string]any{"input_tokens": InputTokens - CacheRead - written1h, "output_tokens": output,
		"cache_read_input_tokens": CacheRead, "cache_creation_input_tokens": written1h,
		"cache_creation": map[string]int{"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": written1h}}
}

// message is the non-streamed answer.
func message(model string, content []block, stop string, written1h int) map[string]any {
	return map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": content,
		"stop_reason": stop, "stop_sequence": nil, "usage": usage(outputTokens(content), written1h),
	}
}

// events is Anthropic's event sequence for an answer: message_start, ping, each block's
// content_block_start / deltas (text word by word, tool input in two pieces) /
// content_block_stop, message_delta with the stop reason and cumulative usage, message_stop.
func events(model string, content []block, stop string, written1h int) []map[string]any {
	evs := []map[string]any{
		{"type": "message_start", "message": map[string]any{
			"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": usage(1, written1h),
		}},
		{"type": "ping"},
	}
	for i, b := range content {
		switch b.Type {
		case "text":
			evs = append(evs, map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "text", "text": ""}})
			for _, word := range strings.SplitAfter(b.Text, " ") {
				evs = append(evs, map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "text_delta", "text": word}})
			}
		case "tool_use":
			evs = append(evs, map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "tool_use", "id": b.ID, "name": b.Name, "input": map[string]any{}}})
			in := string(b.Input)
			for _, part := range []string{in[:len(in)/2], in[len(in)/2:]} {
				evs = append(evs, map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "input_json_delta", "partial_json": part}})
			}
		}
		evs = append(evs, map[string]any{"type": "content_block_stop", "index": i})
	}
	return append(evs,
		map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
			"usage": map[string]int{"output_tokens": outputTokens(content)}},
		map[string]any{"type": "message_stop"})
}

// bedrockPrefix starts the paths of Bedrock's InvokeModel operations.
const bedrockPrefix = "/model/"

// serveBedrock answers InvokeModel and InvokeModelWithResponseStream as Bedrock does for
// Claude; fail answers every call as an overloaded Bedrock does.
func serveBedrock(w http.ResponseWriter, r *http.Request, body []byte, fail bool) {
	id, op, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, bedrockPrefix), "/")
	if op != "invoke" && op != "invoke-with-response-stream" {
		fakebedrock.WriteError(w, http.StatusNotFound, "UnknownOperationException", "")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		fakebedrock.WriteError(w, http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	if fail {
		fakebedrock.WriteError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "Bedrock is unable to process your request.")
		return
	}
	var fields map[string]json.RawMessage
	var req request
	if json.Unmarshal(body, &fields) != nil || json.Unmarshal(body, &req) != nil {
		fakebedrock.WriteError(w, http.StatusBadRequest, "ValidationException", "Malformed input request, please reformat your input and try again.")
		return
	}
	if problem := bedrockProblem(fields); problem != "" {
		fakebedrock.WriteError(w, http.StatusBadRequest, "ValidationException", "Malformed input request: "+problem+", please reformat your input and try again.")
		return
	}
	content, stop := answer(req)
	// Bedrock's Claude answers name the model without the provider and region prefixes.
	model := id
	if i := strings.LastIndex(id, "anthropic."); i >= 0 {
		model = id[i+len("anthropic."):]
	}
	if op == "invoke" {
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", fmt.Sprint(InputTokens))
		w.Header().Set("X-Amzn-Bedrock-Output-Token-Count", fmt.Sprint(outputTokens(content)))
		writeJSON(w, message(model, content, stop, cacheWrites(body)))
		return
	}
	evs := events(model, content, stop, cacheWrites(body))
	evs[len(evs)-1]["amazon-bedrock-invocationMetrics"] = map[string]int{
		"inputTokenCount": InputTokens, "outputTokenCount": outputTokens(content), "invocationLatency": 120, "firstByteLatency": 40,
	}
	chunks := make([]fakebedrock.Event, len(evs))
	for i, ev := range evs {
		data, _ := json.Marshal(ev)
		chunks[i] = fakebedrock.Chunk(data)
	}
	fakebedrock.Stream(w, chunks...)
}

// bedrockProblem is what Bedrock's Claude schema refuses in a request body, "" if nothing.
func bedrockProblem(fields map[string]json.RawMessage) string {
	if v := string(fields["anthropic_version"]); v != `"bedrock-2023-05-31"` {
		return "#/anthropic_version: expected bedrock-2023-05-31, got " + v
	}
	for _, k := range []string{"model", "stream"} {
		if _, ok := fields[k]; ok {
			return "#: extraneous key [" + k + "] is not permitted"
		}
	}
	if raw, ok := fields["anthropic_beta"]; ok {
		var betas []string
		if json.Unmarshal(raw, &betas) != nil {
			return "#/anthropic_beta: expected type: JSONArray"
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%q}}`, typ, msg)
}
