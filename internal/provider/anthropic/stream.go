package anthropic

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/llmgate/llmgate/internal/provider/sse"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// streamEvent is any event of a Messages stream; the fields used depend on Type.
type streamEvent struct {
	Type         string            `json:"type"`
	Message      *messagesResponse `json:"message"`       // message_start
	Index        int               `json:"index"`         // content_block_*
	ContentBlock *block            `json:"content_block"` // content_block_start
	Delta        *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`         // text_delta
		PartialJSON string `json:"partial_json"` // input_json_delta
		StopReason  string `json:"stop_reason"`  // message_delta
	} `json:"delta"`
	Usage *usage `json:"usage"` // message_delta
}

// decoder turns Messages stream events into chunks.
type decoder struct {
	events *sse.Reader
	key    string
	usage  usage
	// tools maps a tool_use block's index to its OpenAI tool call index.
	tools map[int]int
}

// Decode handles one event. message_stop ends the stream; the upstream closing before it
// is an error, since the answer may be cut short.
func (d *decoder) Decode(s *translate.Stream) error {
	ev, e, err := nextEvent(d.events)
	if err != nil {
		return err
	}
	switch e.Type {
	case "message_start":
		if e.Message != nil {
			if e.Message.ID != "" {
				s.ID = e.Message.ID
			}
			if e.Message.Model != "" {
				s.Model = e.Message.Model
			}
			d.usage = e.Message.Usage
			s.SetUsage(d.usage.openAI())
		}
		s.Delta(0, translate.Delta{Role: translate.RoleAssistant, Content: new(string)})
	case "content_block_start":
		if b := e.ContentBlock; b != nil {
			switch b.Type {
			case "tool_use":
				i := len(d.tools)
				d.tools[e.Index] = i
				s.Delta(0, translate.Delta{ToolCalls: []translate.ToolCallDelta{{
					Index: i, ID: b.ID, Type: "function", Function: translate.FunctionCall{Name: b.Name},
				}}})
			case "text":
				if b.Text != "" {
					s.Delta(0, translate.TextDelta(b.Text))
				}
			}
		}
	case "content_block_delta":
		if e.Delta == nil {
			break
		}
		switch e.Delta.Type {
		case "text_delta":
			s.Delta(0, translate.TextDelta(e.Delta.Text))
		case "input_json_delta":
			if i, ok := d.tools[e.Index]; ok && e.Delta.PartialJSON != "" {
				s.Delta(0, translate.Delta{ToolCalls: []translate.ToolCallDelta{{
					Index: i, Function: translate.FunctionCall{Arguments: e.Delta.PartialJSON},
				}}})
			}
		}
	case "message_delta":
		if e.Usage != nil {
			mergeUsage(&d.usage, *e.Usage)
			s.SetUsage(d.usage.openAI())
		}
		if e.Delta != nil && e.Delta.StopReason != "" {
			s.Finish(0, finishReason(e.Delta.StopReason))
		}
	case "message_stop":
		return io.EOF
	case "error":
		return apiError(0, http.Header{}, ev.Data, d.key)
	}
	// ping, content_block_stop and unknown events carry nothing for OpenAI.
	return nil
}

// nextEvent reads and decodes the next event of a Messages stream.
func nextEvent(events *sse.Reader) (sse.Event, streamEvent, error) {
	ev, err := nextSSE(events)
	if err != nil {
		return ev, streamEvent{}, err
	}
	var e streamEvent
	if err := json.Unmarshal(ev.Data, &e); err != nil {
		return ev, streamEvent{}, translate.TransportError(name, err)
	}
	return ev, e, nil
}

// nextSSE reads the next event of a Messages stream. The upstream closing is an error: a
// stream ends with message_stop, so the answer may be cut short.
func nextSSE(events *sse.Reader) (sse.Event, error) {
	ev, err := events.Next()
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return ev, translate.TransportError(name, err)
	}
	return ev, nil
}

// mergeUsage takes into dst message_delta's cumulative counts; its input counts, when present,
// replace message_start's.
func mergeUsage(dst *usage, u usage) {
	dst.OutputTokens = u.OutputTokens
	if u.InputTokens > 0 {
		dst.InputTokens = u.InputTokens
	}
	if u.CacheReadInputTokens > 0 {
		dst.CacheReadInputTokens = u.CacheReadInputTokens
	}
	if u.CacheCreationInputTokens > 0 {
		dst.CacheCreationInputTokens = u.CacheCreationInputTokens
	}
	if u.CacheCreation.Ephemeral1hInputTokens > 0 {
		dst.CacheCreation.Ephemeral1hInputTokens = u.CacheCreation.Ephemeral1hInputTokens
	}
	if u.ServiceTier != "" {
		dst.ServiceTier = u.ServiceTier
	}
}
