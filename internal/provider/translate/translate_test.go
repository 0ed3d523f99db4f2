package translate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

func TestDecodeRequest_ReadsOpenAIShapes(t *testing.T) {
	r, err := DecodeRequest("p", []byte(`{"messages":[
		{"role":"user","content":"plain"},
		{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":"https://x/y.png"}]},
		{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]},
		{"role":"user","content":""}],
		"stop":"END","n":null,"tool_choice":{"type":"function","function":{"name":"f"}},"max_tokens":5,"max_completion_tokens":7}`))
	if err != nil {
		t.Fatalf("DecodeRequest: %v", err)
	}
	if got := r.Messages[0].Content; !reflect.DeepEqual(got, Content{{Type: PartText, Text: "plain"}}) {
		t.Errorf("string content = %+v, want one text part", got)
	}
	if got := r.Messages[1].Content[1].ImageURL; got == nil || got.URL != "https://x/y.png" {
		t.Errorf("bare image_url string = %+v, want its URL", got)
	}
	if r.Messages[2].Content != nil || r.Messages[3].Content != nil {
		t.Errorf("null and empty content = %+v, %+v, want no parts", r.Messages[2].Content, r.Messages[3].Content)
	}
	if !reflect.DeepEqual(r.Stop, Strings{"END"}) || *r.ToolChoice != (ToolChoice{Mode: ToolChoiceFunction, Name: "f"}) || *r.OutputLimit() != 7 {
		t.Errorf("stop %v tool_choice %+v limit %d, want [END], function f, 7", r.Stop, r.ToolChoice, *r.OutputLimit())
	}
}

func TestDecodeRequest_NullStopIsNoStop(t *testing.T) {
	r, err := DecodeRequest("p", []byte(`{"messages":[{"role":"user","content":"x"}],"stop":null}`))
	if err != nil || r.Stop != nil {
		t.Fatalf("stop = %#v (err %v), want nil", r.Stop, err)
	}
}

func TestDecodeRequest_RefusesBadToolChoice(t *testing.T) {
	for _, tc := range []string{`"sometimes"`, `{"type":"function","function":{}}`, `3`} {
		_, err := DecodeRequest("p", []byte(`{"messages":[{"role":"user","content":"x"}],"tool_choice":`+tc+`}`))
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.Status != http.StatusBadRequest {
			t.Errorf("tool_choice %s: err = %v, want a 400", tc, err)
		}
	}
}

func TestParseDataURL(t *testing.T) {
	tests := []struct {
		in   string
		want DataURL
		ok   bool
	}{
		{"data:image/png;base64,AAAA", DataURL{"image/png", "AAAA"}, true},
		{"data:image/png,AAAA", DataURL{}, false}, // not base64
		{"data:;base64,AAAA", DataURL{}, false},
		{"https://x/y.png", DataURL{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseDataURL(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseDataURL(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHTTPError_Classification(t *testing.T) {
	tests := []struct {
		status        int
		wantStatus    int
		wantType      string
		wantRetryable bool
	}{
		{400, 400, openai.TypeInvalidRequest, false},
		{401, 401, openai.TypeAuth, false},
		{403, 403, openai.TypeAuth, false},
		{404, 404, openai.TypeNotFound, false},
		{408, 408, openai.TypeTimeout, true},
		{429, 429, openai.TypeRateLimit, true},
		{500, 500, openai.TypeServer, true},
		{503, 503, openai.TypeUnavailable, true},
		{529, 503, openai.TypeUnavailable, true},
		{302, 502, openai.TypeServer, true},
	}
	for _, tt := range tests {
		e := HTTPError("p", tt.status, nil, "m")
		if e.Status != tt.wantStatus || e.Type != tt.wantType || e.Retryable != tt.wantRetryable {
			t.Errorf("HTTPError(%d) = %d %s retryable=%v, want %d %s %v", tt.status, e.Status, e.Type, e.Retryable, tt.wantStatus, tt.wantType, tt.wantRetryable)
		}
	}
}

func TestTransportError(t *testing.T) {
	if err := TransportError("p", fmt.Errorf("read: %w", context.Canceled)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled kept", err)
	}
	var pe *provider.Error
	if err := TransportError("p", context.DeadlineExceeded); !errors.As(err, &pe) || pe.Status != 408 || !pe.Retryable {
		t.Errorf("deadline: err = %v, want a retryable 408", err)
	}
	if err := TransportError("p", io.ErrUnexpectedEOF); !errors.As(err, &pe) || pe.Status != 502 || !pe.Retryable {
		t.Errorf("broken stream: err = %v, want a retryable 502", err)
	}
}

func TestRetryAfter_AtAFixedTime(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		header map[string]string
		want   time.Duration
	}{
		{map[string]string{"Retry-After": "20"}, 20 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": "Wed, 01 Jan 2025 12:00:30 GMT"}, 30 * time.Second},
		{map[string]string{"Retry-After": "Wed, 01 Jan 2025 11:00:00 GMT"}, 0},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": "-3"}, 0},
		{map[string]string{"Retry-After-Ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
		{map[string]string{}, 0},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.header {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tt.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After-Ms": {"1500"}, "Retry-After": {"3"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {"-1"}}, 0},
		{nil, 0},
	}
	for _, tt := range tests {
		if got := RetryAfter(tt.h); got != tt.want {
			t.Errorf("RetryAfter(%v) = %v, want %v", tt.h, got, tt.want)
		}
	}
	date := http.Header{"Retry-After": {time.Now().Add(time.Minute).UTC().Format(http.TimeFormat)}}
	if got := RetryAfter(date); got < 58*time.Second || got > time.Minute {
		t.Errorf("RetryAfter(date a minute ahead) = %v, want about a minute", got)
	}
}

// scripted is a Decoder that replays steps: each reports deltas and returns an error.
type scripted []func(*Stream) error

func (s *scripted) Decode(st *Stream) error {
	if len(*s) == 0 {
		return io.EOF
	}
	step := (*s)[0]
	*s = (*s)[1:]
	return step(st)
}

// closeCounter counts its Close calls.
type closeCounter int

func (c *closeCounter) Close() error { *c++; return nil }

func TestStream_ClosesUpstreamOnceAtTheEnd(t *testing.T) {
	var closes closeCounter
	dec := &scripted{
		func(s *Stream) error { return nil }, // an event with nothing for OpenAI
		func(s *Stream) error { s.Delta(0, TextDelta("hi")); s.Finish(0, FinishStop); return nil },
	}
	s := NewStream("id", 1, "m", false, dec, &closes, nil)
	var n int
	for {
		_, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if _, err := s.Next(); err != io.EOF {
		t.Errorf("Next after the end = %v, want io.EOF again", err)
	}
	s.Close()
	if n != 2 || closes != 1 {
		t.Errorf("%d chunks, %d closes; want 2 chunks and the upstream closed once", n, closes)
	}
}

func TestStream_DeliversQueuedChunksBeforeAFailure(t *testing.T) {
	boom := errors.New("boom")
	dec := &scripted{func(s *Stream) error { s.Delta(0, TextDelta("partial")); return boom }}
	s := NewStream("id", 1, "m", true, dec, nil, nil)
	if _, err := s.Next(); err != nil {
		t.Fatalf("first Next = %v, want the queued chunk", err)
	}
	if _, err := s.Next(); !errors.Is(err, boom) {
		t.Errorf("second Next = %v, want the failure", err)
	}
}

func TestEmbeddingResponse_Base64IsLittleEndianFloat32(t *testing.T) {
	body, u, err := EmbeddingResponse("m", [][]float64{{1, 0.5}}, 3, "base64")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPwAAAD8="}],"model":"m","usage":{"prompt_tokens":3,"total_tokens":3}}`
	if string(body) != want || u.PromptTokens != 3 || u.TotalTokens != 3 {
		t.Errorf("got %s %+v, want %s and 3 tokens", body, u, want)
	}
}
