package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// Decoder reads a provider's stream one upstream event at a time.
type Decoder interface {
	// Decode reads the next upstream event and reports what it carries through s (Delta,
	// Finish, SetUsage, ID and Model). It returns io.EOF once the upstream finished cleanly.
	Decode(s *Stream) error
}

// Stream is a provider.Stream over a Decoder: it turns what the decoder reports into
// chat.completion.chunk JSON, and emits the usage chunk (choices: []) at the end only when the
// client asked for it with stream_options.include_usage.
type Stream struct {
	// ID and Model are the chunks' id and model; a decoder may set them from the upstream's
	// first event, before its first Delta.
	ID      string
	Model   string
	created int64

	includeUsage bool
	dec          Decoder
	closer       io.Closer
	watchdog     *Watchdog

	queue     [][]byte
	usage     openai.Usage
	err       error // sticky: io.EOF after the last chunk, or the failure
	closeOnce sync.Once
	closeErr  error
}

var _ provider.Stream = (*Stream)(nil)

// NewStream returns a Stream reading dec. closer releases the upstream; it is called once, at
// the end of the stream, on failure or by Close. w, if not nil, is the call's idle timeout
// (see Post.Stream): the Stream touches it after each event, stops it when it closes, and
// fails with the timeout error once it fired.
func NewStream(id string, created int64, model string, includeUsage bool, dec Decoder, closer io.Closer, w *Watchdog) *Stream {
	return &Stream{ID: id, Model: model, created: created, includeUsage: includeUsage, dec: dec, closer: closer, watchdog: w}
}

// Next returns the next chunk's JSON, or io.EOF after the last one.
func (s *Stream) Next() ([]byte, error) {
	for len(s.queue) == 0 {
		if s.err != nil {
			return nil, s.err
		}
		err := s.dec.Decode(s)
		switch {
		case errors.Is(err, io.EOF):
			s.err = io.EOF
			if s.includeUsage {
				u := s.usage
				s.push(Chunk{Choices: []ChunkChoice{}, Usage: &u})
			}
			_ = s.Close()
		case err != nil:
			s.err = s.watchdog.Explain(err)
			_ = s.Close()
		default:
			s.watchdog.Touch()
		}
	}
	b := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	return b, nil
}

// Usage returns the usage reported so far.
func (s *Stream) Usage() openai.Usage { return s.usage }

// Close releases the upstream. It is safe to call more than once.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		if s.closer != nil {
			s.closeErr = s.closer.Close()
		}
		s.watchdog.Stop()
	})
	return s.closeErr
}

// Delta queues a chunk that adds d to choice index.
func (s *Stream) Delta(index int, d Delta) {
	s.push(Chunk{Choices: []ChunkChoice{{Index: index, Delta: d}}})
}

// Finish queues choice index's last chunk, with its finish reason and an empty delta.
func (s *Stream) Finish(index int, reason string) {
	s.push(Chunk{Choices: []ChunkChoice{{Index: index, FinishReason: &reason}}})
}

// Emit queues an event as it is: a pass-through relays the upstream's events unchanged.
func (s *Stream) Emit(event []byte) { s.queue = append(s.queue, event) }

// SetUsage records the usage so far (providers report it in parts; the last call wins).
func (s *Stream) SetUsage(u openai.Usage) { s.usage = u }

func (s *Stream) push(c Chunk) {
	c.ID, c.Object, c.Created, c.Model = s.ID, "chat.completion.chunk", s.created, s.Model
	b, err := json.Marshal(c)
	if err != nil {
		// Chunk holds only strings, numbers and slices of them: Marshal cannot fail.
		panic(fmt.Sprintf("translate: marshal chunk: %v", err))
	}
	s.queue = append(s.queue, b)
}
