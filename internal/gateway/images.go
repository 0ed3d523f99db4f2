package gateway

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
)

// MaxImages bounds n of an image generation (OpenAI's own limit).
const MaxImages = 10

// imagesWire is OpenAI's image generation (/v1/images/generations): priced per image, by
// the size and quality asked for, never streamed.
func imagesWire() *wire {
	return &wire{kind: provider.ImageGeneration, parse: parseImages, writeError: openai.WriteError, appendErrorEvent: appendErrorEvent}
}

// parseImages reads an image generation request: prompt (a non-empty string), n
// (1..MaxImages), size ("auto" or WxH, each side at most pricing.MaxImageSide), quality (one of
// OpenAI's) and response_format (url, b64_json). Other fields (style, background, ...) pass
// through to the upstream as sent.
func parseImages(body []byte, r *openai.Request) error {
	if err := parseOpenAI(body, r); err != nil {
		return err
	}
	bad := func(param, format string, args ...any) error {
		return openai.Errorf(http.StatusBadRequest, openai.TypeInvalidRequest, fmt.Sprintf(format, args...)).WithParam(param)
	}
	var prompt string
	if json.Unmarshal(r.Prompt, &prompt) != nil || prompt == "" {
		return bad("prompt", "Invalid 'prompt': a non-empty string is required.")
	}
	if r.N != nil && *r.N > MaxImages {
		return bad("n", "Invalid 'n': %d is above the maximum value %d.", *r.N, MaxImages)
	}
	if _, _, ok := pricing.ParseImageSize(r.Size); r.Size != "" && r.Size != "auto" && !ok {
		return bad("size", "Invalid 'size': %q; expected 'auto' or WIDTHxHEIGHT (e.g. '1024x1024'), each side at most %d.", truncate(r.Size), pricing.MaxImageSide)
	}
	if r.Quality != "" && !slices.Contains(pricing.ImageQualities, r.Quality) {
		return bad("quality", "Invalid 'quality': %q; expected one of %v.", truncate(r.Quality), pricing.ImageQualities)
	}
	if f := gjson.GetBytes(body, "response_format"); f.Exists() && f.String() != "url" && f.String() != "b64_json" {
		return bad("response_format", "Invalid 'response_format': expected 'url' or 'b64_json'.")
	}
	if r.Stream {
		return bad("stream", "Streamed image generation (partial images) is not supported by llmgate; leave 'stream' unset.")
	}
	return nil
}

// truncate shortens a caller's value quoted in an error.
func truncate(s string) string {
	if len(s) > 64 {
		return prefix(s, 64) + "..."
	}
	return s
}

// prefix is s cut to at most n bytes, without a rune cut in half (s comes from callers and
// upstreams and is written into JSON answers and log lines).
func prefix(s string, n int) string {
	return strings.ToValidUTF8(s[:min(len(s), n)], "")
}

// imageCall is what an image generation call asks for.
func (c *call) imageCall() pricing.ImageCall {
	ic := pricing.ImageCall{N: 1, Size: c.req.Size, Quality: c.req.Quality}
	if c.req.N != nil {
		ic.N = *c.req.N
	}
	return ic
}

// accountImages sets what an image generation is charged: its images (at most n) at the
// size and quality the answer reports, else those asked for (see pricing.ImagesCost). The
// usage GPT image models report is kept for the log and tpm counts, not priced.
func (c *call) accountImages(body []byte, price pricing.Price, u openai.Usage) {
	ans := gjson.GetManyBytes(body, "data.#", "size", "quality")
	c.cost = price.Images.ImagesCost(c.imageCall(), int(ans[0].Int()), ans[1].String(), ans[2].String())
	if validUsage(u, math.MaxInt) { // counts only need to be non-negative
		c.usage = u
	}
}
