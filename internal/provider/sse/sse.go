// Package sse reads and writes Server-Sent Events, as OpenAI, Anthropic and Gemini stream.
package sse

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// MaxEventSize bounds one event, so a broken upstream cannot make the gateway buffer forever.
const MaxEventSize = 4 << 20

// Event is one server-sent event.
type Event struct {
	Name string // the "event:" field; empty for the default "message"
	Data []byte // "data:" lines joined with "\n"
}

// Reader reads events from a stream.
type Reader struct {
	sc   *bufio.Scanner
	data bytes.Buffer
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxEventSize)
	return &Reader{sc: sc}
}

// Next returns the next event with data, or io.EOF at the end of the stream. A stream that
// ends in the middle of an event returns io.ErrUnexpectedEOF.
func (r *Reader) Next() (Event, error) {
	var ev Event
	r.data.Reset()
	started := false
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) == 0 {
			if started {
				ev.Data = bytes.Clone(r.data.Bytes())
				return ev, nil
			}
			continue
		}
		if line[0] == ':' { // comment / keep-alive
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Name = string(value)
			started = true
		case "data":
			if started && r.data.Len() > 0 {
				r.data.WriteByte('\n')
			}
			r.data.Write(value)
			started = true
		}
		if r.data.Len() > MaxEventSize {
			return Event{}, fmt.Errorf("sse: event larger than %d bytes", MaxEventSize)
		}
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("sse: read: %w", err)
	}
	if started {
		// The last event had no terminating blank line: deliver it if it has data.
		if r.data.Len() > 0 {
			ev.Data = bytes.Clone(r.data.Bytes())
			return ev, nil
		}
		return Event{}, io.ErrUnexpectedEOF
	}
	return Event{}, io.EOF
}
