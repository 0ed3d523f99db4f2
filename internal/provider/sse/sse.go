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

// initialBuffer is the line buffer a Reader starts with; it grows up to MaxEventSize for
// longer lines. Chunks of LLM streams are a few hundred bytes, so this keeps an in-flight
// stream small.
const initialBuffer = 4 << 10

// Event is one server-sent event.
type Event struct {
	Name string // the "event:" field; empty for the default "message"
	Data []byte // "data:" lines joined with "\n"; the caller owns it
}

// Reader reads events from a stream.
type Reader struct {
	sc   *bufio.Scanner
	data bytes.Buffer
	// cut is set when the stream ended in the middle of a line.
	cut bool
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{}
	rd.sc = bufio.NewScanner(r)
	rd.sc.Buffer(make([]byte, 0, initialBuffer), MaxEventSize)
	rd.sc.Split(rd.scanLines)
	return rd
}

// scanLines is bufio.ScanLines that records whether the last line lacked its line ending.
func (r *Reader) scanLines(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) > 0 && bytes.IndexByte(data, '\n') < 0 {
		r.cut = true
	}
	return bufio.ScanLines(data, atEOF)
}

// Next returns the next event with data, or io.EOF at the end of the stream. As the SSE
// specification says, events without a data field are not returned. A stream that ends in
// the middle of a line, or after fields but without any data, returns io.ErrUnexpectedEOF;
// an event whose lines are complete but that lacks the final blank line is returned.
func (r *Reader) Next() (Event, error) {
	var name string
	hasData, started := false, false
	r.data.Reset()
	for r.sc.Scan() {
		line := r.sc.Bytes()
		if len(line) == 0 {
			if hasData {
				return Event{Name: name, Data: bytes.Clone(r.data.Bytes())}, nil
			}
			name, started = "", false
			continue
		}
		if line[0] == ':' { // comment / keep-alive
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			name = string(value)
			started = true
		case "data":
			if hasData {
				r.data.WriteByte('\n')
			}
			r.data.Write(value)
			hasData, started = true, true
		}
		if r.data.Len() > MaxEventSize {
			return Event{}, fmt.Errorf("sse: event larger than %d bytes", MaxEventSize)
		}
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, fmt.Errorf("sse: read: %w", err)
	}
	switch {
	case r.cut:
		return Event{}, io.ErrUnexpectedEOF
	case hasData:
		return Event{Name: name, Data: bytes.Clone(r.data.Bytes())}, nil
	case started:
		return Event{}, io.ErrUnexpectedEOF
	}
	return Event{}, io.EOF
}
