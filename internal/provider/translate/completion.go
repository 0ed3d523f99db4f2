package translate

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// Legacy completions (/v1/completions) on chat-only providers, as LiteLLM serves them: the
// prompt becomes one user message, and the chat answer's text becomes the completion's text.

// DoCompletion makes completion call c through p's chat calls.
func DoCompletion(ctx context.Context, p provider.Provider, name string, c *provider.Call) (*provider.Response, error) {
	cc, err := chatCall(name, c)
	if err != nil {
		return nil, err
	}
	resp, err := p.Do(ctx, cc)
	if err != nil {
		return nil, err
	}
	var chat Completion
	if err := json.Unmarshal(resp.Body, &chat); err != nil {
		return nil, fmt.Errorf("%s: read chat answer: %w", name, err)
	}
	tc := TextCompletion{ID: chat.ID, Object: "text_completion", Created: chat.Created, Model: chat.Model, Usage: chat.Usage}
	for _, ch := range chat.Choices {
		text := ""
		if ch.Message.Content != nil {
			text = *ch.Message.Content
		}
		reason := ch.FinishReason
		tc.Choices = append(tc.Choices, TextChoice{Index: ch.Index, Text: text, FinishReason: &reason})
	}
	body, err := json.Marshal(tc)
	if err != nil {
		return nil, fmt.Errorf("%s: encode completion: %w", name, err)
	}
	return &provider.Response{Body: body, Usage: resp.Usage}, nil
}

// StreamCompletion makes streaming completion call c through p's chat streams.
func StreamCompletion(ctx context.Context, p provider.Provider, name string, c *provider.Call) (provider.Stream, error) {
	cc, err := chatCall(name, c)
	if err != nil {
		return nil, err
	}
	s, err := p.Stream(ctx, cc)
	if err != nil {
		return nil, err
	}
	return &completionStream{Stream: s, name: name}, nil
}

// chatCall rewrites a completion call as a chat call. Fields other than the prompt and the
// completion-only ones (suffix, echo, logprobs, best_of) are kept.
func chatCall(name string, c *provider.Call) (*provider.Call, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(c.Body, &body); err != nil {
		return nil, BadRequest(name, "invalid completion request: %v", err)
	}
	var prompt Strings
	if err := json.Unmarshal(body["prompt"], &prompt); err != nil || len(prompt) != 1 {
		return nil, BadRequest(name, "prompt: want one string (batches and token arrays are not supported by this provider)")
	}
	for _, k := range []string{"prompt", "suffix", "echo", "logprobs", "best_of"} {
		delete(body, k)
	}
	msgs, err := json.Marshal([]Message{{Role: RoleUser, Content: Content{{Type: PartText, Text: prompt[0]}}}})
	if err != nil {
		return nil, fmt.Errorf("%s: encode messages: %w", name, err)
	}
	body["messages"] = msgs
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%s: encode chat request: %w", name, err)
	}
	cc := *c
	cc.Kind, cc.Body = provider.Chat, b
	return &cc, nil
}

// TextCompletion is a text_completion object, whole or streamed.
type TextCompletion struct {
	ID      string        `json:"id"`
	Object  string        `json:"object"`
	Created int64         `json:"created"`
	Model   string        `json:"model"`
	Choices []TextChoice  `json:"choices"`
	Usage   *openai.Usage `json:"usage,omitempty"`
}

// TextChoice is one choice of a text_completion: its text, or a piece of it in a stream.
type TextChoice struct {
	Index        int     `json:"index"`
	Text         string  `json:"text"`
	Logprobs     any     `json:"logprobs"` // always null
	FinishReason *string `json:"finish_reason"`
}

// completionStream turns chat chunks into text_completion chunks, skipping those with neither
// text nor a finish reason (the role announcement, tool call pieces) unless they carry usage.
type completionStream struct {
	provider.Stream
	name string
}

func (s *completionStream) Next() ([]byte, error) {
	for {
		b, err := s.Stream.Next()
		if err != nil {
			return nil, err
		}
		var chunk Chunk
		if err := json.Unmarshal(b, &chunk); err != nil {
			return nil, fmt.Errorf("%s: read chat chunk: %w", s.name, err)
		}
		tc := TextCompletion{ID: chunk.ID, Object: "text_completion", Created: chunk.Created, Model: chunk.Model,
			Choices: []TextChoice{}, Usage: chunk.Usage}
		for _, ch := range chunk.Choices {
			text := ""
			if ch.Delta.Content != nil {
				text = *ch.Delta.Content
			}
			if text != "" || ch.FinishReason != nil {
				tc.Choices = append(tc.Choices, TextChoice{Index: ch.Index, Text: text, FinishReason: ch.FinishReason})
			}
		}
		if len(tc.Choices) == 0 && tc.Usage == nil {
			continue
		}
		out, err := json.Marshal(tc)
		if err != nil {
			return nil, fmt.Errorf("%s: encode completion chunk: %w", s.name, err)
		}
		return out, nil
	}
}
