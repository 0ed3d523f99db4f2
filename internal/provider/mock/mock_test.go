package mock

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

func call(t *testing.T, kind provider.Kind, body string) *provider.Call {
	t.Helper()
	var r openai.Request
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("request %s: %v", body, err)
	}
	return &provider.Call{Kind: kind, Body: []byte(body), Request: &r, Model: "demo"}
}

type chatResponse struct {
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *openai.Usage `json:"usage"`
}

func TestDo_Chat(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		params      config.LiteLLMParams
		wantContent string
		wantFinish  string
		wantChoices int
	}{
		{"echoes the last user message", `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"first"},{"role":"assistant","content":"ok"},{"role":"user","content":"Hello there"}]}`, config.LiteLLMParams{}, "Echo: Hello there", "stop", 1},
		{"echoes text parts", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"What is"},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"this?"}]}]}`, config.LiteLLMParams{}, "Echo: What is this?", "stop", 1},
		{"fixed sentence without user text", `{"model":"m","messages":[{"role":"system","content":"hi"}]}`, config.LiteLLMParams{}, DefaultContent, "stop", 1},
		{"request mock_response wins", `{"model":"m","mock_response":"canned","messages":[{"role":"user","content":"x"}]}`, config.LiteLLMParams{MockResponse: "from config"}, "canned", "stop", 1},
		{"deployment mock_response", `{"model":"m","messages":[{"role":"user","content":"x"}]}`, config.LiteLLMParams{MockResponse: "from config"}, "from config", "stop", 1},
		{"max_tokens cuts the answer", `{"model":"m","max_tokens":2,"mock_response":"one two three four five","messages":[]}`, config.LiteLLMParams{}, "one two ", "length", 1},
		{"n choices", `{"model":"m","n":3,"messages":[{"role":"user","content":"hi"}]}`, config.LiteLLMParams{}, "Echo: hi", "stop", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := call(t, provider.Chat, tt.body)
			c.Params = tt.params
			resp, err := New().Do(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			var got chatResponse
			if err := json.Unmarshal(resp.Body, &got); err != nil {
				t.Fatalf("body %s: %v", resp.Body, err)
			}
			if got.Object != "chat.completion" || got.Model != "demo" || len(got.Choices) != tt.wantChoices {
				t.Fatalf("object %q model %q choices %d, want chat.completion demo %d", got.Object, got.Model, len(got.Choices), tt.wantChoices)
			}
			ch := got.Choices[tt.wantChoices-1]
			if ch.Message.Content != tt.wantContent || ch.Message.Role != "assistant" || ch.FinishReason == nil || *ch.FinishReason != tt.wantFinish {
				t.Errorf("choice = %+v, want content %q finish %q", ch, tt.wantContent, tt.wantFinish)
			}
			if got.Usage == nil || *got.Usage != resp.Usage {
				t.Errorf("body usage %+v != reported usage %+v", got.Usage, resp.Usage)
			}
			u := resp.Usage
			if u.PromptTokens <= 0 || u.CompletionTokens <= 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
				t.Errorf("usage = %+v, want positive counts that add up", u)
			}
		})
	}
}

func TestDo_IsDeterministic(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"same"}]}`
	a, err := New().Do(context.Background(), call(t, provider.Chat, body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New().Do(context.Background(), call(t, provider.Chat, body))
	var ra, rb map[string]any
	_ = json.Unmarshal(a.Body, &ra)
	_ = json.Unmarshal(b.Body, &rb)
	delete(ra, "created")
	delete(rb, "created")
	ja, _ := json.Marshal(ra)
	jb, _ := json.Marshal(rb)
	if string(ja) != string(jb) {
		t.Errorf("two answers to one request differ:\n%s\n%s", ja, jb)
	}
}

func TestDo_MockErrors(t *testing.T) {
	tests := []struct {
		mock          string
		wantStatus    int
		wantRetryable bool
		wantContext   bool
	}{
		{RateLimitError, 429, true, false},
		{InternalServerError, 500, true, false},
		{ContextWindowExceededError, 400, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.mock, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				c := call(t, provider.Chat, `{"model":"m","mock_response":"`+tt.mock+`","messages":[]}`)
				var err error
				if stream {
					_, err = New().Stream(context.Background(), c)
				} else {
					_, err = New().Do(context.Background(), c)
				}
				var pe *provider.Error
				if !errors.As(err, &pe) {
					t.Fatalf("stream=%v: err = %v, want *provider.Error", stream, err)
				}
				if pe.Status != tt.wantStatus || pe.Retryable != tt.wantRetryable || pe.ContextWindow != tt.wantContext {
					t.Errorf("stream=%v: error %+v, want status %d retryable %v context %v", stream, pe, tt.wantStatus, tt.wantRetryable, tt.wantContext)
				}
			}
		})
	}
}

func readAll(t *testing.T, s provider.Stream) []chatResponse {
	t.Helper()
	defer s.Close()
	var out []chatResponse
	for {
		data, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var ch chatResponse
		if err := json.Unmarshal(data, &ch); err != nil {
			t.Fatalf("chunk %s: %v", data, err)
		}
		out = append(out, ch)
	}
}

func TestStream_Chat(t *testing.T) {
	for _, includeUsage := range []bool{false, true} {
		body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"a b c"}]}`
		if includeUsage {
			body = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c"}]}`
		}
		s, err := New().Stream(context.Background(), call(t, provider.Chat, body))
		if err != nil {
			t.Fatal(err)
		}
		chunks := readAll(t, s)
		var text strings.Builder
		var usageChunks, finishes int
		for i, ch := range chunks {
			if ch.Object != "chat.completion.chunk" {
				t.Errorf("chunk %d object %q", i, ch.Object)
			}
			if ch.Usage != nil {
				usageChunks++
				if len(ch.Choices) != 0 || *ch.Usage != s.Usage() {
					t.Errorf("usage chunk = %+v, want no choices and usage %+v", ch, s.Usage())
				}
				continue
			}
			text.WriteString(ch.Choices[0].Delta.Content)
			if ch.Choices[0].FinishReason != nil {
				finishes++
			}
		}
		if chunks[0].Choices[0].Delta.Role != "assistant" {
			t.Errorf("first chunk %+v, want the assistant role", chunks[0])
		}
		if got := text.String(); got != "Echo: a b c" {
			t.Errorf("streamed content %q, want %q", got, "Echo: a b c")
		}
		if len(chunks) < 5 || finishes != 1 {
			t.Errorf("%d chunks with %d finish reasons, want several chunks and one finish", len(chunks), finishes)
		}
		if want := map[bool]int{false: 0, true: 1}[includeUsage]; usageChunks != want {
			t.Errorf("include_usage=%v: %d usage chunks, want %d", includeUsage, usageChunks, want)
		}
		if u := s.Usage(); u.CompletionTokens == 0 || u.PromptTokens == 0 {
			t.Errorf("Usage() = %+v, want counts", u)
		}
	}
}

func TestStream_StopsWhenTheContextIsCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New().Stream(ctx, call(t, provider.Chat, `{"model":"m","messages":[{"role":"user","content":"a b c"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := s.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel = %v, want context.Canceled", err)
	}
}

func TestCompletion(t *testing.T) {
	c := call(t, provider.Completion, `{"model":"m","prompt":"Say this is a test"}`)
	resp, err := New().Do(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	var got chatResponse
	_ = json.Unmarshal(resp.Body, &got)
	if got.Object != "text_completion" || len(got.Choices) != 1 || got.Choices[0].Text != "Echo: Say this is a test" {
		t.Errorf("completion = %s", resp.Body)
	}
	s, err := New().Stream(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, ch := range readAll(t, s) {
		if ch.Object != "text_completion" {
			t.Errorf("chunk object %q, want text_completion", ch.Object)
		}
		text.WriteString(ch.Choices[0].Text)
	}
	if text.String() != "Echo: Say this is a test" {
		t.Errorf("streamed text %q", text.String())
	}
}

type embeddingResponse struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage openai.Usage `json:"usage"`
}

func embedOne(t *testing.T, body string) embeddingResponse {
	t.Helper()
	resp, err := New().Do(context.Background(), call(t, provider.Embedding, body))
	if err != nil {
		t.Fatal(err)
	}
	var got embeddingResponse
	if err := json.Unmarshal(resp.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Usage.PromptTokens == 0 || got.Usage.PromptTokens != resp.Usage.PromptTokens {
		t.Errorf("usage body %+v reported %+v", got.Usage, resp.Usage)
	}
	return got
}

func floats(t *testing.T, raw json.RawMessage) []float32 {
	t.Helper()
	var v []float32
	if err := json.Unmarshal(raw, &v); err == nil {
		return v
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatalf("embedding %s is neither floats nor base64", raw)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	v = make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func TestEmbeddings(t *testing.T) {
	got := embedOne(t, `{"model":"m","input":["hello","world","hello"]}`)
	if got.Object != "list" || len(got.Data) != 3 {
		t.Fatalf("response %+v, want a list of 3", got)
	}
	a, b, c := floats(t, got.Data[0].Embedding), floats(t, got.Data[1].Embedding), floats(t, got.Data[2].Embedding)
	if len(a) != DefaultDimensions {
		t.Errorf("dimensions %d, want %d", len(a), DefaultDimensions)
	}
	var norm float64
	same, differ := true, false
	for i := range a {
		norm += float64(a[i]) * float64(a[i])
		same = same && a[i] == c[i]
		differ = differ || a[i] != b[i]
	}
	if math.Abs(norm-1) > 1e-5 {
		t.Errorf("|v|² = %g, want 1", norm)
	}
	if !same || !differ {
		t.Errorf("same input same vector: %v; different input different vector: %v", same, differ)
	}

	b64 := embedOne(t, `{"model":"m","input":"hello","dimensions":40,"encoding_format":"base64"}`)
	v := floats(t, b64.Data[0].Embedding)
	f := floats(t, embedOne(t, `{"model":"m","input":"hello","dimensions":40}`).Data[0].Embedding)
	if len(v) != 40 || len(f) != 40 {
		t.Fatalf("dimensions %d and %d, want 40", len(v), len(f))
	}
	for i := range f {
		if v[i] != f[i] {
			t.Fatalf("base64 vector differs from the float vector of the same input at %d", i)
		}
	}
	if tokens := embedOne(t, `{"model":"m","input":[[1,2,3],[4]]}`); len(tokens.Data) != 2 {
		t.Errorf("token-id inputs: %d embeddings, want 2", len(tokens.Data))
	}
	if _, err := New().Do(context.Background(), call(t, provider.Embedding, `{"model":"m","input":[]}`)); err == nil {
		t.Error("empty input: no error")
	}
}

// The mock never allocates without bound, whatever it is asked: sizes beyond its limits are
// a 400 naming the field (the old code ran out of memory or panicked in makeslice).
func TestBounds_RefusesAnswersBeyondTheLimits(t *testing.T) {
	tests := []struct {
		name, body string
		kind       provider.Kind
		wantParam  string
	}{
		{"n of a big answer", `{"model":"m","n":5000000,"mock_response":"hello","messages":[]}`, provider.Chat, "n"},
		{"dimensions 2^62", `{"model":"m","input":"x","dimensions":4611686018427387904}`, provider.Embedding, "dimensions"},
		{"dimensions of many inputs", `{"model":"m","input":["a","b","c","d"],"dimensions":300000}`, provider.Embedding, "dimensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New().Do(context.Background(), call(t, tt.kind, tt.body))
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.Status != 400 || pe.Param != tt.wantParam {
				t.Fatalf("err = %v, want a 400 naming %s", err, tt.wantParam)
			}
		})
	}
}

func TestBounds_StreamOfAHugeAnswerHasBoundedChunks(t *testing.T) {
	content := strings.Repeat("a ", MaxAnswerBytes/2)
	body, _ := json.Marshal(map[string]any{"model": "m", "stream": true, "mock_response": content, "messages": []any{}})
	s, err := New().Stream(context.Background(), call(t, provider.Chat, string(body)))
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	chunks, size := 0, 0
	for {
		b, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		size += len(b)
		var ch chatResponse
		if err := json.Unmarshal(b, &ch); err != nil {
			t.Fatal(err)
		}
		for _, c := range ch.Choices {
			text.WriteString(c.Delta.Content)
		}
	}
	if text.String() != content {
		t.Errorf("streamed text is %d bytes, want the %d of mock_response", text.Len(), len(content))
	}
	if chunks > MaxChunks+3 || size > 2*len(content) {
		t.Errorf("%d chunks, %d bytes for %d bytes of content; want at most %d chunks and twice the content", chunks, size, len(content), MaxChunks+3)
	}
}

func TestBounds_EchoIsCut(t *testing.T) {
	body, _ := json.Marshal(map[string]any{"model": "m", "messages": []any{map[string]any{"role": "user", "content": strings.Repeat("x", 4*MaxEchoBytes)}}})
	resp, err := New().Do(context.Background(), call(t, provider.Chat, string(body)))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) > MaxEchoBytes+1024 {
		t.Errorf("answer of %d bytes, want the echo cut to %d", len(resp.Body), MaxEchoBytes)
	}
}
