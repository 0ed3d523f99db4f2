package anthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/provider/sse"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// FuzzDecoder feeds arbitrary upstream bytes to the stream decoder: it must never panic,
// must end, and every chunk it yields must be a JSON chat.completion.chunk.
func FuzzDecoder(f *testing.F) {
	var sb strings.Builder
	for _, e := range toolStream {
		fmt.Fprintf(&sb, "event: %s\ndata: %s\n\n", e.Name, e.Data)
	}
	f.Add([]byte(sb.String()))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"))
	f.Add([]byte("data: {\"type\":\"content_block_delta\",\"index\":7,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n"))
	f.Add([]byte("data: {\"type\":\"message_delta\",\"delta\":null,\"usage\":null}\n\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		dec := &decoder{events: sse.NewReader(bytes.NewReader(body)), tools: map[int]int{}}
		s := translate.NewStream("id", 1, "m", true, dec, nil)
		for range 10000 {
			b, err := s.Next()
			if err != nil { // io.EOF or a classified failure
				return
			}
			var c translate.Chunk
			if err := json.Unmarshal(b, &c); err != nil || c.Object != "chat.completion.chunk" {
				t.Fatalf("chunk %s: %v", b, err)
			}
		}
		t.Fatal("stream did not end")
	})
}

// BenchmarkDecoder measures translating one Messages stream (13 events, 7 chunks).
func BenchmarkDecoder(b *testing.B) {
	var sb strings.Builder
	for _, e := range toolStream {
		fmt.Fprintf(&sb, "event: %s\ndata: %s\n\n", e.Name, e.Data)
	}
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dec := &decoder{events: sse.NewReader(bytes.NewReader(body)), tools: map[int]int{}}
		s := translate.NewStream("id", 1, "m", true, dec, nil)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	}
}
