package main

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/llmgate/llmgate/internal/config"
)

// newServer is the local HTTP server. Headers, bodies and idle keep-alive connections get
// bounded time, so slow or silent clients cannot hold connections forever; writing does
// not, since a stream may legitimately run for minutes. (http.Server's ReadTimeout would
// also cut streams: its deadline cancels the request once the body is read.)
func newServer(h http.Handler, s config.Settings) *http.Server {
	return &http.Server{
		Handler:           bodyDeadline(h, s.BodyReadTimeout.Std()),
		ReadHeaderTimeout: s.ReadHeaderTimeout.Std(),
		IdleTimeout:       s.IdleTimeout.Std(),
	}
}

// bodyDeadline gives each request d to deliver its body: a read past it fails (the
// handler answers 400 and the connection closes). The deadline is lifted once the body
// is read, so the rest of the call, a long stream included, is not bounded by it.
func bodyDeadline(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the connection's read deadline when the body has been read.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
