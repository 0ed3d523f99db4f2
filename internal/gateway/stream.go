package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/router"
)

// SSE framing, as OpenAI streams.
var (
	dataPrefix = []byte("data: ")
	eventEnd   = []byte("\n\n")
	doneEvent  = []byte("data: [DONE]\n\n")
)

// framePool holds the buffers chunks are framed in, so a stream allocates none per chunk.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledFrame keeps an unusually large chunk's buffer out of the pool.
const maxPooledFrame = 64 << 10

// stream answers a streaming call with Server-Sent Events. Until the router has the first
// chunk, failures are ordinary JSON errors (the router retries and falls back); once the
// headers are out, a failure ends the stream with an OpenAI-style error event and no
// [DONE]. The cost is known only at the end, so it is sent as the trailer
// X-Litellm-Response-Cost (clients that ignore trailers get no cost header).
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, c *call, rt router.Route, pc provider.Call) error {
	s, result, err := g.router.Stream(r.Context(), rt, pc)
	c.result = result
	if err != nil {
		return err
	}
	defer func() {
		_ = s.Close()
		c.usage = s.Usage()
		c.cost = result.Price.Cost(c.usage)
		w.Header().Set(HeaderResponseCost, strconv.FormatFloat(c.cost, 'g', -1, 64))
	}()
	h := w.Header()
	g.deploymentHeaders(h, c)
	h.Set(HeaderDuration, durationMS(time.Since(c.start))) // time to the first chunk
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Trailer", HeaderResponseCost)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)

	bp := framePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledFrame {
			framePool.Put(bp)
		}
	}()
	for {
		chunk, err := s.Next()
		if errors.Is(err, io.EOF) {
			if _, err := w.Write(doneEvent); err == nil {
				_ = rc.Flush()
			}
			return nil
		}
		if err != nil {
			if r.Context().Err() != nil {
				c.fail(context.Canceled)
				return nil
			}
			oe := streamError(err)
			c.status, c.errType = oe.Status, oe.Type
			*bp = appendErrorEvent((*bp)[:0], oe)
			if _, err := w.Write(*bp); err == nil {
				_ = rc.Flush()
			}
			return nil
		}
		*bp = append(append(append((*bp)[:0], dataPrefix...), chunk...), eventEnd...)
		if _, err := w.Write(*bp); err != nil {
			c.fail(context.Canceled) // the client went away
			return nil
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			c.fail(context.Canceled)
			return nil
		}
	}
}

// streamError is the error event for a stream that failed after its first chunk.
func streamError(err error) *openai.Error {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe.OpenAI()
	}
	var oe *openai.Error
	if errors.As(err, &oe) {
		return oe
	}
	return openai.Errorf(http.StatusBadGateway, openai.TypeServer, "the upstream stream failed")
}

// appendErrorEvent frames e as OpenAI frames a streamed error: data: {"error": {...}}.
func appendErrorEvent(b []byte, e *openai.Error) []byte {
	data, _ := json.Marshal(struct {
		Error *openai.Error `json:"error"`
	}{e})
	return append(append(append(b, dataPrefix...), data...), eventEnd...)
}
