package gemini

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/llmgate/llmgate/internal/provider/sse"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// decoder turns streamGenerateContent's SSE chunks (each a generateResponse) into chunks.
type decoder struct {
	events   *sse.Reader
	key      string
	choices  map[int]*choiceState
	started  bool // the first chunk was seen
	finished bool // a candidate reported its finishReason
}

type choiceState struct {
	calls int // tool calls so far: the next call's index
}

// Decode handles one SSE chunk. The stream ends at the upstream's end; an end before any
// finishReason is an error, since the answer may be cut short.
func (d *decoder) Decode(s *translate.Stream) error {
	ev, err := d.events.Next()
	if errors.Is(err, io.EOF) {
		if !d.finished {
			return translate.TransportError(name, io.ErrUnexpectedEOF)
		}
		return io.EOF
	}
	if err != nil {
		return translate.TransportError(name, err)
	}
	var chunk struct {
		generateResponse
		errorBody
	}
	if err := json.Unmarshal(ev.Data, &chunk); err != nil {
		return translate.TransportError(name, err)
	}
	if chunk.Error != nil {
		return apiError(0, http.Header{}, ev.Data, d.key)
	}
	gr := &chunk.generateResponse
	if !d.started {
		d.started = true
		if gr.ResponseID != "" {
			s.ID = gr.ResponseID
		}
		if gr.ModelVersion != "" {
			s.Model = gr.ModelVersion
		}
	}
	if gr.UsageMetadata != nil {
		s.SetUsage(gr.UsageMetadata.openAI())
	}
	if len(gr.Candidates) == 0 && gr.PromptFeedback != nil && gr.PromptFeedback.BlockReason != "" {
		d.choice(s, 0)
		s.Finish(0, translate.FinishContentFilter)
		d.finished = true
	}
	for _, cand := range gr.Candidates {
		st := d.choice(s, cand.Index)
		for _, p := range cand.Content.Parts {
			switch {
			case p.Thought:
			case p.FunctionCall != nil:
				tc := toolCall(p)
				s.Delta(cand.Index, translate.Delta{ToolCalls: []translate.ToolCallDelta{{
					Index: st.calls, ID: tc.ID, Type: tc.Type, Function: tc.Function,
				}}})
				st.calls++
			case p.Text != "":
				s.Delta(cand.Index, translate.TextDelta(p.Text))
			}
		}
		if cand.FinishReason != "" {
			s.Finish(cand.Index, finishReason(cand.FinishReason, st.calls > 0))
			d.finished = true
		}
	}
	return nil
}

// choice returns candidate i's state, announcing the assistant role on first sight.
func (d *decoder) choice(s *translate.Stream, i int) *choiceState {
	st, ok := d.choices[i]
	if !ok {
		st = &choiceState{}
		d.choices[i] = st
		s.Delta(i, translate.Delta{Role: translate.RoleAssistant, Content: new(string)})
	}
	return st
}
