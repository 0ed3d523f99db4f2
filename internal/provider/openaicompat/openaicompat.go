// Package openaicompat calls OpenAI and every upstream that speaks OpenAI's API (Groq,
// Together, Fireworks, DeepSeek, Mistral, vLLM, Ollama, ...). The request body is forwarded
// with only "model" replaced, and answers pass through unchanged: the package reads only
// usage and errors. Azure OpenAI reuses it with its own Resolver.
package openaicompat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/sse"
)

// MaxResponseSize bounds a non-streamed answer (large embedding batches are tens of MiB).
const MaxResponseSize = 64 << 20

// maxErrorSize bounds the part of an error answer that is read.
const maxErrorSize = 64 << 10

// Endpoint is where and how one call is sent.
type Endpoint struct {
	URL    string      // complete URL, query included
	Header http.Header // authentication and extra headers
	// Secret is the API key; it is removed from any upstream text put into an error.
	Secret string
	// StreamOptions is true when the upstream accepts stream_options.include_usage.
	StreamOptions bool
}

// Resolver returns the endpoint of a call. Its errors describe configuration problems
// (missing api_base or key) and must not contain secrets.
type Resolver func(c *provider.Call) (Endpoint, error)

// Client calls one OpenAI-compatible provider. It implements provider.Provider.
type Client struct {
	name      string
	hc        *http.Client
	resolve   Resolver
	responses bool // the upstream serves the Responses API
}

var _ provider.Provider = (*Client)(nil)

// New returns a Client for the provider s, sending requests with hc.
func New(hc *http.Client, s Spec) *Client {
	c := NewWithResolver(s.Prefix, hc, s.Resolve)
	c.responses = s.Responses
	return c
}

// WithResponses makes c pass calls of kind Responses through to its upstream.
func (c *Client) WithResponses() *Client {
	c.responses = true
	return c
}

// Native reports the kinds c passes through in their own format: Responses and the calls
// on stored responses, where the upstream serves them.
func (c *Client) Native(k provider.Kind, _ string) bool {
	return (k == provider.Responses || k == provider.StoredResponse) && c.responses
}

// NewWithResolver returns a Client named name (used in errors) that sends each call where
// resolve says.
func NewWithResolver(name string, hc *http.Client, resolve Resolver) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{name: name, hc: hc, resolve: resolve}
}

// errTimeout is the cancellation cause when Call.Timeout passes.
var errTimeout = errors.New("upstream timeout")

// Do makes a non-streaming call. Call.Timeout bounds the whole call.
func (c *Client) Do(ctx context.Context, call *provider.Call) (*provider.Response, error) {
	method := http.MethodPost
	ep, body, err := c.prepare(call, false)
	if call.Kind == provider.StoredResponse && err == nil {
		method, ep, err = c.stored(call, ep)
	}
	if err != nil {
		return nil, err
	}
	if call.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, call.Timeout, errTimeout)
		defer cancel()
	}
	resp, err := c.send(ctx, ep, method, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := readBody(resp, MaxResponseSize)
	if errors.Is(err, errTooLarge) {
		return nil, &provider.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Provider: c.name,
			Message: fmt.Sprintf("upstream answer larger than %d bytes", MaxResponseSize)}
	}
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if !gjson.ValidBytes(data) {
		return nil, &provider.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Provider: c.name,
			Message: "upstream answered with invalid JSON", Retryable: true}
	}
	if e := gjson.GetBytes(data, "error"); e.Exists() && e.Type != gjson.Null {
		// Some upstreams (OpenRouter) answer 200 with an error object.
		return nil, c.errorFromBody(0, resp.Header, data, ep.Secret)
	}
	var u openai.Usage
	if r := gjson.GetBytes(data, "usage"); r.IsObject() {
		u = parseUsage(r, gjson.GetBytes(data, "service_tier"))
	}
	return &provider.Response{Body: data, Usage: u}, nil
}

// Stream makes a streaming call. Call.Timeout bounds the wait for the answer's headers and
// then for each event, as the read timeout of LiteLLM's HTTP client does, so a long answer
// that keeps streaming is not cut off.
func (c *Client) Stream(ctx context.Context, call *provider.Call) (provider.Stream, error) {
	if call.Kind.InputOnly() {
		return nil, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Provider: c.name,
			Message: string(call.Kind) + "s cannot be streamed"}
	}
	ep, body, err := c.prepare(call, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	s := &stream{c: c, ep: ep, ctx: ctx, cancel: cancel, clientUsage: clientWantsUsage(call), responses: call.Kind == provider.Responses}
	if call.Timeout > 0 {
		s.timeout = call.Timeout
		s.timer = time.AfterFunc(call.Timeout, func() { cancel(errTimeout) })
	}
	resp, err := c.send(ctx, ep, http.MethodPost, body)
	if err != nil {
		s.stop()
		return nil, err
	}
	if s.timer != nil {
		s.timer.Reset(s.timeout)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		// Not a stream: an error object, or an upstream that ignored "stream".
		defer resp.Body.Close()
		defer s.stop()
		data, err := readBody(resp, maxErrorSize)
		if err != nil {
			return nil, c.transportError(ctx, err)
		}
		return nil, c.errorFromBody(0, resp.Header, data, ep.Secret)
	}
	s.body = resp.Body
	s.events = sse.NewReader(resp.Body)
	return s, nil
}

// prepare resolves the endpoint and builds the upstream body.
func (c *Client) prepare(call *provider.Call, stream bool) (Endpoint, []byte, error) {
	if _, err := Path(call.Kind); err != nil {
		return Endpoint{}, nil, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest,
			Provider: c.name, Message: err.Error()}
	}
	ep, err := c.resolve(call)
	if err != nil {
		// A misconfigured deployment: another deployment of the group may work.
		return Endpoint{}, nil, &provider.Error{Status: http.StatusInternalServerError, Type: openai.TypeServer,
			Provider: c.name, Message: err.Error(), Retryable: true}
	}
	if call.Kind == provider.StoredResponse {
		return ep, nil, nil
	}
	mode := noStream
	if stream {
		mode = streamPlain
		if ep.StreamOptions {
			mode = streamWithUsage
		}
	}
	body, err := rewriteBody(call.Body, call.Model, mode)
	if call.Kind == provider.Responses {
		// Responses requests pass through whole: their metadata and stream fields are OpenAI's.
		body, err = sjson.SetBytes(call.Body, "model", call.Model)
	}
	if err == nil {
		body, err = defaultMaxTokens(body, call)
	}
	if err != nil {
		return Endpoint{}, nil, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest,
			Provider: c.name, Message: err.Error()}
	}
	return ep, body, nil
}

// defaultMaxTokens sets max_tokens to litellm_params.max_tokens on a chat or completion
// request that sets no limit, as LiteLLM passes it: the gateway's reservation counts on it.
func defaultMaxTokens(body []byte, call *provider.Call) ([]byte, error) {
	r := call.Request
	if call.Params.MaxTokens <= 0 || r == nil || r.MaxTokens != nil || r.MaxCompTokens != nil ||
		(call.Kind != provider.Chat && call.Kind != provider.Completion) {
		return body, nil
	}
	return sjson.SetBytes(body, "max_tokens", call.Params.MaxTokens)
}

// storedCalls are the calls on a stored response: method and the part after the id.
var storedCalls = map[[2]string]bool{
	{http.MethodGet, ""}: true, {http.MethodDelete, ""}: true,
	{http.MethodGet, provider.StoredInputItems}: true, {http.MethodPost, provider.StoredCancel}: true,
}

// stored returns the method and endpoint of a call on a stored response: the Responses
// endpoint ep plus /{id} (and /input_items or /cancel), with the client's query added to
// ep's.
func (c *Client) stored(call *provider.Call, ep Endpoint) (string, Endpoint, error) {
	st := call.Stored
	if st == nil || st.ID == "" || !storedCalls[[2]string{st.Method, st.Part}] {
		return "", Endpoint{}, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Provider: c.name,
			Message: "a stored-response call needs a response id and GET, DELETE, GET input_items or POST cancel"}
	}
	u, err := url.Parse(ep.URL)
	if err != nil {
		return "", Endpoint{}, &provider.Error{Status: http.StatusInternalServerError, Type: openai.TypeServer, Provider: c.name,
			Message: "invalid upstream URL"}
	}
	// The id is one path segment, escaped: never a way to another endpoint.
	sub := ""
	if st.Part != "" {
		sub = "/" + st.Part
	}
	u.RawPath = strings.TrimRight(u.EscapedPath(), "/") + "/" + url.PathEscape(st.ID) + sub
	u.Path = strings.TrimRight(u.Path, "/") + "/" + st.ID + sub
	if st.Query != "" {
		q := u.Query()
		extra, err := url.ParseQuery(st.Query)
		if err != nil {
			return "", Endpoint{}, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Provider: c.name,
				Message: "invalid query string"}
		}
		for k, vs := range extra {
			if q.Has(k) { // the deployment's own parameters (api-version) stay
				continue
			}
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	ep.URL = u.String()
	return st.Method, ep, nil
}

// send sends body (nil: none) and returns a 2xx response; any other status becomes a
// *provider.Error.
func (c *Client) send(ctx context.Context, ep Endpoint, method string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ep.URL, rd)
	if err != nil {
		return nil, &provider.Error{Status: http.StatusInternalServerError, Type: openai.TypeServer, Provider: c.name,
			Message: "invalid upstream URL", Retryable: true}
	}
	for k, v := range ep.Header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := readBody(resp, maxErrorSize) // classify what arrived, even if cut
	return nil, c.errorFromBody(resp.StatusCode, resp.Header, data, ep.Secret)
}

// errTooLarge is readBody's error for an answer over its limit.
var errTooLarge = errors.New("answer too large")

// readBody reads resp's body, presized by Content-Length when known. Past limit bytes it
// returns the first limit bytes and errTooLarge.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	n := resp.ContentLength
	if n < 0 || n > limit {
		n = 512
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+1))
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		return buf.Bytes(), err
	}
	if int64(buf.Len()) > limit {
		return buf.Bytes()[:limit], errTooLarge
	}
	return buf.Bytes(), nil
}

// clientWantsUsage reports whether the client asked for the usage chunk of a stream.
func clientWantsUsage(call *provider.Call) bool {
	if call.Request != nil {
		return call.Request.StreamOptions != nil && call.Request.StreamOptions.IncludeUsage
	}
	return gjson.GetBytes(call.Body, "stream_options.include_usage").Bool()
}

// parseUsage reads an OpenAI usage object: chat's, or the Responses API's (input_tokens,
// output_tokens, input_tokens_details.cached_tokens), with the answer's service_tier.
func parseUsage(r, serviceTier gjson.Result) openai.Usage {
	if in := r.Get("input_tokens"); in.Exists() {
		u := openai.Usage{PromptTokens: int(in.Int()), CompletionTokens: int(r.Get("output_tokens").Int()), TotalTokens: int(r.Get("total_tokens").Int()),
			ServiceTier: serviceTier.Str}
		if ct := r.Get("input_tokens_details.cached_tokens"); ct.Int() > 0 {
			u.PromptTokensDetails = &openai.PromptTokensDetails{CachedTokens: int(ct.Int())}
		}
		if u.TotalTokens == 0 {
			u.TotalTokens = u.PromptTokens + u.CompletionTokens
		}
		return u
	}
	u := openai.Usage{
		PromptTokens:             int(r.Get("prompt_tokens").Int()),
		CompletionTokens:         int(r.Get("completion_tokens").Int()),
		TotalTokens:              int(r.Get("total_tokens").Int()),
		CacheCreationInputTokens: int(r.Get("cache_creation_input_tokens").Int()),
		ServiceTier:              serviceTier.Str,
	}
	if ct := r.Get("prompt_tokens_details.cached_tokens"); ct.Exists() {
		u.PromptTokensDetails = &openai.PromptTokensDetails{CachedTokens: int(ct.Int())}
	}
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u
}
