package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
)

func TestAccount_ChargesTheReportedUsageOrTheReservation(t *testing.T) {
	price := pricing.Price{Input: 1, Output: 2, CacheRead: 0.5, CacheCreation: 1.25, Known: true}
	bound := pricing.Bound{Cost: 500, PromptTokens: 100, MaxTokens: 100, Tokens: 200}
	reservation := openai.Usage{PromptTokens: 100, CompletionTokens: 100, TotalTokens: 200}
	tests := []struct {
		name          string
		u             openai.Usage
		reported      bool
		want          openai.Usage
		wantCost      float64
		wantEstimated bool
		wantLog       string
	}{
		{"as reported", openai.Usage{PromptTokens: 20, CompletionTokens: 8, TotalTokens: 28}, true,
			openai.Usage{PromptTokens: 20, CompletionTokens: 8, TotalTokens: 28}, 36, false, ""},
		{"no usage: the reservation", openai.Usage{}, false, reservation, 500, true, ""},
		{"negative count: the reservation", openai.Usage{PromptTokens: -1000000, CompletionTokens: 5}, true, reservation, 500, true, "out of range"},
		{"count above the bound: the reservation", openai.Usage{PromptTokens: 1 << 62}, true, reservation, 500, true, "out of range"},
		{"negative cached tokens: the reservation", openai.Usage{PromptTokens: 10, PromptTokensDetails: &openai.PromptTokensDetails{CachedTokens: -5}}, true, reservation, 500, true, "out of range"},
		{"cache writes at their price", openai.Usage{PromptTokens: 190, CompletionTokens: 10, TotalTokens: 200, CacheCreationInputTokens: 190}, true,
			openai.Usage{PromptTokens: 190, CompletionTokens: 10, TotalTokens: 200, CacheCreationInputTokens: 190}, 257.5, false, ""},
		{"above the reservation: the truth, logged", openai.Usage{PromptTokens: 100, CompletionTokens: 100, TotalTokens: 200}, true,
			reservation, 300, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			g := &Gateway{log: slog.New(slog.NewJSONHandler(&logs, nil))}
			c := &call{bound: bound}
			if strings.Contains(tt.name, "above the reservation") {
				c.bound.Cost = 250
				tt.wantLog = "budget_overrun"
			}
			g.account(context.Background(), c, tt.u, tt.reported, price)
			if !reflect.DeepEqual(c.usage, tt.want) || c.cost != tt.wantCost || c.estimated != tt.wantEstimated {
				t.Errorf("usage %+v cost %g (estimated %t), want %+v cost %g (estimated %t)", c.usage, c.cost, c.estimated, tt.want, tt.wantCost, tt.wantEstimated)
			}
			if tt.wantLog != "" && (!strings.Contains(logs.String(), tt.wantLog) || !strings.Contains(logs.String(), `"level":"ERROR"`)) {
				t.Errorf("log %q, want an error line with %q", logs.String(), tt.wantLog)
			}
			if tt.wantLog == "" && logs.Len() > 0 {
				t.Errorf("log %q, want none", logs.String())
			}
		})
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
