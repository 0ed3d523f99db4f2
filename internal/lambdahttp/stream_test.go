package lambdahttp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

var discard = slog.New(slog.DiscardHandler)

// prelude is the JSON that starts a streaming response, before the 8 NUL bytes.
type prelude struct {
	StatusCode        int                 `json:"statusCode"`
	Headers           map[string]string   `json:"headers"`
	MultiValueHeaders map[string][]string `json:"multiValueHeaders"`
}

// readPrelude reads the streaming payload up to and including its NUL delimiter, as API
// Gateway does, and leaves br at the first body byte.
func readPrelude(t *testing.T, br *bufio.Reader) prelude {
	t.Helper()
	var raw []byte
	for !bytes.HasSuffix(raw, make([]byte, 8)) {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("read prelude: %v (read %q)", err, raw)
		}
		raw = append(raw, b)
	}
	var p prelude
	if err := json.Unmarshal(raw[:len(raw)-8], &p); err != nil {
		t.Fatalf("prelude %q: %v", raw, err)
	}
	return p
}

func invokeStreaming(t *testing.T, h http.Handler) (*events.APIGatewayProxyStreamingResponse, *bufio.Reader, prelude) {
	t.Helper()
	var (
		resp *events.APIGatewayProxyStreamingResponse
		err  error
	)
	within(t, "the function returning its response", func() {
		resp, err = Streaming(h, discard)(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/chat/completions"})
	})
	if err != nil {
		t.Fatalf("Streaming: %v", err)
	}
	t.Cleanup(func() { _ = resp.Close() })
	br := bufio.NewReader(resp)
	return resp, br, readPrelude(t, br)
}

// within fails the test if f does not return within five seconds (a streaming bug usually
// shows as a read or a return that waits for the handler to finish).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestStreaming_DeliversEachEventBeforeTheHandlerReturns(t *testing.T) {
	events := []string{"data: {\"n\":1}\n\n", "data: {\"n\":2}\n\n", "data: [DONE]\n\n"}
	next := make(chan struct{})
	done := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.Header().Set("Content-Type", "text/event-stream")
		for i, ev := range events {
			if i > 0 {
				<-next // the test has read the previous event
			}
			_, _ = io.WriteString(w, ev)
			w.(http.Flusher).Flush()
		}
	})
	_, br, p := invokeStreaming(t, h)
	if p.StatusCode != http.StatusOK || p.Headers["Content-Type"] != "text/event-stream" {
		t.Fatalf("prelude = %+v, want 200 text/event-stream", p)
	}
	for i, want := range events {
		got := make([]byte, len(want))
		var err error
		within(t, "an event while the handler waits", func() { _, err = io.ReadFull(br, got) })
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if string(got) != want {
			t.Fatalf("event %d = %q, want %q", i, got, want)
		}
		select {
		case <-done:
			if i < len(events)-1 {
				t.Fatalf("handler returned before event %d was read; the body was buffered", i)
			}
		default:
		}
		if i < len(events)-1 {
			next <- struct{}{}
		}
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Fatalf("after the last event: %q, %v; want EOF", rest, err)
	}
}

func TestStreaming_FlushSendsHeadersBeforeAnyBody(t *testing.T) {
	release := make(chan struct{})
	flushErr := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Ratelimit-Remaining-Requests", "9")
		flushErr <- http.NewResponseController(w).Flush()
		<-release
		_, _ = io.WriteString(w, "late")
	})
	_, br, p := invokeStreaming(t, h) // returns while the handler is still blocked
	if err := <-flushErr; err != nil {
		t.Fatalf("ResponseController.Flush: %v", err)
	}
	if p.StatusCode != http.StatusOK || p.Headers["X-Ratelimit-Remaining-Requests"] != "9" {
		t.Fatalf("prelude = %+v, want 200 with the rate-limit header", p)
	}
	close(release)
	if body, _ := io.ReadAll(br); string(body) != "late" {
		t.Fatalf("body = %q, want %q", body, "late")
	}
}

func TestStreaming_HeaderChangesAfterCommitAreNotSent(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Set-Cookie", "a=1")
		w.Header().Add("Set-Cookie", "b=2")
		w.WriteHeader(http.StatusOK)
		w.Header().Set("X-Late", "1")
	})
	_, br, p := invokeStreaming(t, h)
	_, _ = io.ReadAll(br)
	if got := p.MultiValueHeaders["Set-Cookie"]; len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("multiValueHeaders Set-Cookie = %q, want [a=1 b=2]", got)
	}
	if _, ok := p.Headers["X-Late"]; ok {
		t.Error("a header set after WriteHeader was sent")
	}
}

func TestStreaming_EmptyHandlerAnswers200(t *testing.T) {
	_, br, p := invokeStreaming(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	if body, _ := io.ReadAll(br); p.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("got %d %q, want 200 and no body", p.StatusCode, body)
	}
}

func TestStreaming_PanicBeforeHeadersIsAnOpenAIError(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Partial", "1")
		panic("boom")
	})
	_, br, p := invokeStreaming(t, h)
	body, _ := io.ReadAll(br)
	if p.StatusCode != http.StatusInternalServerError || p.Headers["Content-Type"] != "application/json" {
		t.Fatalf("prelude = %+v, want 500 application/json", p)
	}
	if _, ok := p.Headers["X-Partial"]; ok {
		t.Error("headers set before the panic were sent")
	}
	assertOpenAIError(t, body, "internal_server_error")
}

func TestStreaming_PanicAfterHeadersBreaksTheStream(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "data: partial\n\n")
		panic("boom")
	})
	_, br, p := invokeStreaming(t, h)
	body, err := io.ReadAll(br)
	if p.StatusCode != http.StatusOK || string(body) != "data: partial\n\n" {
		t.Fatalf("got %d %q before the break, want 200 and the partial event", p.StatusCode, body)
	}
	if !errors.Is(err, errHandlerPanicked) {
		t.Fatalf("read error = %v, want %v", err, errHandlerPanicked)
	}
}

func TestStreaming_ClosingTheBodyCancelsTheRequest(t *testing.T) {
	cancelled := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		<-r.Context().Done()
		_, err := io.WriteString(w, "after the end")
		cancelled <- err
	})
	resp, _, _ := invokeStreaming(t, h)
	if err := resp.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-cancelled:
		if err == nil {
			t.Error("a write after the invocation ended succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request context was not cancelled when the runtime closed the body")
	}
}

func TestStreaming_InvocationEndingBeforeHeadersIsAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
		close(stopped)
	})
	errc := make(chan error, 1)
	go func() {
		_, err := Streaming(h, discard)(ctx, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/"})
		errc <- err
	}()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	<-stopped
}

func TestStreaming_UnconvertibleEventIs400(t *testing.T) {
	resp, err := Streaming(http.NotFoundHandler(), discard)(context.Background(),
		events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/", Body: "%%%", IsBase64Encoded: true})
	if err != nil {
		t.Fatalf("Streaming: %v", err)
	}
	br := bufio.NewReader(resp)
	p := readPrelude(t, br)
	body, _ := io.ReadAll(br)
	if p.StatusCode != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400", p.StatusCode)
	}
	assertOpenAIError(t, body, "invalid_request_error")
}

func assertOpenAIError(t *testing.T, body []byte, wantType string) {
	t.Helper()
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Type != wantType || e.Error.Message == "" {
		t.Fatalf("body = %q, want an OpenAI error of type %s", body, wantType)
	}
	if strings.Contains(e.Error.Message, "boom") {
		t.Errorf("error message %q leaks the panic value", e.Error.Message)
	}
}

// A JSON answer slower than the keep-alive delay gets a 200 JSON head and newlines before
// it, so API Gateway's idle timeout does not cut it; the body is still valid JSON. (The
// delays are shortened; the handler answers only after the test has read a newline.)
func TestStreaming_SlowJSONAnswerIsKeptAlive(t *testing.T) {
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"chatcmpl-1","object":"chat.completion"}`))
	})
	ev := events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/v1/chat/completions", Body: `{"model":"m","stream":false}`}
	var resp *events.APIGatewayProxyStreamingResponse
	within(t, "the keep-alive head", func() {
		var err error
		if resp, err = streaming(h, discard, time.Millisecond, time.Millisecond)(context.Background(), ev); err != nil {
			t.Errorf("streaming: %v", err)
		}
	})
	if resp == nil {
		t.FailNow()
	}
	defer resp.Close()
	br := bufio.NewReader(resp)
	p := readPrelude(t, br)
	if p.StatusCode != http.StatusOK || p.Headers["Content-Type"] != "application/json" {
		t.Fatalf("prelude = %+v, want 200 application/json", p)
	}
	within(t, "two keep-alive newlines", func() {
		for range 2 {
			if b, err := br.ReadByte(); err != nil || b != '\n' {
				t.Errorf("keep-alive byte %q (%v), want a newline", b, err)
			}
		}
	})
	close(release)
	var rest []byte
	within(t, "the answer", func() { rest, _ = io.ReadAll(br) })
	var answer struct{ ID string }
	if err := json.Unmarshal(append([]byte("\n\n"), rest...), &answer); err != nil || answer.ID != "chatcmpl-1" {
		t.Errorf("body %q is not the JSON answer (%v)", rest, err)
	}
}

// Only a POST to an LLM route that does not ask for a stream is kept alive: a stream, an
// audio answer or a GET commits its own head, whenever it comes.
func TestAnswersJSON(t *testing.T) {
	tests := []struct {
		method, path, body string
		base64             bool
		want               bool
	}{
		{"POST", "/v1/chat/completions", `{"model":"m"}`, false, true},
		{"POST", "/chat/completions", `{"model":"m","stream":false}`, false, true},
		{"POST", "/v1/embeddings", `{"model":"m","input":"x"}`, false, true},
		{"POST", "/v1/completions", "eyJtb2RlbCI6Im0ifQ==", true, true},
		{"POST", "/v1/chat/completions", `{"model":"m","stream":true}`, false, false},
		{"POST", "/v1/audio/speech", `{"model":"m"}`, false, false},
		{"GET", "/v1/models", "", false, false},
		{"POST", "/v1/chat/completions", `not json`, false, false},
	}
	for _, tt := range tests {
		ev := events.APIGatewayProxyRequest{HTTPMethod: tt.method, Path: tt.path, Body: tt.body, IsBase64Encoded: tt.base64}
		r, err := NewRequest(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := answersJSON(ev, r); got != tt.want {
			t.Errorf("%s %s %s: answersJSON = %v, want %v", tt.method, tt.path, tt.body, got, tt.want)
		}
	}
}
