package store

// EscrowShardOf exposes escrowShardOf to the tests.
var EscrowShardOf = escrowShardOf
