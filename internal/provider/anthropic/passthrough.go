package anthropic

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"

	"github.com/tidwall/sjson"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/sse"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// maxAnswer bounds a non-streamed Messages answer read from the upstream.
const maxAnswer = 64 << 20

// Native reports that Anthropic serves Messages and count_tokens calls itself: they pass
// through with only the model replaced.
func (p *Provider) Native(k provider.Kind, _ string) bool {
	return k == provider.Messages || k == provider.CountTokens
}

// passThrough is the request for a Messages or count_tokens call: the client's body with
// the deployment's model, and the client's anthropic-version and anthropic-beta.
func (p *Provider) passThrough(c *provider.Call) (translate.Post, error) {
	key := c.Params.APIKey
	if key == "" {
		key = os.Getenv(KeyEnv)
	}
	if key == "" {
		return translate.Post{}, translate.NoAPIKey(name, KeyEnv)
	}
	body, err := sjson.SetBytes(c.Body, "model", c.Model)
	if err != nil {
		return translate.Post{}, translate.BadRequest(name, "the request body is not a JSON object")
	}
	h := http.Header{}
	h.Set("x-api-key", key)
	h.Set("anthropic-version", Version)
	for _, k := range []string{"anthropic-version", "anthropic-beta"} {
		if v := c.Header.Values(k); len(v) > 0 {
			h[http.CanonicalHeaderKey(k)] = v
		}
	}
	translate.ExtraHeaders(h, c.Params)
	url := messagesURL(c.Params.APIBase)
	if c.Kind == provider.CountTokens {
		url += "/count_tokens"
	}
	return translate.Post{
		Name: name, Client: p.Client, URL: url, Header: h, Body: body, Timeout: c.Timeout,
		Err: func(status int, h http.Header, body []byte) error { return apiError(status, h, body, key) },
	}, nil
}

func (p *Provider) doPassThrough(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	post, err := p.passThrough(c)
	if err != nil {
		return nil, err
	}
	resp, release, err := post.Send(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, translate.TransportError(name, err)
	}
	u, err := AnswerUsage(data)
	if err != nil {
		return nil, err
	}
	return &provider.Response{Body: data, Usage: u}, nil
}

// AnswerUsage reads the usage of a Messages answer (also Bedrock's InvokeModel answer for
// Claude, which is the same JSON).
func AnswerUsage(answer []byte) (openai.Usage, error) {
	var mr struct {
		Usage *usage `json:"usage"`
	}
	if err := json.Unmarshal(answer, &mr); err != nil {
		return openai.Usage{}, translate.TransportError(name, err)
	}
	if mr.Usage == nil {
		return openai.Usage{}, nil
	}
	return mr.Usage.openAI(), nil
}

func (p *Provider) streamPassThrough(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	post, err := p.passThrough(c)
	if err != nil {
		return nil, err
	}
	resp, w, err := post.Stream(ctx)
	if err != nil {
		return nil, err
	}
	dec := &sseRelay{events: sse.NewReader(resp.Body), key: post.Header.Get("x-api-key")}
	return translate.NewStream("", 0, c.Model, false, dec, resp.Body, w), nil
}

// sseRelay relays a Messages stream read from Anthropic's server-sent events.
type sseRelay struct {
	events *sse.Reader
	key    string
	Relay
}

func (d *sseRelay) Decode(s *translate.Stream) error {
	if d.Stopped() {
		return io.EOF
	}
	ev, err := nextSSE(d.events)
	if err != nil {
		return err
	}
	return d.Pass(s, ev.Data, d.key)
}

// Relay passes a Messages stream's events on unchanged and reads their usage: message_start
// has the input counts, message_delta the cumulative output. Bedrock's
// InvokeModelWithResponseStream carries the same events for Claude, each in a chunk.
type Relay struct {
	usage   usage
	stopped bool
}

// Stopped reports whether message_stop has been passed: the stream is complete.
func (r *Relay) Stopped() bool { return r.stopped }

// Pass passes on one event (its JSON) through s and records its usage. An error event is
// returned as the upstream's error instead (key is redacted from its message).
func (r *Relay) Pass(s *translate.Stream, event []byte, key string) error {
	var e streamEvent
	if err := json.Unmarshal(event, &e); err != nil {
		return translate.TransportError(name, err)
	}
	switch e.Type {
	case "message_start":
		if e.Message != nil {
			r.usage = e.Message.Usage
		}
	case "message_delta":
		if e.Usage != nil {
			mergeUsage(&r.usage, *e.Usage)
		}
	case "message_stop":
		r.stopped = true
	case "error":
		return apiError(0, http.Header{}, event, key)
	}
	s.SetUsage(r.usage.openAI())
	s.Emit(event)
	return nil
}
