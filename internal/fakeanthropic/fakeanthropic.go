// Package fakeanthropic is a fake Anthropic Messages API upstream, in Anthropic's wire format:
// POST /v1/messages (plain and streamed with the full event sequence) and
// /v1/messages/count_tokens. It answers Answer, or, when the request offers tools and its
// last user turn mentions "weather", calls the first tool with {"city":"Paris"}; a turn
// that carries a tool_result is answered "The tool said: <result>". It records the last
// request's headers and body for tests.
package fakeanthropic

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// Answer is the text the fake answers with.
const Answer = "Hello from the fake Anthropic upstream."

// Usage the fake reports: InputTokens, with CacheRead of them read from the cache, and one
// output token per word of the answer.
const (
	InputTokens = 25
	CacheRead   = 5
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
		if req.Stream {
			stream(w, req.Model, content, stop)
			return
		}
		writeJSON(w, map[string]any{
			"id": "msg_fake", "type": "message", "role": "assistant", "model": req.Model, "content": content,
			"stop_reason": stop, "stop_sequence": nil, "usage": usage(outputTokens(content)),
		})
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

func usage(output int) map[string]int {
	return map[string]int{"input_tokens": InputTokens - CacheRead, "output_tokens": output,
		"cache_read_input_tokens": CacheRead, "cache_creation_input_tokens": 0}
}

// stream sends Anthropic's event sequence: message_start, ping, each block's
// content_block_start / deltas (text word by word, tool input in two pieces) /
// content_block_stop, message_delta with the stop reason and cumulative usage, message_stop.
func stream(w http.ResponseWriter, model string, content []block, stop string) {
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	send := func(v map[string]any) {
		data, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", v["type"], data)
		if fl != nil {
			fl.Flush()
		}
	}
	start := usage(1)
	send(map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": start,
	}})
	send(map[string]any{"type": "ping"})
	for i, b := range content {
		switch b.Type {
		case "text":
			send(map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "text", "text": ""}})
			words := strings.SplitAfter(b.Text, " ")
			for _, word := range words {
				send(map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "text_delta", "text": word}})
			}
		case "tool_use":
			send(map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]any{"type": "tool_use", "id": b.ID, "name": b.Name, "input": map[string]any{}}})
			in := string(b.Input)
			for _, part := range []string{in[:len(in)/2], in[len(in)/2:]} {
				send(map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]any{"type": "input_json_delta", "partial_json": part}})
			}
		}
		send(map[string]any{"type": "content_block_stop", "index": i})
	}
	send(map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": outputTokens(content)}})
	send(map[string]any{"type": "message_stop"})
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
