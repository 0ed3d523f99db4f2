// Package registry maps the provider prefix of litellm_params.model ("groq" in
// "groq/llama-3.3-70b-versatile") to the provider that serves it. All providers share one
// HTTP client, tuned for a gateway.
package registry

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/anthropic"
	"github.com/llmgate/llmgate/internal/provider/azure"
	"github.com/llmgate/llmgate/internal/provider/bedrock"
	"github.com/llmgate/llmgate/internal/provider/gemini"
	"github.com/llmgate/llmgate/internal/provider/mock"
	"github.com/llmgate/llmgate/internal/provider/openaicompat"
)

// builtins returns every provider family, built on the shared client hc. Adding a family
// is one line here. The OpenAI-compatible providers come from openaicompat.Specs.
func builtins(hc *http.Client) map[string]provider.Provider {
	m := map[string]provider.Provider{
		"azure":     azure.New(hc),
		"anthropic": &anthropic.Provider{Client: hc},
		"gemini":    &gemini.Provider{Client: hc},
		"bedrock":   &bedrock.Provider{HTTPClient: hc},
		"mock":      mock.New(),
	}
	for _, s := range openaicompat.Specs {
		m[s.Prefix] = openaicompat.New(hc, s)
	}
	return m
}

// ErrUnknownProvider is wrapped by Lookup's error for a prefix no provider serves.
var ErrUnknownProvider = errors.New("unknown provider")

// Registry maps provider prefixes to providers. It is read-only after New, so safe for
// concurrent use.
type Registry struct {
	providers map[string]provider.Provider
	prefixes  []string // sorted
}

// Option configures a Registry.
type Option func(*Registry)

// WithProvider serves prefix with p, in addition to the built-in providers or instead of
// the one built in for prefix.
func WithProvider(prefix string, p provider.Provider) Option {
	return func(r *Registry) { r.providers[prefix] = p }
}

// New returns a Registry of the built-in providers, all sending requests with hc; a nil hc
// means a client from NewHTTPClient.
func New(hc *http.Client, opts ...Option) *Registry {
	if hc == nil {
		hc = NewHTTPClient()
	}
	r := &Registry{providers: builtins(hc)}
	for _, o := range opts {
		o(r)
	}
	for p := range r.providers {
		r.prefixes = append(r.prefixes, p)
	}
	slices.Sort(r.prefixes)
	return r
}

// Lookup returns the provider for prefix (see provider.Split). An unknown prefix is an error
// that wraps ErrUnknownProvider and lists the supported prefixes.
func (r *Registry) Lookup(prefix string) (provider.Provider, error) {
	if p, ok := r.providers[prefix]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("%w %q: supported prefixes are %s", ErrUnknownProvider, prefix, strings.Join(r.prefixes, ", "))
}

// Prefixes returns the supported prefixes, sorted.
func (r *Registry) Prefixes() []string {
	return slices.Clone(r.prefixes)
}

// NewHTTPClient returns the client the providers share. Its transport keeps connections
// alive with an idle pool sized for a gateway (the default of 2 idle connections per host
// would re-dial under any concurrency) and tries HTTP/2. It has no overall timeout: a call
// is bounded by Call.Timeout and its context, and streams may legitimately run for minutes.
// Idle connections are dropped after 30s, before upstreams and their load balancers close
// them, so a Lambda thawed after a pause does not send on a dead connection.
//
// Answers are not limited in size: see LimitAnswers.
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.ForceAttemptHTTP2 = true
	t.MaxIdleConns = 512
	t.MaxIdleConnsPerHost = 128
	t.IdleConnTimeout = 30 * time.Second
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ExpectContinueTimeout = time.Second
	return &http.Client{Transport: t}
}

// LimitAnswers makes hc refuse upstream answers over limit bytes (0: no limit) with a
// *provider.AnswerTooLarge, so no answer is buffered whole however large the upstream
// makes it. Event streams are exempt: they are read event by event (each bounded: SSE events
// by sse.MaxEventSize, Bedrock's frames by the bedrock provider) and may legitimately run long.
func LimitAnswers(hc *http.Client, limit int64) *http.Client {
	if limit <= 0 {
		return hc
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	out := *hc
	out.Transport = &limitedTransport{next: next, limit: limit}
	return &out
}

type limitedTransport struct {
	next  http.RoundTripper
	limit int64
}

func (t *limitedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || isEventStream(resp.Header.Get("Content-Type")) {
		return resp, err
	}
	if resp.ContentLength > t.limit {
		resp.Body.Close()
		return nil, &provider.AnswerTooLarge{Limit: t.limit}
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.limit, limit: t.limit}
	return resp, nil
}

// isEventStream reports whether a content type is a stream of events: SSE, or Bedrock's
// binary event stream.
func isEventStream(contentType string) bool {
	return strings.HasPrefix(contentType, "text/event-stream") || strings.HasPrefix(contentType, "application/vnd.amazon.eventstream")
}

// limitedBody fails once more than its limit has been read.
type limitedBody struct {
	io.ReadCloser
	left  int64
	limit int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, &provider.AnswerTooLarge{Limit: b.limit}
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, &provider.AnswerTooLarge{Limit: b.limit}
	}
	return n, err
}
