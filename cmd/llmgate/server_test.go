package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// slowConfig serves one model group on a fake upstream at %[1]s.
const slowConfig = `
model_list:
  - model_name: slow
    litellm_params:
      model: openai/slow-model
      api_base: %[1]s
      api_key: ` + upstreamKey + `
general_settings:
  master_key: ` + masterKey + `
`

// logRecord returns the index of the first log line at or after from whose msg is msg and
// whose attributes include attrs, and the line; -1 when there is none.
func logRecord(logs string, from int, msg string, attrs map[string]any) (int, string) {
	lines := strings.Split(logs, "\n")
	for i := max(from, 0); i < len(lines); i++ {
		var rec map[string]any
		if json.Unmarshal([]byte(lines[i]), &rec) != nil || rec["msg"] != msg {
			continue
		}
		match := true
		for k, v := range attrs {
			match = match && rec[k] == v
		}
		if match {
			return i, lines[i]
		}
	}
	return -1, ""
}

// TestShutdown signals the server while a stream is in flight: it stops taking connections,
// logs that it is shutting down, finishes the stream and exits 0.
func TestShutdown(t *testing.T) {
	t.Parallel()
	const chunks = 20
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			// The stream takes about 2s, well past the moment the signal is handled.
			up := fakeopenai.Start(fakeopenai.Options{Chunks: chunks, ChunkDelay: 100 * time.Millisecond})
			t.Cleanup(up.Close)
			s := start(t, fmt.Sprintf(slowConfig, up.BaseURL))
			const prompt = "shutdown prompt 41c9"

			c := client(s, masterKey)
			stream := c.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
				Model: "slow", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
			})
			var text strings.Builder
			read := func() bool {
				if !stream.Next() {
					return false
				}
				for _, ch := range stream.Current().Choices {
					text.WriteString(ch.Delta.Content)
				}
				return true
			}
			if !read() {
				t.Fatalf("no first chunk: %v", stream.Err())
			}

			if err := s.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			eventually(t, 5*time.Second, func() string {
				if i, _ := logRecord(s.logs.String(), 0, "shutting down", nil); i < 0 {
					return "no shutting down log line"
				}
				return ""
			})
			// The listener closes just after that line: fresh connections (no keep-alive one to
			// reuse) are then refused while the stream goes on.
			fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			eventually(t, 5*time.Second, func() string {
				resp, err := fresh.Get(s.URL + "/health/liveliness")
				if err != nil {
					return ""
				}
				resp.Body.Close()
				return fmt.Sprintf("a new request during shutdown got %d, want the connection refused", resp.StatusCode)
			})
			inFlight := text.Len()
			for read() {
			}
			if err := stream.Err(); err != nil {
				t.Fatalf("the in-flight stream failed: %v", err)
			}
			if text.String() != strings.Repeat("tok ", chunks) || inFlight >= text.Len() {
				t.Errorf("streamed %q, %d bytes of it before shutdown began; want %d tokens, most after", text.String(), inFlight, chunks)
			}

			exitErr, ended := s.stop(sig, 10*time.Second)
			if !ended || exitErr != nil {
				t.Fatalf("after the stream: ended=%v, exit %v; want exit status 0", ended, exitErr)
			}
			logs := s.logs.String()
			down, _ := logRecord(logs, 0, "shutting down", nil)
			if i, _ := logRecord(logs, down, "llm request", map[string]any{"stream": true, "status": 200.0}); down < 0 || i < 0 {
				t.Errorf("no llm request line for the stream after the shutdown line")
			}
			checkLogs(t, s, prompt, masterKey, upstreamKey)
		})
	}
}

// TestHealth checks the public health routes, and that readiness, unlike liveliness, fails
// while DynamoDB is unreachable. The server gets a DynamoDB Local of its own to stop (it
// cannot start without one: it creates its table first).
func TestHealth(t *testing.T) {
	t.Parallel()
	db := dynamotest.StartPrivate(t)
	s := launch(t, fmt.Sprintf(slowConfig, "http://127.0.0.1:9/v1"), db.Endpoint, dynamotest.TableName(t))

	check := func(path string, wantStatus int, want any) {
		t.Helper()
		resp, body := s.request(t, "", "GET", path, nil)
		var got any
		if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != wantStatus ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("GET %s: %d %s %s, want %d JSON %v", path, resp.StatusCode, resp.Header.Get("Content-Type"), body, wantStatus, want)
		}
	}
	alive := "I'm alive!"
	check("/health/liveliness", http.StatusOK, alive)
	check("/health/liveness", http.StatusOK, alive)
	check("/health/readiness", http.StatusOK, map[string]any{"status": "healthy", "db": "connected"})

	db.Stop()
	check("/health/liveliness", http.StatusOK, alive)
	check("/health/readiness", http.StatusServiceUnavailable, map[string]any{"status": "unhealthy", "db": "Not connected"})
	checkLogs(t, s, masterKey, upstreamKey)
}
