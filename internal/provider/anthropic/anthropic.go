// Package anthropic calls Anthropic's Messages API (POST /v1/messages) for OpenAI-format chat
// requests, streaming included, and answers in OpenAI's format.
package anthropic

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/sse"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

const (
	name = "anthropic"
	// DefaultBaseURL is used when litellm_params.api_base is empty.
	DefaultBaseURL = "https://api.anthropic.com"
	// KeyEnv is read when litellm_params.api_key is empty.
	KeyEnv = "ANTHROPIC_API_KEY"
	// Version is the anthropic-version header sent.
	Version = "2023-06-01"
)

// Provider calls Anthropic. The zero value is ready to use.
type Provider struct {
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

var _ provider.Provider = (*Provider)(nil)

// Do makes a non-streaming chat call, or a completion call through chat.
func (p *Provider) Do(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	if p.Native(c.Kind, c.Model) {
		return p.doPassThrough(ctx, c)
	}
	if c.Kind == provider.Completion {
		return translate.DoCompletion(ctx, p, name, c)
	}
	pc, err := prepare(c)
	if err != nil {
		return nil, err
	}
	post, err := p.post(c, pc)
	if err != nil {
		return nil, err
	}
	resp, release, err := post.Send(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	var mr messagesResponse
	if err := json.NewDecoder(resp.Body).Decode(&mr); err != nil {
		return nil, translate.TransportError(name, err)
	}
	return mr.toOpenAI(time.Now().Unix())
}

// Stream makes a streaming chat (or completion) call; Call.Timeout bounds each wait for the
// upstream (see translate.Post.Stream). Anthropic always reports usage in its stream.
func (p *Provider) Stream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	if c.Kind == provider.Messages {
		return p.streamPassThrough(ctx, c)
	}
	if c.Kind == provider.Completion {
		return translate.StreamCompletion(ctx, p, name, c)
	}
	pc, err := prepare(c)
	if err != nil {
		return nil, err
	}
	pc.req.Stream = true
	post, err := p.post(c, pc)
	if err != nil {
		return nil, err
	}
	resp, w, err := post.Stream(ctx)
	if err != nil {
		return nil, err
	}
	dec := &decoder{events: sse.NewReader(resp.Body), key: pc.key, tools: map[int]int{}}
	return translate.NewStream(translate.NewID("chatcmpl-"), time.Now().Unix(), c.Model, pc.includeUsage, dec, resp.Body, w), nil
}

// prepared is a translated call.
type prepared struct {
	req          *messagesRequest
	key          string
	includeUsage bool
}

// prepare checks the call and translates its body.
func prepare(c *provider.Call) (*prepared, error) {
	if c.Kind != provider.Chat {
		return nil, translate.BadRequest(name, "%s calls are not supported", c.Kind)
	}
	key := c.Params.APIKey
	if key == "" {
		key = os.Getenv(KeyEnv)
	}
	if key == "" {
		return nil, translate.NoAPIKey(name, KeyEnv)
	}
	r, err := translate.DecodeRequest(name, c.Body)
	if err != nil {
		return nil, err
	}
	req, err := buildRequest(r, c.Model, c.Params)
	if err != nil {
		return nil, err
	}
	return &prepared{req: req, key: key, includeUsage: r.IncludeUsage()}, nil
}

// post is the Messages API request for pc.
func (p *Provider) post(c *provider.Call, pc *prepared) (translate.Post, error) {
	key := pc.key
	body, err := json.Marshal(pc.req)
	if err != nil {
		return translate.Post{}, translate.BadRequest(name, "encode request: %v", err)
	}
	h := http.Header{}
	h.Set("x-api-key", key)
	h.Set("anthropic-version", Version)
	translate.ExtraHeaders(h, c.Params)
	return translate.Post{
		Name:    name,
		Client:  p.Client,
		URL:     messagesURL(c.Params.APIBase),
		Header:  h,
		Body:    body,
		Timeout: c.Timeout,
		Err: func(status int, h http.Header, body []byte) error {
			return apiError(status, h, body, key)
		},
	}, nil
}

// messagesURL accepts api_base as a host ("https://host"), with /v1, or the full endpoint.
func messagesURL(base string) string {
	if base == "" {
		base = DefaultBaseURL
	}
	base = strings.TrimRight(base, "/")
	switch {
	case strings.HasSuffix(base, "/v1/messages"):
		return base
	case strings.HasSuffix(base, "/v1"):
		return base + "/messages"
	}
	return base + "/v1/messages"
}

// errorBody is Anthropic's error answer and stream error event.
type errorBody struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorStatus is the HTTP status Anthropic uses for each error type (for stream error events).
var errorStatus = map[string]int{
	"invalid_request_error": http.StatusBadRequest,
	"authentication_error":  http.StatusUnauthorized,
	"permission_error":      http.StatusForbidden,
	"not_found_error":       http.StatusNotFound,
	"request_too_large":     http.StatusRequestEntityTooLarge,
	"rate_limit_error":      http.StatusTooManyRequests,
	"api_error":             http.StatusInternalServerError,
	"timeout_error":         http.StatusGatewayTimeout,
	"overloaded_error":      translate.StatusOverloaded,
}

// apiError classifies an Anthropic error answer (status 0: a stream error event, whose
// status follows from the error type).
func apiError(status int, h http.Header, body []byte, key string) error {
	var eb errorBody
	_ = json.Unmarshal(body, &eb)
	msg := eb.Error.Message
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	if status == 0 {
		status = errorStatus[eb.Error.Type]
		if status == 0 {
			status = http.StatusInternalServerError
		}
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	msg = name + ": " + translate.Redact(msg, key)
	if isContextWindow(msg) {
		return translate.ContextWindowError(name, msg)
	}
	return translate.HTTPError(name, status, h, msg)
}

func isContextWindow(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "prompt is too long") ||
		strings.Contains(m, "exceed context limit") ||
		strings.Contains(m, "context window")
}
