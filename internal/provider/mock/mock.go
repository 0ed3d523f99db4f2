// Package mock is the provider behind the "mock/" model prefix and LiteLLM's mock_response
// request field: it answers chat, completion and embedding calls without any upstream, for
// demos and tests.
//
// What it answers, deterministically for a given request:
//   - Content: the request's mock_response if set, else the deployment's
//     litellm_params.mock_response, else "Echo: " followed by the text of the last user
//     message (the completion prompt for /completions), or "This is a mock response from
//     llmgate." when there is no such text. max_tokens cuts the content (finish_reason
//     "length"); n asks for n identical choices.
//   - The mock_response values "litellm.RateLimitError", "litellm.InternalServerError" and
//     "litellm.ContextWindowExceededError" fail the call as an upstream 429, 500 or
//     context-window error would, as in LiteLLM, so retries and fallbacks can be tried.
//   - Streams: one chunk with the assistant role, one chunk per word of the content, a
//     final chunk with the finish reason and, when the client asked with
//     stream_options.include_usage, a usage chunk.
//   - Usage: prompt tokens estimated from the request's text with tokens.EstimatePrompt,
//     completion tokens with tokens.EstimateText on the content.
//   - Embeddings: per input, a unit vector of `dimensions` (default 16) float32 values
//     derived from the SHA-256 of the input; base64 when encoding_format is "base64".
//   - Moderations: each input unflagged. Image generations: n one-pixel PNGs.
package mock

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
	"github.com/llmgate/llmgate/internal/provider/translate"
	"github.com/llmgate/llmgate/internal/tokens"
)

// Prefix is the litellm_params.model prefix of mock deployments ("mock/demo").
const Prefix = "mock"

// DefaultContent is the answer to a request without user text.
const DefaultContent = "This is a mock response from llmgate."

// DefaultDimensions is the size of embedding vectors when the request does not set dimensions.
const DefaultDimensions = 16

// Bounds on what one answer may hold, whatever the request asks for, so the mock never
// allocates without limit (the gateway refuses larger requests first; these hold for any
// caller of the provider).
const (
	// MaxAnswerBytes bounds the content of all choices of a chat or completion answer.
	MaxAnswerBytes = 1 << 20
	// MaxEchoBytes bounds the echoed user text.
	MaxEchoBytes = 64 << 10
	// MaxChunks bounds the chunks of a streamed answer: beyond it, words share a chunk.
	MaxChunks = 512
	// MaxEmbeddingValues bounds the floats of an embeddings answer (inputs × dimensions).
	MaxEmbeddingValues = 1 << 18
	// MaxImages bounds the images of an image generation answer.
	MaxImages = 128
)

// Mock responses that fail the call, as LiteLLM's mock_response does.
const (
	RateLimitError             = "litellm.RateLimitError"
	InternalServerError        = "litellm.InternalServerError"
	ContextWindowExceededError = "litellm.ContextWindowExceededError"
)

// Provider answers calls without an upstream. Its zero value is ready to use.
type Provider struct{}

// New returns the mock provider.
func New() *Provider { return &Provider{} }

// Do answers a non-streaming call.
func (p *Provider) Do(ctx context.Context, c *provider.Call) (*provider.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch c.Kind {
	case provider.Embedding:
		return embed(c)
	case provider.Moderation:
		return moderate(c)
	case provider.ImageGeneration:
		return generateImages(c)
	}
	a, err := answerFor(c)
	if err != nil {
		return nil, err
	}
	var body any
	if c.Kind == provider.Completion {
		choices := make([]translate.TextChoice, a.n)
		for i := range choices {
			choices[i] = translate.TextChoice{Index: i, Text: a.content, FinishReason: &a.finish}
		}
		body = translate.TextCompletion{ID: "cmpl-" + a.id, Object: "text_completion", Created: a.created, Model: c.Model, Choices: choices, Usage: &a.usage}
	} else {
		cc := translate.NewCompletion("chatcmpl-"+a.id, a.created, c.Model)
		cc.Choices = make([]translate.Choice, a.n)
		for i := range cc.Choices {
			cc.Choices[i] = translate.Choice{Index: i, Message: translate.NewResponseMessage(a.content, nil), FinishReason: a.finish}
		}
		cc.Usage = &a.usage
		body = cc
	}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("mock: encode response: %w", err)
	}
	return &provider.Response{Body: data, Usage: a.usage}, nil
}

// Stream answers a streaming call chunk by chunk.
func (p *Provider) Stream(ctx context.Context, c *provider.Call) (provider.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.Kind.InputOnly() {
		return nil, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: string(c.Kind) + "s cannot be streamed", Provider: Prefix}
	}
	a, err := answerFor(c)
	if err != nil {
		return nil, err
	}
	words := splitWords(a.content, MaxChunks)
	chunks := make([]any, 0, len(words)+3)
	object, id := "chat.completion.chunk", "chatcmpl-"+a.id
	if c.Kind == provider.Completion {
		object, id = "text_completion", "cmpl-"+a.id
		chunk := func(text string, finish *string) translate.TextCompletion {
			return translate.TextCompletion{ID: id, Object: object, Created: a.created, Model: c.Model,
				Choices: []translate.TextChoice{{Text: text, FinishReason: finish}}}
		}
		for _, w := range words {
			chunks = append(chunks, chunk(w, nil))
		}
		chunks = append(chunks, chunk("", &a.finish))
	} else {
		chunk := func(d translate.Delta, finish *string) translate.Chunk {
			return translate.Chunk{ID: id, Object: object, Created: a.created, Model: c.Model,
				Choices: []translate.ChunkChoice{{Delta: d, FinishReason: finish}}}
		}
		chunks = append(chunks, chunk(translate.Delta{Role: translate.RoleAssistant, Content: new(string)}, nil))
		for _, w := range words {
			chunks = append(chunks, chunk(translate.TextDelta(w), nil))
		}
		chunks = append(chunks, chunk(translate.Delta{}, &a.finish))
	}
	if c.Request.StreamOptions != nil && c.Request.StreamOptions.IncludeUsage {
		// The usage chunk has no choices, whether the stream is chat or text_completion chunks.
		chunks = append(chunks, translate.Chunk{ID: id, Object: object, Created: a.created, Model: c.Model, Choices: []translate.ChunkChoice{}, Usage: &a.usage})
	}
	s := &stream{ctx: ctx, usage: a.usage, chunks: make([][]byte, len(chunks))}
	for i, ch := range chunks {
		if s.chunks[i], err = json.Marshal(ch); err != nil {
			return nil, fmt.Errorf("mock: encode chunk: %w", err)
		}
	}
	return s, nil
}

// answer is what a chat or completion call answers.
type answer struct {
	id      string
	created int64
	content string
	finish  string
	n       int
	usage   openai.Usage
}

func answerFor(c *provider.Call) (answer, error) {
	r := c.Request
	content := c.Params.MockResponse
	if r.MockResponse != nil {
		content = *r.MockResponse
	}
	if err := mockError(content, r.MockResponse != nil); err != nil {
		return answer{}, err
	}
	if content == "" {
		content = echo(c.Kind, r)
	}
	a := answer{id: "mock-" + digest(c.Body)[:24], created: time.Now().Unix(), content: content, finish: "stop", n: 1}
	if r.N != nil && *r.N > 1 {
		a.n = *r.N
	}
	if a.n > MaxAnswerBytes/max(len(content), 1) {
		return answer{}, tooLarge("n", fmt.Sprintf("%d choices of %d bytes are over the mock's answer limit of %d bytes", a.n, len(content), MaxAnswerBytes))
	}
	limit := 0
	for _, m := range []*int{r.MaxCompTokens, r.MaxTokens} {
		if m != nil && *m > 0 {
			limit = *m
			break
		}
	}
	if limit > 0 && tokens.EstimateText(a.content) > limit {
		a.content, a.finish = truncate(a.content, min(limit, MaxAnswerBytes)*4), "length"
	}
	a.usage.PromptTokens = tokens.EstimatePrompt(r)
	a.usage.CompletionTokens = a.n * tokens.EstimateText(a.content)
	a.usage.TotalTokens = a.usage.PromptTokens + a.usage.CompletionTokens
	return a, nil
}

// mockError is the failure a mock_response value asks for, if any. fromRequest marks it as
// the caller's own (Mocked), which never cools the deployment down; a deployment's
// configured failure stands for a failing upstream and does.
// tooLarge is the 400 for a request whose answer would pass one of the mock's bounds.
func tooLarge(param, msg string) *provider.Error {
	return &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Provider: Prefix, Param: param, Message: "mock: " + msg}
}

func mockError(content string, fromRequest bool) error {
	e := &provider.Error{Provider: Prefix, Mocked: fromRequest}
	switch content {
	case RateLimitError:
		e.Status, e.Type, e.Retryable = http.StatusTooManyRequests, openai.TypeRateLimit, true
		e.Message = "mock: rate limit error (mock_response " + content + ")"
	case InternalServerError:
		e.Status, e.Type, e.Retryable = http.StatusInternalServerError, openai.TypeServer, true
		e.Message = "mock: internal server error (mock_response " + content + ")"
	case ContextWindowExceededError:
		e.Status, e.Type, e.Code, e.ContextWindow = http.StatusBadRequest, openai.TypeInvalidRequest, "context_length_exceeded", true
		e.Message = "mock: this model's maximum context length was exceeded (mock_response " + content + ")"
	default:
		return nil
	}
	return e
}

// echo is the default content: the last user message's text, or the completion prompt.
func echo(kind provider.Kind, r *openai.Request) string {
	var text string
	if kind == provider.Completion {
		if json.Unmarshal(r.Prompt, &text) != nil {
			var prompts []string
			if json.Unmarshal(r.Prompt, &prompts) == nil && len(prompts) > 0 {
				text = prompts[len(prompts)-1]
			}
		}
	} else {
		var msgs []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		}
		_ = json.Unmarshal(r.Messages, &msgs)
		for i := len(msgs) - 1; i >= 0 && text == ""; i-- {
			if msgs[i].Role == "user" {
				text = contentText(msgs[i].Content)
			}
		}
	}
	if strings.TrimSpace(text) == "" {
		return DefaultContent
	}
	return "Echo: " + truncate(text, MaxEchoBytes)
}

func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	_ = json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// splitWords splits s after each space, so the pieces concatenate back to s. With more
// than most words, consecutive words share a piece so there are at most most pieces.
func splitWords(s string, most int) []string {
	per := strings.Count(s, " ")/most + 1 // words per piece
	var out []string
	for s != "" {
		end := 0
		for w := 0; w < per && end < len(s); w++ {
			i := strings.IndexByte(s[end:], ' ')
			if i < 0 {
				end = len(s)
				break
			}
			end += i + 1
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type stream struct {
	ctx    context.Context
	chunks [][]byte
	usage  openai.Usage
	next   int
}

func (s *stream) Next() ([]byte, error) {
	if err := s.ctx.Err(); err != nil {
		return nil, err
	}
	if s.next >= len(s.chunks) {
		return nil, io.EOF
	}
	s.next++
	return s.chunks[s.next-1], nil
}

// Usage is known from the start: the mock computes the whole answer first.
func (s *stream) Usage() openai.Usage { return s.usage }

func (s *stream) Close() error {
	s.next = len(s.chunks)
	return nil
}

func embed(c *provider.Call) (*provider.Response, error) {
	var opts struct {
		Dimensions     int    `json:"dimensions"`
		EncodingFormat string `json:"encoding_format"`
	}
	if err := json.Unmarshal(c.Body, &opts); err != nil {
		return nil, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: "mock: " + err.Error(), Provider: Prefix}
	}
	if opts.Dimensions <= 0 {
		opts.Dimensions = DefaultDimensions
	}
	inputs, err := embeddingInputs(c.Request.Input)
	if err != nil {
		return nil, err
	}
	if opts.Dimensions > MaxEmbeddingValues/len(inputs) {
		return nil, tooLarge("dimensions", fmt.Sprintf("%d inputs of %d dimensions are over the mock's limit of %d values", len(inputs), opts.Dimensions, MaxEmbeddingValues))
	}
	type item struct {
		Object    string `json:"object"`
		Index     int    `json:"index"`
		Embedding any    `json:"embedding"`
	}
	data := make([]item, len(inputs))
	for i, in := range inputs {
		v := vector(in, opts.Dimensions)
		data[i] = item{Object: "embedding", Index: i, Embedding: v}
		if opts.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(f))
			}
			data[i].Embedding = base64.StdEncoding.EncodeToString(buf)
		}
	}
	usage := openai.Usage{PromptTokens: tokens.EstimatePrompt(c.Request)}
	usage.TotalTokens = usage.PromptTokens
	body, err := json.Marshal(struct {
		Object string `json:"object"`
		Data   []item `json:"data"`
		Model  string `json:"model"`
		Usage  any    `json:"usage"`
	}{"list", data, c.Model, struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	}{usage.PromptTokens, usage.TotalTokens}})
	if err != nil {
		return nil, fmt.Errorf("mock: encode embeddings: %w", err)
	}
	return &provider.Response{Body: body, Usage: usage}, nil
}

// embeddingInputs returns each input to embed, as bytes: strings, or token-id arrays in
// their JSON form.
func embeddingInputs(raw json.RawMessage) ([][]byte, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return [][]byte{[]byte(s)}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil || len(items) == 0 {
		return nil, &provider.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest,
			Message: "input must be a non-empty string or array", Provider: Prefix}
	}
	if items[0][0] != '"' && items[0][0] != '[' { // one array of token ids
		return [][]byte{raw}, nil
	}
	out := make([][]byte, len(items))
	for i, it := range items {
		if json.Unmarshal(it, &s) == nil {
			out[i] = []byte(s)
		} else {
			out[i] = it
		}
	}
	return out, nil
}

// vector derives a unit vector of n values from the SHA-256 of in.
func vector(in []byte, n int) []float32 {
	v := make([]float32, n)
	var block [sha256.Size]byte
	var norm float64
	for i := range v {
		if i%(sha256.Size/4) == 0 {
			h := sha256.New()
			h.Write(in)
			_ = binary.Write(h, binary.BigEndian, uint32(i))
			h.Sum(block[:0])
		}
		u := binary.BigEndian.Uint32(block[4*(i%(sha256.Size/4)):])
		f := float64(u)/math.MaxUint32*2 - 1
		v[i] = float32(f)
		norm += f * f
	}
	if norm > 0 {
		inv := 1 / math.Sqrt(norm)
		for i := range v {
			v[i] = float32(float64(v[i]) * inv)
		}
	}
	return v
}

// moderate answers a moderation: each input unflagged, every category false and scored 0.
func moderate(c *provider.Call) (*provider.Response, error) {
	inputs, err := embeddingInputs(c.Request.Input)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(struct {
		ID      string             `json:"id"`
		Model   string             `json:"model"`
		Results []moderationResult `json:"results"`
	}{"modr-mock", c.Model, make([]moderationResult, len(inputs))})
	if err != nil {
		return nil, fmt.Errorf("mock: encode moderation: %w", err)
	}
	return &provider.Response{Body: body}, nil
}

// moderationResult is one input's moderation verdict, OpenAI's shape with its categories.
type moderationResult struct {
	Flagged        bool               `json:"flagged"`
	Categories     map[string]bool    `json:"categories"`
	CategoryScores map[string]float64 `json:"category_scores"`
}

// MarshalJSON writes every category OpenAI names, false and scored 0, when unset.
func (m moderationResult) MarshalJSON() ([]byte, error) {
	type plain moderationResult
	if m.Categories == nil {
		m.Categories, m.CategoryScores = map[string]bool{}, map[string]float64{}
		for _, c := range moderationCategories {
			m.Categories[c], m.CategoryScores[c] = false, 0
		}
	}
	return json.Marshal(plain(m))
}

var moderationCategories = []string{"harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
	"self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic"}
