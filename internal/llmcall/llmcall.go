// Package llmcall is the vocabulary the gateway shares with the policy below it: who calls
// (Caller), what a call may cost before it runs (Charge), what it did (Outcome), and the
// interfaces that admit and settle it (Authenticator, Limiter, Reservation). auth and limits
// implement these without importing the gateway; the gateway uses them without knowing
// DynamoDB.
package llmcall

import (
	"context"
	"net/http"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
)

// Caller is who makes a call, as the Authenticator resolved it.
type Caller interface {
	// ResolveModel maps the requested model name through the caller's aliases (key aliases,
	// team model_aliases) and checks the caller may use it. It returns the model group to
	// route to, or an *openai.Error (401 key_model_access_denied, ...).
	ResolveModel(requested string) (string, error)
	// Allowed reports whether the caller may use the model group (for GET /v1/models).
	Allowed(model string) bool
	// MayRoute reports whether the caller may be served by the model group itself, aliases
	// aside: the check of a configured fallback (enforce_fallback_model_access).
	MayRoute(group string) bool
	// IsProxyAdmin reports whether the caller is the master key or a proxy_admin, who may
	// use mock_response and the mock_testing_* flags on real deployments.
	IsProxyAdmin() bool
}

// Owner is implemented by a Caller that can own what an upstream keeps for it (Responses
// API responses): the key's SHA-256 hash ("" for the master key) and its team ("" if none).
type Owner interface {
	Owner() (key, team string)
}

// Authenticator resolves the caller of a request, or returns an *openai.Error (401 for a
// missing, invalid, blocked or expired key; 503 when the store cannot be reached).
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (Caller, error)
}

// Charge is what the gateway knows about a call before it reaches the upstream.
type Charge struct {
	RequestID string
	Route     string // "/chat/completions", "/completions", "/embeddings"
	Model     string // model group the call is routed to
	// Cost is the reservation in USD: pricing.ReservationBound, the most the call can cost
	// on any deployment it can reach.
	Cost float64
	// PromptTokens is the estimated prompt size; MaxTokens the completion tokens allowed
	// per choice; Tokens the worst case of the call: the prompt and every choice's
	// completion, which tpm limits reserve.
	PromptTokens int
	MaxTokens    int
	Tokens       int
	// OutputCostPerToken lets the limiter turn leftover budget into a max_tokens clamp.
	OutputCostPerToken float64
	// Free is true when the model is explicitly priced at zero: budget checks are skipped.
	Free bool
	// Unpriced lists the models the call can reach that have no known price.
	Unpriced []string
	// Tags come from the request's metadata.tags, for the spend log.
	Tags []string
	// EndUser is the request's "user": the customer the call is charged to, if it exists.
	EndUser string
	// Stream is true for a streamed call.
	Stream bool
}

// Limiter admits calls under budgets and rate limits.
type Limiter interface {
	// Reserve admits the call (at most one DynamoDB round trip on a warm path) or returns an
	// *openai.Error: 400 budget_exceeded, 429 with retry-after, 503 if the store is down.
	Reserve(ctx context.Context, c Caller, ch Charge) (Reservation, error)
}

// Reservation is an admitted call's hold on budgets and limits until it is settled.
type Reservation interface {
	// Header holds response headers known at admission: x-litellm-key-spend,
	// x-litellm-key-max-budget, x-litellm-key-rpm-limit, x-ratelimit-*.
	Header() http.Header
	// MaxTokens is the completion-token limit the call must respect; 0 leaves the request's
	// max_tokens as it is (clamp mode may lower it to what the budget can pay).
	MaxTokens() int
	// Settle replaces the reservation with the outcome (one round trip) and writes the spend
	// log. It is called exactly once, also for failed calls, with a context that outlives
	// the client's.
	Settle(ctx context.Context, o Outcome) error
}

// Outcome is what a call did.
type Outcome struct {
	Model      string // model group
	ResponseID string // the "id" of the upstream's response (of its first chunk, streaming)
	Deployment string // model_info.id of the deployment that answered
	Provider   string // provider prefix ("openai", "anthropic", ...)
	APIBase    string
	Usage      openai.Usage
	Cost       float64 // actual cost in USD
	Success    bool
	Status     int // HTTP status answered
	ErrorType  string
	Start, End time.Time
}
