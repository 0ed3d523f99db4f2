package store

import "math/big"

// EscrowShardOf exposes escrowShardOf to the tests.
var EscrowShardOf = escrowShardOf

// NewEndpointMemo exposes newEndpointMemo to the tests.
var NewEndpointMemo = newEndpointMemo

// HeldEntry is heldEntry, and HeldEntryAV its hand-written encoding, for the test that holds
// it to attributevalue.Marshal.
type HeldEntry = heldEntry

var HeldEntryAV = (*heldEntry).av

// Placeholders hands out the name placeholders of attrs and then n value placeholders, in
// one expression.
func Placeholders(attrs []string, n int) (names, values []string) {
	e := newPlaceholders()
	for _, a := range attrs {
		names = append(names, e.name(a))
	}
	for range n {
		values = append(values, e.value(nil))
	}
	return names, values
}

// USDSub exposes usdSub, and USDSubRat its big.Rat form, to the tests.
var USDSub = usdSub

func USDSubRat(a, b string) string { return ratString(new(big.Rat).Sub(ratOf(a), ratOf(b))) }
