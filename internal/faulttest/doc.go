// Package faulttest holds llmgate's fault-injection and bad-input tests: the whole request
// path (auth, budgets and limits on DynamoDB Local, router, providers) built by internal/app
// and served in this process, so the tests can count goroutines and read the ledger, against
// fake upstreams (internal/fakeopenai) that fail on purpose and a DynamoDB Local that is
// stopped mid-load (dynamotest.StartPrivate).
//
// The package has no code of its own besides this comment; everything is in its tests.
package faulttest
