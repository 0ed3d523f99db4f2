package bedrock

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llmgate/llmgate/internal/provider/sse"
)

// maxFrameSize bounds one frame of an event stream answer. The SDK's decoder buffers a
// frame's payload whole, up to the 4 GiB its length field can claim; the other providers'
// events are bounded by sse.MaxEventSize, and a Claude event relayed by
// InvokeModelWithResponseStream comes base64 in a chunk frame (4/3 larger), so twice that
// leaves room.
const maxFrameSize = 2 * sse.MaxEventSize

// frameLen is the start of a frame's prelude: its total length and its headers' length
// (big-endian uint32s). minFrame is a frame with no headers and no payload: prelude, prelude
// CRC and message CRC.
const (
	frameLen = 8
	minFrame = frameLen + 4 + 4
)

// boundedEvents refuses event stream answers whose frames are over maxFrameSize or claim
// lengths that do not add up (a payload length the SDK would compute below zero, and so as
// 4 GiB). Non-stream answers are bounded by the shared client (registry.LimitAnswers).
type boundedEvents struct{ aws.HTTPClient }

func (c boundedEvents) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.HTTPClient.Do(r)
	if err == nil && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/vnd.amazon.eventstream") {
		resp.Body = &frameReader{ReadCloser: resp.Body}
	}
	return resp, err
}

// frameReader passes an event stream through, checking each frame's prelude before any of
// the frame reaches the SDK.
type frameReader struct {
	io.ReadCloser
	prelude [frameLen]byte
	pending []byte // the part of prelude not yet passed on
	left    int64  // bytes of the current frame not yet passed on, prelude included
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.left == 0 {
		if _, err := io.ReadFull(f.ReadCloser, f.prelude[:]); err != nil {
			return 0, err // io.EOF between frames is the stream's end
		}
		total := binary.BigEndian.Uint32(f.prelude[:4])
		headers := binary.BigEndian.Uint32(f.prelude[4:])
		if total > maxFrameSize {
			return 0, fmt.Errorf("event stream frame of %d bytes is over llmgate's limit of %d", total, maxFrameSize)
		}
		if total < minFrame || headers > total-minFrame {
			return 0, fmt.Errorf("event stream frame of %d bytes claims %d bytes of headers", total, headers)
		}
		f.pending, f.left = f.prelude[:], int64(total)
	}
	if len(f.pending) > 0 {
		n := copy(p, f.pending)
		f.pending = f.pending[n:]
		f.left -= int64(n)
		return n, nil
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	n, err := f.ReadCloser.Read(p)
	f.left -= int64(n)
	if err == io.EOF && f.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}
