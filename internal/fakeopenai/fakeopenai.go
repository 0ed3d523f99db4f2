// Package fakeopenai is a fake OpenAI-compatible upstream for benchmarks and fault tests:
// chat completions (plain and streamed), completions, embeddings, moderations, image
// generations and the Responses API (plain and streamed, see responses.go) in OpenAI's wire
// format,
// with a configurable latency, streamed chunk count and injected faults (5xx, 429, hangs,
// connection resets, streams cut halfway, invalid JSON). It counts what reached it, so a test
// can tell whether a call was served.
package fakeopenai

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is what the upstream does to one request instead of answering it normally.
type Fault int

// Faults the upstream can inject.
const (
	OK          Fault = iota // answer normally
	ServerError              // 500 with an OpenAI-format error
	RateLimited              // 429 with retry-after: 1
	Hang                     // never answer; return when the client gives up
	Reset                    // close the connection with a TCP reset before answering
	StreamCut                // stream half the chunks, then close the connection without [DONE]
	InvalidJSON              // 200 with a body that is not JSON
)

// Usage reported for every chat and completion: PromptTokens prompt tokens plus one completion
// token per streamed chunk (Options.Chunks).
const PromptTokens = 10

// Options configure a Server.
type Options struct {
	// Latency is the delay before the first byte of every answer.
	Latency time.Duration
	// Chunks is the number of content chunks a stream sends (and the completion token count);
	// 0 means 8.
	Chunks int
	// ChunkDelay is the delay between streamed chunks.
	ChunkDelay time.Duration
	// Fault, when set, picks the fault for the n-th request (n counts from 1).
	Fault func(n int64) Fault
	// OnRequest, when set, is called as each request arrives, before it is answered.
	OnRequest func()
}

// Server is a running fake upstream. BaseURL ends in /v1, ready for an api_base.
type Server struct {
	*httptest.Server
	BaseURL string

	opts      Options
	requests  atomic.Int64 // requests that reached the handler
	completed atomic.Int64 // answers sent in full with status 200
	kept      responseStore

	mu   sync.Mutex
	last Request
}

// Request is what reached the upstream: method, path with query, and body.
type Request struct {
	Method, URL string
	Body        []byte
}

// Last returns the last request that reached the upstream.
func (s *Server) Last() Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Start starts a fake upstream on a loopback port. Close it when done.
func Start(o Options) *Server {
	if o.Chunks <= 0 {
		o.Chunks = 8
	}
	s := &Server{opts: o}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.Server.Config.ReadHeaderTimeout = 10 * time.Second
	s.Server.Start()
	s.BaseURL = s.URL + "/v1"
	return s
}

// Requests returns how many requests reached the upstream.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Completed returns how many requests were answered in full with 200.
func (s *Server) Completed() int64 { return s.completed.Load() }

// request is the part of a request the fake reads.
type request struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Input json.RawMessage `json:"input"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	if s.opts.OnRequest != nil {
		s.opts.OnRequest()
	}
	var req request
	body, _ := io.ReadAll(io.LimitReader(r.Body, 32<<20))
	s.mu.Lock()
	s.last = Request{Method: r.Method, URL: r.URL.RequestURI(), Body: body}
	s.mu.Unlock()
	if rest, ok := strings.CutPrefix(r.URL.Path, "/v1/responses/"); ok {
		s.storedResponse(w, r, rest)
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "request body is not JSON")
		return
	}
	fault := OK
	if s.opts.Fault != nil {
		fault = s.opts.Fault(n)
	}
	if !sleep(r, s.opts.Latency) {
		return
	}
	switch fault {
	case ServerError:
		writeError(w, http.StatusInternalServerError, "server_error", "the fake upstream failed")
		return
	case RateLimited:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate_limit_error", "the fake upstream is rate limited")
		return
	case Hang:
		<-r.Context().Done()
		return
	case Reset:
		reset(w)
		return
	case InvalidJSON:
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id": "chatcmpl-broken", "choices": [`)
		return
	}
	switch r.URL.Path {
	case "/v1/chat/completions", "/chat/completions":
		if req.Stream {
			s.stream(w, r, req, n, fault == StreamCut)
			return
		}
		s.writeBody(w, chatBody(req.Model, s.opts.Chunks, n))
	case "/v1/completions", "/completions":
		s.writeBody(w, completionBody(req.Model, s.opts.Chunks, n))
	case "/v1/embeddings", "/embeddings":
		s.writeBody(w, embeddingBody(req.Model, inputCount(req.Input)))
	case "/v1/responses", "/responses":
		s.responses(w, req.Model, req.Stream, body)
	case "/v1/moderations", "/moderations":
		s.writeBody(w, moderationBody(req.Model, inputCount(req.Input), n))
	case "/v1/images/generations", "/images/generations":
		s.writeBody(w, imagesBody(body, n))
	default:
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown route "+r.URL.Path)
	}
}

func (s *Server) writeBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if _, err := w.Write(body); err == nil {
		s.completed.Add(1)
	}
}

// stream answers in OpenAI's chunk format: a role chunk, Chunks content chunks of one token
// each, a finish chunk, a usage chunk when asked for, and [DONE]. cut stops after half the
// content chunks and drops the connection. n numbers the response id.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, req request, n int64, cut bool) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	id := responseID("chatcmpl", n)
	created := time.Now().Unix()
	send := func(delta, finish, usage string) bool {
		fin := "null"
		if finish != "" {
			fin = `"` + finish + `"`
		}
		choices := `[{"index":0,"delta":` + delta + `,"logprobs":null,"finish_reason":` + fin + `}]`
		if usage != "" {
			choices = "[]"
		} else {
			usage = "null"
		}
		_, err := fmt.Fprintf(w, "data: {\"id\":%q,\"object\":\"chat.completion.chunk\",\"created\":%d,\"model\":%q,\"choices\":%s,\"usage\":%s}\n\n",
			id, created, req.Model, choices, usage)
		if fl != nil {
			fl.Flush()
		}
		return err == nil
	}
	if !send(`{"role":"assistant","content":""}`, "", "") {
		return
	}
	for i := range s.opts.Chunks {
		if cut && i == s.opts.Chunks/2 {
			reset(w)
			return
		}
		if i > 0 && !sleep(r, s.opts.ChunkDelay) {
			return
		}
		if !send(`{"content":"tok "}`, "", "") {
			return
		}
	}
	if !send(`{}`, "stop", "") {
		return
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		if !send("", "", usageJSON(s.opts.Chunks)) {
			return
		}
	}
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err != nil {
		return
	}
	if fl != nil {
		fl.Flush()
	}
	s.completed.Add(1)
}

// sleep waits d, or returns false when the client goes away first.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

// reset drops the client connection with a TCP RST (linger 0), as a crashed upstream or a
// load balancer would.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("fakeopenai: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":{"message":%q,"type":%q,"param":null,"code":null}}`, msg, typ)
}

func usageJSON(completion int) string {
	return fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`,
		PromptTokens, completion, PromptTokens+completion)
}

func content(tokens int) string {
	b := make([]byte, 0, 4*tokens)
	for range tokens {
		b = append(b, "tok "...)
	}
	return string(b)
}

// responseID is a response's id, unique per server as OpenAI's are: "chatcmpl-fake-3".
func responseID(prefix string, n int64) string {
	return prefix + "-fake-" + strconv.FormatInt(n, 10)
}

func chatBody(model string, tokens int, n int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"chat.completion","created":%d,"model":%q,`+
		`"choices":[{"index":0,"message":{"role":"assistant","content":%q,"refusal":null},"logprobs":null,"finish_reason":"stop"}],`+
		`"usage":%s,"system_fingerprint":"fp_fake"}`,
		responseID("chatcmpl", n), time.Now().Unix(), model, content(tokens), usageJSON(tokens))
}

func completionBody(model string, tokens int, n int64) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"text_completion","created":%d,"model":%q,`+
		`"choices":[{"index":0,"text":%q,"logprobs":null,"finish_reason":"stop"}],"usage":%s}`,
		responseID("cmpl", n), time.Now().Unix(), model, content(tokens), usageJSON(tokens))
}

// moderationBody is a moderation answer: each input unflagged. It has no usage, as OpenAI's.
func moderationBody(model string, inputs int, n int64) []byte {
	result := `{"flagged":false,"categories":{"hate":false,"violence":false},"category_scores":{"hate":0.0001,"violence":0.0002}}`
	results := strings.TrimSuffix(strings.Repeat(result+",", max(inputs, 1)), ",")
	return []byte(fmt.Sprintf(`{"id":%q,"model":%q,"results":[%s]}`, responseID("modr", n), model, results))
}

// ImagePNG is the image every image generation answers with, base64-encoded as b64_json
// carries it: a 1x1 white PNG.
const ImagePNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAAC0lEQVR4nGP4DwQACfsD/fteaysAAAAASUVORK5CYII="

// imagesBody is an image generation answer: n images (default 1) as b64_json or URLs, as
// asked. GPT image models' answers also say the size and quality rendered ("auto" or unset:
// 1024x1024, medium) and carry token usage, as OpenAI's do.
func imagesBody(body []byte, n int64) []byte {
	var req struct {
		Model, Size, Quality string
		N                    int
		ResponseFormat       string `json:"response_format"`
	}
	_ = json.Unmarshal(body, &req)
	count := max(req.N, 1)
	data := make([]map[string]string, count)
	for i := range data {
		if req.ResponseFormat == "b64_json" {
			data[i] = map[string]string{"b64_json": ImagePNG}
		} else {
			data[i] = map[string]string{"url": fmt.Sprintf("https://images.fake.example/%s-%d.png", responseID("img", n), i), "revised_prompt": "a fake image"}
		}
	}
	out := map[string]any{"created": time.Now().Unix(), "data": data}
	if strings.HasPrefix(req.Model, "gpt-image") {
		out["size"], out["quality"] = orIfAuto(req.Size, "1024x1024"), orIfAuto(req.Quality, "medium")
		out["usage"] = map[string]any{"input_tokens": PromptTokens, "output_tokens": 1056 * count, "total_tokens": PromptTokens + 1056*count,
			"input_tokens_details": map[string]int{"text_tokens": PromptTokens, "image_tokens": 0}}
	}
	b, _ := json.Marshal(out)
	return b
}

// orIfAuto is v, or def when v is unset or "auto".
func orIfAuto(v, def string) string {
	if v == "" || v == "auto" {
		return def
	}
	return v
}

func embeddingBody(model string, inputs int) []byte {
	b := []byte(`{"object":"list","data":[`)
	for i := range inputs {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"object":"embedding","index":%d,"embedding":[0.5,-0.5,0.5,-0.5]}`, i)
	}
	return fmt.Appendf(b, `],"model":%q,"usage":{"prompt_tokens":%d,"total_tokens":%d}}`,
		model, PromptTokens*inputs, PromptTokens*inputs)
}

// inputCount is the number of embedding inputs: one for a string, the length of an array.
func inputCount(raw json.RawMessage) int {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return len(list)
	}
	return 1
}
