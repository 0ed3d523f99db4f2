package viachat

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// chatFake answers every chat call with fixed chunks (streamed) or completion (not) and
// records the chat request it got.
type chatFake struct {
	got        map[string]any
	completion string
	chunks     []string
}

func (f *chatFake) record(c *provider.Call) {
	f.got = nil
	_ = json.Unmarshal(c.Body, &f.got)
}

func (f *chatFake) Do(_ context.Context, c *provider.Call) (*provider.Response, error) {
	f.record(c)
	return &provider.Response{Body: []byte(f.completion), Usage: openai.Usage{PromptTokens: 12, CompletionTokens: 5, TotalTokens: 17}}, nil
}

func (f *chatFake) Stream(_ context.Context, c *provider.Call) (provider.Stream, error) {
	f.record(c)
	return &fakeStream{chunks: f.chunks}, nil
}

type fakeStream struct{ chunks []string }

func (s *fakeStream) Next() ([]byte, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return []byte(c), nil
}
func (s *fakeStream) Usage() openai.Usage { return openai.Usage{PromptTokens: 12, CompletionTokens: 5} }
func (s *fakeStream) Close() error        { return nil }

// toolCallChunks stream a reasoning piece, text, then a tool call in two argument pieces.
var toolCallChunks = []string{
	`{"choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"thinking..."}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"Let me look."}}]}`,
	`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}`,
	`{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}`,
	`{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
}

func drain(t *testing.T, s provider.Stream) []map[string]any {
	t.Helper()
	var out []map[string]any
	for {
		b, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		out = append(out, m)
	}
}

func types(evs []map[string]any) string {
	var s []string
	for _, e := range evs {
		t := e["type"].(string)
		if d, ok := e["delta"].(map[string]any); ok && d["type"] != nil {
			t += "/" + d["type"].(string)
		}
		s = append(s, t)
	}
	return strings.Join(s, " ")
}

func TestMessages_RequestTranslation(t *testing.T) {
	f := &chatFake{completion: `{"choices":[{"message":{"content":"ok"},"finish_reason":"stop"}]}`}
	body := `{"model":"m","max_tokens":50,"system":"be brief","stop_sequences":["X"],"metadata":{"user_id":"u1"},
	"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],"tool_choice":{"type":"any","disable_parallel_tool_use":true},
	"messages":[{"role":"user","content":"weather?"},
	{"role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"s"},{"type":"text","text":"Checking."},{"type":"tool_use","id":"t1","name":"get_weather","input":{"city":"Paris"}}]},
	{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"sunny"}]},{"type":"text","text":"and?"},
	{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
	{"role":"system","content":"a reminder"}]}`
	if _, err := Wrap(f).Do(context.Background(), &provider.Call{Kind: provider.Messages, Body: []byte(body), Model: "up"}); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(f.got)
	want := `{"max_tokens":50,"messages":[{"content":[{"text":"be brief","type":"text"}],"role":"system"},{"content":[{"text":"weather?","type":"text"}],"role":"user"},` +
		`{"content":[{"text":"Checking.","type":"text"}],"role":"assistant","tool_calls":[{"function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"t1","type":"function"}]},` +
		`{"content":[{"text":"sunny","type":"text"}],"role":"tool","tool_call_id":"t1"},` +
		`{"content":[{"text":"and?","type":"text"},{"image_url":{"url":"data:image/png;base64,AAAA"},"type":"image_url"}],"role":"user"},` +
		`{"content":[{"text":"a reminder","type":"text"}],"role":"system"}],` +
		`"model":"up","parallel_tool_calls":false,"stop":["X"],"tool_choice":"required","tools":[{"function":{"name":"get_weather","parameters":{"type":"object"}},"type":"function"}],"user":"u1"}`
	if string(got) != want {
		t.Errorf("chat request\n%s\nwant\n%s", got, want)
	}
}

func TestMessages_StreamOfToolCall(t *testing.T) {
	f := &chatFake{chunks: toolCallChunks}
	s, err := Wrap(f).Stream(context.Background(), &provider.Call{Kind: provider.Messages, Body: []byte(`{"model":"m","max_tokens":5,"messages":[]}`), Model: "up"})
	if err != nil {
		t.Fatal(err)
	}
	evs := drain(t, s)
	want := "message_start ping content_block_start content_block_delta/thinking_delta content_block_stop content_block_start content_block_delta/text_delta content_block_stop " +
		"content_block_start content_block_delta/input_json_delta content_block_delta/input_json_delta content_block_stop message_delta message_stop"
	if types(evs) != want {
		t.Errorf("events\n%s\nwant\n%s", types(evs), want)
	}
	tool := evs[8]["content_block"].(map[string]any)
	if tool["id"] != "call_1" || tool["name"] != "get_weather" || evs[8]["index"] != float64(2) {
		t.Errorf("tool_use start %v", evs[8])
	}
	if d := evs[len(evs)-2]["delta"].(map[string]any); d["stop_reason"] != "tool_use" {
		t.Errorf("message_delta %v", evs[len(evs)-2])
	}
}

func TestResponses_StreamOfToolCall(t *testing.T) {
	f := &chatFake{chunks: toolCallChunks}
	s, err := Wrap(f).Stream(context.Background(), &provider.Call{Kind: provider.Responses, Body: []byte(`{"model":"m","input":"hi"}`), Model: "up"})
	if err != nil {
		t.Fatal(err)
	}
	evs := drain(t, s)
	want := "response.created response.in_progress response.output_item.added response.reasoning_summary_part.added response.reasoning_summary_text.delta " +
		"response.reasoning_summary_text.done response.reasoning_summary_part.done response.output_item.done " +
		"response.output_item.added response.content_part.added response.output_text.delta response.output_text.done response.content_part.done response.output_item.done " +
		"response.output_item.added response.function_call_arguments.delta response.function_call_arguments.delta response.function_call_arguments.done response.output_item.done response.completed"
	if types(evs) != want {
		t.Errorf("events\n%s\nwant\n%s", types(evs), want)
	}
	// Clients (Codex) parse the added message item: it must have its content list.
	if item := evs[8]["item"].(map[string]any); item["content"] == nil || item["role"] != "assistant" {
		t.Errorf("output_item.added %v", item)
	}
	// The SDKs append deltas to the added part's text and read its annotations.
	if part := evs[9]["part"].(map[string]any); part["text"] != "" || part["annotations"] == nil {
		t.Errorf("content_part.added %v", evs[9])
	}
	call := evs[18]["item"].(map[string]any)
	if call["type"] != "function_call" || call["call_id"] != "call_1" || call["arguments"] != `{"city":"Paris"}` {
		t.Errorf("function_call done %v", call)
	}
	out := evs[len(evs)-1]["response"].(map[string]any)["output"].([]any)
	if len(out) != 3 {
		t.Errorf("response.completed output %v", out)
	}
}

func TestResponses_RequestTranslation(t *testing.T) {
	f := &chatFake{completion: `{"choices":[{"message":{"content":null,"tool_calls":[{"id":"c2","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}`}
	body := `{"model":"m","instructions":"sys","max_output_tokens":9,"tool_choice":{"type":"function","name":"f"},
	"tools":[{"type":"function","name":"f","parameters":{"type":"object"}},{"type":"web_search"}],
	"input":[{"role":"developer","content":"dev"},{"type":"message","role":"user","content":[{"type":"input_text","text":"go"}]},
	{"type":"reasoning","id":"rs_1","summary":[]},{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"a\":1}"},
	{"type":"function_call_output","call_id":"c1","output":"done"}]}`
	resp, err := Wrap(f).Do(context.Background(), &provider.Call{Kind: provider.Responses, Body: []byte(body), Model: "up"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(f.got)
	want := `{"max_tokens":9,"messages":[{"content":[{"text":"sys","type":"text"}],"role":"system"},{"content":[{"text":"dev","type":"text"}],"role":"system"},` +
		`{"content":[{"text":"go","type":"text"}],"role":"user"},{"content":null,"role":"assistant","tool_calls":[{"function":{"arguments":"{\"a\":1}","name":"f"},"id":"c1","type":"function"}]},` +
		`{"content":[{"text":"done","type":"text"}],"role":"tool","tool_call_id":"c1"}],"model":"up",` +
		`"tool_choice":{"function":{"name":"f"},"type":"function"},"tools":[{"function":{"name":"f","parameters":{"type":"object"}},"type":"function"}]}`
	if string(got) != want {
		t.Errorf("chat request\n%s\nwant\n%s", got, want)
	}
	var r map[string]any
	_ = json.Unmarshal(resp.Body, &r)
	out := r["output"].([]any)[0].(map[string]any)
	if r["status"] != "completed" || out["type"] != "function_call" || out["call_id"] != "c2" || r["usage"].(map[string]any)["input_tokens"] != float64(12) {
		t.Errorf("response %s", resp.Body)
	}
}

func TestNativeKindsAreNotTranslated(t *testing.T) {
	n := &nativeFake{}
	c := &provider.Call{Kind: provider.Messages, Body: []byte(`not even json`)}
	if _, err := Wrap(n).Do(context.Background(), c); err != nil {
		t.Errorf("a native Messages call was translated: %v", err)
	}
}

type nativeFake struct{ chatFake }

func (*nativeFake) Native(k provider.Kind, _ string) bool { return k == provider.Messages }
func (*nativeFake) Do(context.Context, *provider.Call) (*provider.Response, error) {
	return &provider.Response{}, nil
}
