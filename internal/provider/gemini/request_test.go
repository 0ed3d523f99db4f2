package gemini

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
			name: "system messages become systemInstruction and assistant turns model turns",
			body: `{"messages":[{"role":"system","content":"Be brief."},{"role":"developer","content":"French."},
				{"role":"user","content":"Hi"},{"role":"assistant","content":"Salut"},{"role":"user","content":"Bye"}]}`,
			want: `{"systemInstruction":{"parts":[{"text":"Be brief."},{"text":"French."}]},
				"contents":[{"role":"user","parts":[{"text":"Hi"}]},{"role":"model","parts":[{"text":"Salut"}]},{"role":"user","parts":[{"text":"Bye"}]}],
				"generationConfig":{}}`,
		},
		{
			name: "generation settings map to generationConfig",
			body: `{"max_completion_tokens":50,"temperature":0.5,"top_p":0.8,"stop":["x","y"],"n":2,
				"messages":[{"role":"user","content":"Hi"}]}`,
			want: `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],
				"generationConfig":{"maxOutputTokens":50,"temperature":0.5,"topP":0.8,"stopSequences":["x","y"],"candidateCount":2}}`,
		},
		{
			name:   "litellm_params max_tokens is the default output limit",
			body:   `{"messages":[{"role":"user","content":"Hi"}]}`,
			params: config.LiteLLMParams{MaxTokens: 300},
			want:   `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"generationConfig":{"maxOutputTokens":300}}`,
		},
		{
			name: "json_object response_format asks for JSON",
			body: `{"response_format":{"type":"json_object"},"messages":[{"role":"user","content":"Hi"}]}`,
			want: `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"generationConfig":{"responseMimeType":"application/json"}}`,
		},
		{
			name: "json_schema response_format passes the schema",
			body: `{"response_format":{"type":"json_schema","json_schema":{"name":"p","schema":{"type":"object","properties":{"a":{"type":"integer"}}}}},
				"messages":[{"role":"user","content":"Hi"}]}`,
			want: `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"generationConfig":{"responseMimeType":"application/json",
				"responseJsonSchema":{"type":"object","properties":{"a":{"type":"integer"}}}}}`,
		},
		{
			name: "tool calls become functionCall parts and tool results functionResponse parts named after the call",
			body: `{"messages":[{"role":"user","content":"Weather?"},
				{"role":"assistant","tool_calls":[
					{"id":"call_a","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}},
					{"id":"call_b","type":"function","function":{"name":"time","arguments":""}}]},
				{"role":"tool","tool_call_id":"call_a","content":"18C"},
				{"role":"tool","tool_call_id":"call_b","content":"noon"}]}`,
			want: `{"contents":[{"role":"user","parts":[{"text":"Weather?"}]},
				{"role":"model","parts":[{"functionCall":{"name":"weather","args":{"city":"Paris"}}},{"functionCall":{"name":"time","args":{}}}]},
				{"role":"user","parts":[{"functionResponse":{"name":"weather","response":{"content":"18C"}}},
					{"functionResponse":{"name":"time","response":{"content":"noon"}}}]}],
				"generationConfig":{}}`,
		},
		{
			name: "images: data URLs inline, other URLs as fileData typed by extension",
			body: `{"messages":[{"role":"user","content":[{"type":"text","text":"What?"},
				{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}},
				{"type":"image_url","image_url":{"url":"https://example.com/a/cat.PNG?x=1"}}]}]}`,
			want: `{"contents":[{"role":"user","parts":[{"text":"What?"},{"inlineData":{"mimeType":"image/jpeg","data":"/9j/4AAQ"}},
				{"fileData":{"mimeType":"image/png","fileUri":"https://example.com/a/cat.PNG?x=1"}}]}],"generationConfig":{}}`,
		},
		{
			name: "tools become functionDeclarations with JSON Schema parameters; required is ANY",
			body: `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"required","tools":[
				{"type":"function","function":{"name":"weather","description":"Get weather","parameters":{"type":"object","additionalProperties":false}}},
				{"type":"function","function":{"name":"now"}}]}`,
			want: `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],
				"tools":[{"functionDeclarations":[{"name":"weather","description":"Get weather","parametersJsonSchema":{"type":"object","additionalProperties":false}},{"name":"now"}]}],
				"toolConfig":{"functionCallingConfig":{"mode":"ANY"}},"generationConfig":{}}`,
		},
		{
			name: "a named tool_choice allows only that function",
			body: `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":{"type":"function","function":{"name":"now"}},
				"tools":[{"type":"function","function":{"name":"now"}}]}`,
			want: `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"tools":[{"functionDeclarations":[{"name":"now"}]}],
				"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["now"]}},"generationConfig":{}}`,
		},
		{
			name: "tool_choice none is NONE",
			body: `{"messages":[{"role":"user","content":"Hi"}],"tool_choice":"none","tools":[{"type":"function","function":{"name":"now"}}]}`,
			want: `{"contents":[{"role":"user","parts":[{"text":"Hi"}]}],"tools":[{"functionDeclarations":[{"name":"now"}]}],
				"toolConfig":{"functionCallingConfig":{"mode":"NONE"}},"generationConfig":{}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := translate.DecodeRequest(name, []byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeRequest: %v", err)
			}
			req, err := buildRequest(r, tt.params)
			if err != nil {
				t.Fatalf("buildRequest: %v", err)
			}
			got, _ := json.Marshal(req)
			providertest.JSONEqual(t, got, []byte(tt.want))
		})
	}
}

func TestBuildRequest_RejectsWhatGeminiCannotTake(t *testing.T) {
	tests := []struct{ name, body string }{
		{"tool result for an unknown call", `{"messages":[{"role":"tool","tool_call_id":"nope","content":"x"}]}`},
		{"image URL without a known type", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/img"}}]}]}`},
		{"non-object tool arguments", `{"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"1"}}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := prepare(&provider.Call{Kind: provider.Chat, Body: []byte(tt.body)})
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
				t.Fatalf("err = %v, want a 400 *provider.Error", err)
			}
		})
	}
}

func TestModelURL(t *testing.T) {
	tests := []struct{ base, model, want string }{
		{"", "gemini-2.0-flash", "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"},
		{"https://proxy.example/", "models/gemini-pro", "https://proxy.example/v1beta/models/gemini-pro:generateContent"},
		{"https://proxy.example/v1", "gemini-pro", "https://proxy.example/v1/models/gemini-pro:generateContent"},
	}
	for _, tt := range tests {
		if got := modelURL(tt.base, tt.model, "generateContent"); got != tt.want {
			t.Errorf("modelURL(%q, %q) = %q, want %q", tt.base, tt.model, got, tt.want)
		}
	}
}

func TestFinishReason(t *testing.T) {
	tests := []struct {
		reason string
		calls  bool
		want   string
	}{
		{"STOP", false, "stop"}, {"STOP", true, "tool_calls"}, {"MAX_TOKENS", false, "length"},
		{"SAFETY", false, "content_filter"}, {"RECITATION", false, "content_filter"}, {"OTHER", false, "stop"},
	}
	for _, tt := range tests {
		if got := finishReason(tt.reason, tt.calls); got != tt.want {
			t.Errorf("finishReason(%q, %v) = %q, want %q", tt.reason, tt.calls, got, tt.want)
		}
	}
}
