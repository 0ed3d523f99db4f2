package gateway

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
)

// The providers' rules the property holds the bound against, stated independently of
// tokens.Scan: a byte-level tokenizer never makes more tokens than the UTF-8 bytes of the
// text it reads; chat templates add a few tokens per message and a few to prime the
// reply; offering tools adds a system prompt (Anthropic documents up to 530 tokens); an
// image costs at most the largest documented per-image count (OpenAI gpt-4o-mini at high
// detail, 48,169 tokens); cached reads and cache writes are parts of the prompt; each
// choice writes at most its max_tokens, else the deployment's, else the model's limit.
const (
	ruleTokensPerMessage = 4
	rulePriming          = 3
	ruleToolPrompt       = 530
	ruleImageTokens      = 48169
)

// boundCase is one generated request on one route, with the most prompt tokens the
// providers' rules let any provider count for it.
type boundCase struct {
	name      string
	wire      *wire
	body      []byte
	maxPrompt int
	maxOutput int // per choice, from the request; 0 when it sets none
	choices   int
	noOutput  bool
}

// genText is text a tokenizer reads: ASCII, multi-byte letters, emoji, quotes, backslashes
// and control characters (the JSON escapes of the last three are longer than their UTF-8).
func genText(r *rand.Rand) string {
	pieces := []string{"hello ", "world", "é", "漢字", "🙂", `"`, `\`, "\n", "\t", "\u0001", "<b>&", " ", "ß", "\u200b"}
	var b strings.Builder
	for n := r.IntN(40); n > 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

func genImageURL(r *rand.Rand) string {
	return "data:image/png;base64," + strings.Repeat("QUJD", 1+r.IntN(300))
}

func genTool(r *rand.Rand) (tool map[string]any, textBytes int) {
	name, desc := "lookup_"+strings.Repeat("x", r.IntN(20)), genText(r)
	schema := map[string]any{"type": "object", "properties": map[string]any{"q": map[string]any{"type": "string", "description": genText(r)}}}
	raw, _ := json.Marshal(schema)
	return map[string]any{"type": "function", "function": map[string]any{"name": name, "description": desc, "parameters": schema}},
		len(name) + len(desc) + len(raw)
}

// genChat is a chat completion request: text and image parts, names, tools, functions, a
// response_format schema, n, max_tokens or max_completion_tokens.
func genChat(r *rand.Rand, kind provider.Kind) boundCase {
	c := boundCase{name: "chat", wire: openAIWire(kind), maxPrompt: rulePriming, choices: 1}
	var msgs []any
	for n := 1 + r.IntN(5); n > 0; n-- {
		text := genText(r)
		c.maxPrompt += ruleTokensPerMessage + len(text)
		m := map[string]any{"role": []string{"system", "user", "assistant"}[r.IntN(3)]}
		if r.IntN(3) == 0 {
			name := "n" + genText(r)
			m["name"] = name
			c.maxPrompt += len(name)
		}
		if r.IntN(3) == 0 {
			m["content"] = []any{
				map[string]any{"type": "text", "text": text},
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": genImageURL(r), "detail": "high"}},
			}
			c.maxPrompt += ruleImageTokens
		} else {
			m["content"] = text
		}
		msgs = append(msgs, m)
	}
	req := map[string]any{"model": "m", "messages": msgs}
	if r.IntN(2) == 0 {
		var tools []any
		for n := 1 + r.IntN(3); n > 0; n-- {
			t, size := genTool(r)
			tools = append(tools, t)
			c.maxPrompt += size
		}
		req["tools"] = tools
		c.maxPrompt += ruleToolPrompt
	}
	if r.IntN(4) == 0 {
		schema := map[string]any{"type": "object", "description": genText(r)}
		raw, _ := json.Marshal(schema)
		req["response_format"] = map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "s", "schema": schema}}
		c.maxPrompt += len(raw)
	}
	c.setOutput(r, req, "max_tokens", "max_completion_tokens")
	if r.IntN(3) == 0 {
		c.choices = 1 + r.IntN(8)
		req["n"] = c.choices
	}
	c.body, _ = json.Marshal(req)
	return c
}

// setOutput sets one of fields to a random limit, or none.
func (c *boundCase) setOutput(r *rand.Rand, req map[string]any, fields ...string) {
	if r.IntN(3) == 0 {
		return
	}
	c.maxOutput = 1 + r.IntN(20000)
	req[fields[r.IntN(len(fields))]] = c.maxOutput
}

// genCompletion is a legacy completion: a prompt string or list, n and best_of.
func genCompletion(r *rand.Rand) boundCase {
	c := boundCase{name: "completion", wire: openAIWire(provider.Completion), maxPrompt: rulePriming, choices: 1}
	req := map[string]any{"model": "m"}
	if r.IntN(2) == 0 {
		p := genText(r)
		req["prompt"], c.maxPrompt = p, c.maxPrompt+len(p)
	} else {
		var ps []string
		for n := 1 + r.IntN(4); n > 0; n-- {
			p := genText(r)
			ps, c.maxPrompt = append(ps, p), c.maxPrompt+len(p)
		}
		req["prompt"] = ps
	}
	c.setOutput(r, req, "max_tokens")
	n := 1 + r.IntN(4)
	req["n"], c.choices = n, n
	if r.IntN(2) == 0 {
		best := n + r.IntN(4) // OpenAI requires best_of >= n, and bills every one
		req["best_of"], c.choices = best, best
	}
	c.body, _ = json.Marshal(req)
	return c
}

// genEmbedding is an embedding request: one input or a list.
func genEmbedding(r *rand.Rand) boundCase {
	c := boundCase{name: "embedding", wire: openAIWire(provider.Embedding), noOutput: true, choices: 1}
	var in []string
	for n := 1 + r.IntN(4); n > 0; n-- {
		s := genText(r)
		in, c.maxPrompt = append(in, s), c.maxPrompt+len(s)+ruleTokensPerMessage
	}
	c.body, _ = json.Marshal(map[string]any{"model": "m", "input": in})
	return c
}

// genMessages is an Anthropic Messages request: system, text, image and tool_result blocks,
// tools, max_tokens (required).
func genMessages(r *rand.Rand) boundCase {
	c := boundCase{name: "messages", wire: messagesWire(provider.Messages), maxPrompt: rulePriming, choices: 1}
	sys := genText(r)
	c.maxPrompt += len(sys)
	var msgs []any
	for n := 1 + r.IntN(4); n > 0; n-- {
		text := genText(r)
		c.maxPrompt += ruleTokensPerMessage + len(text)
		blocks := []any{map[string]any{"type": "text", "text": text}}
		switch r.IntN(3) {
		case 0:
			data := strings.Repeat("QUJD", 1+r.IntN(300))
			blocks = append(blocks, map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": "image/png", "data": data}})
			c.maxPrompt += ruleImageTokens
		case 1:
			out := genText(r)
			blocks = append(blocks, map[string]any{"type": "tool_result", "tool_use_id": "t1", "content": out})
			c.maxPrompt += len(out)
		}
		msgs = append(msgs, map[string]any{"role": []string{"user", "assistant"}[r.IntN(2)], "content": blocks})
	}
	c.maxOutput = 1 + r.IntN(20000)
	req := map[string]any{"model": "m", "system": sys, "messages": msgs, "max_tokens": c.maxOutput}
	if r.IntN(2) == 0 {
		t, size := genTool(r)
		fn := t["function"].(map[string]any)
		req["tools"] = []any{map[string]any{"name": fn["name"], "description": fn["description"], "input_schema": fn["parameters"]}}
		c.maxPrompt += size + ruleToolPrompt
	}
	c.body, _ = json.Marshal(req)
	return c
}

// genResponses is an OpenAI Responses request: instructions, input as a string or items,
// function tools, max_output_tokens.
func genResponses(r *rand.Rand) boundCase {
	c := boundCase{name: "responses", wire: responsesWire(), maxPrompt: rulePriming, choices: 1}
	ins := genText(r)
	c.maxPrompt += len(ins)
	req := map[string]any{"model": "m", "instructions": ins}
	if r.IntN(2) == 0 {
		in := genText(r)
		req["input"], c.maxPrompt = in, c.maxPrompt+len(in)+ruleTokensPerMessage
	} else {
		var items []any
		for n := 1 + r.IntN(4); n > 0; n-- {
			text := genText(r)
			c.maxPrompt += ruleTokensPerMessage + len(text)
			items = append(items, map[string]any{"type": "message", "role": "user",
				"content": []any{map[string]any{"type": "input_text", "text": text}}})
		}
		req["input"] = items
	}
	if r.IntN(2) == 0 {
		t, size := genTool(r)
		fn := t["function"].(map[string]any)
		req["tools"] = []any{map[string]any{"type": "function", "name": fn["name"], "description": fn["description"], "parameters": fn["parameters"]}}
		c.maxPrompt += size + ruleToolPrompt
	}
	c.setOutput(r, req, "max_output_tokens")
	c.body, _ = json.Marshal(req)
	return c
}

// genTargets are the deployments a call can reach (its group and fallbacks), with prices
// as the cost map has them: cache writes dearer than input (Anthropic; 1-hour writes
// dearer still), cache reads cheaper, price tiers above prompt sizes, priority service tier
// prices (OpenAI), some deployments with litellm_params.max_tokens, some models knowing
// only their context window.
func genTargets(r *rand.Rand) []pricing.Target {
	ts := make([]pricing.Target, 1+r.IntN(3))
	for i := range ts {
		p := genPrices(r)
		if r.IntN(2) == 0 {
			prio := genPrices(r)
			p.Priority = &prio
		}
		if r.IntN(4) == 0 {
			p.MaxInputTokens = 1000 + r.IntN(200000)
		} else {
			p.MaxOutputTokens = 1000 + r.IntN(64000)
		}
		ts[i] = pricing.Target{Model: "t", Price: p}
		if r.IntN(3) == 0 {
			ts[i].MaxTokens = 1 + r.IntN(8000)
		}
	}
	return ts
}

// genPrices are one service tier's per-token prices: base and tiers.
func genPrices(r *rand.Rand) pricing.Price {
	in := r.Float64() * 1e-5
	write := in * 1.25 * r.Float64() * 2
	p := pricing.Price{Input: in, Output: r.Float64() * 6e-5, CacheRead: in / 10, CacheCreation: write,
		CacheCreation1h: write * (1 + r.Float64()), Known: true}
	// Tiers as LiteLLM's *_above_<N>k_tokens prices, at thresholds the generated prompts
	// cross, each price drawn anew (a tier may even be cheaper than the base).
	above := 0
	for n := r.IntN(3); n > 0; n-- {
		above += 1 + r.IntN(60000)
		tin := r.Float64() * 2e-5
		p.Tiers = append(p.Tiers, pricing.Tier{Above: above, Input: tin, Output: r.Float64() * 1e-4,
			CacheRead: tin * r.Float64(), CacheCreation: tin * 2 * r.Float64(), CacheCreation1h: tin * 4 * r.Float64()})
	}
	p.TierAtThreshold = r.IntN(4) == 0
	return p
}

// genUsage is a usage any provider may report for c answered by t: within the prompt the
// rules allow, cached reads and cache writes (some with a 1-hour TTL) inside it, each
// choice within its limit, served at the standard or the priority service tier (a
// project's default tier may be priority whatever the request says).
func genUsage(r *rand.Rand, c boundCase, t pricing.Target) openai.Usage {
	u := openai.Usage{PromptTokens: r.IntN(c.maxPrompt + 1)}
	if r.IntN(2) == 0 {
		u.PromptTokens = c.maxPrompt // the rules' worst case, as often as not
	}
	cached := r.IntN(u.PromptTokens + 1)
	u.PromptTokensDetails = &openai.PromptTokensDetails{CachedTokens: cached}
	u.CacheCreationInputTokens = r.IntN(u.PromptTokens - cached + 1)
	u.CacheCreation1hInputTokens = r.IntN(u.CacheCreationInputTokens + 1)
	if r.IntN(2) == 0 {
		u.ServiceTier = openai.ServiceTierPriority
	}
	if c.noOutput {
		return u
	}
	perChoice := c.maxOutput
	for _, limit := range []int{t.MaxTokens, t.Price.MaxOutputTokens, t.Price.MaxInputTokens} {
		if perChoice == 0 {
			perChoice = limit
		}
	}
	u.CompletionTokens = perChoice * c.choices
	if r.IntN(2) == 0 {
		u.CompletionTokens = r.IntN(u.CompletionTokens + 1)
	}
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	return u
}

// checkBound reads c's body through its route's parse as the gateway does, reserves over
// targets, and checks that no usage the rules allow, on any target, costs more.
func checkBound(t *testing.T, r *rand.Rand, c boundCase, targets []pricing.Target) {
	t.Helper()
	g := &Gateway{maxBody: 8 << 20}
	cl := &call{kind: c.wire.kind, wire: c.wire}
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(c.body))
	if err := g.readBody(httptest.NewRecorder(), req, cl); err != nil {
		t.Fatalf("%s: the generated request was refused: %v\nbody: %s", c.name, err, c.body)
	}
	bound := pricing.ReservationBound(cl.billable(), targets)
	for i := 0; i < 20; i++ {
		tg := targets[r.IntN(len(targets))]
		u := genUsage(r, c, tg)
		if cost := tg.Price.Cost(u); cost > bound.Cost*(1+1e-12) {
			t.Fatalf("%s: usage %+v (cached %d) on %+v costs %g > reserved %g\nbody: %s",
				c.name, u, u.PromptTokensDetails.CachedTokens, tg, cost, bound.Cost, c.body)
		}
		if n := u.PromptTokens + u.CompletionTokens; n > bound.Tokens {
			t.Fatalf("%s: usage of %d tokens > the %d tokens held for tpm limits\nbody: %s", c.name, n, bound.Tokens, c.body)
		}
	}
}

var boundGenerators = []func(*rand.Rand) boundCase{
	func(r *rand.Rand) boundCase { return genChat(r, provider.Chat) },
	genCompletion, genEmbedding, genMessages, genResponses,
}

// TestReservationBound_CoversEveryUsageTheProvidersAllow is the bound's property test:
// generated requests on every route, priced over generated deployments, and usages the
// providers' rules allow on each; the cost is never above the reservation.
func TestReservationBound_CoversEveryUsageTheProvidersAllow(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 400; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		for _, gen := range boundGenerators {
			checkBound(t, r, gen(r), genTargets(r))
		}
	}
}

// FuzzReservationBound searches further: go test -run '^$' -fuzz FuzzReservationBound ./internal/gateway/
func FuzzReservationBound(f *testing.F) {
	for _, s := range []uint64{1, 42, 1 << 40} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, seed uint64, route uint8) {
		r := rand.New(rand.NewPCG(seed, uint64(route)))
		gen := boundGenerators[int(route)%len(boundGenerators)]
		checkBound(t, r, gen(r), genTargets(r))
	})
}
