package store_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/store"
)

// usdSub gives big.Rat's difference, in the same form, for amounts of every size and number of
// decimals, and for strings that are no amount usd writes.
func TestUSDSubIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		return b.String()
	}
	amount := func() string {
		s := digits(rng.IntN(9))
		if rng.IntN(3) > 0 {
			s += "." + digits(rng.IntN(15))
		}
		if rng.IntN(4) == 0 {
			s = "-" + s
		}
		return s
	}
	cases := [][2]string{
		{"0", "0"}, {"0.0025", "0.0025"}, {"1", "0.000000000001"}, {"0.000000000001", "1"},
		{"999999.999999999999", "-999999.999999999999"}, {"1000000", "0.5"}, {"1e-3", "0"},
		{"", "1"}, {"-", "1"}, {".5", "0.25"}, {"1.", "0.5"}, {"+1", "2"}, {"0x10", "1"}, {"1.2.3", "0"},
		{"-0", "0"}, {"-0.000", "0"}, {"00012.5000", "12.5"},
	}
	for range 20000 {
		cases = append(cases, [2]string{amount(), amount()})
	}
	for _, c := range cases {
		if got, want := store.USDSub(c[0], c[1]), store.USDSubRat(c[0], c[1]); got != want {
			t.Errorf("usdSub(%q, %q) = %q, big.Rat gives %q", c[0], c[1], got, want)
		}
	}
}
