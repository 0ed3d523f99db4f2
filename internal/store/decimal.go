package store

import (
	"strconv"
	"strings"
)

// picoUSD parses a decimal of at most usdDecimals decimals and 6 integer digits (what usd
// writes for amounts under a million USD) as a count of 1e-12 USD; ok is false for any other
// form, which usdSub then leaves to big.Rat. Settling a call subtracts two amounts, and
// big.Rat's parsing and formatting showed at ~15 µs per call in the full path's profile.
func picoUSD(s string) (n int64, ok bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 6 || len(frac) > usdDecimals {
		return 0, false
	}
	for _, part := range [2]string{whole, frac} {
		for i := range len(part) {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int64(c-'0')
		}
	}
	for range usdDecimals - len(frac) {
		n *= 10
	}
	if neg {
		n = -n
	}
	return n, true
}

// picoString formats n 1e-12 USD as usd does.
func picoString(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	const unit = 1_000_000_000_000 // 10^usdDecimals
	frac := strconv.FormatInt(unit+n%unit, 10)[1:]
	frac = strings.TrimRight(frac, "0")
	s := strconv.FormatInt(n/unit, 10)
	if frac != "" {
		s += "." + frac
	}
	return sign + s
}
