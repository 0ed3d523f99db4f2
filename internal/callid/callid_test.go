package callid

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestNew_CarriesTheStartToTheMillisecond(t *testing.T) {
	for _, start := range []time.Time{
		time.Date(2026, 12, 5, 23, 59, 59, 999_900_000, time.UTC), // last ms of a day
		time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 6, 1, 30, 0, 123_456_789, time.FixedZone("x", 3600)),
	} {
		id := New(start)
		got, ok := Time(id)
		if !ok || !got.Equal(start.Truncate(time.Millisecond)) || got.Location() != time.UTC {
			t.Errorf("Time(New(%v)) = %v, %v; want %v", start, got, ok, start.UTC().Truncate(time.Millisecond))
		}
		u := uuid.MustParse(id)
		if u.Version() != 7 || u.Variant() != uuid.RFC4122 {
			t.Errorf("%s: version %d variant %v, want a UUIDv7", id, u.Version(), u.Variant())
		}
	}
	if a, b := New(time.Now()), New(time.Now()); a == b {
		t.Errorf("two ids are equal: %s", a)
	}
}

func TestTime_OnlyCanonicalV7(t *testing.T) {
	const v7 = "0193a9b2-7c4e-7abc-8def-0123456789ab"
	if got, ok := Time(v7); !ok || got.UnixMilli() != 0x0193a9b27c4e {
		t.Fatalf("Time(%s) = %v, %v", v7, got, ok)
	}
	for _, id := range []string{
		"", "req-1", uuid.NewString(), // v4: the ids of older builds
		"0193a9b2-7c4e-4abc-8def-0123456789ab", // version 4 bits
		"0193a9b2-7c4e-7abc-cdef-0123456789ab", // not the RFC 9562 variant
		"urn:uuid:" + v7, "{" + v7 + "}", strings.ReplaceAll(v7, "-", ""), strings.ToUpper(v7),
	} {
		if _, ok := Time(id); ok {
			t.Errorf("Time(%q) ok, want not a call id", id)
		}
	}
}
