package router

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
)

// Deployment is one model_list entry and its health.
type Deployment struct {
	// ID is model_info.id, or a stable hash of the deployment's params when it has none.
	ID     string
	Group  string // model_name
	Model  string // litellm_params.model
	Config config.Deployment

	timeout, streamTimeout time.Duration // 0: the router's
	maxRetries             int
	price                  pricing.Price
	provider               provider.Provider
	providerErr            error
	stored                 bool // stored in DynamoDB (/model/new), not in config.yaml

	inflight atomic.Int64

	mu            sync.Mutex
	fails         int       // failures since failsSince
	failsSince    time.Time // start of the current failure window
	cooldownUntil time.Time
	latency       time.Duration // EWMA of latency (time to first chunk for streams)
	hasLatency    bool
}

func newDeployment(dc config.Deployment, routerTimeout time.Duration) *Deployment {
	lp := dc.LiteLLMParams
	d := &Deployment{ID: dc.ModelInfo.ID, Group: dc.ModelName, Model: lp.Model, Config: dc}
	d.timeout = seconds(lp.Timeout)
	d.streamTimeout = seconds(lp.StreamTimeout)
	if lp.MaxRetries != nil {
		d.maxRetries = *lp.MaxRetries
	}
	return d
}

// Stored reports whether the deployment was added with /model/new, not by config.yaml.
func (d *Deployment) Stored() bool { return d.stored }

// Price is what the deployment charges (zero for a wildcard deployment, priced per call).
func (d *Deployment) Price() pricing.Price { return d.price }

// IsMock reports whether the mock provider answers every call of d: a "mock/" model, or
// litellm_params.mock_response set by the operator.
func (d *Deployment) IsMock() bool {
	prefix, _ := provider.Split(d.Model)
	return prefix == "mock" || d.Config.LiteLLMParams.MockResponse != ""
}

// APIBase is the deployment's api_base without its query, which may carry a key.
func (d *Deployment) APIBase() string {
	b := d.Config.LiteLLMParams.APIBase
	if i := strings.IndexAny(b, "?#"); i >= 0 {
		return b[:i]
	}
	return b
}

// InFlight is the number of calls the deployment is serving.
func (d *Deployment) InFlight() int64 { return d.inflight.Load() }

// CooledDown reports whether the deployment is skipped until the returned time.
func (d *Deployment) CooledDown(now time.Time) (bool, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return now.Before(d.cooldownUntil), d.cooldownUntil
}

// latencyWeight is how much a new sample moves the latency average.
const latencyWeight = 0.3

func (d *Deployment) observeLatency(l time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.hasLatency {
		d.latency, d.hasLatency = l, true
		return
	}
	d.latency = time.Duration(latencyWeight*float64(l) + (1-latencyWeight)*float64(d.latency))
}

// Latency is the deployment's average latency (time to first chunk for streams), and
// whether it has been measured.
func (d *Deployment) Latency() (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.latency, d.hasLatency
}

// cooldownWorthy reports whether a failure with this status counts toward a cooldown, as
// in LiteLLM: 401, 404, 408, 429 and 5xx do; other 4xx are the request's fault.
func cooldownWorthy(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusNotFound, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// fail records a failure of d in a group of groupSize deployments and cools d down when
// it should be: at once after a 429 or 401, or when its failures within a minute exceed
// allowed_fails. As in LiteLLM, the only deployment of a group is never cooled down.
func (r *Router) fail(d *Deployment, groupSize int, status int) {
	if groupSize < 2 || !cooldownWorthy(status) {
		return
	}
	now := r.clock.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if now.Sub(d.failsSince) >= failWindow {
		d.fails, d.failsSince = 0, now
	}
	d.fails++
	if status == http.StatusTooManyRequests || status == http.StatusUnauthorized || d.fails > r.allowedFails {
		d.cooldownUntil = now.Add(r.cooldown)
		d.fails = 0
		r.log.Warn("deployment cooled down", "deployment", d.ID, "model_group", d.Group, "status", status, "cooldown_s", r.cooldown.Seconds())
	}
}

// weightBy is what simple-shuffle weighs deployments by.
type weightBy int

const (
	byNothing weightBy = iota
	byWeight
	byRPM
	byTPM
)

// weighting picks, as LiteLLM does, weight if any deployment sets it, else rpm, else tpm.
func weighting(ds []*Deployment) weightBy {
	by := byNothing
	for _, d := range ds {
		lp := d.Config.LiteLLMParams
		switch {
		case lp.Weight > 0:
			return byWeight
		case lp.RPM > 0:
			by = byRPM
		case lp.TPM > 0 && by == byNothing:
			by = byTPM
		}
	}
	return by
}

func (by weightBy) of(d *Deployment) float64 {
	lp := d.Config.LiteLLMParams
	switch by {
	case byWeight:
		return lp.Weight
	case byRPM:
		return float64(lp.RPM)
	case byTPM:
		return float64(lp.TPM)
	}
	return 1
}

// pick chooses the next deployment of g: among the healthy deployments not yet tried in
// this call, else among all healthy ones. It returns nil when every deployment is cooled
// down, with the earliest time one comes back.
func (r *Router) pick(g *Group, tried []*Deployment) (*Deployment, time.Time) {
	now := r.clock.Now()
	var buf [8]*Deployment
	healthy := buf[:0]
	var soonest time.Time
	for _, d := range g.Deployments {
		if cooled, until := d.CooledDown(now); cooled {
			if soonest.IsZero() || until.Before(soonest) {
				soonest = until
			}
			continue
		}
		healthy = append(healthy, d)
	}
	if len(healthy) == 0 {
		return nil, soonest
	}
	var fbuf [8]*Deployment
	fresh := fbuf[:0]
	for _, d := range healthy {
		if !contains(tried, d) {
			fresh = append(fresh, d)
		}
	}
	if len(fresh) > 0 {
		healthy = fresh
	}
	if len(healthy) == 1 {
		return healthy[0], time.Time{}
	}
	switch r.strategy {
	case LeastBusy:
		return r.lowest(healthy, func(d *Deployment) float64 { return float64(d.InFlight()) }), time.Time{}
	case LatencyBased:
		// Unmeasured deployments score 0, so each is tried before the averages decide.
		return r.lowest(healthy, func(d *Deployment) float64 { l, _ := d.Latency(); return float64(l) }), time.Time{}
	}
	return r.shuffle(healthy, g.by), time.Time{}
}

// shuffle picks at random, weighted as the group says (uniform when all weights are 0).
func (r *Router) shuffle(ds []*Deployment, by weightBy) *Deployment {
	total := 0.0
	for _, d := range ds {
		total += by.of(d)
	}
	if total <= 0 {
		return ds[int(r.rand()*float64(len(ds)))]
	}
	x := r.rand() * total
	for _, d := range ds {
		if x -= by.of(d); x < 0 {
			return d
		}
	}
	return ds[len(ds)-1]
}

// lowest picks the deployment with the lowest score, ties broken at random.
func (r *Router) lowest(ds []*Deployment, score func(*Deployment) float64) *Deployment {
	var buf [8]*Deployment
	best := buf[:0]
	bestScore := 0.0
	for _, d := range ds {
		s := score(d)
		switch {
		case len(best) == 0 || s < bestScore:
			best, bestScore = append(best[:0], d), s
		case s == bestScore:
			best = append(best, d)
		}
	}
	return best[int(r.rand()*float64(len(best)))]
}

func contains(ds []*Deployment, d *Deployment) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}
