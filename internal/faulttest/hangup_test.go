package faulttest

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/fakeopenai"
	"github.com/llmgate/llmgate/internal/gateway"
)

// TestClientHangupsMidStream_LeakNothing has clients hang up in the middle of their streams,
// eight at a time, forty in all. The gateway keeps reading each upstream stream (writing
// nothing to the gone client) until its usage arrives, since the provider bills the whole
// answer: afterwards no goroutine of the request path is left, no parallel-request lease is
// held, every upstream stream ran to its end, and each call was charged the usage the
// upstream reported for it.
func TestClientHangupsMidStream_LeakNothing(t *testing.T) {
	const chunks = 200 // a full answer takes about a second
	up := fakeopenai.Start(fakeopenai.Options{Chunks: chunks, ChunkDelay: 5 * time.Millisecond})
	defer up.Close()
	g := startGateway(t, "", configYAML([]deployment{{"chat", "chat-1", up.BaseURL}}, ""))
	key, token := g.generateKey(t, `{"max_budget": 100, "max_parallel_requests": 100}`)

	// Warm up: one full stream, so caches and pools exist before the baseline is taken.
	status, h, body, err := g.do(context.Background(), http.MethodPost, "/v1/chat/completions", key, chatBody("chat", true))
	if err != nil || status != http.StatusOK {
		t.Fatalf("warm-up stream: status %d, error %v: %s", status, err, body)
	}
	warmID := h.Get(gateway.HeaderCallID)
	g.hc.CloseIdleConnections()
	time.Sleep(100 * time.Millisecond)
	baseline, _ := requestGoroutines()
	completedBefore := up.Completed()

	const clients, concurrent = 40, 8
	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for range concurrent {
		wg.Go(func() {
			for range clients / concurrent {
				if err := hangUpAfterFirstChunk(g, key); err != "" {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	g.hc.CloseIdleConnections()

	var n int
	var stacks string
	if !eventually(5*time.Second, func() bool { n, stacks = requestGoroutines(); return n <= baseline }) {
		t.Errorf("%d goroutines run llmgate code after every client hung up; want at most %d (before the load):\n%s", n, baseline, stacks)
	}
	l := g.settledLedger(t, token, clients+1)
	l.checkReconciled(t)
	if finished := up.Completed() - completedBefore; finished != clients {
		t.Errorf("%d upstream streams ran to the end after their client hung up; want all %d read to their usage", finished, clients)
	}
	for _, s := range l.logs {
		if s.RequestID == warmID {
			continue
		}
		if s.CompletionTokens != chunks || s.Spend <= 0 {
			t.Errorf("call %s charged %g for %d completion tokens; want the %d of the full answer the upstream reported", s.RequestID, s.Spend, s.CompletionTokens, chunks)
		}
	}
}

// hangUpAfterFirstChunk starts a stream, reads until the first content chunk and drops the
// connection. It returns a description of what went wrong, or "".
func hangUpAfterFirstChunk(g *server, key string) string {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("chat", true)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.hc.Do(req)
	if err != nil {
		return "start stream: " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "start stream: status " + resp.Status
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"content":"tok `) {
			return "" // cancel and close drop the connection mid-stream
		}
	}
	return "the stream ended before its first content chunk"
}
