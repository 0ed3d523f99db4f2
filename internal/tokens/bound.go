// Package tokens bounds and estimates the tokens of an LLM call. Bounds (Billable) are what
// reservations are made of: a provider's count can never exceed them. Estimates (Text,
// Prompt) are what a call probably used, for usage nobody reported.
package tokens

import "math"

// The prompt bound, in one place (README "How a reservation is bounded" states it too):
//
//	prompt ≤ TextBytes + Images·MaxImageTokens + RequestOverhead (+ ToolOverhead if Tools)
//
// TextBytes is the size of the request's JSON with image data left out: every billable text
// (messages, system, names, tools, functions, response_format schemas, prompt, input) is in
// it, JSON-escaped, and an escape is never shorter than the UTF-8 it stands for. Byte-level
// BPE tokenizers (OpenAI, Anthropic, Llama 3, Mistral's Tekken) and SentencePiece with byte
// fallback (Gemini, Llama 2) never make more tokens than bytes, and the JSON framing of a
// message ({"role":"user","content":""} is 28 bytes) is more than the few tokens a chat
// template adds per message. Audio and file parts count as the bytes of their base64 data.
// A token-id prompt costs at least two bytes ("1,") per id.
const (
	// RequestOverhead covers what a provider adds once per call: reply priming, a default
	// system prompt.
	RequestOverhead = 64
	// ToolOverhead covers the system prompt a provider adds when tools are offered
	// (Anthropic documents up to 530 tokens; OpenAI renders tools into a namespace).
	ToolOverhead = 1024
	// MaxImageTokens bounds one image part, whatever its size and detail: above every
	// documented per-image maximum (OpenAI gpt-4o-mini at high detail: 2,833 + 8 tiles ×
	// 5,667 = 48,169; gpt-4o 1,445; Anthropic about 1,600; Gemini 258 per 768-px tile,
	// 1,120 at high media resolution). A Gemini 2.x image larger than 254 tiles (about
	// 12,000 px square) is the one documented case it does not cover.
	MaxImageTokens = 65536
	// UnknownOutputLimit is the output a call without max_tokens may produce on a model
	// whose output limit neither the cost map nor the config knows.
	UnknownOutputLimit = 131072
)

// Prompt is the billable input of a request, as Scan measured it.
type Prompt struct {
	TextBytes int  // the body's bytes without image data
	Images    int  // image parts (data URLs, URLs, base64 sources)
	Tools     bool // tools or functions are offered
}

// Tokens is the most prompt tokens any provider can count for p.
func (p Prompt) Tokens() int {
	n := satAdd(p.TextBytes, RequestOverhead)
	if p.Tools {
		n = satAdd(n, ToolOverhead)
	}
	return satAdd(n, satMul(p.Images, MaxImageTokens))
}

// Billable is what a call can be billed for: its prompt and how much output it may ask
// for. Every route fills one from its decoded request and prices it with pricing.Reserve.
type Billable struct {
	Prompt Prompt
	// MaxOutput is the completion-token limit per choice the request sets
	// (max_completion_tokens, max_tokens, max_output_tokens); 0 when it sets none.
	MaxOutput int
	// Choices is how many completions are generated and billed: n, or best_of for a
	// text completion (OpenAI requires best_of ≥ n); 1 when unset.
	Choices int
	// NoOutput is true for calls billed for input only (embeddings).
	NoOutput bool
}

// Output is the most completion tokens the call can produce on a deployment whose
// litellm_params.max_tokens is deploymentMax and whose model may write modelMax tokens
// (0: unknown; modelContext, the context window, is used then): per choice, and in all.
func (b Billable) Output(deploymentMax, modelMax, modelContext int) (perChoice, total int) {
	if b.NoOutput {
		return 0, 0
	}
	perChoice = b.MaxOutput
	for _, limit := range [...]int{deploymentMax, modelMax, modelContext, UnknownOutputLimit} {
		if perChoice > 0 {
			break
		}
		perChoice = limit
	}
	return perChoice, satMul(perChoice, max(b.Choices, 1))
}

func satAdd(a, b int) int {
	if a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

func satMul(a, b int) int {
	if a != 0 && b > math.MaxInt/a {
		return math.MaxInt
	}
	return a * b
}
