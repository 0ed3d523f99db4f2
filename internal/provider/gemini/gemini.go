// Package gemini calls Google AI Studio's Gemini API (generateContent,
// streamGenerateContent and batchEmbedContents) for OpenAI-format chat and embedding
// requests, and answers in OpenAI's format.
package gemini

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
	name = "gemini"
	// DefaultBaseURL is used when litellm_params.api_base is empty.
	DefaultBaseURL = "https://generativelanguage.googleapis.com"
	// KeyEnv is read when litellm_params.api_key is empty.
	KeyEnv = "GEMINI_API_KEY"
)

// Provider calls the Gemini API. The zero value is ready to use.
type Provider struct {
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

var _ provider.Provider = (*Provider)(nil)

// Do makes a non-streaming chat call, a completion call through chat, or an embeddings call.
func (p *Provider) Do(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	switch c.Kind {
	case provider.Embedding:
		return p.embed(ctx, c)
	case provider.Completion:
		return translate.DoCompletion(ctx, p, name, c)
	case provider.Chat:
	default:
		return nil, translate.BadRequest(name, "%s calls are not supported", c.Kind)
	}
	_, req, err := prepare(c)
	if err != nil {
		return nil, err
	}
	var gr generateResponse
	if err := p.call(ctx, c, "generateContent", req, &gr); err != nil {
		return nil, err
	}
	return gr.toOpenAI(c.Model, time.Now().Unix())
}

// Stream makes a streaming chat (or completion) call; Call.Timeout bounds each wait for the
// upstream (see translate.Post.Stream). Gemini reports usage in its chunks.
func (p *Provider) Stream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	switch c.Kind {
	case provider.Completion:
		return translate.StreamCompletion(ctx, p, name, c)
	case provider.Chat:
	default:
		return nil, translate.BadRequest(name, "streaming %s calls is not supported", c.Kind)
	}
	r, req, err := prepare(c)
	if err != nil {
		return nil, err
	}
	post, err := p.post(c, "streamGenerateContent?alt=sse", req)
	if err != nil {
		return nil, err
	}
	resp, w, err := post.Stream(ctx)
	if err != nil {
		return nil, err
	}
	dec := &decoder{events: sse.NewReader(resp.Body), key: apiKey(c), choices: map[int]*choiceState{}}
	return translate.NewStream(translate.NewID("chatcmpl-"), time.Now().Unix(), c.Model, r.IncludeUsage(), dec, resp.Body, w), nil
}

func prepare(c *provider.Call) (*translate.Request, *generateRequest, error) {
	r, err := translate.DecodeRequest(name, c.Body)
	if err != nil {
		return nil, nil, err
	}
	req, err := buildRequest(r, c.Params)
	if err != nil {
		return nil, nil, err
	}
	return r, req, nil
}

func apiKey(c *provider.Call) string {
	if c.Params.APIKey != "" {
		return c.Params.APIKey
	}
	return os.Getenv(KeyEnv)
}

// call posts req to the model's method and decodes the JSON answer into out.
func (p *Provider) call(ctx context.Context, c *provider.Call, method string, req, out any) error {
	post, err := p.post(c, method, req)
	if err != nil {
		return err
	}
	resp, release, err := post.Send(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return translate.TransportError(name, err)
	}
	return nil
}

// post is the request that sends req to {base}/v1beta/models/{model}:{method}, the key in
// x-goog-api-key.
func (p *Provider) post(c *provider.Call, method string, req any) (translate.Post, error) {
	key := apiKey(c)
	if key == "" {
		return translate.Post{}, translate.NoAPIKey(name, KeyEnv)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return translate.Post{}, translate.BadRequest(name, "encode request: %v", err)
	}
	h := http.Header{}
	h.Set("x-goog-api-key", key)
	translate.ExtraHeaders(h, c.Params)
	return translate.Post{
		Name:    name,
		Client:  p.Client,
		URL:     modelURL(c.Params.APIBase, c.Model, method),
		Header:  h,
		Body:    body,
		Timeout: c.Timeout,
		Err: func(status int, h http.Header, body []byte) error {
			return apiError(status, h, body, key)
		},
	}, nil
}

// modelURL accepts api_base as a host or with its API version (".../v1beta").
func modelURL(base, model, method string) string {
	if base == "" {
		base = DefaultBaseURL
	}
	base = strings.TrimRight(base, "/")
	if !strings.HasSuffix(base, "/v1beta") && !strings.HasSuffix(base, "/v1") {
		base += "/v1beta"
	}
	return base + "/models/" + strings.TrimPrefix(model, "models/") + ":" + method
}

// errorBody is Google's error answer, also sent as a stream event.
type errorBody struct {
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Type       string `json:"@type"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	} `json:"error"`
}

// apiError classifies a Gemini error answer (status 0: an error event in a stream, whose
// status is the error's code). A RetryInfo detail gives the retry delay when no header does.
func apiError(status int, h http.Header, body []byte, key string) error {
	var eb errorBody
	_ = json.Unmarshal(body, &eb)
	msg := strings.TrimSpace(string(body))
	var retryDelay time.Duration
	if e := eb.Error; e != nil {
		msg = e.Message
		if status == 0 {
			status = e.Code
		}
		for _, d := range e.Details {
			if strings.HasSuffix(d.Type, "google.rpc.RetryInfo") {
				retryDelay, _ = time.ParseDuration(d.RetryDelay)
			}
		}
	}
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	msg = name + ": " + translate.Redact(msg, key)
	if isContextWindow(msg) {
		return translate.ContextWindowError(name, msg)
	}
	pe := translate.HTTPError(name, status, h, msg)
	if pe.RetryAfter == 0 && retryDelay > 0 {
		pe.RetryAfter = retryDelay
	}
	return pe
}

// isContextWindow matches "The input token count (N) exceeds the maximum number of tokens
// allowed (M)."
func isContextWindow(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "exceeds the maximum number of tokens") ||
		(strings.Contains(m, "input token count") && strings.Contains(m, "exceeds"))
}
