package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/llmgate/llmgate/internal/metrics"
	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/pricing"
	"github.com/llmgate/llmgate/internal/provider"
)

// Result tells which deployment served a call, or failed it last.
type Result struct {
	// Deployment is nil when no deployment was tried (all cooled down).
	Deployment *Deployment
	// Model is the model group that answered: the route's, or a fallback's.
	Model string
	// Upstream is the litellm_params.model called, after wildcard substitution.
	Upstream string
	// Price is the deployment's price, to cost the call's usage with.
	Price pricing.Price
	// Attempts counts the upstream calls made, retries and fallbacks included.
	Attempts int
	// Retries counts the retries within the group that answered (or failed last), out of
	// MaxRetries it was allowed; Fallbacks counts the fallback groups tried.
	Retries, MaxRetries, Fallbacks int
	// Timeout is the timeout of the last attempt, as configured or requested.
	Timeout time.Duration
}

// attempt makes one call to one deployment with provider p, within timeout.
type attempt func(ctx context.Context, p provider.Provider, c *provider.Call, d *Deployment, timeout time.Duration) error

// Do makes a non-streaming call on the route, with retries and fallbacks. Errors are
// *openai.Error, or the context's error when ctx ended.
func (r *Router) Do(ctx context.Context, rt Route, c provider.Call) (*provider.Response, Result, error) {
	var resp *provider.Response
	res, err := r.route(ctx, rt, &c, false, func(ctx context.Context, p provider.Provider, c *provider.Call, d *Deployment, timeout time.Duration) error {
		actx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		d.inflight.Add(1)
		defer d.inflight.Add(-1)
		start := r.clock.Now()
		var err error
		if resp, err = p.Do(actx, c); err != nil {
			return r.classify(ctx, actx, err, d)
		}
		d.observeLatency(r.clock.Now().Sub(start))
		return nil
	})
	return resp, res, err
}

// Stream makes a streaming call on the route. Retries and fallbacks happen only before the
// first chunk: Stream returns once a deployment sent its first chunk (or ended without
// any), and that chunk is the first the returned stream yields. The stream's deadline
// (stream_timeout, else timeout) bounds the wait for the first chunk; after it the stream
// lives as long as ctx. The caller must Close the stream.
func (r *Router) Stream(ctx context.Context, rt Route, c provider.Call) (provider.Stream, Result, error) {
	var out *routedStream
	res, err := r.route(ctx, rt, &c, true, func(ctx context.Context, p provider.Provider, c *provider.Call, d *Deployment, timeout time.Duration) error {
		sctx, cancel := context.WithCancel(ctx)
		var timedOut bool
		var mu sync.Mutex
		timer := time.AfterFunc(timeout, func() {
			mu.Lock()
			timedOut = true
			mu.Unlock()
			cancel()
		})
		fail := func(err error) error {
			timer.Stop()
			cancel()
			mu.Lock()
			defer mu.Unlock()
			if timedOut && ctx.Err() == nil {
				return timeoutError(d)
			}
			return r.classify(ctx, sctx, err, d)
		}
		d.inflight.Add(1)
		start := r.clock.Now()
		s, err := p.Stream(sctx, c)
		if err != nil {
			d.inflight.Add(-1)
			return fail(err)
		}
		first, err := s.Next()
		if err != nil && !errors.Is(err, io.EOF) {
			_ = s.Close()
			d.inflight.Add(-1)
			return fail(err)
		}
		if !timer.Stop() { // the deadline passed as the first chunk came
			_ = s.Close()
			d.inflight.Add(-1)
			return fail(context.DeadlineExceeded)
		}
		d.observeLatency(r.clock.Now().Sub(start))
		out = &routedStream{Stream: s, first: first, eof: err != nil, done: func() { d.inflight.Add(-1); cancel() }}
		return nil
	})
	if err != nil {
		return nil, res, err
	}
	return out, res, nil
}

// routedStream yields the chunk the router read ahead, then the rest of the stream.
type routedStream struct {
	provider.Stream
	first     []byte
	eof       bool // the stream ended before any chunk
	firstDone bool
	once      sync.Once
	done      func()
}

func (s *routedStream) Next() ([]byte, error) {
	if !s.firstDone {
		s.firstDone = true
		if s.eof {
			return nil, io.EOF
		}
		return s.first, nil
	}
	return s.Stream.Next()
}

// Buffered reports whether Next returns without waiting for the upstream: the read-ahead
// chunk is still to come, or the provider's stream has its next chunk.
func (s *routedStream) Buffered() bool {
	if !s.firstDone {
		return true
	}
	b, ok := s.Stream.(provider.Buffered)
	return ok && b.Buffered()
}

func (s *routedStream) Close() error {
	err := s.Stream.Close()
	s.once.Do(s.done)
	return err
}

// route calls the route's group, then its fallbacks, and returns the first success or the
// group's own error.
func (r *Router) route(ctx context.Context, rt Route, c *provider.Call, stream bool, try attempt) (Result, error) {
	deadline := r.clock.Now().Add(r.timeout)
	var res Result
	err := r.tryGroup(ctx, rt, c, deadline, stream, try, &res)
	if err == nil || ctx.Err() != nil {
		return res, r.final(ctx, err)
	}
	if refused(err) || rt.pinned {
		return res, r.final(ctx, err)
	}
	names, configured := r.fallbacksFor(rt, err)
	for _, name := range names {
		frt, skip := r.fallbackRoute(rt, name, configured)
		if skip != "" {
			level := slog.LevelInfo
			if skip == skipNoGroup {
				level = slog.LevelWarn
			}
			r.log.Log(ctx, level, "fallback skipped", "model_group", rt.Model, "fallback", name, "reason", skip)
			continue
		}
		frt.Overrides, frt.MayUse = rt.Overrides.fallbackOverrides(), rt.MayUse
		r.log.Info("falling back", "model_group", rt.Model, "fallback", frt.Model)
		res.Fallbacks++
		ferr := r.tryGroup(ctx, frt, c, deadline, stream, try, &res)
		if ferr == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return res, r.final(ctx, err)
}

// fallbacksFor lists the groups to fall back to after err: context_window_fallbacks for
// a prompt that did not fit, else fallbacks (the request's own, else the group's, else the
// "*" default), except for errors that are the request's fault. configured is false for
// the request's own.
func (r *Router) fallbacksFor(rt Route, err error) (names []string, configured bool) {
	fallbacks, configured := r.lookupFallbacks(r.fallbacks, rt), true
	if rt.Overrides.Fallbacks != nil {
		fallbacks, configured = rt.Overrides.Fallbacks, false
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		return fallbacks, configured // no deployments available
	}
	if pe.ContextWindow {
		return r.lookupFallbacks(r.ctxFallbacks, rt), true
	}
	switch pe.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return nil, false
	}
	return fallbacks, configured
}

func (r *Router) lookupFallbacks(m map[string][]string, rt Route) []string {
	if fbs, ok := m[rt.Model]; ok {
		return fbs
	}
	if fbs, ok := m[rt.Group.Name]; ok {
		return fbs
	}
	return m["*"]
}

// tryGroup calls deployments of the route's group until one succeeds, making up to
// num_retries retries. A retry goes to a healthy deployment not tried yet if there is one,
// right away; otherwise it waits (the upstream's retry-after, else exponential backoff),
// unless the wait would pass the call's deadline.
func (r *Router) tryGroup(ctx context.Context, rt Route, c *provider.Call, deadline time.Time, stream bool, try attempt, res *Result) error {
	var buf [4]*Deployment
	tried := buf[:0]
	d, until := r.pick(rt.Group, tried)
	if d == nil {
		res.Model = rt.Model
		return noDeployments(rt.Model, until.Sub(r.clock.Now()))
	}
	var err error
	retries := r.numRetries(rt.Overrides)
	res.Retries, res.MaxRetries = 0, retries
	for n := 0; ; n++ {
		res.Model = rt.Model
		if err = r.tryDeployment(ctx, rt, d, c, deadline, stream, try, res); err == nil {
			return nil
		}
		var pe *provider.Error
		if !errors.As(err, &pe) || !pe.Retryable || n >= retries {
			return err
		}
		res.Retries++
		tried = append(tried, d)
		if d, _ = r.pick(rt.Group, tried); d == nil {
			return err
		}
		if contains(tried, d) {
			if r.backoff(ctx, n, pe, deadline) != nil {
				return err
			}
		}
	}
}

// tryDeployment calls d, retrying it up to its litellm_params.max_retries times.
func (r *Router) tryDeployment(ctx context.Context, rt Route, d *Deployment, c *provider.Call, deadline time.Time, stream bool, try attempt, res *Result) error {
	model := rt.model(d)
	res.Deployment, res.Upstream, res.Price = d, model, r.priceOf(rt, d)
	p, err := r.providerFor(c, d, model)
	if err != nil {
		return err
	}
	call := *c
	_, call.Model = provider.Split(model)
	call.Params = d.Config.LiteLLMParams
	call.Params.Model = model
	call.Reasoning, call.PDFInput = res.Price.Reasoning, res.Price.PDFInput
	timeout := d.timeout
	if stream && d.streamTimeout > 0 {
		timeout = d.streamTimeout
	}
	if rt.Overrides.Timeout > 0 {
		timeout = rt.Overrides.Timeout
	}
	res.Timeout = timeout
	if res.Timeout <= 0 {
		res.Timeout = r.timeout
	}
	maxRetries := d.maxRetries
	if rt.Overrides.NumRetries != nil {
		maxRetries = 0 // the request's num_retries is the call's whole retry budget
	}
	for n := 0; ; n++ {
		left := deadline.Sub(r.clock.Now())
		if left <= 0 {
			return timeoutError(d)
		}
		if timeout <= 0 || timeout > left {
			timeout = left
		}
		call.Timeout = timeout
		res.Attempts++
		err := mockFailure(ctx, rt.Overrides, c, d, timeout, res.Attempts == 1)
		if err == nil {
			err = try(ctx, p, &call, d, timeout)
		}
		if err == nil {
			r.observe(rt, d, model, nil)
			return nil
		}
		var pe *provider.Error
		if !errors.As(err, &pe) {
			return err
		}
		if !pe.Mocked {
			r.fail(d, len(rt.Group.Deployments), pe.Status)
			r.observe(rt, d, model, pe)
		}
		if !pe.Retryable || n >= maxRetries || r.backoff(ctx, n, pe, deadline) != nil {
			return err
		}
	}
}

// observe tells the metrics of one attempt of d: a success (pe nil) or a provider error.
func (r *Router) observe(rt Route, d *Deployment, model string, pe *provider.Error) {
	a := metrics.Attempt{RequestedModel: rt.Model, Model: d.Group, ModelID: d.ID, UpstreamModel: model, APIBase: d.APIBase()}
	a.Provider, _ = provider.Split(model)
	if pe != nil {
		a.Failed, a.Status, a.State = true, pe.Status, metrics.StatePartialOutage
		if down, _ := d.CooledDown(r.clock.Now()); down {
			a.State = metrics.StateOutage
		}
	}
	r.metrics.Attempt(a)
}

// providerFor is the provider that serves d: the mock provider when the deployment sets
// mock_response, or when the request does and may (see MockAllowed).
func (r *Router) providerFor(c *provider.Call, d *Deployment, model string) (provider.Provider, error) {
	prefix, _ := provider.Split(model)
	requested := c.Request != nil && c.Request.MockResponse != nil
	if requested {
		if err := MockAllowed(c, d, "mock_response"); err != nil {
			return nil, err
		}
	}
	if requested || d.Config.LiteLLMParams.MockResponse != "" {
		if r.mock == nil {
			return nil, &provider.Error{Status: http.StatusInternalServerError, Type: openai.TypeServer, Provider: "mock", Message: "mock_response: the mock provider is not available"}
		}
		return r.mock, nil
	}
	if d.provider != nil {
		return d.provider, nil
	}
	err := d.providerErr
	if err == nil { // a deployment whose provider prefix is a wildcard
		var p provider.Provider
		if p, err = r.providers.Lookup(prefix); err == nil {
			return p, nil
		}
	}
	return nil, &provider.Error{Status: http.StatusInternalServerError, Type: openai.TypeServer, Provider: prefix,
		Message: fmt.Sprintf("llmgate has no provider for %q (model_group %s): %v", prefix, d.Group, err)}
}

// MockAllowed returns nil when the request's testing field (mock_response or a
// mock_testing_* flag) may take effect on deployment d: d is a mock deployment (a "mock/"
// model or one with litellm_params.mock_response), or c.MockTesting (a proxy admin, or the
// operator allowed every key). Otherwise it returns the 403 to answer, marked Mocked so it
// never cools d down. A key may thus test against mock deployments but never fake a real
// upstream's answers or failures, which would cool it down for everyone else.
func MockAllowed(c *provider.Call, d *Deployment, field string) error {
	if c.MockTesting || d.IsMock() {
		return nil
	}
	return &provider.Error{Status: http.StatusForbidden, Type: openai.TypeAuth, Provider: "mock", Mocked: true, Param: field,
		Message: fmt.Sprintf("%s takes effect only on mock deployments or for a proxy admin; model group %s is not a mock deployment", field, d.Group)}
}

// backoff waits before retry n+1: the upstream's retry-after, else 0.5s·2ⁿ (at most 8s).
// It returns an error, without waiting, when the wait would pass the deadline.
func (r *Router) backoff(ctx context.Context, n int, pe *provider.Error, deadline time.Time) error {
	wait := pe.RetryAfter
	if wait <= 0 {
		wait = min(500*time.Millisecond<<min(n, 10), maxBackoff)
	}
	if r.clock.Now().Add(wait).After(deadline) {
		return context.DeadlineExceeded
	}
	return r.clock.Sleep(ctx, wait)
}

// classify turns an attempt's error into a *provider.Error the retry logic understands.
// actx is the attempt's context: its deadline passing (while ctx lives) is a timeout.
// The client's own cancellation is returned as ctx's error.
func (r *Router) classify(ctx, actx context.Context, err error, d *Deployment) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		return timeoutError(d)
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe
	}
	// A provider that did not classify its error. Its text may hold an upstream URL with a
	// key in its query, so neither the client nor the log sees it; only its kind.
	kind := fmt.Sprintf("%T", err)
	var ue *url.Error
	if errors.As(err, &ue) {
		kind = fmt.Sprintf("%s: %T", ue.Op, ue.Err)
	}
	r.log.Warn("upstream call failed", "deployment", d.ID, "model_group", d.Group, "error_kind", kind)
	return &provider.Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Message: "upstream call failed", Retryable: true}
}

func timeoutError(d *Deployment) *provider.Error {
	return &provider.Error{Status: http.StatusRequestTimeout, Type: openai.TypeTimeout, Retryable: true,
		Message: fmt.Sprintf("Request timed out: deployment %s of model group %s did not answer in time", d.ID, d.Group)}
}

// noDeployments is LiteLLM's answer when every deployment of a group is cooled down.
func noDeployments(model string, wait time.Duration) *openai.Error {
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	e := openai.Errorf(http.StatusTooManyRequests, openai.TypeRateLimit,
		fmt.Sprintf("No deployments available for selected model, Try again in %d seconds. Passed model=%s.", secs, model))
	e.Header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	return e
}

// final turns the error a call ended with into what the client sees.
func (r *Router) final(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		oe := pe.OpenAI()
		switch {
		case pe.ContextWindow:
			oe.Status, oe.Type, oe.Code = http.StatusBadRequest, openai.TypeInvalidRequest, "context_length_exceeded"
		case pe.Status == http.StatusRequestTimeout:
			oe.Type = openai.TypeTimeout
		}
		return oe
	}
	var oe *openai.Error
	if errors.As(err, &oe) {
		return oe
	}
	return openai.Errorf(http.StatusInternalServerError, openai.TypeServer, "internal server error")
}

// Check makes one call c on deployment d, as GET /health does: no retries, fallbacks or
// cooldowns, within d's timeout (the router's when d has none).
func (r *Router) Check(ctx context.Context, d *Deployment, c provider.Call) error {
	p, err := r.providerFor(&c, d, d.Model)
	if err != nil {
		return err
	}
	_, c.Model = provider.Split(d.Model)
	c.Params = d.Config.LiteLLMParams
	c.Timeout = d.timeout
	if c.Timeout <= 0 {
		c.Timeout = r.timeout
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	_, err = p.Do(ctx, &c)
	return err
}
