package pricing

import "github.com/llmgate/llmgate/internal/tokens"

// Target is one deployment a call can reach: the deployments of its model group and of
// every group it can fall back to.
type Target struct {
	Model string // litellm_params.model, for messages
	Price Price
	// MaxTokens is litellm_params.max_tokens: the completion limit the deployment applies
	// when the request sets none (0: none).
	MaxTokens int
}

// Bound is what a call is reserved at: the most it can cost, whichever target answers.
type Bound struct {
	// Cost = PromptTokens × the highest input-side price (input, cache write for 5 minutes
	// or 1 hour, cache read) + MaxTokens × choices × the highest output price, each over
	// every target, every price tier a prompt of at most PromptTokens can reach, and the
	// priority service tier's prices (a project's default tier may be priority whatever the
	// request says).
	Cost         float64
	PromptTokens int
	// MaxTokens is the completion-token limit per choice (the largest among the targets);
	// Tokens the prompt plus every choice's completion.
	MaxTokens, Tokens int
	// OutputPrice is the highest output price, for turning a budget into max_tokens.
	OutputPrice float64
	// Free is true when every target is explicitly priced at zero.
	Free bool
	// Unpriced lists the targets' models with no known price.
	Unpriced []string
}

// ReservationBound is the one bound every route reserves with: a sound upper bound on what
// the call described by b can be charged (Price.Cost of any usage the providers' rules
// allow) on any of targets. README "How a reservation is bounded" states it for users.
func ReservationBound(b tokens.Billable, targets []Target) Bound {
	bd := Bound{PromptTokens: b.Prompt.Tokens(), Free: len(targets) > 0}
	var in, total int
	var inPrice float64
	for _, t := range targets {
		p := t.Price
		perChoice, all := b.Output(t.MaxTokens, p.MaxOutputTokens, p.MaxInputTokens)
		bd.MaxTokens, total = max(bd.MaxTokens, perChoice), max(total, all)
		for _, r := range p.reachable(bd.PromptTokens) {
			inPrice = max(inPrice, r.Input, r.CacheCreation, r.CacheCreation1h, r.CacheRead)
			bd.OutputPrice = max(bd.OutputPrice, r.Output)
		}
		bd.Free = bd.Free && p.Free
		if !p.Known {
			bd.Unpriced = append(bd.Unpriced, t.Model)
		}
	}
	in = bd.PromptTokens
	bd.Cost = float64(in)*inPrice + float64(total)*bd.OutputPrice
	bd.Tokens = in + min(total, int(^uint(0)>>1)-in)
	return bd
}

// reachable are the prices a call whose prompt has at most prompt tokens can be charged at:
// the base prices and every tier that prices such a prompt (a tier that prices a prompt
// prices every longer one), at the standard and the priority service tier.
func (p Price) reachable(prompt int) []Tier {
	out := []Tier{p.base()}
	for _, t := range p.Tiers {
		if p.applies(t, prompt) {
			out = append(out, t)
		}
	}
	if p.Priority != nil {
		out = append(out, p.Priority.reachable(prompt)...)
	}
	return out
}
