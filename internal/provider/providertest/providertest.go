package providertest

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
)

// WriteEvent writes one "data:" event and flushes it, for handlers that stream step by step
// (after WriteSSE wrote the headers).
func WriteEvent(w http.ResponseWriter, data string) {
	_, _ = io.WriteString(w, "data: "+data+"\n\n")
	w.(http.Flusher).Flush()
}

// Hijack takes over the connection, writes raw (status line and headers included, if the
// test wants them) and resets it without ending the HTTP response: the way a crashed
// upstream or a broken network looks to the client.
func Hijack(w http.ResponseWriter, raw string) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_, _ = buf.WriteString(raw)
	_ = buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST, not FIN
	}
	_ = conn.Close()
}

// DecodeBody decodes the request body as a JSON object, failing t if it is not one.
func (r Request) DecodeBody(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("upstream request body %q: %v", r.Body, err)
	}
	return m
}
