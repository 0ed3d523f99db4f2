package bedrock

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/fakeanthropic"
	"github.com/llmgate/llmgate/internal/fakebedrock"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
	"github.com/llmgate/llmgate/internal/provider/viachat"
)

// claudeMessages is a Messages request with what must reach Claude byte for byte: a system
// prompt with cache_control, thinking, a tool with cache_control, an earlier turn's thinking
// block with its signature, metadata.
const claudeMessages = `{"model":"claude-sonnet-4-5","max_tokens":1024,
	"system":[{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral"}}],
	"thinking":{"type":"enabled","budget_tokens":2048},
	"tools":[{"name":"get_weather","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral","ttl":"1h"}}],
	"messages":[{"role":"user","content":"Hi"},
		{"role":"assistant","content":[{"type":"thinking","thinking":"Greet.","signature":"c2ln"},{"type":"text","text":"Hello."}]},
		{"role":"user","content":[{"type":"text","text":"Say it again","cache_control":{"type":"ephemeral"}}]}],
	"metadata":{"user_id":"u-1"}}`

func TestMessages_NativeForClaudeOnly(t *testing.T) {
	tests := []struct {
		kind  provider.Kind
		model string
		want  bool
	}{
		{provider.Messages, "anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{provider.Messages, "us.anthropic.claude-3-5-haiku-20241022-v1:0", true},
		{provider.Messages, "invoke/arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc", true},
		{provider.Messages, "converse/anthropic.claude-3-5-haiku-20241022-v1:0", false},
		{provider.Messages, "meta.llama3-70b-instruct-v1:0", false},
		{provider.CountTokens, "anthropic.claude-3-5-haiku-20241022-v1:0", false},
		{provider.Responses, "anthropic.claude-3-5-haiku-20241022-v1:0", false},
	}
	for _, tt := range tests {
		if got := new(Provider).Native(tt.kind, tt.model); got != tt.want {
			t.Errorf("Native(%s, %s) = %v, want %v", tt.kind, tt.model, got, tt.want)
		}
	}
}

func TestMessages_InvokeModelKeepsTheClientsRequest(t *testing.T) {
	fake := fakeanthropic.Start()
	defer fake.Close()
	c := callTo(provider.Messages, fake.URL, "invoke/us."+claude, claudeMessages)
	c.Header = http.Header{"Anthropic-Beta": {"interleaved-thinking-2025-05-14, fine-grained-tool-streaming-2025-05-14", "context-1m-2025-08-07"}}
	resp, err := new(Provider).Do(context.Background(), c)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got := fake.Paths(); len(got) != 1 || got[0] != "/model/us."+claude+"/invoke" {
		t.Errorf("paths %q, want InvokeModel of the id without the route", got)
	}
	_, sent := fake.Last()
	for _, field := range []string{"system", "thinking", "tools", "messages", "metadata", "max_tokens"} {
		if got, want := gjson.GetBytes(sent, field).Raw, gjson.Get(claudeMessages, field).Raw; got != want {
			t.Errorf("%s sent as %s, want the client's bytes %s", field, got, want)
		}
	}
	if gjson.GetBytes(sent, "model").Exists() || gjson.GetBytes(sent, "stream").Exists() {
		t.Errorf("model or stream sent to Bedrock: %s", sent)
	}
	if got := gjson.GetBytes(sent, "anthropic_version").String(); got != "bedrock-2023-05-31" {
		t.Errorf("anthropic_version %q", got)
	}
	if got := gjson.GetBytes(sent, "anthropic_beta").Raw; got != `["interleaved-thinking-2025-05-14","fine-grained-tool-streaming-2025-05-14","context-1m-2025-08-07"]` {
		t.Errorf("anthropic_beta %s", got)
	}
	var msg struct {
		Type    string `json:"type"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		Usage map[string]any `json:"usage"`
	}
	if err := json.Unmarshal(resp.Body, &msg); err != nil || msg.Type != "message" || msg.Content[0].Text != fakeanthropic.Answer {
		t.Errorf("answer %s (%v)", resp.Body, err)
	}
	words := len(strings.Fields(fakeanthropic.Answer))
	if u := resp.Usage; u.PromptTokens != fakeanthropic.InputTokens || u.CompletionTokens != words ||
		u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens != fakeanthropic.CacheRead ||
		u.CacheCreation1hInputTokens != fakeanthropic.CacheWrite1h { // the system block is cached for an hour
		t.Errorf("usage %+v", u)
	}
}

func TestMessages_StreamRelaysClaudesEvents(t *testing.T) {
	fake := fakeanthropic.Start()
	defer fake.Close()
	body := `{"model":"x","max_tokens":64,"stream":true,"tools":[{"name":"get_weather","input_schema":{"type":"object"}}],
		"messages":[{"role":"user","content":"What is the weather in Paris?"}]}`
	s, err := new(Provider).Stream(context.Background(), callTo(provider.Messages, fake.URL, claude, body))
	if err != nil {
		t.Fatalf("Stream: %v", err)
	}
	events, err := providertest.Drain(t, s)
	if err != nil {
		t.Fatalf("Drain: %v", err)
	}
	var types []string
	var args string
	for _, ev := range events {
		types = append(types, gjson.Get(ev, "type").String())
		args += gjson.Get(ev, "delta.partial_json").String()
	}
	last := events[len(events)-1]
	if got := fake.Paths(); len(got) != 1 || got[0] != "/model/"+claude+"/invoke-with-response-stream" {
		t.Errorf("paths %q", got)
	}
	want := "message_start ping content_block_start content_block_delta content_block_delta content_block_delta content_block_stop " +
		"content_block_start content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(types, " "); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	if args != `{"city":"Paris"}` {
		t.Errorf("tool input %q", args)
	}
	if !gjson.Get(last, `amazon-bedrock-invocationMetrics.inputTokenCount`).Exists() {
		t.Errorf("the last event was not relayed as Bedrock sent it: %s", last)
	}
	if u := s.Usage(); u.PromptTokens != fakeanthropic.InputTokens || u.CompletionTokens != len(strings.Fields("Let me check."))+len(`{"city":"Paris"}`)/4 {
		t.Errorf("usage %+v", u)
	}
}

// chunk is an InvokeModelWithResponseStream chunk carrying the Anthropic event data.
func chunk(data string) fakebedrock.Event { return fakebedrock.Chunk([]byte(data)) }

const messageStart = `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":7,"output_tokens":1}}}`

func TestMessages_BedrockErrors(t *testing.T) {
	body := `{"max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}`
	tests := []struct {
		name          string
		handler       http.HandlerFunc
		stream        bool
		status        int
		retryable     bool
		contextWindow bool
	}{
		{"validation", errorAnswer(400, "ValidationException", "messages: roles must alternate"), false, 400, false, false},
		{"input too long", errorAnswer(400, "ValidationException", "Input is too long for requested model."), false, 400, false, true},
		{"throttled", errorAnswer(429, "ThrottlingException", "Too many requests, please wait before trying again."), true, 429, true, false},
		{"no access", errorAnswer(403, "AccessDeniedException", "You don't have access to the model with the specified model ID."), true, 403, false, false},
		{"unavailable", errorAnswer(503, "ServiceUnavailableException", "Bedrock is unable to process your request."), true, 503, true, false},
		{"throttled mid-stream", func(w http.ResponseWriter, _ *http.Request) {
			fakebedrock.Stream(w, chunk(messageStart), fakebedrock.Exception("throttlingException", "Too many tokens, please wait before trying again."))
		}, true, 429, true, false},
		{"model error mid-stream", func(w http.ResponseWriter, _ *http.Request) {
			fakebedrock.Stream(w, chunk(messageStart), fakebedrock.Exception("modelStreamErrorException", "The model failed."))
		}, true, 500, true, false},
		{"cut short before message_stop", func(w http.ResponseWriter, _ *http.Request) {
			fakebedrock.Stream(w, chunk(messageStart))
		}, true, 502, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, tt.handler)
			c := testCall(provider.Messages, up, claude, body)
			var err error
			if tt.stream {
				var s provider.Stream
				if s, err = new(Provider).Stream(context.Background(), c); err == nil {
					_, err = providertest.Drain(t, s)
				}
			} else {
				_, err = new(Provider).Do(context.Background(), c)
			}
			var pe *provider.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err %v, want a *provider.Error", err)
			}
			if pe.Status != tt.status || pe.Retryable != tt.retryable || pe.ContextWindow != tt.contextWindow {
				t.Errorf("error %+v, want status %d retryable %v context window %v", pe, tt.status, tt.retryable, tt.contextWindow)
			}
		})
	}
}

func TestMessages_StreamTimeoutIsPerEvent(t *testing.T) {
	frames := [][]byte{chunk(messageStart).Encode(), chunk(`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":2}}`).Encode(), chunk(`{"type":"message_stop"}`).Encode()}
	providertest.CheckIdleTimeout(t, fakebedrock.ContentType, frames, func(up *providertest.Upstream, timeout time.Duration) (provider.Stream, error) {
		c := testCall(provider.Messages, up, claude, `{"max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}`)
		c.Timeout = timeout
		return new(Provider).Stream(context.Background(), c)
	})
}

func TestMessages_OtherModelsAreTranslatedToConverse(t *testing.T) {
	up := providertest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, minimalAnswer)
	})
	c := testCall(provider.Messages, up, "converse/"+claude, `{"model":"x","max_tokens":64,"messages":[{"role":"user","content":"Hi"}]}`)
	resp, err := viachat.Wrap(new(Provider)).Do(context.Background(), c)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if got := up.Last(t).Path; got != "/model/"+claude+"/converse" {
		t.Errorf("path %q, want Converse", got)
	}
	if gjson.GetBytes(resp.Body, "type").String() != "message" || gjson.GetBytes(resp.Body, "content.0.text").String() != "ok" {
		t.Errorf("answer %s", resp.Body)
	}
}
