package translate

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/llmgate/llmgate/internal/config"
)

// Post is one JSON POST to a translating provider's HTTP API.
type Post struct {
	Name    string       // provider name, for errors
	Client  *http.Client // nil: http.DefaultClient
	URL     string
	Header  http.Header // auth and version headers; Content-Type is set
	Body    []byte
	Timeout time.Duration // 0: none beyond ctx; see Send and Stream for what it bounds
	// Err turns a non-2xx answer into the provider's error (body is at most 64 KiB).
	Err func(status int, h http.Header, body []byte) error
}

// Send sends the request and returns the 2xx response with a release function that cancels
// the call's timeout and closes the body (it is safe to call more than once). The timeout
// bounds the whole call, reading the body included. Failures are classified (see
// TransportError and Post.Err).
func (p Post) Send(ctx context.Context) (*http.Response, func() error, error) {
	ctx, cancel := context.WithCancel(ctx)
	if p.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, p.Timeout)
	}
	resp, err := p.do(ctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	release := func() error {
		err := resp.Body.Close()
		cancel()
		return err
	}
	return resp, release, nil
}

// Stream sends the request for a streamed answer and returns the 2xx response with the
// call's watchdog: the timeout bounds the wait for the headers and then, as NewStream's
// Stream touches the watchdog after each event, the wait for each event, so a long answer
// that keeps coming is not cut off. The caller closes the body and stops the watchdog; that
// Stream does both. Failures are classified as Send's.
func (p Post) Stream(ctx context.Context) (*http.Response, *Watchdog, error) {
	ctx, w := NewWatchdog(ctx, p.Name, p.Timeout)
	resp, err := p.do(ctx)
	if err != nil {
		w.Stop()
		return nil, nil, w.Explain(err)
	}
	w.Touch()
	return resp, w, nil
}

// do sends the request and returns a 2xx response, or the classified failure.
func (p Post) do(ctx context.Context) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		return nil, fmt.Errorf("%s: build request: %w", p.Name, err)
	}
	for k, vs := range p.Header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, TransportError(p.Name, err)
	}
	if resp.StatusCode/100 != 2 {
		body := ReadErrorBody(resp.Body)
		resp.Body.Close()
		return nil, p.Err(resp.StatusCode, resp.Header, body)
	}
	return resp, nil
}

// ExtraHeaders adds litellm_params headers and extra_headers to h.
func ExtraHeaders(h http.Header, params config.LiteLLMParams) {
	for k, v := range params.Headers {
		h.Set(k, v)
	}
	for k, v := range params.ExtraHeaders {
		h.Set(k, v)
	}
}
