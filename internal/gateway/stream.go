package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
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
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, c *call, rt router.Route, pc provider.Call) error {
	s, result, err := g.router.Stream(r.Context(), rt, pc)
	c.result = result
	routingHeaders(w.Header(), result)
	if err != nil {
		return err
	}
	complete := false // the stream ended with io.EOF
	textBytes := 0    // generated text relayed, for a stream that ends without its usage
	defer func() {
		_ = s.Close()
		c.usage, c.estimated = c.streamUsage(s.Usage(), complete, textBytes, result.Price.MaxOutputTokens)
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
	buffered, _ := s.(provider.Buffered)
	for n := 0; ; n++ {
		chunk, err := s.Next()
		if errors.Is(err, io.EOF) {
			complete = true
			if !c.wire.named {
				if _, err := w.Write(doneEvent); err == nil {
					_ = rc.Flush()
				}
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
			if _, err := w.Write(c.wire.appendErrorEvent(nil, oe)); err == nil {
				_ = rc.Flush()
			}
			return nil
		}
		if n == 0 {
			c.responseID = responseID(chunk)
		}
		textBytes += generatedBytes(chunk)
		if err := c.wire.writeEvent(w, chunk); err != nil {
			c.fail(context.Canceled) // the client went away
			return nil
		}
		if n > 0 && buffered != nil && buffered.Buffered() {
			continue // the next chunk is already here: one flush sends both
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			c.fail(context.Canceled)
			return nil
		}
	}
}

// streamUsage is the usage of a stream that ended (complete: with io.EOF), and whether it
// was estimated. A complete stream's reported usage stands. A stream that ended without
// its final usage (the client hung up, the upstream broke off) is charged for what it
// generated: the prompt as reported, else as pricing estimates it from the request; the
// completion as the larger of what was reported so far and an estimate from the text
// relayed (textBytes), at most the call's output limit (modelMax: the model's).
func (c *call) streamUsage(u openai.Usage, complete bool, textBytes, modelMax int) (openai.Usage, bool) {
	if complete && (u.PromptTokens > 0 || u.CompletionTokens > 0) {
		return u, false
	}
	if u.PromptTokens == 0 {
		u.PromptTokens = pricing.PromptTokens(&c.req)
	}
	_, limit := c.outputLimit(modelMax)
	u.CompletionTokens = min(max(u.CompletionTokens, pricing.ByteTokens(textBytes)), limit)
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u, true
}

// textFields are the chunk fields whose string values are generated text: a chat delta's
// content, reasoning and tool-call arguments, a text completion's text; a Messages delta's
// text, partial_json and thinking; a Responses event's delta.
var textFields = [...][]byte{[]byte(`"content"`), []byte(`"reasoning_content"`), []byte(`"arguments"`), []byte(`"text"`),
	[]byte(`"partial_json"`), []byte(`"thinking"`), []byte(`"delta"`)}

// generatedBytes is the size of the text a chunk carries: the string values of its
// textFields, found by a scan rather than a parse (an escape sequence counts as one byte).
// In valid JSON a quoted name followed by a colon is a key: quotes inside strings are
// escaped.
func generatedBytes(chunk []byte) int {
	n := 0
	for _, f := range textFields {
		for rest := chunk; ; {
			i := bytes.Index(rest, f)
			if i < 0 {
				break
			}
			var m int
			m, rest = stringValue(rest[i+len(f):])
			n += m
		}
	}
	return n
}

// stringValue reads a colon and a JSON string at the start of b and returns the string's
// length and the rest of b; 0 and b if b holds no such thing (the key's value is null or
// not a string, or it was no key).
func stringValue(b []byte) (int, []byte) {
	i := skipSpace(b, 0)
	if i == len(b) || b[i] != ':' {
		return 0, b
	}
	if i = skipSpace(b, i+1); i == len(b) || b[i] != '"' {
		return 0, b
	}
	n := 0
	for i++; i < len(b); i++ {
		switch b[i] {
		case '"':
			return n, b[i+1:]
		case '\\':
			if i++; i < len(b) && b[i] == 'u' {
				i += 4
			}
		}
		n++
	}
	return n, nil
}

// skipSpace returns the index of the first byte of b at or after i that is not JSON
// whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
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
