package fakeopenai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, s *Server, path, body string, timeout time.Duration) (*http.Response, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.BaseURL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

const chat = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

func TestAnswers_InOpenAIFormatWithUsage(t *testing.T) {
	s := Start(Options{Chunks: 3})
	defer s.Close()
	tests := []struct {
		path, body string
		wantObject string
		wantTokens int // completion tokens
	}{
		{"/chat/completions", chat, "chat.completion", 3},
		{"/completions", `{"model":"m","prompt":"hi"}`, "text_completion", 3},
		{"/embeddings", `{"model":"m","input":["a","b"]}`, "list", 0},
	}
	for _, tt := range tests {
		resp, body, err := post(t, s, tt.path, tt.body, 5*time.Second)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %v, error %v", tt.path, resp, err)
		}
		var got struct {
			Object string `json:"object"`
			Data   []any  `json:"data"`
			Usage  struct {
				PromptTokens     int `json:"prompt_tokens"`
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("%s: %v: %s", tt.path, err, body)
		}
		if got.Object != tt.wantObject || got.Usage.CompletionTokens != tt.wantTokens || got.Usage.PromptTokens == 0 {
			t.Errorf("%s: object %q, usage %+v; want %q with %d completion tokens", tt.path, got.Object, got.Usage, tt.wantObject, tt.wantTokens)
		}
		if tt.path == "/embeddings" && len(got.Data) != 2 {
			t.Errorf("embeddings: %d vectors; want 2", len(got.Data))
		}
	}
	if s.Requests() != 3 || s.Completed() != 3 {
		t.Errorf("counted %d requests, %d completed; want 3 and 3", s.Requests(), s.Completed())
	}
}

func TestStream_ChunksUsageOnRequestAndDone(t *testing.T) {
	s := Start(Options{Chunks: 4})
	defer s.Close()
	for _, includeUsage := range []bool{false, true} {
		body := `{"model":"m","stream":true,"messages":[]}`
		if includeUsage {
			body = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`
		}
		_, b, err := post(t, s, "/chat/completions", body, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		events := strings.Split(strings.TrimSpace(string(b)), "\n\n")
		want := 1 + 4 + 1 + 1 // role, content, finish, [DONE]
		if includeUsage {
			want++
		}
		if len(events) != want || events[len(events)-1] != "data: [DONE]" {
			t.Errorf("include_usage %v: %d events ending %q; want %d ending [DONE]", includeUsage, len(events), events[len(events)-1], want)
		}
		if got := strings.Contains(string(b), `"completion_tokens":4`); got != includeUsage {
			t.Errorf("include_usage %v: usage chunk present = %v", includeUsage, got)
		}
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		fault  Fault
		stream bool
		check  func(t *testing.T, resp *http.Response, body []byte, err error)
	}{
		{ServerError, false, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != 500 || !strings.Contains(string(body), `"type":"server_error"`) {
				t.Errorf("got %v %s %v; want a 500 OpenAI error", resp, body, err)
			}
		}},
		{RateLimited, false, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" {
				t.Errorf("got %v %s %v; want 429 with retry-after 1", resp, body, err)
			}
		}},
		{Hang, false, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err == nil {
				t.Errorf("got an answer %v %s; want none before the client gives up", resp, body)
			}
		}},
		{Reset, false, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err == nil {
				t.Errorf("got an answer %v %s; want a connection error", resp, body)
			}
		}},
		{InvalidJSON, false, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err != nil || resp.StatusCode != 200 || json.Valid(body) {
				t.Errorf("got %v %q %v; want 200 with a body that is not JSON", resp, body, err)
			}
		}},
		{StreamCut, true, func(t *testing.T, resp *http.Response, body []byte, err error) {
			if err == nil || strings.Contains(string(body), "[DONE]") {
				t.Errorf("got %q, error %v; want a broken stream without [DONE]", body, err)
			}
		}},
	}
	for _, tt := range tests {
		s := Start(Options{Chunks: 4, Fault: func(int64) Fault { return tt.fault }})
		body := chat
		if tt.stream {
			body = `{"model":"m","stream":true,"messages":[]}`
		}
		resp, b, err := post(t, s, "/chat/completions", body, 500*time.Millisecond)
		tt.check(t, resp, b, err)
		if s.Requests() != 1 || s.Completed() != 0 {
			t.Errorf("fault %d: %d requests, %d completed; want 1 and 0", tt.fault, s.Requests(), s.Completed())
		}
		s.Close()
	}
}
