package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// EqualChunks fails t unless got (Drain's output) holds the chunks want, in order, each
// compared after Compact.
func EqualChunks(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d chunks, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range got {
		if w := Compact(t, want[i]); got[i] != w {
			t.Errorf("chunk %d\ngot:  %s\nwant: %s", i, got[i], w)
		}
	}
}

// DrainFailure drains s and returns the *provider.Error that ended it. It fails t now if
// the stream ended without one, and fails t if no chunk came before the failure.
func DrainFailure(t testing.TB, s provider.Stream) *provider.Error {
	t.Helper()
	chunks, err := Drain(t, s)
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("after %d chunks err = %v, want a *provider.Error", len(chunks), err)
	}
	if len(chunks) == 0 {
		t.Error("chunks before the failure were not delivered")
	}
	return pe
}

// CheckCancellation opens a stream with open on an upstream that writes the start of an
// answer with start and then waits for its request to end. It reads the first firstChunks
// chunks (what start yields), cancels the stream's context, and fails t unless the next read
// fails with context.Canceled and the upstream request is cancelled within 5 seconds.
func CheckCancellation(t testing.TB, start http.HandlerFunc, firstChunks int, open func(ctx context.Context, up *Upstream) (provider.Stream, error)) {
	t.Helper()
	upstreamDone := make(chan struct{})
	up := NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		start(w, r)
		<-r.Context().Done()
		close(upstreamDone)
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := open(ctx, up)
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	defer s.Close()
	for i := range firstChunks {
		if _, err := s.Next(); err != nil {
			t.Fatalf("chunk %d before cancel: %v", i, err)
		}
	}
	cancel()
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel = %v, want context.Canceled", err)
	}
	select {
	case <-upstreamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream request was not cancelled")
	}
}

// CheckChunksUntilEnd reads s until it fails or ends (for fuzzing decoders): it fails t if a
// value is not a JSON chat.completion.chunk, or if s has not ended after 10000 chunks.
func CheckChunksUntilEnd(t testing.TB, s provider.Stream) {
	t.Helper()
	for range 10000 {
		b, err := s.Next()
		if err != nil { // io.EOF or a classified failure
			return
		}
		var c translate.Chunk
		if err := json.Unmarshal(b, &c); err != nil || c.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %s: %v", b, err)
		}
	}
	t.Fatal("stream did not end")
}
