package metrics

import (
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of llmgate's metrics.
const Namespace = "llmgate"

// EMF writes each call and attempt as one CloudWatch Embedded Metric Format line: in a
// Lambda function's log, CloudWatch extracts the metrics from it, without an API call on
// the request path. Metrics are named as LiteLLM's (counters without Prometheus' _total).
// Dimensions are few and bounded (model group, deployment id, team); the key, user and
// statuses ride along as properties, searchable in Logs Insights at no metric cost.
type EMF struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewEMF returns an EMF recorder writing to w (os.Stdout on Lambda).
func NewEMF(w io.Writer) *EMF { return &EMF{w: w, now: time.Now} }

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

// line is one EMF record being built: root members and its directives.
type line struct {
	root       map[string]any
	directives []emfDirective
}

func newLine() *line { return &line{root: map[string]any{}} }

// prop sets a root member that is not a metric; empty strings are left out.
func (l *line) prop(name, v string) {
	if v != "" {
		l.root[name] = v
	}
}

// metrics adds a directive: the named values under the given dimension sets.
func (l *line) metrics(dims [][]string, unit map[string]string, values map[string]float64, order []string) {
	d := emfDirective{Namespace: Namespace, Dimensions: dims}
	for _, name := range order {
		l.root[name] = values[name]
		d.Metrics = append(d.Metrics, emfMetric{Name: name, Unit: unit[name]})
	}
	l.directives = append(l.directives, d)
}

func (e *EMF) write(l *line) {
	l.root["_aws"] = map[string]any{"Timestamp": e.now().UnixMilli(), "CloudWatchMetrics": l.directives}
	b, err := json.Marshal(l.root)
	if err != nil {
		return
	}
	b = append(b, '\n')
	e.mu.Lock()
	defer e.mu.Unlock()
	_, _ = e.w.Write(b)
}

// Units of the EMF metrics.
const (
	unitCount   = "Count"
	unitSeconds = "Seconds"
	unitNone    = "None"
)

// callMetrics are the per-call metrics in line order, with their units.
var callMetrics = []string{
	"litellm_proxy_total_requests_metric", "litellm_proxy_failed_requests_metric",
	"litellm_requests_metric", "litellm_llm_api_failed_requests_metric", "litellm_spend_metric",
	"litellm_total_tokens", "litellm_input_tokens_metric", "litellm_output_tokens_metric",
	"litellm_request_total_latency_metric", "litellm_llm_api_latency_metric",
	"litellm_budget_overrun_metric",
}

var units = map[string]string{
	"litellm_proxy_total_requests_metric":    unitCount,
	"litellm_proxy_failed_requests_metric":   unitCount,
	"litellm_requests_metric":                unitCount,
	"litellm_llm_api_failed_requests_metric": unitCount,
	"litellm_spend_metric":                   unitNone,
	"litellm_total_tokens":                   unitCount,
	"litellm_input_tokens_metric":            unitCount,
	"litellm_output_tokens_metric":           unitCount,
	"litellm_request_total_latency_metric":   unitSeconds,
	"litellm_llm_api_latency_metric":         unitSeconds,
	"litellm_budget_overrun_metric":          unitCount,
	"litellm_remaining_team_budget_metric":   unitNone,
	"litellm_team_max_budget_metric":         unitNone,
	"litellm_deployment_total_requests":      unitCount,
	"litellm_deployment_success_responses":   unitCount,
	"litellm_deployment_failure_responses":   unitCount,
	"litellm_deployment_state":               unitNone,
}

// Call writes the call's line.
func (e *EMF) Call(c Call) {
	l := newLine()
	ok := c.Success()
	values := map[string]float64{
		"litellm_proxy_total_requests_metric":    1,
		"litellm_proxy_failed_requests_metric":   b2f(!ok),
		"litellm_requests_metric":                b2f(ok),
		"litellm_llm_api_failed_requests_metric": b2f(c.UpstreamFailed),
		"litellm_spend_metric":                   c.Cost,
		"litellm_total_tokens":                   float64(c.PromptTokens + c.CompletionTokens),
		"litellm_input_tokens_metric":            float64(c.PromptTokens),
		"litellm_output_tokens_metric":           float64(c.CompletionTokens),
		"litellm_request_total_latency_metric":   c.Total.Seconds(),
		"litellm_llm_api_latency_metric":         c.LLM.Seconds(),
		"litellm_budget_overrun_metric":          b2f(c.Overrun),
	}
	dims := [][]string{{}}
	if c.Model != "" {
		l.root["model"] = c.Model
		dims = append(dims, []string{"model"})
	}
	l.metrics(dims, units, values, callMetrics)
	w := c.Who
	if w.Team != "" && w.TeamMaxBudget != nil {
		l.root["team"] = w.Team
		l.metrics([][]string{{"team"}}, units, map[string]float64{
			"litellm_remaining_team_budget_metric": *w.TeamMaxBudget - w.TeamSpend - c.Cost,
			"litellm_team_max_budget_metric":       *w.TeamMaxBudget,
		}, []string{"litellm_remaining_team_budget_metric", "litellm_team_max_budget_metric"})
	}
	l.prop("team", w.Team)
	l.prop("team_alias", w.TeamAlias)
	l.prop("hashed_api_key", w.HashedKey)
	l.prop("api_key_alias", w.KeyAlias)
	l.prop("user", w.User)
	l.prop("requested_model", c.RequestedModel)
	l.prop("status_code", strconv.Itoa(c.Status))
	l.prop("exception_class", c.ErrorType)
	e.write(l)
}

var attemptMetrics = []string{
	"litellm_deployment_total_requests", "litellm_deployment_success_responses",
	"litellm_deployment_failure_responses", "litellm_deployment_state",
}

// Attempt writes the attempt's line.
func (e *EMF) Attempt(a Attempt) {
	l := newLine()
	var dims [][]string
	if a.Model != "" {
		l.root["model"] = a.Model
		dims = append(dims, []string{"model"})
	}
	if a.ModelID != "" {
		l.root["model_id"] = a.ModelID
		dims = append(dims, []string{"model_id"})
	}
	if len(dims) == 0 {
		dims = [][]string{{}}
	}
	l.metrics(dims, units, map[string]float64{
		"litellm_deployment_total_requests":    1,
		"litellm_deployment_success_responses": b2f(!a.Failed),
		"litellm_deployment_failure_responses": b2f(a.Failed),
		"litellm_deployment_state":             float64(a.State),
	}, attemptMetrics)
	l.prop("litellm_model_name", a.UpstreamModel)
	l.prop("api_provider", a.Provider)
	l.prop("api_base", a.APIBase)
	l.prop("requested_model", a.RequestedModel)
	if a.Failed && a.Status != 0 {
		l.prop("exception_status", strconv.Itoa(a.Status))
	}
	e.write(l)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
