package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type event struct {
	name, data string
}

// readAll reads events until an error and returns them with that error.
func readAll(r io.Reader) ([]event, error) {
	rd := NewReader(r)
	var evs []event
	for {
		ev, err := rd.Next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, event{ev.Name, string(ev.Data)})
	}
}

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []event
		wantErr error
	}{
		{
			name: "openai chunks then done",
			in:   "data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n",
			want: []event{{"", `{"a":1}`}, {"", `{"a":2}`}, {"", "[DONE]"}},
		},
		{
			name: "named events as anthropic sends them",
			in:   "event: message_start\ndata: {\"x\":1}\n\nevent: ping\ndata: {}\n\n",
			want: []event{{"message_start", `{"x":1}`}, {"ping", "{}"}},
		},
		{
			name: "crlf line endings",
			in:   "data: a\r\n\r\ndata: b\r\n\r\n",
			want: []event{{"", "a"}, {"", "b"}},
		},
		{
			name: "multi-line data joined with newline",
			in:   "data: line1\ndata: line2\ndata:line3\n\n",
			want: []event{{"", "line1\nline2\nline3"}},
		},
		{
			name: "comments and keep-alives are skipped",
			in:   ": OPENROUTER PROCESSING\n\n:\n\ndata: x\n\n",
			want: []event{{"", "x"}},
		},
		{
			name: "only one leading space is removed",
			in:   "data:  two\n\n",
			want: []event{{"", " two"}},
		},
		{
			name: "event without data is not dispatched and its name does not leak",
			in:   "event: ping\n\ndata: x\n\n",
			want: []event{{"", "x"}},
		},
		{
			name: "id and retry fields are ignored",
			in:   "id: 7\nretry: 100\ndata: x\n\n",
			want: []event{{"", "x"}},
		},
		{
			name: "empty data line dispatches an empty event",
			in:   "data:\n\n",
			want: []event{{"", ""}},
		},
		{
			name: "complete last line without blank line is delivered",
			in:   "data: a\n\ndata: [DONE]\n",
			want: []event{{"", "a"}, {"", "[DONE]"}},
		},
		{
			name:    "stream cut in the middle of a data line",
			in:      "data: {\"a\":1}\n\ndata: {\"a\":",
			want:    []event{{"", `{"a":1}`}},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name:    "stream cut after an event line",
			in:      "data: a\n\nevent: x\n",
			want:    []event{{"", "a"}},
			wantErr: io.ErrUnexpectedEOF,
		},
		{
			name: "empty stream",
			in:   "",
		},
		{
			name: "blank lines only",
			in:   "\n\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				r    io.Reader
			}{
				{"whole", strings.NewReader(tt.in)},
				{"byte by byte", iotest.OneByteReader(strings.NewReader(tt.in))},
			} {
				got, err := readAll(r.r)
				wantErr := tt.wantErr
				if wantErr == nil {
					wantErr = io.EOF
				}
				if !errors.Is(err, wantErr) {
					t.Errorf("%s: err = %v, want %v", r.name, err, wantErr)
				}
				if !equalEvents(got, tt.want) {
					t.Errorf("%s: events = %q, want %q", r.name, got, tt.want)
				}
			}
		})
	}
}

func equalEvents(a, b []event) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReaderReturnsReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom))
	got, err := readAll(r)
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
	if want := []event{{"", "a"}}; !equalEvents(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func TestReaderRejectsOversizedEvents(t *testing.T) {
	line := "data: " + strings.Repeat("x", MaxEventSize/2) + "\n"
	_, err := readAll(strings.NewReader(line + line + line + "\n"))
	if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v, want event too large", err)
	}
	_, err = readAll(strings.NewReader("data: " + strings.Repeat("x", MaxEventSize+1) + "\n\n"))
	if err == nil || errors.Is(err, io.EOF) {
		t.Errorf("err = %v, want line too long", err)
	}
}

func TestReaderBuffered(t *testing.T) {
	tests := []struct {
		name, in string
		want     bool
	}{
		{"next event complete", "data: a\n\ndata: b\n\n", true},
		{"next event without its blank line", "data: a\n\ndata: b\n", false},
		{"nothing more", "data: a\n\n", false},
		{"only a keep-alive follows", "data: a\n\n: keep-alive\n\n", false},
		{"an event after a keep-alive", "data: a\n\n: keep-alive\n\ndata: b\n\n", true},
		{"crlf", "data: a\r\n\r\ndata: b\r\n\r\n", true},
		{"named event with data", "data: a\n\nevent: x\ndata: b\n\n", true},
		{"named event without data", "data: a\n\nevent: ping\n\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rd := NewReader(strings.NewReader(tt.in))
			if ev, err := rd.Next(); err != nil || string(ev.Data) != "a" {
				t.Fatalf("first event = %q, %v", ev.Data, err)
			}
			if got := rd.Buffered(); got != tt.want {
				t.Errorf("Buffered() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReaderDataIsOwnedByCaller(t *testing.T) {
	rd := NewReader(strings.NewReader("data: first\n\ndata: second\n\n"))
	a, _ := rd.Next()
	b, _ := rd.Next()
	if string(a.Data) != "first" || string(b.Data) != "second" {
		t.Errorf("data = %q, %q; want first, second", a.Data, b.Data)
	}
}

// FuzzReader checks that any input ends in an error without panicking or looping, that no
// event is larger than MaxEventSize, and that well-formed events written from the fuzzed
// payload and name read back unchanged, whatever the read sizes.
func FuzzReader(f *testing.F) {
	seeds := []struct{ stream, payload, name string }{
		{"data: {\"id\":\"c\",\"choices\":[]}\n\ndata: [DONE]\n\n", `{"a":1}`, ""},
		{"event: content_block_delta\ndata: {\"delta\":{}}\n\n", "multi\nline", "message_start"},
		{": keep-alive\r\n\r\ndata: x\r\n\r\n", "", "ping"},
		{"data: cut", " leading space", ""},
		{"data:\n\nevent:\n\n:\n\n\n", "{}", "error"},
		{"\xef\xbb\xbfdata: bom\n\n", "ünïcödé", ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.stream), s.payload, s.name)
	}
	f.Fuzz(func(t *testing.T, stream []byte, payload, name string) {
		// Arbitrary bytes: must terminate with an error, events within bounds.
		rd := NewReader(iotest.HalfReader(bytes.NewReader(stream)))
		for i := 0; ; i++ {
			if i > len(stream)+1 {
				t.Fatalf("more events (%d) than input bytes (%d)", i, len(stream))
			}
			ev, err := rd.Next()
			if err != nil {
				break
			}
			if len(ev.Data) > MaxEventSize {
				t.Fatalf("event of %d bytes", len(ev.Data))
			}
		}

		// Round trip: CR starts a new line in SSE, so payloads and names are CR-free; names
		// are single-line and have no leading space (the writer's one space is stripped).
		payload = strings.ReplaceAll(payload, "\r", "")
		name = strings.TrimLeft(strings.NewReplacer("\r", "", "\n", "").Replace(name), " ")
		var b strings.Builder
		if name != "" {
			b.WriteString("event: " + name + "\n")
		}
		for _, l := range strings.Split(payload, "\n") {
			b.WriteString("data: " + l + "\n")
		}
		b.WriteString("\n")
		got, err := readAll(iotest.OneByteReader(strings.NewReader(b.String())))
		if !errors.Is(err, io.EOF) {
			t.Fatalf("round trip err = %v", err)
		}
		if want := []event{{name, payload}}; !equalEvents(got, want) {
			t.Fatalf("round trip = %q, want %q", got, want)
		}
	})
}
