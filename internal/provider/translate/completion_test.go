package translate

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// chatOnly is a chat provider that records the chat call it got and answers "Hello" with
// finish reason stop and usage 3/1.
type chatOnly struct{ got *provider.Call }

func (p *chatOnly) Do(_ context.Context, c *provider.Call) (*provider.Response, error) {
	p.got = c
	u := Usage(3, 1, 0, 0)
	cc := NewCompletion("id-1", 7, "m")
	cc.Choices = []Choice{{Message: NewResponseMessage("Hello", nil), FinishReason: FinishStop}}
	cc.Usage = &u
	b, _ := json.Marshal(cc)
	return &provider.Response{Body: b, Usage: u}, nil
}

func (p *chatOnly) Stream(_ context.Context, c *provider.Call) (provider.Stream, error) {
	p.got = c
	dec := scripted{func(s *Stream) error {
		s.Delta(0, Delta{Role: RoleAssistant, Content: new(string)})
		s.Delta(0, TextDelta("Hel"))
		s.Delta(0, Delta{ToolCalls: []ToolCallDelta{{Index: 0, Function: FunctionCall{Arguments: "{"}}}})
		s.Delta(0, TextDelta("lo"))
		s.Finish(0, FinishStop)
		s.SetUsage(Usage(3, 1, 0, 0))
		return nil
	}}
	return NewStream("id-1", 7, "m", true, &dec, nil, nil), nil
}

func TestDoCompletion_AnswersThroughChat(t *testing.T) {
	p := &chatOnly{}
	resp, err := DoCompletion(context.Background(), p, "p", &provider.Call{Kind: provider.Completion,
		Body: []byte(`{"model":"m","prompt":"Say hi","max_tokens":5,"echo":false,"suffix":"x"}`)})
	if err != nil {
		t.Fatalf("DoCompletion: %v", err)
	}
	if p.got.Kind != provider.Chat || string(p.got.Body) != `{"max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"Say hi"}]}],"model":"m"}` {
		t.Errorf("chat call %s %s, want the prompt as one user message and completion-only fields dropped", p.got.Kind, p.got.Body)
	}
	want := `{"id":"id-1","object":"text_completion","created":7,"model":"m","choices":[{"index":0,"text":"Hello","logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
	if string(resp.Body) != want || resp.Usage.TotalTokens != 4 {
		t.Errorf("got %s (usage %+v)\nwant %s", resp.Body, resp.Usage, want)
	}
}

func TestStreamCompletion_KeepsTextFinishAndUsageChunks(t *testing.T) {
	s, err := StreamCompletion(context.Background(), &chatOnly{}, "p", &provider.Call{Kind: provider.Completion,
		Body: []byte(`{"model":"m","prompt":["Say hi"],"stream":true}`)})
	if err != nil {
		t.Fatalf("StreamCompletion: %v", err)
	}
	want := []string{
		`{"id":"id-1","object":"text_completion","created":7,"model":"m","choices":[{"index":0,"text":"Hel","logprobs":null,"finish_reason":null}]}`,
		`{"id":"id-1","object":"text_completion","created":7,"model":"m","choices":[{"index":0,"text":"lo","logprobs":null,"finish_reason":null}]}`,
		`{"id":"id-1","object":"text_completion","created":7,"model":"m","choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"stop"}]}`,
		`{"id":"id-1","object":"text_completion","created":7,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`,
	}
	for i := 0; ; i++ {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			if i != len(want) {
				t.Errorf("%d chunks, want %d", i, len(want))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(want) || string(b) != want[i] {
			t.Errorf("chunk %d = %s", i, b)
		}
	}
	if u := s.Usage(); u != (openai.Usage{PromptTokens: 3, CompletionTokens: 1, TotalTokens: 4}) {
		t.Errorf("Usage = %+v", u)
	}
}

func TestCompletion_RefusesBatchAndTokenPrompts(t *testing.T) {
	for _, prompt := range []string{`["a","b"]`, `[1,2,3]`, `null`} {
		_, err := DoCompletion(context.Background(), &chatOnly{}, "p", &provider.Call{Kind: provider.Completion,
			Body: []byte(`{"prompt":` + prompt + `}`)})
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
			t.Errorf("prompt %s: err = %v, want a 400", prompt, err)
		}
	}
}
