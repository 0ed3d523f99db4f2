package gemini

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
	"github.com/llmgate/llmgate/internal/provider/sse"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// toolStream is a real-shaped streamGenerateContent answer: text in two chunks, then two
// function calls in one chunk with the finish reason and final usage.
var toolStream = []providertest.Event{
	{Data: `{"candidates":[{"content":{"parts":[{"text":"Let me "}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":20,"totalTokenCount":20},"modelVersion":"gemini-2.5-flash-001","responseId":"r-1"}`},
	{Data: `{"candidates":[{"content":{"parts":[{"text":"thinking","thought":true},{"text":"check."}],"role":"model"},"index":0}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":3,"totalTokenCount":23},"modelVersion":"gemini-2.5-flash-001","responseId":"r-1"}`},
	{Data: `{"candidates":[{"content":{"parts":[{"functionCall":{"name":"weather","args":{"city":"Paris"}}},{"functionCall":{"name":"weather","args":{"city":"Rome"}}}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":20,"candidatesTokenCount":9,"thoughtsTokenCount":4,"totalTokenCount":33},"modelVersion":"gemini-2.5-flash-001","responseId":"r-1"}`},
}

// callIDs matches generated tool call ids, which the test cannot predict.
var callIDs = regexp.MustCompile(`"call_[0-9a-f]{24}"`)

func TestStream_TranslatesChunks(t *testing.T) {
	const head = `"id":"r-1","model":"gemini-2.5-flash-001","object":"chat.completion.chunk"`
	chunks := []string{
		`{` + head + `,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"content":"Let me "},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"content":"check."},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_ID","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_ID","type":"function","function":{"name":"weather","arguments":"{\"city\":\"Rome\"}"}}]},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls","logprobs":null}]}`,
	}
	usageChunk := `{` + head + `,"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":13,"total_tokens":33}}`
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
			s, err := (&Provider{}).Stream(context.Background(), call(provider.Chat, up.URL, tt.body))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			got, err := providertest.Drain(t, s)
			if err != nil {
				t.Fatalf("stream failed: %v", err)
			}
			for i := range got {
				got[i] = callIDs.ReplaceAllString(got[i], `"call_ID"`)
			}
			providertest.EqualChunks(t, got, tt.want)
			req := up.Last(t)
			if req.Path != "/v1beta/models/gemini-2.5-flash:streamGenerateContent" || req.Query != "alt=sse" {
				t.Errorf("request %s?%s, want streamGenerateContent?alt=sse", req.Path, req.Query)
			}
		})
	}
}

func TestStream_Failures(t *testing.T) {
	tests := []struct {
		name          string
		events        []providertest.Event
		wantStatus    int
		wantRetryable bool
	}{
		{"an error event mid-stream is classified by its code", []providertest.Event{toolStream[0],
			{Data: `{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`}}, 503, true},
		{"a stream that ends without a finish reason is a retryable 502", toolStream[:2], 502, true},
		{"a chunk that is not JSON is a retryable 502", []providertest.Event{toolStream[0], {Data: `{"candidates":`}}, 502, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) { providertest.WriteSSE(w, tt.events...) })
			s, err := (&Provider{}).Stream(context.Background(), call(provider.Chat, up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if pe := providertest.DrainFailure(t, s); pe.Status != tt.wantStatus || pe.Retryable != tt.wantRetryable {
				t.Fatalf("err = %v, want *provider.Error %d retryable=%v", pe, tt.wantStatus, tt.wantRetryable)
			}
		})
	}
}

func TestStream_CancellationStopsTheUpstream(t *testing.T) {
	// The first event yields two chunks: the role and its text.
	start := func(w http.ResponseWriter, _ *http.Request) { providertest.WriteSSE(w, toolStream[0]) }
	providertest.CheckCancellation(t, start, 2, func(ctx context.Context, up *providertest.Upstream) (provider.Stream, error) {
		return (&Provider{}).Stream(ctx, call(provider.Chat, up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`))
	})
}

// FuzzDecoder feeds arbitrary upstream bytes to the stream decoder: it must never panic,
// must end, and every chunk it yields must be a JSON chat.completion.chunk.
func FuzzDecoder(f *testing.F) {
	f.Add(providertest.SSEBody(toolStream...))
	f.Add([]byte("data: {\"error\":{\"code\":429,\"message\":\"quota\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n"))
	f.Add([]byte("data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}\n\n"))
	f.Add([]byte("data: {\"candidates\":[{\"index\":3,\"finishReason\":\"MAX_TOKENS\",\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\"}}]}}]}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		dec := &decoder{events: sse.NewReader(bytes.NewReader(body)), choices: map[int]*choiceState{}}
		s := translate.NewStream("id", 1, "m", true, dec, nil, nil)
		providertest.CheckChunksUntilEnd(t, s)
	})
}

// BenchmarkDecoder measures translating one streamGenerateContent answer (3 events, 6 chunks).
func BenchmarkDecoder(b *testing.B) {
	body := providertest.SSEBody(toolStream...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dec := &decoder{events: sse.NewReader(bytes.NewReader(body)), choices: map[int]*choiceState{}}
		s := translate.NewStream("id", 1, "m", true, dec, nil, nil)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	}
}

func TestStream_TimeoutIsPerEventNotPerStream(t *testing.T) {
	providertest.CheckIdleTimeout(t, "text/event-stream", providertest.SSEFrames(toolStream...), func(up *providertest.Upstream, timeout time.Duration) (provider.Stream, error) {
		c := call(provider.Chat, up.URL, `{"messages":[{"role":"user","content":"Hi"}]}`)
		c.Timeout = timeout
		return (&Provider{}).Stream(context.Background(), c)
	})
}
