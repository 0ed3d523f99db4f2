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
	Timeout time.Duration // 0: none beyond ctx
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL, bytes.NewReader(p.Body))
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%s: build request: %w", p.Name, err)
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
		cancel()
		return nil, nil, TransportError(p.Name, err)
	}
	if resp.StatusCode/100 != 2 {
		body := ReadErrorBody(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, nil, p.Err(resp.StatusCode, resp.Header, body)
	}
	release := func() error {
		err := resp.Body.Close()
		cancel()
		return err
	}
	return resp, release, nil
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
