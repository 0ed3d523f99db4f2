package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
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

// stream answers a streaming call with Server-Sent Events. Until the router has the first
// chunk, failures are ordinary JSON errors (the router retries and falls back); once the
// headers are out, a failure ends the stream with an OpenAI-style error event and no
// [DONE]. The cost is known only at the end, so it is sent as the trailer
// X-Litellm-Response-Cost (clients that ignore trailers get no cost header). Each chunk is
// flushed as soon as no further chunk has already arrived (provider.Buffered), so a chunk
// never waits for the upstream and a burst leaves in one write.
//
// The upstream call does not end with the client's request: a client that leaves has been
// billed for what the upstream goes on generating, so the stream is read to its end (and
// its usage) without writing, within the router's timeout.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, c *call, rt router.Route, pc provider.Call) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), g.router.Timeout())
	defer cancel()
	s, result, err := g.router.Stream(ctx, rt, pc)
	c.result = result
	routingHeaders(w.Header(), result)
	if err != nil {
		if r.Context().Err() != nil {
			return context.Canceled
		}
		return err
	}
	complete := false // the stream ended with io.EOF
	defer func() {
		_ = s.Close()
		u := s.Usage()
		g.account(r.Context(), c, u, complete && reported(u), result.Price)
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
	buffered, _ := s.(provider.Buffered)
	gone := false // the client left: read on, write nothing
	for n := 0; ; n++ {
		chunk, err := s.Next()
		if errors.Is(err, io.EOF) {
			complete = true
			if !gone && !c.wire.named {
				if _, err := w.Write(doneEvent); err == nil {
					_ = rc.Flush()
				}
			}
			return nil
		}
		if err != nil {
			if gone || r.Context().Err() != nil {
				c.fail(context.Canceled)
				return nil
			}
			oe := streamError(err)
			c.fail(oe)
			if _, err := w.Write(c.wire.appendErrorEvent(nil, oe)); err == nil {
				_ = rc.Flush()
			}
			return nil
		}
		if c.kind == provider.Responses {
			chunk = g.sealIDs(c.sealing(), chunk, "response")
		} else if c.wire.streamID != "" {
			chunk = c.ownID(chunk, c.wire.streamID)
		}
		if gone {
			continue
		}
		if err := c.wire.writeEvent(w, chunk); err != nil {
			c.fail(context.Canceled)
			gone = true
			continue
		}
		if n > 0 && buffered != nil && buffered.Buffered() {
			continue // the next chunk is already here: one flush sends both
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			c.fail(context.Canceled)
			gone = true
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

// writeEvent writes chunk as an SSE event into w's buffer, unframed pieces and all: w copies
// them, so no frame buffer is held per stream. A named format's event carries its type as
// the event name.
func (wf *wire) writeEvent(w io.Writer, chunk []byte) error {
	pieces := [...][]byte{nil, nil, nil, dataPrefix, chunk, eventEnd}
	if wf.named {
		pieces[0], pieces[1], pieces[2] = eventPrefix, []byte(eventName(chunk)), newline
	}
	for _, b := range pieces {
		if len(b) == 0 {
			continue
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// appendErrorEvent frames e as OpenAI frames a streamed error: data: {"error": {...}}.
func appendErrorEvent(b []byte, e *openai.Error) []byte {
	data, _ := json.Marshal(struct {
		Error *openai.Error `json:"error"`
	}{e})
	return append(append(append(b, dataPrefix...), data...), eventEnd...)
}
