// Package metrics records what the gateway did under LiteLLM's Prometheus metric names:
// one Call per LLM request and one Attempt per upstream call. A Recorder turns them into
// figures: Prometheus series on the local server (package metrics/prom), CloudWatch
// Embedded Metric Format lines on Lambda (EMF).
//
// Labels are bounded: they name keys, teams, users, models and deployments, never a
// request (no request id, no end_user, which a caller may set to anything).
package metrics

import "time"

// Recorder turns calls and attempts into metrics. Implementations are safe for concurrent
// use and never block on the network.
type Recorder interface {
	// Call records one LLM request, after it was answered and settled.
	Call(c Call)
	// Attempt records one upstream call of a deployment, retries and fallbacks included.
	Attempt(a Attempt)
}

// Who is the caller of a request, as metric labels. Every field may be empty (auth off, a
// key without a team, a request refused before its key was known).
type Who struct {
	HashedKey string // hashed_api_key: the key's SHA-256 token, never the key
	KeyAlias  string // api_key_alias
	Team      string // team
	TeamAlias string // team_alias
	User      string // user

	// KeyMaxBudget and KeySpend are the key's budget and its spend before this call (nil
	// budget: none). TeamMaxBudget and TeamSpend are the same for the key's team.
	KeyMaxBudget  *float64
	KeySpend      float64
	TeamMaxBudget *float64
	TeamSpend     float64
}

// Identified is a caller that names itself for metric labels (auth.Principal).
type Identified interface {
	MetricsWho() Who
}

// Call is one LLM request.
type Call struct {
	Who            Who
	RequestedModel string // the model the client asked for (requested_model)
	Model          string // the model group that answered, after aliases and fallbacks (model)
	Status         int    // HTTP status answered (499 when the client went away)
	ErrorType      string // OpenAI error type when Status is not 200 (exception_class)
	// UpstreamFailed is true when the call failed at the upstream, not before it (auth,
	// budget, validation): litellm_llm_api_failed_requests_metric.
	UpstreamFailed bool
	// Overrun is true when the call cost more than its reservation (a budget_overrun: the
	// provider counted more than the bound allows; spend has the truth).
	Overrun          bool
	PromptTokens     int
	CompletionTokens int
	Cost             float64       // USD, what the call was charged
	Total            time.Duration // the whole request, as the client saw it
	LLM              time.Duration // the answering upstream call (0 when none answered)
}

// Success reports whether the call was answered with 200.
func (c Call) Success() bool { return c.Status == 200 && c.ErrorType == "" }

// Deployment state values of litellm_deployment_state, as LiteLLM sets them.
const (
	StateHealthy       = 0
	StatePartialOutage = 1 // the last attempt failed
	StateOutage        = 2 // cooled down: skipped until its cooldown ends
)

// Attempt is one upstream call of a deployment.
type Attempt struct {
	RequestedModel string // model group routed to (requested_model)
	Model          string // the deployment's model group (model_name)
	ModelID        string // model_id: model_info.id or the deployment's stable hash
	UpstreamModel  string // litellm_model_name: litellm_params.model
	Provider       string // api_provider
	APIBase        string // api_base without its query
	Status         int    // upstream status; 0 when it never answered (timeout, network)
	Failed         bool
	State          int // the deployment's state after the attempt
}

// Nop records nothing.
type Nop struct{}

// Call does nothing.
func (Nop) Call(Call) {}

// Attempt does nothing.
func (Nop) Attempt(Attempt) {}
