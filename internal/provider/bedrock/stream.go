package bedrock

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/llmgate/llmgate/internal/provider/translate"
)

// decoder turns ConverseStream events into chunks.
type decoder struct {
	end    streamEnd
	events <-chan types.ConverseStreamOutput
	// tools maps a toolUse block's index to its OpenAI tool call index.
	tools   map[int32]int
	stopped bool // messageStop was seen
}

// Decode handles one event. The stream ends when the SDK closes the event channel; an end
// before messageStop is an error, since the answer may be cut short.
func (d *decoder) Decode(s *translate.Stream) error {
	ev, ok := <-d.events
	if !ok {
		return d.end.explain(d.stopped)
	}
	switch ev := ev.(type) {
	case *types.ConverseStreamOutputMemberMessageStart:
		s.Delta(0, translate.Delta{Role: translate.RoleAssistant, Content: new(string)})
	case *types.ConverseStreamOutputMemberContentBlockStart:
		if tu, ok := ev.Value.Start.(*types.ContentBlockStartMemberToolUse); ok {
			i := len(d.tools)
			d.tools[aws.ToInt32(ev.Value.ContentBlockIndex)] = i
			s.Delta(0, translate.Delta{ToolCalls: []translate.ToolCallDelta{{
				Index: i, ID: aws.ToString(tu.Value.ToolUseId), Type: "function",
				Function: translate.FunctionCall{Name: aws.ToString(tu.Value.Name)},
			}}})
		}
	case *types.ConverseStreamOutputMemberContentBlockDelta:
		switch delta := ev.Value.Delta.(type) {
		case *types.ContentBlockDeltaMemberText:
			s.Delta(0, translate.TextDelta(delta.Value))
		case *types.ContentBlockDeltaMemberToolUse:
			i, ok := d.tools[aws.ToInt32(ev.Value.ContentBlockIndex)]
			if args := aws.ToString(delta.Value.Input); ok && args != "" {
				s.Delta(0, translate.Delta{ToolCalls: []translate.ToolCallDelta{{
					Index: i, Function: translate.FunctionCall{Arguments: args},
				}}})
			}
		}
	case *types.ConverseStreamOutputMemberMessageStop:
		d.stopped = true
		s.Finish(0, finishReason(ev.Value.StopReason))
	case *types.ConverseStreamOutputMemberMetadata:
		s.SetUsage(usage(ev.Value.Usage))
	}
	// contentBlockStop, reasoning deltas and unknown events carry nothing for OpenAI.
	return nil
}
