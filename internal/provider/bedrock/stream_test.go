package bedrock

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/fakebedrock"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

// toolStream is a real-shaped ConverseStream answer: text, a tool call whose input arrives
// in two pieces, the stop reason, then usage.
var toolStream = []event{
	{typ: "messageStart", payload: `{"role":"assistant"}`},
	{typ: "contentBlockDelta", payload: `{"contentBlockIndex":0,"delta":{"text":"Let me "}}`},
	{typ: "contentBlockDelta", payload: `{"contentBlockIndex":0,"delta":{"text":"check."}}`},
	{typ: "contentBlockStop", payload: `{"contentBlockIndex":0}`},
	{typ: "contentBlockStart", payload: `{"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"tooluse_1","name":"weather"}}}`},
	{typ: "contentBlockDelta", payload: `{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"city\": "}}}`},
	{typ: "contentBlockDelta", payload: `{"contentBlockIndex":1,"delta":{"toolUse":{"input":"\"Paris\"}"}}}`},
	{typ: "contentBlockStop", payload: `{"contentBlockIndex":1}`},
	{typ: "messageStop", payload: `{"stopReason":"tool_use"}`},
	{typ: "metadata", payload: `{"usage":{"inputTokens":10,"outputTokens":20,"totalTokens":34,"cacheReadInputTokens":4},"metrics":{"latencyMs":100}}`},
}

func TestStream_TranslatesEventsToChunks(t *testing.T) {
	const head = `"model":"` + claude + `","object":"chat.completion.chunk"`
	chunks := []string{
		`{` + head + `,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"content":"Let me "},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"content":"check."},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"tooluse_1","type":"function","function":{"name":"weather","arguments":""}}]},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null,"logprobs":null}]}`,
		`{` + head + `,"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls","logprobs":null}]}`,
	}
	usageChunk := `{` + head + `,"choices":[],"usage":{"prompt_tokens":14,"completion_tokens":20,"total_tokens":34,"prompt_tokens_details":{"cached_tokens":4}}}`
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
			up := providertest.NewUpstream(t, streamAnswer(toolStream...))
			s, err := new(Provider).Stream(context.Background(), testCall(provider.Chat, up, claude, tt.body))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			got, err := providertest.Drain(t, s)
			if err != nil {
				t.Fatalf("stream failed: %v", err)
			}
			// The chunks' id is generated: every chunk must carry the first one's.
			want := make([]string, len(tt.want))
			if len(got) > 0 {
				id := providertest.ID(t, []byte(got[0]))
				for i, w := range tt.want {
					want[i] = strings.Replace(w, `{`, `{"id":"`+id+`",`, 1)
				}
			}
			providertest.EqualChunks(t, got, want)
			if u := s.Usage(); u.PromptTokens != 14 || u.CompletionTokens != 20 || u.TotalTokens != 34 {
				t.Errorf("Usage = %+v, want 14 prompt, 20 completion, 34 total", u)
			}
			if p := up.Last(t).Path; p != "/model/"+claude+"/converse-stream" {
				t.Errorf("path = %s, want converse-stream", p)
			}
		})
	}
}

func TestStream_Failures(t *testing.T) {
	tests := []struct {
		name          string
		events        []event
		wantStatus    int
		wantRetryable bool
		wantContext   bool
	}{
		{"a throttling exception mid-stream is a retryable 429", []event{toolStream[0],
			{typ: "throttlingException", payload: `{"message":"Too many tokens, please wait before trying again."}`, exception: true}}, 429, true, false},
		{"a model stream error is retryable", []event{toolStream[0],
			{typ: "modelStreamErrorException", payload: `{"message":"boom","originalStatusCode":500}`, exception: true}}, 500, true, false},
		{"a validation exception about length is a context window error", []event{toolStream[0],
			{typ: "validationException", payload: `{"message":"Input is too long for requested model."}`, exception: true}}, 400, false, true},
		{"a stream cut before messageStop is a retryable 502", toolStream[:3], 502, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, streamAnswer(tt.events...))
			s, err := new(Provider).Stream(context.Background(), testCall(provider.Chat, up, claude, `{"messages":[{"role":"user","content":"Hi"}]}`))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			if pe := providertest.DrainFailure(t, s); pe.Status != tt.wantStatus || pe.Retryable != tt.wantRetryable || pe.ContextWindow != tt.wantContext {
				t.Fatalf("err = %v, want *provider.Error %d retryable=%v context=%v", pe, tt.wantStatus, tt.wantRetryable, tt.wantContext)
			}
		})
	}
}

// A frame over maxFrameSize fails the stream with a retryable 502 before the SDK buffers it:
// a whole one (the old decoder took it, and the text reached the client), and one whose
// prelude claims 4 GiB and whose bytes never come (the old decoder waited for them until
// the call timed out).
func TestStream_FramesOverTheLimitFail(t *testing.T) {
	big := event{typ: "contentBlockDelta", payload: `{"contentBlockIndex":0,"delta":{"text":"` + strings.Repeat("x", maxFrameSize) + `"}}`}
	claim := encodeEvents(toolStream[1])
	binary.BigEndian.PutUint32(claim, 0xFFFFFFF0)
	binary.BigEndian.PutUint32(claim[8:], crc32.ChecksumIEEE(claim[:8])) // the prelude's own CRC
	tests := []struct {
		name   string
		answer http.HandlerFunc
	}{
		{"a whole frame", streamAnswer(toolStream[0], big, toolStream[8], toolStream[9])},
		{"a prelude claiming 4 GiB", func(w http.ResponseWriter, r *http.Request) {
			fakebedrock.Stream(w, toolStream[0].frame())
			_, _ = w.Write(claim[:12])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, tt.answer)
			c := testCall(provider.Chat, up, claude, `{"stream":true,"messages":[{"role":"user","content":"Hi"}]}`)
			c.Timeout = 10 * time.Second
			start := time.Now()
			s, err := new(Provider).Stream(context.Background(), c)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			defer s.Close()
			pe := providertest.DrainFailure(t, s)
			if pe.Status != http.StatusBadGateway || !pe.Retryable || !strings.Contains(pe.Message, "limit") {
				t.Errorf("err = %v, want a retryable 502 naming the limit", pe)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the stream failed after %v, want at once", d)
			}
		})
	}
}

func TestStream_ErrorAnswerFailsTheCall(t *testing.T) {
	up := providertest.NewUpstream(t, errorAnswer(429, "ThrottlingException", "slow down"))
	_, err := new(Provider).Stream(context.Background(), testCall(provider.Chat, up, claude, `{"messages":[{"role":"user","content":"Hi"}]}`))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.Status != 429 || !pe.Retryable {
		t.Fatalf("err = %v, want a retryable 429", err)
	}
}

func TestStream_CancellationStopsTheUpstream(t *testing.T) {
	// messageStart yields the first chunk.
	providertest.CheckCancellation(t, streamAnswer(toolStream[0]), 1, func(ctx context.Context, up *providertest.Upstream) (provider.Stream, error) {
		return new(Provider).Stream(ctx, testCall(provider.Chat, up, claude, `{"messages":[{"role":"user","content":"Hi"}]}`))
	})
}

func TestStream_TimeoutIsPerEventNotPerStream(t *testing.T) {
	frames := make([][]byte, len(toolStream))
	for i, e := range toolStream {
		frames[i] = encodeEvents(e)
	}
	providertest.CheckIdleTimeout(t, "application/vnd.amazon.eventstream", frames, func(up *providertest.Upstream, timeout time.Duration) (provider.Stream, error) {
		c := testCall(provider.Chat, up, claude, `{"messages":[{"role":"user","content":"Hi"}]}`)
		c.Timeout = timeout
		return new(Provider).Stream(context.Background(), c)
	})
}

// bodyDoer answers every SDK request with a ConverseStream answer whose body is body.
type bodyDoer struct{ body []byte }

func (d *bodyDoer) Do(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Request: r, ContentLength: -1,
		Header: http.Header{"Content-Type": {"application/vnd.amazon.eventstream"}},
		Body:   io.NopCloser(bytes.NewReader(d.body)),
	}, nil
}

// FuzzConverseStream feeds arbitrary bytes to the SDK's event stream decoding and the
// chunk decoder, as the body of a ConverseStream answer: no panic, an end, and only JSON
// chat.completion.chunk objects.
func FuzzConverseStream(f *testing.F) {
	f.Add(encodeEvents(toolStream...))
	f.Add(encodeEvents(toolStream[0], event{typ: "throttlingException", payload: `{"message":"x"}`, exception: true}))
	f.Add(encodeEvents(event{typ: "contentBlockDelta", payload: `{"contentBlockIndex":9,"delta":{"toolUse":{"input":"{"}}}`}))
	f.Add(encodeEvents(event{typ: "somethingNew", payload: `{}`}, toolStream[8]))
	params := config.LiteLLMParams{APIBase: "http://bedrock.invalid", AWSRegionName: "us-east-1", AWSAccessKeyID: "AKID", AWSSecretAccessKey: "s"}
	doer := &bodyDoer{}
	p := &Provider{HTTPClient: doer} // one client for all inputs: execs run one at a time
	f.Fuzz(func(t *testing.T, body []byte) {
		doer.body = body
		c := &provider.Call{Kind: provider.Chat, Model: claude, Params: params, Body: []byte(`{"messages":[{"role":"user","content":"Hi"}]}`)}
		s, err := p.Stream(context.Background(), c)
		if err != nil {
			return
		}
		defer s.Close()
		providertest.CheckChunksUntilEnd(t, s)
	})
}
