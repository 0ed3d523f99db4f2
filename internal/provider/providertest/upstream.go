// Package providertest holds what provider tests share: a recording fake upstream, SSE
// writing, JSON comparison and stream draining.
package providertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/llmgate/llmgate/internal/provider"
)

// Request is what a fake upstream received.
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// Upstream is an httptest server that records every request before handing it to its handler.
type Upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []Request
}

// NewUpstream starts an Upstream answering with h; it is closed when the test ends.
func NewUpstream(t testing.TB, h http.HandlerFunc) *Upstream {
	t.Helper()
	u := &Upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.requests = append(u.requests, Request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// Requests returns the requests received so far.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.requests...)
}

// Last returns the last request received; it fails t if there was none.
func (u *Upstream) Last(t testing.TB) Request {
	t.Helper()
	rs := u.Requests()
	if len(rs) == 0 {
		t.Fatal("upstream received no request")
	}
	return rs[len(rs)-1]
}

// JSON answers status with body as application/json.
func JSON(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// Event is one server-sent event to write.
type Event struct {
	Name string // "event:" field; empty for none
	Data string
}

// WriteSSE writes events as text/event-stream with status 200, flushing after each.
func WriteSSE(w http.ResponseWriter, events ...Event) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, e := range events {
		w.Write(SSEBody(e))
		w.(http.Flusher).Flush()
	}
}

// SSEBody frames events as a text/event-stream body, as WriteSSE writes them.
func SSEBody(events ...Event) []byte {
	var b bytes.Buffer
	for _, e := range events {
		if e.Name != "" {
			fmt.Fprintf(&b, "event: %s\n", e.Name)
		}
		fmt.Fprintf(&b, "data: %s\n\n", e.Data)
	}
	return b.Bytes()
}

// SSEFrames frames each event on its own, for CheckIdleTimeout.
func SSEFrames(events ...Event) [][]byte {
	frames := make([][]byte, len(events))
	for i, e := range events {
		frames[i] = SSEBody(e)
	}
	return frames
}

// JSONEqual fails t unless got and want hold the same JSON value.
func JSONEqual(t testing.TB, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Errorf("JSON differs\ngot:  %s\nwant: %s", gb, wb)
	}
}

// Drain reads s to its end and returns its chunks, each re-encoded compactly with sorted keys
// and without "created" (a clock value), and the error that ended it (nil at io.EOF). It
// closes s.
func Drain(t testing.TB, s provider.Stream) ([]string, error) {
	t.Helper()
	defer s.Close()
	var chunks []string
	for {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			return chunks, nil
		}
		if err != nil {
			return chunks, err
		}
		chunks = append(chunks, WithoutCreated(t, b))
	}
}

// WithoutCreated re-encodes a JSON object compactly with sorted keys and without its
// "created" field (a clock value).
func WithoutCreated(t testing.TB, b []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %s", b)
	}
	delete(m, "created")
	nb, _ := json.Marshal(m)
	return string(nb)
}

// Compact re-encodes a JSON value compactly with sorted keys, for comparing with Drain's output.
func Compact(t testing.TB, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", s, err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// ID returns the "id" of a JSON object (a completion or chunk); it fails t if there is none.
func ID(t testing.TB, b []byte) string {
	t.Helper()
	var v struct{ ID string }
	if err := json.Unmarshal(b, &v); err != nil || v.ID == "" {
		t.Fatalf("no id in %s", b)
	}
	return v.ID
}
