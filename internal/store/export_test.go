package store

// EscrowShardOf exposes escrowShardOf to the tests.
var EscrowShardOf = escrowShardOf

// NewEndpointMemo exposes newEndpointMemo to the tests.
var NewEndpointMemo = newEndpointMemo
