// Package prom keeps llmgate's metrics as Prometheus series under LiteLLM's names and
// labels, for GET /metrics on the local server. It is apart from package metrics so the
// Lambda functions, which write EMF instead, do not link the Prometheus client.
package prom

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/llmgate/llmgate/internal/metrics"
)

// latencyBuckets are LiteLLM's LATENCY_BUCKETS (seconds), so its dashboards' quantiles read
// the same.
var latencyBuckets = []float64{
	0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0,
	5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0,
	180.0, 240.0, 300.0,
}

// keyLabels name the caller. LiteLLM's end_user is left out: a caller sets it to anything,
// which would make the series unbounded.
var keyLabels = []string{"hashed_api_key", "api_key_alias", "team", "team_alias", "user"}

func labels(first []string, rest ...string) []string {
	return append(append(append([]string{}, first...), keyLabels...), rest...)
}

// Recorder is a metrics.Recorder holding Prometheus series.
type Recorder struct {
	reg *prometheus.Registry

	proxyTotal, proxyFailed                *prometheus.CounterVec
	requests, apiFailed, spend, overrun    *prometheus.CounterVec
	totalTokens, inputTokens, outputTokens *prometheus.CounterVec
	totalLatency, llmLatency               *prometheus.HistogramVec
	keyRemaining, keyMax                   *prometheus.GaugeVec
	teamRemaining, teamMax                 *prometheus.GaugeVec
	depState                               *prometheus.GaugeVec
	depTotal, depSuccess, depFailure       *prometheus.CounterVec
}

var _ metrics.Recorder = (*Recorder)(nil)

// New returns a Recorder with its own registry (with the Go runtime and process collectors).
func New() *Recorder {
	r := &Recorder{reg: prometheus.NewRegistry()}
	counter := func(name, help string, lbls []string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, lbls)
		r.reg.MustRegister(v)
		return v
	}
	gauge := func(name, help string, lbls ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, lbls)
		r.reg.MustRegister(v)
		return v
	}
	// Latency histograms carry model and team only: one series per bucket and key would
	// multiply the key count by 36.
	histogram := func(name, help string) *prometheus.HistogramVec {
		v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets},
			[]string{"model", "requested_model", "team", "team_alias"})
		r.reg.MustRegister(v)
		return v
	}
	// Counters carry the _total suffix LiteLLM's Python client adds, so queries written
	// for LiteLLM (rate(litellm_requests_metric_total[5m])) work unchanged.
	r.proxyTotal = counter("litellm_proxy_total_requests_metric_total", "Requests made to the proxy, by status code",
		labels([]string{"requested_model"}, "status_code"))
	r.proxyFailed = counter("litellm_proxy_failed_requests_metric_total", "Requests the proxy answered with an error",
		labels([]string{"requested_model"}, "exception_status", "exception_class"))
	r.requests = counter("litellm_requests_metric_total", "Successful LLM calls", labels([]string{"model"}))
	r.apiFailed = counter("litellm_llm_api_failed_requests_metric_total", "LLM calls that failed at the upstream", labels([]string{"model"}))
	r.spend = counter("litellm_spend_metric_total", "Spend in USD", labels([]string{"model"}))
	r.overrun = counter("litellm_budget_overrun_metric_total", "LLM calls that cost more than their reservation (budget_overrun)", labels([]string{"model"}))
	r.totalTokens = counter("litellm_total_tokens_total", "Input plus output tokens", labels([]string{"model", "requested_model"}))
	r.inputTokens = counter("litellm_input_tokens_metric_total", "Input (prompt) tokens", labels([]string{"model", "requested_model"}))
	r.outputTokens = counter("litellm_output_tokens_metric_total", "Output (completion) tokens", labels([]string{"model", "requested_model"}))
	r.totalLatency = histogram("litellm_request_total_latency_metric", "Whole request latency in seconds")
	r.llmLatency = histogram("litellm_llm_api_latency_metric", "Latency of the answering upstream call in seconds")
	r.keyRemaining = gauge("litellm_remaining_api_key_budget_metric", "Key budget left in USD after its last call", "hashed_api_key", "api_key_alias")
	r.keyMax = gauge("litellm_api_key_max_budget_metric", "Key max budget in USD", "hashed_api_key", "api_key_alias")
	r.teamRemaining = gauge("litellm_remaining_team_budget_metric", "Team budget left in USD after its last call", "team", "team_alias")
	r.teamMax = gauge("litellm_team_max_budget_metric", "Team max budget in USD", "team", "team_alias")
	dep := []string{"litellm_model_name", "model_id", "api_base", "api_provider"}
	r.depState = gauge("litellm_deployment_state", "0 healthy, 1 partial outage (last call failed), 2 complete outage (cooled down)", dep...)
	depReq := append(append([]string{}, dep...), "requested_model")
	r.depTotal = counter("litellm_deployment_total_requests_total", "Upstream calls of a deployment", depReq)
	r.depSuccess = counter("litellm_deployment_success_responses_total", "Successful upstream calls of a deployment", depReq)
	r.depFailure = counter("litellm_deployment_failure_responses_total", "Failed upstream calls of a deployment",
		append(append([]string{}, depReq...), "exception_status"))
	r.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return r
}

// Handler serves the series in the Prometheus text format.
func (r *Recorder) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{})
}

// Call records one LLM request.
func (r *Recorder) Call(c metrics.Call) {
	w := c.Who
	key := []string{w.HashedKey, w.KeyAlias, w.Team, w.TeamAlias, w.User}
	with := func(first ...string) []string { return append(first, key...) }
	status := strconv.Itoa(c.Status)
	r.proxyTotal.WithLabelValues(append(with(c.RequestedModel), status)...).Inc()
	if !c.Success() {
		r.proxyFailed.WithLabelValues(append(with(c.RequestedModel), status, c.ErrorType)...).Inc()
	}
	if c.UpstreamFailed {
		r.apiFailed.WithLabelValues(with(c.Model)...).Inc()
	}
	if c.Success() {
		r.requests.WithLabelValues(with(c.Model)...).Inc()
	}
	if c.Overrun {
		r.overrun.WithLabelValues(with(c.Model)...).Inc()
	}
	if c.Cost != 0 {
		r.spend.WithLabelValues(with(c.Model)...).Add(c.Cost)
	}
	if tokens := c.PromptTokens + c.CompletionTokens; tokens > 0 {
		r.totalTokens.WithLabelValues(with(c.Model, c.RequestedModel)...).Add(float64(tokens))
		r.inputTokens.WithLabelValues(with(c.Model, c.RequestedModel)...).Add(float64(c.PromptTokens))
		r.outputTokens.WithLabelValues(with(c.Model, c.RequestedModel)...).Add(float64(c.CompletionTokens))
	}
	lat := []string{c.Model, c.RequestedModel, w.Team, w.TeamAlias}
	r.totalLatency.WithLabelValues(lat...).Observe(c.Total.Seconds())
	if c.LLM > 0 {
		r.llmLatency.WithLabelValues(lat...).Observe(c.LLM.Seconds())
	}
	if w.HashedKey != "" && w.KeyMaxBudget != nil {
		r.keyMax.WithLabelValues(w.HashedKey, w.KeyAlias).Set(*w.KeyMaxBudget)
		r.keyRemaining.WithLabelValues(w.HashedKey, w.KeyAlias).Set(*w.KeyMaxBudget - w.KeySpend - c.Cost)
	}
	if w.Team != "" && w.TeamMaxBudget != nil {
		r.teamMax.WithLabelValues(w.Team, w.TeamAlias).Set(*w.TeamMaxBudget)
		r.teamRemaining.WithLabelValues(w.Team, w.TeamAlias).Set(*w.TeamMaxBudget - w.TeamSpend - c.Cost)
	}
}

// Attempt records one upstream call of a deployment.
func (r *Recorder) Attempt(a metrics.Attempt) {
	dep := []string{a.UpstreamModel, a.ModelID, a.APIBase, a.Provider}
	r.depState.WithLabelValues(dep...).Set(float64(a.State))
	req := append(dep, a.RequestedModel)
	r.depTotal.WithLabelValues(req...).Inc()
	if a.Failed {
		status := ""
		if a.Status != 0 {
			status = strconv.Itoa(a.Status)
		}
		r.depFailure.WithLabelValues(append(req, status)...).Inc()
		return
	}
	r.depSuccess.WithLabelValues(req...).Inc()
}
