package openaicompat_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/openaicompat"
	"github.com/llmgate/llmgate/internal/provider/providertest"
)

// Chunks in OpenAI's wire format.
const (
	chunkRole  = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`
	chunkHello = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}`
	chunkStop  = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}`
	chunkUsage = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":0}}}`

	chunkTool1 = `{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}],"usage":null}`
	chunkTool2 = `{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}]},"finish_reason":null}],"usage":null}`
	chunkTool3 = `{"id":"chatcmpl-2","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}`
)

// readStream reads s to its end and returns the chunks byte for byte and the final error
// (nil after io.EOF).
func readStream(s provider.Stream) ([]string, error) {
	var got []string
	for {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, string(b))
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStream_UsageChunk(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantChunks []string
	}{
		{
			name:       "client did not ask for usage: usage chunk is kept from it",
			body:       `{"model":"a","stream":true,"messages":[]}`,
			wantChunks: []string{chunkRole, chunkHello, chunkStop},
		},
		{
			name:       "client asked for usage: usage chunk is passed on",
			body:       `{"model":"a","stream":true,"stream_options":{"include_usage":true},"messages":[]}`,
			wantChunks: []string{chunkRole, chunkHello, chunkStop, chunkUsage},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, providerSSE(chunkRole, chunkHello, chunkStop, chunkUsage, "[DONE]"))
			s, err := openaicompat.New(u.Client(), openAISpec(t)).Stream(context.Background(), call(u, tt.body))
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			defer s.Close()
			got, err := readStream(s)
			if err != nil {
				t.Fatalf("stream error: %v", err)
			}
			if !equal(got, tt.wantChunks) {
				t.Errorf("chunks:\ngot:  %q\nwant: %q", got, tt.wantChunks)
			}
			if u := s.Usage(); u.PromptTokens != 9 || u.CompletionTokens != 2 || u.TotalTokens != 11 {
				t.Errorf("usage = %+v, want 9/2/11", u)
			}
			if _, err := s.Next(); !errors.Is(err, io.EOF) {
				t.Errorf("Next after the end = %v, want io.EOF", err)
			}
			req := u.Last(t).DecodeBody(t)
			if req["stream"] != true {
				t.Errorf("upstream stream = %v, want true", req["stream"])
			}
			if so, _ := req["stream_options"].(map[string]any); so["include_usage"] != true {
				t.Errorf("upstream stream_options = %v, want include_usage true", req["stream_options"])
			}
		})
	}
}

// providerSSE is an upstream that answers with the given chunks as SSE.
func providerSSE(chunks ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		events := make([]providertest.Event, len(chunks))
		for i, c := range chunks {
			events[i].Data = c
		}
		providertest.WriteSSE(w, events...)
	}
}

func TestStream_ToolCallDeltasPassThrough(t *testing.T) {
	u := providertest.NewUpstream(t, providerSSE(chunkTool1, chunkTool2, chunkTool3, "[DONE]"))
	s, err := openaicompat.New(u.Client(), openAISpec(t)).Stream(context.Background(),
		call(u, `{"model":"a","stream":true,"tools":[{"type":"function","function":{"name":"get_weather"}}],"messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := readStream(s)
	if want := []string{chunkTool1, chunkTool2, chunkTool3}; err != nil || !equal(got, want) {
		t.Errorf("chunks = %q, %v; want %q", got, err, want)
	}
	if s.Usage() != (openai.Usage{}) {
		t.Errorf("usage = %+v, want none reported", s.Usage())
	}
}

func TestStream_ProviderWithoutStreamOptions(t *testing.T) {
	// Mistral rejects stream_options and sends usage on its last chunk, next to choices.
	last := `{"id":"m1","object":"chat.completion.chunk","created":1,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"total_tokens":8,"completion_tokens":3}}`
	first := `{"id":"m1","object":"chat.completion.chunk","created":1,"model":"mistral-small-latest","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`
	u := providertest.NewUpstream(t, providerSSE(first, last, "[DONE]"))
	var mistral openaicompat.Spec
	for _, sp := range openaicompat.Specs {
		if sp.Prefix == "mistral" {
			mistral = sp
		}
	}
	cl := call(u, `{"model":"a","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)
	s, err := openaicompat.New(u.Client(), mistral).Stream(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := readStream(s)
	if want := []string{first, last}; err != nil || !equal(got, want) {
		t.Errorf("chunks = %q, %v; want %q", got, err, want)
	}
	if u := s.Usage(); u.PromptTokens != 5 || u.CompletionTokens != 3 || u.TotalTokens != 8 {
		t.Errorf("usage = %+v, want 5/3/8", u)
	}
	req := u.Last(t).DecodeBody(t)
	if _, ok := req["stream_options"]; ok || req["stream"] != true {
		t.Errorf("upstream body = %v, want stream true and no stream_options", req)
	}
}

func TestStream_Failures(t *testing.T) {
	tests := []struct {
		name       string
		handler    http.HandlerFunc
		timeout    time.Duration
		wantChunks []string
		want       provider.Error
		wantIn     string
	}{
		{
			name:       "stream cut halfway without [DONE]",
			handler:    providerSSE(chunkRole, chunkHello),
			wantChunks: []string{chunkRole, chunkHello},
			want:       provider.Error{Status: 502, Type: openai.TypeServer, Retryable: true},
			wantIn:     "before [DONE]",
		},
		{
			name: "connection reset in the middle of a chunk",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				providertest.Hijack(w, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"+
					chunked("data: "+chunkRole+"\n\n")+chunked("data: {\"id\":\"chatcmpl-1\",\"obj"))
			},
			wantChunks: []string{chunkRole},
			want:       provider.Error{Status: 502, Type: openai.TypeServer, Retryable: true},
			wantIn:     "upstream request failed",
		},
		{
			name: "error event mid-stream",
			handler: providerSSE(chunkRole,
				`{"error":{"message":"The server had an error while processing your request.","type":"server_error","code":null}}`),
			wantChunks: []string{chunkRole},
			want:       provider.Error{Status: 502, Type: openai.TypeServer, Retryable: true},
			wantIn:     "server had an error",
		},
		{
			name: "upstream stalls longer than the timeout",
			handler: func(w http.ResponseWriter, r *http.Request) {
				providertest.WriteSSE(w)
				providertest.WriteEvent(w, chunkRole)
				<-r.Context().Done()
			},
			timeout:    100 * time.Millisecond,
			wantChunks: []string{chunkRole},
			want:       provider.Error{Status: 408, Type: openai.TypeTimeout, Retryable: true},
			wantIn:     "timed out",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, tt.handler)
			cl := call(u, `{"model":"a","stream":true,"messages":[]}`)
			cl.Timeout = tt.timeout
			s, err := openaicompat.New(u.Client(), openAISpec(t)).Stream(context.Background(), cl)
			if err != nil {
				t.Fatalf("Stream: %v", err)
			}
			defer s.Close()
			got, err := readStream(s)
			if !equal(got, tt.wantChunks) {
				t.Errorf("chunks = %q, want %q", got, tt.wantChunks)
			}
			checkError(t, err, tt.want, tt.wantIn)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("err = %v, want it to wrap io.ErrUnexpectedEOF", err)
			}
			if _, again := s.Next(); again == nil || again.Error() != err.Error() {
				t.Errorf("Next after a failure = %v, want the same error %v", again, err)
			}
		})
	}
}

// chunked frames s as one HTTP/1.1 chunk.
func chunked(s string) string {
	return strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n"
}

func TestStream_TimeoutIsPerEventNotPerStream(t *testing.T) {
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		providertest.WriteSSE(w)
		for _, c := range []string{chunkRole, chunkHello, chunkStop, chunkUsage} {
			time.Sleep(60 * time.Millisecond)
			providertest.WriteEvent(w, c)
		}
		providertest.WriteEvent(w, "[DONE]")
	})
	cl := call(u, `{"model":"a","stream":true,"messages":[]}`)
	cl.Timeout = 150 * time.Millisecond // shorter than the whole stream (240ms), longer than each gap
	s, err := openaicompat.New(u.Client(), openAISpec(t)).Stream(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := readStream(s); err != nil || len(got) != 3 {
		t.Errorf("got %d chunks, err %v; want 3 chunks and no error", len(got), err)
	}
}

func TestStream_CallerCancelAbortsTheUpstreamRequest(t *testing.T) {
	aborted := make(chan struct{})
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		providertest.WriteSSE(w)
		providertest.WriteEvent(w, chunkRole)
		<-r.Context().Done()
		close(aborted)
	})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := openaicompat.New(u.Client(), openAISpec(t)).Stream(ctx, call(u, `{"model":"a","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Next(); err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	cancel()
	_, err = s.Next()
	if !errors.Is(err, context.Canceled) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want context.Canceled and io.ErrUnexpectedEOF", err)
	}
	waitClosed(t, aborted, "upstream request was not aborted")
}

func TestStream_CloseAbortsAWaitingNext(t *testing.T) {
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		providertest.WriteSSE(w)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	s, err := openaicompat.New(u.Client(), openAISpec(t)).Stream(context.Background(), call(u, `{"model":"a","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := s.Next(); done <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, io.EOF) {
			t.Errorf("Next = %v, want an error after Close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next still waiting after Close")
	}
}

func TestStream_ErrorsBeforeTheFirstChunk(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		kind    provider.Kind
		want    provider.Error
		wantIn  string
	}{
		{
			name: "rate limited",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Retry-After", "3")
				providertest.JSON(429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`)(w, r)
			},
			want:   provider.Error{Status: 429, Type: openai.TypeRateLimit, Code: "rate_limit_exceeded", RetryAfter: 3 * time.Second, Retryable: true},
			wantIn: "Rate limit reached",
		},
		{
			name:    "JSON error with status 200",
			handler: providertest.JSON(200, `{"error":{"message":"Provider returned error","code":502}}`),
			want:    provider.Error{Status: 502, Type: openai.TypeServer, Retryable: true},
			wantIn:  "Provider returned error",
		},
		{
			name:    "embeddings cannot stream",
			handler: providerSSE("[DONE]"),
			kind:    provider.Embedding,
			want:    provider.Error{Status: 400, Type: openai.TypeInvalidRequest},
			wantIn:  "cannot be streamed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := providertest.NewUpstream(t, tt.handler)
			cl := call(u, `{"model":"a","stream":true}`)
			if tt.kind != "" {
				cl.Kind = tt.kind
			}
			_, err := openaicompat.New(u.Client(), openAISpec(t)).Stream(context.Background(), cl)
			checkError(t, err, tt.want, tt.wantIn)
		})
	}
}

func TestStream_ReusesTheConnectionAfterDone(t *testing.T) {
	u := providertest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		providerSSE(chunkRole, chunkStop, chunkUsage, "[DONE]")(w, r)
		time.Sleep(20 * time.Millisecond) // the end of the HTTP response comes after [DONE]
	})
	var dials atomic.Int32
	tr := u.Client().Transport.(*http.Transport).Clone()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return dial(ctx, network, addr)
	}
	c := openaicompat.New(&http.Client{Transport: tr}, openAISpec(t))
	for range 3 {
		s, err := c.Stream(context.Background(), call(u, `{"model":"a","stream":true}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readStream(s); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("3 streams opened %d connections, want 1", n)
	}
}

func TestStream_GroqUsageInXGroq(t *testing.T) {
	last := `{"id":"g1","object":"chat.completion.chunk","created":1,"model":"llama-3.3-70b-versatile","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"req_1","usage":{"queue_time":0.01,"prompt_tokens":20,"completion_tokens":6,"total_tokens":26}}}`
	u := providertest.NewUpstream(t, providerSSE(chunkHello, last, "[DONE]"))
	s, err := openaicompat.New(u.Client(), openAISpec(t)).Stream(context.Background(), call(u, `{"model":"a","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := readStream(s); err != nil || !equal(got, []string{chunkHello, last}) {
		t.Errorf("chunks = %q, %v", got, err)
	}
	if u := s.Usage(); u.PromptTokens != 20 || u.CompletionTokens != 6 || u.TotalTokens != 26 {
		t.Errorf("usage = %+v, want 20/6/26 from x_groq.usage", u)
	}
}
