package providertest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
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

// CheckIdleTimeout checks that a stream's Call.Timeout is an idle timeout: it bounds the wait
// for the answer's headers and then for each event, not the whole stream. frames (at least
// 3) are a complete answer's events, each as the upstream frames it, in an answer of type
// contentType; open opens a stream on up with the given Call.Timeout (0: none). It fails t
// unless
//   - an answer whose events come with gaps shorter than the timeout, but longer than it in
//     all, yields all its chunks and ends cleanly;
//   - an answer that, after such a start, stalls for longer than the timeout yields the
//     chunks sent before the stall, then fails promptly with a retryable 408 timeout error
//     (not context.Canceled) and the upstream request is cancelled;
//   - an upstream that does not answer within the timeout fails with that error.
func CheckIdleTimeout(t *testing.T, contentType string, frames [][]byte, open func(up *Upstream, timeout time.Duration) (provider.Stream, error)) {
	t.Helper()
	const (
		// A gap 400 ms short of the timeout: a loaded CI machine running the suite with
		// -race delays the fake upstream's writes by more than 100 ms at times.
		timeout = time.Second
		gap     = timeout * 3 / 5 // twice that is longer than timeout
		stall   = 10 * time.Second
	)
	if len(frames) < 3 {
		t.Fatalf("CheckIdleTimeout needs at least 3 frames, got %d", len(frames))
	}
	last := len(frames) - 1
	// write writes the answer's headers and frames[:n], pausing for gap before the headers,
	// the first frame, the middle one and the last one. (The pause before the headers also
	// keeps clear of a race in aws-sdk-go-v2, see aws/aws-sdk-go-v2#2737: smithy-go closes
	// the request body once the headers are in, and net/http, if it is not done with the
	// body yet, then closes the connection, the streamed answer with it.)
	write := func(w http.ResponseWriter, n int) {
		time.Sleep(gap)
		w.Header().Set("Content-Type", contentType)
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i, f := range frames[:n] {
			if i == 0 || i == len(frames)/2 || i == last {
				time.Sleep(gap)
			}
			w.Write(f)
			w.(http.Flusher).Flush()
		}
	}
	// chunks counts the chunks of frames[:n] sent at once, without a timeout.
	chunks := func(t *testing.T, n int) int {
		up := NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", contentType)
			for _, f := range frames[:n] {
				w.Write(f)
			}
		})
		s, err := open(up, 0)
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		got, _ := Drain(t, s) // without its last frames, the answer ends with an error
		return len(got)
	}
	// checkTimeout fails t unless err is the timeout error.
	checkTimeout := func(t *testing.T, err error) {
		t.Helper()
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Status != http.StatusRequestTimeout || pe.Type != openai.TypeTimeout || !pe.Retryable {
			t.Errorf("err = %v, want the retryable 408 timeout error", err)
		}
		if errors.Is(err, context.Canceled) {
			t.Errorf("err = %v is context.Canceled, which means the caller went away", err)
		}
	}
	// stalled returns a handler that calls before, then waits until its request ends
	// (closing aborted) or stall passes.
	stalled := func(before func(http.ResponseWriter), aborted chan<- struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			before(w)
			select {
			case <-r.Context().Done():
				close(aborted)
			case <-time.After(stall):
			}
		}
	}
	waitAborted := func(t *testing.T, aborted <-chan struct{}) {
		t.Helper()
		select {
		case <-aborted:
		case <-time.After(5 * time.Second):
			t.Error("the upstream request was not cancelled")
		}
	}

	t.Run("slow but steady answer completes", func(t *testing.T) {
		want := chunks(t, len(frames))
		up := NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) { write(w, len(frames)) })
		s, err := open(up, timeout)
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		got, err := Drain(t, s)
		if err != nil || len(got) != want {
			t.Errorf("got %d chunks, err %v; want %d chunks and no error", len(got), err, want)
		}
	})
	t.Run("stall mid-stream fails with a timeout", func(t *testing.T) {
		want := chunks(t, last)
		aborted := make(chan struct{})
		up := NewUpstream(t, stalled(func(w http.ResponseWriter) { write(w, last) }, aborted))
		s, err := open(up, timeout)
		if err != nil {
			t.Fatalf("Stream: %v", err)
		}
		defer s.Close()
		for i := range want {
			if _, err := s.Next(); err != nil {
				t.Fatalf("chunk %d of %d before the stall: %v", i, want, err)
			}
		}
		start := time.Now()
		_, err = s.Next()
		checkTimeout(t, err)
		if d := time.Since(start); d > timeout+2*time.Second {
			t.Errorf("the stream failed %v after the stall, want about %v", d, timeout)
		}
		waitAborted(t, aborted)
	})
	t.Run("no answer fails with a timeout", func(t *testing.T) {
		aborted := make(chan struct{})
		up := NewUpstream(t, stalled(func(http.ResponseWriter) {}, aborted))
		s, err := open(up, timeout)
		if err == nil {
			s.Close()
		}
		checkTimeout(t, err)
		waitAborted(t, aborted)
	})
}
