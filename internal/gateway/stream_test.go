package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
)

func TestGeneratedBytes_CountsTheTextAChunkCarries(t *testing.T) {
	tests := []struct {
		name, chunk string
		want        int
	}{
		{"content", `{"choices":[{"index":0,"delta":{"content":"tok "}}]}`, 4},
		{"role only", `{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}`, 0},
		{"null content", `{"choices":[{"delta":{"content":null},"finish_reason":"stop"}]}`, 0},
		{"spaces around the colon", `{"choices":[{"delta":{"content" : "hello"}}]}`, 5},
		{"escapes count one byte each", `{"choices":[{"delta":{"content":"a\"b\n\u00e9"}}]}`, 5},
		{"quoted names inside the text are not keys", `{"choices":[{"delta":{"content":"\"text\": \"x\""}}]}`, 11},
		{"reasoning and content", `{"choices":[{"delta":{"reasoning_content":"think","content":"say"}}]}`, 8},
		{"tool call arguments", `{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f","arguments":"{\"a\":1}"}}]}}]}`, 7},
		{"every choice", `{"choices":[{"index":0,"delta":{"content":"ab"}},{"index":1,"delta":{"content":"cde"}}]}`, 5},
		{"text completion", `{"object":"text_completion","choices":[{"text":"abcdef","index":0}]}`, 6},
		{"content part type is no text", `{"choices":[{"delta":{"content":[{"type":"text","text":"hi"}]}}]}`, 2},
		{"usage chunk", `{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3}}`, 0},
		{"cut off inside a string", `{"choices":[{"delta":{"content":"abc`, 3},
	}
	for _, tt := range tests {
		if got := generatedBytes([]byte(tt.chunk)); got != tt.want {
			t.Errorf("%s: generatedBytes(%s) = %d, want %d", tt.name, tt.chunk, got, tt.want)
		}
	}
}

func TestStreamUsage_EstimatesWhatAStreamThatEndedEarlyGenerated(t *testing.T) {
	messages := json.RawMessage(`[{"role":"user","content":"Hello there"}]`)
	prompt := pricing.PromptTokens(&openai.Request{Messages: messages})
	reported := openai.Usage{PromptTokens: 20, CompletionTokens: 8, TotalTokens: 28}
	tests := []struct {
		name          string
		maxTokens, n  int
		u             openai.Usage
		complete      bool
		textBytes     int
		want          openai.Usage
		wantEstimated bool
	}{
		{"complete with usage: as reported", 0, 0, reported, true, 400, reported, false},
		{"complete without usage", 0, 0, openai.Usage{}, true, 40, openai.Usage{PromptTokens: prompt, CompletionTokens: 10, TotalTokens: prompt + 10}, true},
		{"cut without usage", 0, 0, openai.Usage{}, false, 41, openai.Usage{PromptTokens: prompt, CompletionTokens: 11, TotalTokens: prompt + 11}, true},
		{"cut with the prompt reported", 0, 0, openai.Usage{PromptTokens: 20, CompletionTokens: 1}, false, 40, openai.Usage{PromptTokens: 20, CompletionTokens: 10, TotalTokens: 30}, true},
		{"cut with more reported than relayed", 0, 0, reported, false, 4, reported, true},
		{"at most max_tokens", 5, 0, openai.Usage{}, false, 400, openai.Usage{PromptTokens: prompt, CompletionTokens: 5, TotalTokens: prompt + 5}, true},
		{"at most n × max_tokens", 5, 3, openai.Usage{}, false, 400, openai.Usage{PromptTokens: prompt, CompletionTokens: 15, TotalTokens: prompt + 15}, true},
		{"at most the model's output limit", 0, 0, openai.Usage{}, false, 4000, openai.Usage{PromptTokens: prompt, CompletionTokens: 100, TotalTokens: prompt + 100}, true},
	}
	for _, tt := range tests {
		c := &call{kind: provider.Chat, req: openai.Request{Messages: messages}}
		if tt.maxTokens > 0 {
			c.req.MaxTokens = &tt.maxTokens
		}
		if tt.n > 0 {
			c.req.N = &tt.n
		}
		got, estimated := c.streamUsage(tt.u, tt.complete, tt.textBytes, 100)
		if got != tt.want || estimated != tt.wantEstimated {
			t.Errorf("%s: usage %+v (estimated %t), want %+v (estimated %t)", tt.name, got, estimated, tt.want, tt.wantEstimated)
		}
	}
}

// flushCounter counts the flushes of the gateway's response writer.
type flushCounter struct {
	http.ResponseWriter
	n *atomic.Int32
}

func (f flushCounter) Flush() {
	f.n.Add(1)
	http.NewResponseController(f.ResponseWriter).Flush()
}

func (f flushCounter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// TestStream_FlushesWhatHasArrivedAndHoldsNothingBack streams from an OpenAI-compatible
// upstream (the real provider over HTTP) that sends a burst of chunks in one write and then
// waits until the client has read them all before it ends the stream: the client must get
// every chunk of the burst while the upstream waits (nothing is held back for the next
// read), in fewer flushes than chunks (chunks that arrived together leave together).
func TestStream_FlushesWhatHasArrivedAndHoldsNothingBack(t *testing.T) {
	const burst = 10
	clientHasBurst := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		var b strings.Builder
		for i := range burst {
			fmt.Fprintf(&b, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w%d \"}}]}\n\n", i)
		}
		_, _ = io.WriteString(w, b.String())
		w.(http.Flusher).Flush()
		select {
		case <-clientHasBurst:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":10,\"total_tokens\":13}}\n\ndata: [DONE]\n\n")
	}))
	defer up.Close()
	gw := newOpenAIGateway(t, up.URL+"/v1")
	var flushes atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gw.ServeHTTP(flushCounter{w, &flushes}, r)
	}))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < burst && sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			got = append(got, data)
		}
	}
	if len(got) < burst {
		t.Fatalf("got %d of the %d chunks the upstream sent before it waited (%v)", len(got), burst, sc.Err())
	}
	burstFlushes := flushes.Load()
	close(clientHasBurst)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			got = append(got, data)
		}
	}
	if len(got) != burst+1 || got[burst] != "[DONE]" {
		t.Errorf("stream = %q, want %d chunks then [DONE]", got, burst)
	}
	if burstFlushes >= burst {
		t.Errorf("%d flushes for a burst of %d chunks that arrived in one write; want them sent together", burstFlushes, burst)
	}
}
