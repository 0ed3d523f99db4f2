package bedrock

import (
	"context"
	"io"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/tidwall/sjson"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/anthropic"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// anthropicVersion is the anthropic_version Bedrock's Claude models take in the body.
const anthropicVersion = "bedrock-2023-05-31"

// Native reports that Bedrock serves Messages calls to Claude models itself, in Anthropic's
// format over InvokeModel, so thinking, cache_control, tool use and betas reach the model as
// the client sent them. A "converse/" route asks for Converse: such calls, and Messages
// calls to other models, are translated to chat. "invoke/" asks for InvokeModel whatever
// the id says (an application inference profile's ARN names no model).
func (p *Provider) Native(k provider.Kind, model string) bool {
	if k != provider.Messages || strings.HasPrefix(model, "converse/") {
		return false
	}
	return strings.HasPrefix(model, "invoke/") || strings.Contains(model, "anthropic.claude")
}

// prepareInvoke makes the InvokeModel call for a Messages call: the client's body without
// model and stream (Bedrock refuses keys it does not know), with Bedrock's
// anthropic_version and the anthropic-beta header as anthropic_beta.
func (p *Provider) prepareInvoke(ctx context.Context, c *provider.Call) (*bedrockruntime.Client, *string, []byte, error) {
	body, err := invokeBody(c)
	if err != nil {
		return nil, nil, nil, err
	}
	client, err := p.client(ctx, c.Params)
	if err != nil {
		return nil, nil, nil, err
	}
	return client, aws.String(modelID(c.Model)), body, nil
}

func invokeBody(c *provider.Call) (body []byte, err error) {
	body = c.Body
	for _, k := range []string{"model", "stream"} {
		if body, err = sjson.DeleteBytes(body, k); err != nil {
			return nil, translate.BadRequest(name, "the request body is not a JSON object")
		}
	}
	if body, err = sjson.SetBytes(body, "anthropic_version", anthropicVersion); err != nil {
		return nil, translate.BadRequest(name, "the request body is not a JSON object")
	}
	var betas []string
	for _, v := range c.Header.Values("anthropic-beta") {
		for _, b := range strings.Split(v, ",") {
			if b = strings.TrimSpace(b); b != "" {
				betas = append(betas, b)
			}
		}
	}
	if len(betas) > 0 {
		if body, err = sjson.SetBytes(body, "anthropic_beta", betas); err != nil {
			return nil, translate.BadRequest(name, "the request body is not a JSON object")
		}
	}
	return body, nil
}

// doMessages answers a Messages call with InvokeModel: Claude's answer is Anthropic's JSON.
func (p *Provider) doMessages(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	client, model, body, err := p.prepareInvoke(ctx, c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, c.Timeout)
	defer cancel()
	out, err := client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
		ModelId: model, Body: body,
		ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
	})
	if err != nil {
		return nil, apiError(err)
	}
	u, err := anthropic.AnswerUsage(out.Body)
	if err != nil {
		return nil, err
	}
	return &provider.Response{Body: out.Body, Usage: u}, nil
}

// streamMessages answers a streamed Messages call with InvokeModelWithResponseStream, whose
// chunks each carry one of Anthropic's events: they are relayed as they come.
func (p *Provider) streamMessages(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	client, model, body, err := p.prepareInvoke(ctx, c)
	if err != nil {
		return nil, err
	}
	ctx, w := translate.NewWatchdog(ctx, name, c.Timeout)
	out, err := client.InvokeModelWithResponseStream(ctx, &bedrockruntime.InvokeModelWithResponseStreamInput{
		ModelId: model, Body: body,
		ContentType: aws.String("application/json"), Accept: aws.String("application/json"),
	})
	if err != nil {
		w.Stop()
		return nil, w.Explain(apiError(err))
	}
	w.Touch()
	es := out.GetStream()
	dec := &relay{end: streamEnd{ctx: ctx, err: es.Err}, events: es.Events()}
	return translate.NewStream("", 0, c.Model, false, dec, es, w), nil
}

// relay passes on the Anthropic events of an InvokeModelWithResponseStream answer.
type relay struct {
	end    streamEnd
	events <-chan types.ResponseStream
	anthropic.Relay
}

func (d *relay) Decode(s *translate.Stream) error {
	if d.Stopped() {
		return io.EOF
	}
	ev, ok := <-d.events
	if !ok {
		return d.end.explain(false)
	}
	if chunk, ok := ev.(*types.ResponseStreamMemberChunk); ok {
		return d.Pass(s, chunk.Value.Bytes, "")
	}
	return nil // an event type newer than the SDK knows
}

// streamEnd explains the end of an SDK event stream.
type streamEnd struct {
	ctx context.Context
	err func() error // the event stream's error, once its channel is closed
}

// explain is the error for the event channel's close: the call's cancellation or timeout,
// the exception Bedrock sent, io.ErrUnexpectedEOF when it closed before the model's last
// event (stopped false: the answer may be cut short), else io.EOF.
func (e streamEnd) explain(stopped bool) error {
	if err := e.ctx.Err(); err != nil {
		return translate.TransportError(name, err)
	}
	if err := e.err(); err != nil {
		return apiError(err)
	}
	if !stopped {
		return translate.TransportError(name, io.ErrUnexpectedEOF)
	}
	return io.EOF
}
