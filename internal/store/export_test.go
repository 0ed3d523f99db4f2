package store

// EscrowShardOf exposes escrowShardOf to the tests.
var EscrowShardOf = escrowShardOf

// NewEndpointMemo exposes newEndpointMemo to the tests.
var NewEndpointMemo = newEndpointMemo

// HeldEntry is heldEntry, and HeldEntryAV its hand-written encoding, for the test that holds
// it to attributevalue.Marshal.
type HeldEntry = heldEntry

var HeldEntryAV = (*heldEntry).av
