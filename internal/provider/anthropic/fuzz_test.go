package anthropic

import (
	"bytes"
	"testing"

	"github.com/llmgate/llmgate/internal/provider/providertest"
	"github.com/llmgate/llmgate/internal/provider/sse"
	"github.com/llmgate/llmgate/internal/provider/translate"
)

// FuzzDecoder feeds arbitrary upstream bytes to the stream decoder: it must never panic,
// must end, and every chunk it yields must be a JSON chat.completion.chunk.
func FuzzDecoder(f *testing.F) {
	f.Add(providertest.SSEBody(toolStream...))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"))
	f.Add([]byte("data: {\"type\":\"content_block_delta\",\"index\":7,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n"))
	f.Add([]byte("data: {\"type\":\"message_delta\",\"delta\":null,\"usage\":null}\n\ndata: {\"type\":\"message_stop\"}\n\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		dec := &decoder{events: sse.NewReader(bytes.NewReader(body)), tools: map[int]int{}}
		s := translate.NewStream("id", 1, "m", true, dec, nil, nil)
		providertest.CheckChunksUntilEnd(t, s)
	})
}

// BenchmarkDecoder measures translating one Messages stream (13 events, 7 chunks).
func BenchmarkDecoder(b *testing.B) {
	body := providertest.SSEBody(toolStream...)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dec := &decoder{events: sse.NewReader(bytes.NewReader(body)), tools: map[int]int{}}
		s := translate.NewStream("id", 1, "m", true, dec, nil, nil)
		for {
			if _, err := s.Next(); err != nil {
				break
			}
		}
	}
}
