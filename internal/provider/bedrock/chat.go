package bedrock

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// Do makes a Converse call (for chat and completion calls), or InvokeModel calls for
// embeddings and Claude's Messages calls (see Native).
func (p *Provider) Do(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	switch c.Kind {
	case provider.Embedding:
		return p.embed(ctx, c)
	case provider.Messages:
		return p.doMessages(ctx, c)
	case provider.Completion:
		return translate.DoCompletion(ctx, p, name, c)
	case provider.Chat:
	default:
		return nil, translate.BadRequest(name, "%s calls are not supported", c.Kind)
	}
	_, cv, client, err := p.prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, c.Timeout)
	defer cancel()
	out, err := client.Converse(ctx, cv.input(modelID(c.Model)))
	if err != nil {
		return nil, apiError(err)
	}
	return converseResponse(out, c.Model, time.Now().Unix())
}

// Stream makes a ConverseStream call (chat or completion), or an
// InvokeModelWithResponseStream call for Claude's Messages calls; Call.Timeout bounds the
// wait for the answer and then for each event (see translate.Watchdog). Bedrock always
// reports usage (Converse in its metadata event, Claude in message_start and message_delta).
func (p *Provider) Stream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	switch c.Kind {
	case provider.Messages:
		return p.streamMessages(ctx, c)
	case provider.Completion:
		return translate.StreamCompletion(ctx, p, name, c)
	case provider.Chat:
	default:
		return nil, translate.BadRequest(name, "streaming %s calls is not supported", c.Kind)
	}
	r, cv, client, err := p.prepare(ctx, c)
	if err != nil {
		return nil, err
	}
	ctx, w := translate.NewWatchdog(ctx, name, c.Timeout)
	out, err := client.ConverseStream(ctx, cv.streamInput(modelID(c.Model)))
	if err != nil {
		w.Stop()
		return nil, w.Explain(apiError(err))
	}
	w.Touch()
	es := out.GetStream()
	dec := &decoder{end: streamEnd{ctx: ctx, err: es.Err}, events: es.Events(), tools: map[int32]int{}}
	return translate.NewStream(translate.NewID("chatcmpl-"), time.Now().Unix(), c.Model, r.IncludeUsage(), dec, es, w), nil
}

func (p *Provider) prepare(ctx context.Context, c *provider.Call) (*translate.Request, *converse, *bedrockruntime.Client, error) {
	r, err := translate.DecodeRequest(name, c.Body)
	if err != nil {
		return nil, nil, nil, err
	}
	cv, err := buildConverse(r, c.Params)
	if err != nil {
		return nil, nil, nil, err
	}
	client, err := p.client(ctx, c.Params)
	if err != nil {
		return nil, nil, nil, err
	}
	return r, cv, client, nil
}

// finishReason maps Converse's stopReason.
func finishReason(r types.StopReason) string {
	switch r {
	case types.StopReasonMaxTokens, types.StopReasonModelContextWindowExceeded:
		return translate.FinishLength
	case types.StopReasonToolUse:
		return translate.FinishToolCalls
	case types.StopReasonGuardrailIntervened, types.StopReasonContentFiltered:
		return translate.FinishContentFilter
	}
	return translate.FinishStop // end_turn, stop_sequence
}

// usage converts Converse's token usage (input excludes cache reads and writes; the
// writes with a 1-hour TTL, priced apart, are in cacheDetails).
func usage(u *types.TokenUsage) openai.Usage {
	if u == nil {
		return openai.Usage{}
	}
	n := func(p *int32) int { return int(aws.ToInt32(p)) }
	o := translate.Usage(n(u.InputTokens), n(u.OutputTokens), n(u.CacheReadInputTokens), n(u.CacheWriteInputTokens))
	for _, d := range u.CacheDetails {
		if d.Ttl == types.CacheTTLOneHour {
			o.CacheCreation1hInputTokens += n(d.InputTokens)
		}
	}
	return o
}

// documentJSON returns a tool input document as JSON ("{}" when absent).
func documentJSON(d document.Interface) (string, error) {
	if d == nil {
		return "{}", nil
	}
	b, err := d.MarshalSmithyDocument()
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// converseResponse translates a Converse answer into a chat.completion. Text blocks are
// joined; toolUse blocks become tool calls; reasoning blocks are dropped.
func converseResponse(out *bedrockruntime.ConverseOutput, model string, created int64) (*provider.Response, error) {
	var text strings.Builder
	var calls []translate.ToolCall
	if msg, ok := out.Output.(*types.ConverseOutputMemberMessage); ok {
		for _, b := range msg.Value.Content {
			switch b := b.(type) {
			case *types.ContentBlockMemberText:
				text.WriteString(b.Value)
			case *types.ContentBlockMemberToolUse:
				args, err := documentJSON(b.Value.Input)
				if err != nil {
					return nil, translate.TransportError(name, err)
				}
				calls = append(calls, translate.ToolCall{
					ID: aws.ToString(b.Value.ToolUseId), Type: "function",
					Function: translate.FunctionCall{Name: aws.ToString(b.Value.Name), Arguments: args},
				})
			}
		}
	}
	u := usage(out.Usage)
	c := translate.NewCompletion(translate.NewID("chatcmpl-"), created, model)
	c.Choices = []translate.Choice{{
		Message:      translate.NewResponseMessage(text.String(), calls),
		FinishReason: finishReason(out.StopReason),
	}}
	c.Usage = &u
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%s: encode response: %w", name, err)
	}
	return &provider.Response{Body: body, Usage: u}, nil
}
