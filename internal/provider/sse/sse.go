// Package sse reads and writes Server-Sent Events, as OpenAI, Anthropic and Gemini stream.
package sse

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// MaxEventSize bounds one event, so a broken upstream cannot make the gateway buffer forever.
const MaxEventSize = 4 << 20

// bufferSize is the read buffer of a Reader; longer lines are assembled outside it, up to
// MaxEventSize. Chunks of LLM streams are a few hundred bytes, so this keeps an in-flight
// stream small.
const bufferSize = 2 << 10

// Event is one server-sent event.
type Event struct {
	Name string // the "event:" field; empty for the default "message"
	Data []byte // "data:" lines joined with "\n"; the caller owns it
}

// Reader reads events from a stream.
type Reader struct {
	br   *bufio.Reader
	long []byte // a line longer than br's buffer, assembled
	data bytes.Buffer
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, bufferSize)}
}

// Buffered reports whether an event with data has already been read from the stream in
// full, up to its blank line, so that Next returns it without waiting for more input. A
// proxy flushes what it relayed only when nothing is buffered: chunks that arrived together
// leave together, and none waits for the next read.
func (r *Reader) Buffered() bool {
	b, _ := r.br.Peek(r.br.Buffered())
	for len(b) > 0 {
		end := bytes.Index(b, []byte("\n\n"))
		if crlf := bytes.Index(b, []byte("\n\r\n")); crlf >= 0 && (end < 0 || crlf < end) {
			end = crlf
		}
		if end < 0 {
			return false
		}
		if ev := b[:end+1]; bytes.HasPrefix(ev, []byte("data")) || bytes.Contains(ev, []byte("\ndata")) {
			return true
		}
		b = bytes.TrimLeft(b[end+1:], "\r\n")
	}
	return false
}

// line returns the next line without its line ending (LF or CRLF), valid until the next
// call; io.EOF at the end of the stream, io.ErrUnexpectedEOF if it ends inside a line.
func (r *Reader) line() ([]byte, error) {
	l, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], l...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(r.long) > MaxEventSize {
				return nil, fmt.Errorf("sse: line longer than %d bytes", MaxEventSize)
			}
			l, err = r.br.ReadSlice('\n')
			r.long = append(r.long, l...)
		}
		l = r.long
	}
	switch {
	case errors.Is(err, io.EOF) && len(l) > 0:
		return nil, io.ErrUnexpectedEOF
	case errors.Is(err, io.EOF):
		return nil, io.EOF
	case err != nil:
		return nil, fmt.Errorf("sse: read: %w", err)
	}
	l = l[:len(l)-1]
	if n := len(l); n > 0 && l[n-1] == '\r' {
		l = l[:n-1]
	}
	return l, nil
}

// Next returns the next event with data, or io.EOF at the end of the stream. As the SSE
// specification says, events without a data field are not returned. A stream that ends in
// the middle of a line, or after fields but without any data, returns io.ErrUnexpectedEOF;
// an event whose lines are complete but that lacks the final blank line is returned.
func (r *Reader) Next() (Event, error) {
	var name string
	hasData, started := false, false
	r.data.Reset()
	for {
		line, err := r.line()
		switch {
		case errors.Is(err, io.EOF) && hasData:
			return Event{Name: name, Data: bytes.Clone(r.data.Bytes())}, nil
		case errors.Is(err, io.EOF) && started:
			return Event{}, io.ErrUnexpectedEOF
		case err != nil:
			return Event{}, err
		}
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
}
