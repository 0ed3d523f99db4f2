// Package duration parses LiteLLM's duration strings ("30s", "30m", "30h", "30d", "2w", "1mo")
// and computes budget reset times aligned the way LiteLLM aligns them.
package duration

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Unit is the unit of a parsed duration.
type Unit string

// Units LiteLLM accepts.
const (
	Second Unit = "s"
	Minute Unit = "m"
	Hour   Unit = "h"
	Day    Unit = "d"
	Week   Unit = "w"
	Month  Unit = "mo"
)

// D is a parsed duration: Value units.
type D struct {
	Value int
	Unit  Unit
}

// String formats d as LiteLLM writes it ("30d", "1mo").
func (d D) String() string { return strconv.Itoa(d.Value) + string(d.Unit) }

// Parse reads "30s", "30m", "30h", "30d", "2w" or "1mo". A bare number is seconds.
func Parse(s string) (D, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return D{}, fmt.Errorf("empty duration")
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return D{}, fmt.Errorf("invalid duration %q: want a number and a unit (s, m, h, d, w, mo)", s)
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n <= 0 || n > 1_000_000 {
		return D{}, fmt.Errorf("invalid duration %q: the number must be between 1 and 1000000", s)
	}
	u := Unit(s[i:])
	switch u {
	case "":
		u = Second
	case Second, Minute, Hour, Day, Week, Month:
	default:
		return D{}, fmt.Errorf("invalid duration %q: unknown unit %q (want s, m, h, d, w or mo)", s, string(u))
	}
	d := D{Value: n, Unit: u}
	if d.Approx() > maxDuration {
		return D{}, fmt.Errorf("invalid duration %q: longer than 100 years", s)
	}
	return d, nil
}

// maxDuration keeps every duration far inside time.Duration's range (about 292 years).
const maxDuration = 100 * 365 * 24 * time.Hour

// Add returns t plus d; months are added on the calendar, clamped to the month's last day.
func (d D) Add(t time.Time) time.Time {
	switch d.Unit {
	case Second:
		return t.Add(time.Duration(d.Value) * time.Second)
	case Minute:
		return t.Add(time.Duration(d.Value) * time.Minute)
	case Hour:
		return t.Add(time.Duration(d.Value) * time.Hour)
	case Day:
		return t.AddDate(0, 0, d.Value)
	case Week:
		return t.AddDate(0, 0, 7*d.Value)
	default:
		return addMonthsClamped(t, d.Value)
	}
}

// Approx returns d as a fixed length (a month counts 30 days), for TTLs and comparisons.
func (d D) Approx() time.Duration {
	base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if d.Unit == Month {
		const month = 30 * 24 * time.Hour
		if d.Value > int(math.MaxInt64/month) {
			return math.MaxInt64 // saturates as Sub does, rather than wrapping negative
		}
		return time.Duration(d.Value) * month
	}
	return d.Add(base).Sub(base)
}

// NextReset returns when a budget with duration d, checked at now, next resets, aligned as
// LiteLLM's get_next_standardized_reset_time aligns it in loc: "1d" → next midnight, "7d" →
// next Monday midnight, "30d" → the 1st of next month, other "Nd" → midnight N days on;
// "Nh", "Nm", "Ns" → the next multiple of N of the clock's hours, minutes or seconds (see
// nextBoundary); "Nw" → midnight N weeks on;
// "Nmo" → the same day N months on (clamped to the month's end), at midnight.
func NextReset(d D, now time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	now = now.In(loc)
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	switch d.Unit {
	case Day:
		switch d.Value {
		case 1:
			return midnight.AddDate(0, 0, 1)
		case 7:
			days := (7 - (int(now.Weekday())+6)%7) % 7
			if days == 0 {
				days = 7
			}
			return midnight.AddDate(0, 0, days)
		case 30:
			return time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, loc)
		default:
			return midnight.AddDate(0, 0, d.Value)
		}
	case Week:
		return midnight.AddDate(0, 0, 7*d.Value)
	case Hour:
		return nextBoundary(midnight, now, time.Hour, d.Value)
	case Minute:
		return nextBoundary(midnight, now, time.Minute, d.Value)
	case Second:
		return nextBoundary(midnight, now, time.Second, d.Value)
	default:
		return addMonthsClamped(midnight, d.Value)
	}
}

// nextBoundary is LiteLLM's _handle_hour_reset, _handle_minute_reset and _handle_second_reset:
// the clock field of the unit is rounded down to a multiple of n and n is added; what passes
// 60 (or 24) carries into the next field and the next day, as the wall clock in now's
// location reads (so "6h" resets at 06:00, 12:00, ... local time, also on days when the
// clocks change, and "5h" at 22:30 resets at 01:00). A step of a day or more (a "48h"
// budget) resets that long after today's midnight, where LiteLLM would reset daily.
func nextBoundary(midnight, now time.Time, unit time.Duration, n int) time.Time {
	step := time.Duration(n) * unit
	const day = 24 * time.Hour
	if step >= day {
		return midnight.AddDate(0, 0, int(step/day)).Add(step % day)
	}
	h, m, s := now.Clock()
	switch unit {
	case time.Hour:
		h, m, s = h-h%n+n, 0, 0
	case time.Minute:
		m, s = m-m%n+n, 0
	default:
		s = s - s%n + n
	}
	y, mo, d := now.Date()
	t := time.Date(y, mo, d, h, m, s, 0, now.Location()) // normalizes the carries
	// A wall time repeated when the clocks go back may be read as its first pass, before now.
	for !t.After(now) {
		t = t.Add(step)
	}
	return t
}

func addMonthsClamped(t time.Time, months int) time.Time {
	y, m, d := t.Date()
	first := time.Date(y, m+time.Month(months), 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
	last := first.AddDate(0, 1, -1).Day()
	if d > last {
		d = last
	}
	return first.AddDate(0, 0, d-1)
}
