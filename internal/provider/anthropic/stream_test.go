package anthropic

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

// toolStream is a real-shaped Messages stream: text, then a tool call whose input arrives in
// two pieces, then the stop reason and output usage.
var toolStream = []providertest.Event{
	{Name: "message_start", Data: `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-20250514","content":[],"stop_reason":null,"usage":{"input_tokens":25,"cache_read_input_tokens":5,"cache_creation_input_tokens":0,"output_tokens":1}}}`},
	{Name: "content_block_start", Data: `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
	{Name: "ping", Data: `{"type":"ping"}`},
	{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me "}}`},
	{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"check."}}`},
	{Name: "content_block_stop", Data: `{"type":"content_block_stop","index":0}`},
	{Name: "content_block_start", Data: `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"weather","input":{}}}`},
	{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}`},
	{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}`},
	{Name: "content_block_delta", Data: `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}`},
	{Name: "content_block_stop", Data: `{"type":"content_block_stop","index":1}`},
	{Name: "message_delta", Data: `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}`},
	{Name: "message_stop", Data: `{"type":"message_stop"}`},
}

func TestStream_TranslatesEventsToChunks(t *testing.T) {
	const head = `"id":"msg_1","model":"claude-sonnet-4-20250514","object":"chat.completion.chunk"`
	chunks := []string{
		`{` + head + `,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"content":"Let me "},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"content":"check."},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"toolu_1","type":"function","function":{"name":"weather","arguments":""}}]},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls","logprobs":null}]}`,
	}
	usageChunk := `{` + head + `,"choices":[],"usage":{"prompt_tokens":30,"completion_tokens":42,"total_tokens":72,"prompt_tokens_details":{"cached_tokens":5}}}`
	tests := []struct {
		name string
		body string
		want []string
	}{
		{"without include_usage no usage chunk", `{"stream":true,"messages":[{"role":"user","content":"Weather?"}]}`, chunks},
		{"with include_usage a final usage chunk", `{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Weather?"}]}`,
			append(append([]string(nil), chunks...), usageChunk)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) { providertest.WriteSSE(w, toolStream...) })
			s, err := (&Provider{}).Stream(context.Background(), chatCall(up.URL, tt.body))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			got, err := providertest.Drain(t, s)
			if err != nil {
				t.Fatalf("stream failed: %v", err)
			}
			providertest.EqualChunks(t, got, tt.want)
			if u := s.Usage(); u.PromptTokens != 30 || u.CompletionTokens != 42 || u.TotalTokens != 72 {
				t.Errorf("Usage = %+v, want 30 prompt, 42 completion, 72 total", u)
			}
			providertest.JSONEqual(t, up.Last(t).Body, []byte(`{"model":"claude-sonnet-4","max_tokens":4096,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"Weather?"}]}]}`))
		})
	}
}

func TestStream_Failures(t *testing.T) {
	start := toolStream[0]
	tests := []struct {
		name          string
		events        []providertest.Event
		wantStatus    int
		wantRetryable bool
	}{
		{"an overloaded error event is a retryable 503", []providertest.Event{start,
			{Name: "error", Data: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`}}, 503, true},
		{"an invalid request error event is final", []providertest.Event{start,
			{Name: "error", Data: `{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`}}, 400, false},
		{"a stream cut before message_stop is a retryable 502", toolStream[:5], 502, true},
		{"an event that is not JSON is a retryable 502", []providertest.Event{start, {Name: "content_block_delta", Data: `{"type":`}}, 502, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) { providertest.WriteSSE(w, tt.events...) })
			s, err := (&Provider{}).Stream(context.Background(), chatCall(up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if pe := providertest.DrainFailure(t, s); pe.Status != tt.wantStatus || pe.Retryable != tt.wantRetryable {
				t.Fatalf("err = %v, want *provider.Error %d retryable=%v", pe, tt.wantStatus, tt.wantRetryable)
			}
		})
	}
}

func TestStream_UpstreamErrorStatusFailsTheCall(t *testing.T) {
	up := providertest.NewUpstream(t, providertest.JSON(429, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`))
	_, err := (&Provider{}).Stream(context.Background(), chatCall(up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != 429 || !pe.Retryable {
		t.Fatalf("err = %v, want a retryable 429", err)
	}
}

func TestStream_CancellationStopsTheUpstream(t *testing.T) {
	// message_start yields the first chunk.
	start := func(w http.ResponseWriter, _ *http.Request) { providertest.WriteSSE(w, toolStream[0]) }
	providertest.CheckCancellation(t, start, 1, func(ctx context.Context, up *providertest.Upstream) (provider.Stream, error) {
		return (&Provider{}).Stream(ctx, chatCall(up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
	})
}

func TestStream_TimeoutIsPerEventNotPerStream(t *testing.T) {
	providertest.CheckIdleTimeout(t, "text/event-stream", providertest.SSEFrames(toolStream...), func(up *providertest.Upstream, timeout time.Duration) (provider.Stream, error) {
		c := chatCall(up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`)
		c.Timeout = timeout
		return (&Provider{}).Stream(context.Background(), c)
	})
}
