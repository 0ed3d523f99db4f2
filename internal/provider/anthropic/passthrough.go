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
func (p *Provider) Native(k provider.Kind) bool {
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
	var mr struct {
		Usage *usage `json:"usage"`
	}
	if err := json.Unmarshal(data, &mr); err != nil {
		return nil, translate.TransportError(name, err)
	}
	var u openai.Usage
	if mr.Usage != nil {
		u = mr.Usage.openAI()
	}
	return &provider.Response{Body: data, Usage: u}, nil
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
	dec := &relay{events: sse.NewReader(resp.Body), key: post.Header.Get("x-api-key")}
	return translate.NewStream("", 0, c.Model, false, dec, resp.Body, w), nil
}

// relay passes a Messages stream's events on unchanged and reads their usage: message_start
// has the input counts, message_delta the cumulative output.
type relay struct {
	events  *sse.Reader
	key     string
	usage   usage
	stopped bool
}

func (d *relay) Decode(s *translate.Stream) error {
	if d.stopped {
		return io.EOF
	}
	ev, e, err := nextEvent(d.events)
	if err != nil {
		return err
	}
	switch e.Type {
	case "message_start":
		if e.Message != nil {
			d.usage = e.Message.Usage
		}
	case "message_delta":
		if e.Usage != nil {
			mergeUsage(&d.usage, *e.Usage)
		}
	case "message_stop":
		d.stopped = true
	case "error":
		return apiError(0, http.Header{}, ev.Data, d.key)
	}
	s.SetUsage(d.usage.openAI())
	s.Emit(ev.Data)
	return nil
}
