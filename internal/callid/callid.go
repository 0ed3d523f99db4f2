// Package callid makes and reads llmgate's call ids (x-litellm-call-id): UUIDv7s whose time
// is the call's start, to the millisecond. The spend log of a call is stored under its day
// and start time, and found from the call id alone because the id carries that time.
package callid

import (
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// New returns a call id for a call that started at start: a UUIDv7 (RFC 9562) with start's
// unix milliseconds and 74 random bits.
func New(start time.Time) string {
	u := uuid.New() // random bits and the RFC 9562 variant
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(start.UnixMilli()))
	copy(u[:6], ms[2:])
	u[6] = 0x70 | u[6]&0x0f
	return u.String()
}

// Time returns the start time a call id carries (UTC, whole milliseconds). ok is false for
// anything but a UUIDv7 in canonical form (lowercase, hyphenated): ids of builds before call
// ids carried their time, and ids of other makers.
func Time(id string) (t time.Time, ok bool) {
	if len(id) != 36 {
		return time.Time{}, false
	}
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 || u.String() != id {
		return time.Time{}, false
	}
	var ms [8]byte
	copy(ms[2:], u[:6])
	return time.UnixMilli(int64(binary.BigEndian.Uint64(ms[:]))).UTC(), true
}
