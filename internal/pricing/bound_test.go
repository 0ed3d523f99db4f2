package pricing

import (
	"testing"

	"github.com/llmgate/llmgate/internal/tokens"
)

// TestReservationBound_ReservesAtTheTiersThePromptCanReach: a tier counts when a prompt of
// at most the bound's prompt tokens can be priced at it (from its threshold on, for
// providers that bill the threshold itself at the tier), and only then.
func TestReservationBound_ReservesAtTheTiersThePromptCanReach(t *testing.T) {
	b := tokens.Billable{Prompt: tokens.Prompt{TextBytes: 1000 - tokens.RequestOverhead}, MaxOutput: 10, Choices: 1}
	base := Price{Input: 1, Output: 2, CacheRead: 1, CacheCreation: 1, Known: true}
	tier := func(above int) []Tier {
		return []Tier{{Above: above, Input: 10, Output: 20, CacheRead: 1, CacheCreation: 30}}
	}
	tests := []struct {
		name  string
		tiers []Tier
		want  float64
	}{
		{"no tiers", nil, 1000*1 + 10*2},
		{"tier above the prompt bound", tier(1000), 1000*1 + 10*2},
		{"tier below it: cache write at the tier's price", tier(999), 1000*30 + 10*20},
	}
	for _, tt := range tests {
		for _, inclusive := range []bool{false, true} {
			p := base
			p.Tiers, p.TierAtThreshold = tt.tiers, inclusive
			want := tt.want
			if inclusive && tt.name == "tier above the prompt bound" {
				want = 1000*30 + 10*20 // a prompt of exactly 1000 tokens is priced at the tier
			}
			if got := ReservationBound(b, []Target{{Model: "m", Price: p}}).Cost; got != want {
				t.Errorf("%s (inclusive %v): reserved %g, want %g", tt.name, inclusive, got, want)
			}
		}
	}
}
