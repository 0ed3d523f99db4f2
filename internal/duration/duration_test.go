package duration

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    D
		wantErr bool
	}{
		{"30s", D{30, Second}, false},
		{"30m", D{30, Minute}, false},
		{"30h", D{30, Hour}, false},
		{"30d", D{30, Day}, false},
		{"2w", D{2, Week}, false},
		{"1mo", D{1, Month}, false},
		{" 7d ", D{7, Day}, false},
		{"45", D{45, Second}, false},
		{"", D{}, true},
		{"d", D{}, true},
		{"0d", D{}, true},
		{"-1d", D{}, true},
		{"10x", D{}, true},
		{"1month", D{}, true},
		{"99999999999999999999d", D{}, true},
		{"36500d", D{36500, Day}, false},
		{"36600d", D{}, true},
		{"1000000w", D{}, true},
		{"1200mo", D{1200, Month}, false},
		{"1000000mo", D{}, true}, // 30 days × 10⁶ once wrapped time.Duration negative and passed
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Parse(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	base := time.Date(2026, 1, 31, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		d    string
		want time.Time
	}{
		{"30s", base.Add(30 * time.Second)},
		{"2h", base.Add(2 * time.Hour)},
		{"1d", time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)},
		{"1w", time.Date(2026, 2, 7, 10, 0, 0, 0, time.UTC)},
		{"1mo", time.Date(2026, 2, 28, 10, 0, 0, 0, time.UTC)}, // clamped to February's end
		{"13mo", time.Date(2027, 2, 28, 10, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		d, err := Parse(tt.d)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Add(base); !got.Equal(tt.want) {
			t.Errorf("%s.Add(%v) = %v, want %v", tt.d, base, got, tt.want)
		}
	}
}

func TestNextReset(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	tests := []struct {
		name string
		d    string
		now  time.Time
		loc  *time.Location
		want time.Time
	}{
		{"1d is next midnight", "1d", utc(2026, 3, 10, 15, 4, 5), nil, utc(2026, 3, 11, 0, 0, 0)},
		{"1d at midnight is the next one", "1d", utc(2026, 3, 10, 0, 0, 0), nil, utc(2026, 3, 11, 0, 0, 0)},
		{"1d across the year end", "1d", utc(2026, 12, 31, 23, 59, 59), nil, utc(2027, 1, 1, 0, 0, 0)},
		{"1d in Berlin is Berlin's midnight", "1d", utc(2026, 1, 10, 22, 30, 0), berlin, utc(2026, 1, 10, 23, 0, 0)},
		{"1d in New York", "1d", utc(2026, 1, 10, 3, 0, 0), ny, utc(2026, 1, 10, 5, 0, 0)},
		{"7d is next Monday", "7d", utc(2026, 11, 25, 12, 0, 0), nil, utc(2026, 11, 30, 0, 0, 0)}, // a Wednesday
		{"7d on a Monday is the next Monday", "7d", utc(2026, 11, 30, 9, 0, 0), nil, utc(2026, 12, 7, 0, 0, 0)},
		{"30d is the first of next month", "30d", utc(2026, 1, 31, 12, 0, 0), nil, utc(2026, 2, 1, 0, 0, 0)},
		{"30d in December", "30d", utc(2026, 12, 15, 12, 0, 0), nil, utc(2027, 1, 1, 0, 0, 0)},
		{"3d is midnight three days on", "3d", utc(2026, 2, 27, 8, 0, 0), nil, utc(2026, 3, 2, 0, 0, 0)},
		{"1h is the next hour", "1h", utc(2026, 5, 5, 10, 20, 0), nil, utc(2026, 5, 5, 11, 0, 0)},
		{"6h is the next 6-hour boundary", "6h", utc(2026, 5, 5, 13, 0, 0), nil, utc(2026, 5, 5, 18, 0, 0)},
		{"6h late in the day wraps to midnight", "6h", utc(2026, 5, 5, 19, 0, 0), nil, utc(2026, 5, 6, 0, 0, 0)},
		{"5h past the last boundary carries into tomorrow, as LiteLLM", "5h", utc(2026, 5, 5, 21, 0, 0), nil, utc(2026, 5, 6, 1, 0, 0)},
		{"7m aligns within the hour, as LiteLLM", "7m", utc(2026, 5, 5, 10, 59, 0), nil, utc(2026, 5, 5, 11, 3, 0)},
		{"90m carries into the next hour", "90m", utc(2026, 5, 5, 10, 20, 0), nil, utc(2026, 5, 5, 11, 30, 0)},
		{"45m late in the day carries into tomorrow", "45m", utc(2026, 5, 5, 23, 50, 0), nil, utc(2026, 5, 6, 0, 30, 0)},
		{"40s aligns within the minute", "40s", utc(2026, 5, 5, 10, 20, 50), nil, utc(2026, 5, 5, 10, 21, 20)},
		{"15m boundary", "15m", utc(2026, 5, 5, 10, 20, 0), nil, utc(2026, 5, 5, 10, 30, 0)},
		{"15m exactly on a boundary moves on", "15m", utc(2026, 5, 5, 10, 30, 0), nil, utc(2026, 5, 5, 10, 45, 0)},
		{"30s boundary", "30s", utc(2026, 5, 5, 10, 20, 10), nil, utc(2026, 5, 5, 10, 20, 30)},
		{"1mo same day next month", "1mo", utc(2026, 3, 15, 10, 0, 0), nil, utc(2026, 4, 15, 0, 0, 0)},
		{"1mo clamps Jan 31 to Feb 28", "1mo", utc(2026, 1, 31, 10, 0, 0), nil, utc(2026, 2, 28, 0, 0, 0)},
		{"1mo clamps in a leap year", "1mo", utc(2028, 1, 30, 10, 0, 0), nil, utc(2028, 2, 29, 0, 0, 0)},
		{"3mo across the year", "3mo", utc(2026, 11, 30, 10, 0, 0), nil, utc(2027, 2, 28, 0, 0, 0)},
		{"2w is midnight two weeks on", "2w", utc(2026, 5, 5, 10, 0, 0), nil, utc(2026, 5, 19, 0, 0, 0)},
		{"48h is two days after today's midnight, not daily", "48h", utc(2026, 5, 5, 23, 0, 0), nil, utc(2026, 5, 7, 0, 0, 0)},
		{"30h is 06:00 tomorrow", "30h", utc(2026, 5, 5, 10, 0, 0), nil, utc(2026, 5, 6, 6, 0, 0)},
		{"1440m is a day", "1440m", utc(2026, 5, 5, 10, 0, 0), nil, utc(2026, 5, 6, 0, 0, 0)},
		{"6h on the spring-forward day is 06:00 local", "6h", utc(2026, 3, 28, 23, 30, 0), berlin, utc(2026, 3, 29, 4, 0, 0)},
		{"1h in the repeated hour of the fall-back day", "1h", utc(2026, 11, 1, 6, 30, 0), ny, utc(2026, 11, 1, 7, 0, 0)},
		{"30m in the repeated hour is the mark of its second pass", "30m", utc(2026, 11, 1, 6, 10, 0), ny, utc(2026, 11, 1, 6, 30, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			got := NextReset(d, tt.now, tt.loc)
			if !got.Equal(tt.want) {
				t.Errorf("NextReset(%s, %v) = %v, want %v", tt.d, tt.now, got.UTC(), tt.want)
			}
			if !got.After(tt.now) {
				t.Errorf("NextReset(%s, %v) = %v is not in the future", tt.d, tt.now, got)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"30s", "1mo", "7d", "0", "1e9", "mo", "12345678901234567890h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err != nil {
			return
		}
		now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
		if next := NextReset(d, now, time.UTC); !next.After(now) {
			t.Errorf("NextReset(%v) = %v, not after now", d, next)
		}
		if d.Approx() <= 0 {
			t.Errorf("%v.Approx() = %v", d, d.Approx())
		}
	})
}
