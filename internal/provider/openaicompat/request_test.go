package openaicompat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/llmgate/llmgate/internal/provider/sse"
)

func TestRewriteBody(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		model string
		mode  streamMode
		want  string
	}{
		{
			name:  "model replaced and moved first, other members byte for byte",
			body:  `{ "messages" : [ {"role":"user","content":"hi"} ], "model": "alias", "temperature": 0.20 }`,
			model: "gpt-4o",
			want:  `{"model":"gpt-4o","messages":[ {"role":"user","content":"hi"} ],"temperature":0.20}`,
		},
		{
			name:  "model added when missing, escaped as JSON",
			body:  `{}`,
			model: "org/\"quoted\"\\\n",
			want:  `{"model":"org/\"quoted\"\\\u000a"}`,
		},
		{
			name:  "LiteLLM-only fields dropped",
			body:  `{"model":"a","metadata":{"tags":["x"]},"mock_response":"hi","fallbacks":["b"],"num_retries":2,"tags":["t"],"user":"u"}`,
			model: "m",
			want:  `{"model":"m","user":"u"}`,
		},
		{
			name:  "non-stream call drops stream and stream_options",
			body:  `{"model":"a","stream":true,"stream_options":{"include_usage":true}}`,
			model: "m",
			want:  `{"model":"m"}`,
		},
		{
			name:  "stream without stream_options support",
			body:  `{"model":"a","stream":false,"stream_options":{"include_usage":true}}`,
			model: "m",
			mode:  streamPlain,
			want:  `{"model":"m","stream":true}`,
		},
		{
			name:  "stream asks for usage",
			body:  `{"model":"a","stream":true}`,
			model: "m",
			mode:  streamWithUsage,
			want:  `{"model":"m","stream":true,"stream_options":{"include_usage":true}}`,
		},
		{
			name:  "client's other stream options kept, include_usage forced",
			body:  `{"stream_options":{"include_usage":false,"include_obfuscation":false},"model":"a","stream":true}`,
			model: "m",
			mode:  streamWithUsage,
			want:  `{"model":"m","stream":true,"stream_options":{"include_usage":true,"include_obfuscation":false}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := []byte(tt.body)
			got, err := rewriteBody(orig, tt.model, tt.mode)
			if err != nil {
				t.Fatalf("rewriteBody: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("invalid JSON: %s", got)
			}
			if string(orig) != tt.body {
				t.Errorf("input modified: %s", orig)
			}
		})
	}
}

func TestRewriteBody_RejectsNonObjects(t *testing.T) {
	for _, body := range []string{``, `[]`, `"x"`, `{"model":}`, `{"a":1`} {
		if _, err := rewriteBody([]byte(body), "m", noStream); err == nil {
			t.Errorf("rewriteBody(%q) succeeded, want an error", body)
		}
	}
}

func FuzzRewriteBody(f *testing.F) {
	f.Add([]byte(`{"model":"a","messages":[{"role":"user","content":"hi"}],"stream_options":{"x":1}}`), "gpt-4o")
	f.Add([]byte(`{"metadata":null,"\u006dodel":1}`), "\x00\"é")
	f.Fuzz(func(t *testing.T, body []byte, model string) {
		for _, mode := range []streamMode{noStream, streamPlain, streamWithUsage} {
			out, err := rewriteBody(body, model, mode)
			if err != nil {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("rewriteBody(%q) = %q: invalid JSON: %v", body, out, err)
			}
			if utf8.ValidString(model) && m["model"] != model { // invalid UTF-8 is passed on as is
				t.Fatalf("model = %q, want %q", m["model"], model)
			}
		}
	})
}

// streamOver is a stream reading the SSE body from memory.
func streamOver(body []byte, clientUsage bool) *stream {
	ctx, cancel := context.WithCancelCause(context.Background())
	rc := io.NopCloser(bytes.NewReader(body))
	return &stream{c: &Client{name: "bench"}, ctx: ctx, cancel: cancel, body: rc, events: sse.NewReader(rc), clientUsage: clientUsage}
}

// BenchmarkStreamNext measures the provider's own cost per chunk: SSE parsing, the checks
// for usage and errors, and the returned copy of the chunk.
func BenchmarkStreamNext(b *testing.B) {
	const chunk = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,"finish_reason":null}],"usage":null}`
	const chunksPerStream = 200
	var sb strings.Builder
	for range chunksPerStream {
		sb.WriteString("data: " + chunk + "\n\n")
	}
	sb.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":10,"completion_tokens":200,"total_tokens":210}}` + "\n\ndata: [DONE]\n\n")
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)) / chunksPerStream)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += chunksPerStream {
		s := streamOver(body, false)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
		if s.Usage().TotalTokens != 210 {
			b.Fatal("usage not read")
		}
	}
}

func BenchmarkRewriteBody(b *testing.B) {
	body := []byte(`{"model":"alias","messages":[{"role":"system","content":"` + strings.Repeat("You are helpful. ", 60) +
		`"},{"role":"user","content":"Hello there, how are you?"}],"temperature":0.7,"max_tokens":256,"stream":true,"user":"u-1"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rewriteBody(body, "gpt-4o-2024-08-06", streamWithUsage); err != nil {
			b.Fatal(err)
		}
	}
}
