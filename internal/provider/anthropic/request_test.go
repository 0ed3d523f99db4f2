package anthropic

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

func TestBuildRequest(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		params config.LiteLLMParams
		want   string
	}{
		{
			name: "system messages become system blocks and max_tokens defaults to 4096",
			body: `{"model":"m","messages":[
				{"role":"system","content":"Be brief."},
				{"role":"developer","content":[{"type":"text","text":"Answer in French."}]},
				{"role":"user","content":"Hi"}]}`,
			want: `{"model":"claude-x","max_tokens":4096,
				"system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Answer in French."}],
				"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
		},
		{
			name: "sampling fields, stop string and user map to Anthropic's names",
			body: `{"model":"m","max_tokens":100,"temperature":0.2,"top_p":0.9,"stop":"END","user":"u-1",
				"messages":[{"role":"user","content":"Hi"}]}`,
			want: `{"model":"claude-x","max_tokens":100,"temperature":0.2,"top_p":0.9,"stop_sequences":["END"],
				"metadata":{"user_id":"u-1"},"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
		},
		{
			name: "max_completion_tokens wins over max_tokens",
			body: `{"model":"m","max_tokens":100,"max_completion_tokens":200,"messages":[{"role":"user","content":"Hi"}]}`,
			want: `{"model":"claude-x","max_tokens":200,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
		},
		{
			name:   "litellm_params max_tokens is the default when the request sets none",
			body:   `{"model":"m","messages":[{"role":"user","content":"Hi"}]}`,
			params: config.LiteLLMParams{MaxTokens: 1024},
			want:   `{"model":"claude-x","max_tokens":1024,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
		},
		{
			name: "consecutive user messages merge into one turn",
			body: `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
			want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[
				{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
		},
		{
			name: "tool calls become tool_use and tool results one user turn of tool_result blocks",
			body: `{"model":"m","messages":[
				{"role":"user","content":"Weather in Paris and Rome?"},
				{"role":"assistant","content":"Checking.","tool_calls":[
					{"id":"call_1","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
					{"id":"call_2","type":"function","function":{"name":"weather","arguments":""}}]},
				{"role":"tool","tool_call_id":"call_1","content":"18C"},
				{"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"21C"}]},
				{"role":"user","content":"Thanks"}]}`,
			want: `{"model":"claude-x","max_tokens":4096,"messages":[
				{"role":"user","content":[{"type":"text","text":"Weather in Paris and Rome?"}]},
				{"role":"assistant","content":[{"type":"text","text":"Checking."},
					{"type":"tool_use","id":"call_1","name":"weather","input":{"city":"Paris"}},
					{"type":"tool_use","id":"call_2","name":"weather","input":{}}]},
				{"role":"user","content":[
					{"type":"tool_result","tool_use_id":"call_1","content":[{"type":"text","text":"18C"}]},
					{"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"21C"}]},
					{"type":"text","text":"Thanks"}]}]}`,
		},
		{
			name: "data URL images become base64 sources and http URLs url sources",
			body: `{"model":"m","messages":[{"role":"user","content":[
				{"type":"text","text":"Compare"},
				{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
				{"type":"image_url","image_url":{"url":"https://example.com/cat.jpg","detail":"high"}}]}]}`,
			want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[
				{"type":"text","text":"Compare"},
				{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}},
				{"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}]}]}`,
		},
		{
			name: "tools map to input_schema and required tool_choice to any",
			body: `{"model":"m","messages":[{"role":"user","content":"Hi"}],"tool_choice":"required","tools":[
				{"type":"function","function":{"name":"weather","description":"Get weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
				{"type":"function","function":{"name":"now"}}]}`,
			want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],
				"tools":[{"name":"weather","description":"Get weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
					{"name":"now","input_schema":{"type":"object","properties":{}}}],
				"tool_choice":{"type":"any"}}`,
		},
		{
			name: "a named tool_choice becomes type tool and parallel_tool_calls false disables parallel use",
			body: `{"model":"m","messages":[{"role":"user","content":"Hi"}],"parallel_tool_calls":false,
				"tool_choice":{"type":"function","function":{"name":"now"}},"tools":[{"type":"function","function":{"name":"now"}}]}`,
			want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],
				"tools":[{"name":"now","input_schema":{"type":"object","properties":{}}}],
				"tool_choice":{"type":"tool","name":"now","disable_parallel_tool_use":true}}`,
		},
		{
			name: "tool_choice none is sent as none",
			body: `{"model":"m","messages":[{"role":"user","content":"Hi"}],"tool_choice":"none","tools":[{"type":"function","function":{"name":"now"}}]}`,
			want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],
				"tools":[{"name":"now","input_schema":{"type":"object","properties":{}}}],"tool_choice":{"type":"none"}}`,
		},
		{
			name: "tool_choice without tools is dropped",
			body: `{"model":"m","messages":[{"role":"user","content":"Hi"}],"tool_choice":"auto"}`,
			want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}]}`,
		},
		{
			name: "cache_control on parts and messages passes through to blocks",
			body: `{"model":"m","messages":[
				{"role":"system","content":[{"type":"text","text":"Long context","cache_control":{"type":"ephemeral"}}]},
				{"role":"user","content":"Hi","cache_control":{"type":"ephemeral"}}]}`,
			want: `{"model":"claude-x","max_tokens":4096,
				"system":[{"type":"text","text":"Long context","cache_control":{"type":"ephemeral"}}],
				"messages":[{"role":"user","content":[{"type":"text","text":"Hi","cache_control":{"type":"ephemeral"}}]}]}`,
		},
		{
			name: "empty assistant text is dropped rather than sent as an empty block",
			body: `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":""},{"role":"user","content":"b"}]}`,
			want: `{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[
				{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := translate.DecodeRequest(name, []byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			req, err := buildRequest(r, "claude-x", tt.params)
			if err != nil {
				t.Fatalf("buildRequest: %v", err)
			}
			got, err := json.Marshal(req)
			if err != nil {
				t.Fatal(err)
			}
			providertest.JSONEqual(t, got, []byte(tt.want))
		})
	}
}

func TestPrepare_RejectsInvalidRequests(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"non-object tool arguments", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`},
		{"unknown role", `{"messages":[{"role":"function","content":"x"}]}`},
		{"unsupported content part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`},
		{"no messages", `{"messages":[]}`},
		{"tool message without tool_call_id", `{"messages":[{"role":"tool","content":"x"}]}`},
		{"body is not JSON", `{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := prepare(&provider.Call{Kind: provider.Chat, Body: []byte(tt.body), Params: config.LiteLLMParams{APIKey: "k"}})
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest || pe.Retryable {
				t.Fatalf("err = %v, want a non-retryable 400 *provider.Error", err)
			}
		})
	}
}

func TestMessagesURL(t *testing.T) {
	tests := []struct{ base, want string }{
		{"", "https://api.anthropic.com/v1/messages"},
		{"https://proxy.example/", "https://proxy.example/v1/messages"},
		{"https://proxy.example/v1", "https://proxy.example/v1/messages"},
		{"https://proxy.example/v1/messages", "https://proxy.example/v1/messages"},
	}
	for _, tt := range tests {
		if got := messagesURL(tt.base); got != tt.want {
			t.Errorf("messagesURL(%q) = %q, want %q", tt.base, got, tt.want)
		}
	}
}

func TestFinishReason(t *testing.T) {
	tests := map[string]string{
		"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
		"refusal": "content_filter", "pause_turn": "stop",
	}
	for in, want := range tests {
		if got := finishReason(in); got != want {
			t.Errorf("finishReason(%q) = %q, want %q", in, got, want)
		}
	}
}
