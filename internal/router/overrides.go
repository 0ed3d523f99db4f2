package router

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/llmgate/llmgate/internal/openai"
	"github.com/llmgate/llmgate/internal/provider"
)

// Overrides are a request's own routing settings: LiteLLM's per-request num_retries,
// timeout (or the x-litellm-timeout header), fallbacks, and its mock_testing_* flags for
// testing retries, fallbacks and timeouts. The mock flags take effect only where
// MockAllowed lets them.
type Overrides struct {
	// NumRetries replaces router_settings.num_retries for the call (and turns off the
	// deployments' own max_retries); it can lower the retries, never raise them.
	NumRetries *int
	// Timeout replaces the deployments' timeout for each attempt (0: theirs).
	Timeout time.Duration
	// Fallbacks are tried, in order, after the group fails, instead of the configured ones.
	Fallbacks []string
	// MockFallbacks fails the group's attempts, so the call goes to its fallbacks.
	MockFallbacks bool
	// MockRateLimit fails the call's first attempt with a 429, so it is retried.
	MockRateLimit bool
	// MockTimeout makes every attempt time out once its timeout has passed.
	MockTimeout bool
}

// numRetries is the call's retry budget of a group.
func (r *Router) numRetries(o Overrides) int {
	if o.NumRetries != nil {
		return max(min(*o.NumRetries, r.retries), 0)
	}
	return r.retries
}

// mockFailure is the failure a mock flag asks of this attempt on d, nil when none does.
// first says whether it is the call's first attempt. A flag that may not take effect on d
// is refused. (A fallback's route carries no MockFallbacks: only the requested group fails.)
func mockFailure(ctx context.Context, o Overrides, c *provider.Call, d *Deployment, timeout time.Duration, first bool) error {
	switch {
	case o.MockFallbacks:
		if err := MockAllowed(c, d, "mock_testing_fallbacks"); err != nil {
			return err
		}
		return &provider.Error{Status: http.StatusInternalServerError, Type: openai.TypeServer, Mocked: true,
			Message: "mock_testing_fallbacks: this deployment failed on request, to test fallbacks"}
	case o.MockRateLimit && first:
		if err := MockAllowed(c, d, "mock_testing_rate_limit_error"); err != nil {
			return err
		}
		return &provider.Error{Status: http.StatusTooManyRequests, Type: openai.TypeRateLimit, Mocked: true, Retryable: true,
			Message: "mock_testing_rate_limit_error: this attempt was rate limited on request, to test retries"}
	case o.MockTimeout:
		if err := MockAllowed(c, d, "mock_timeout"); err != nil {
			return err
		}
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		e := timeoutError(d)
		e.Mocked = true
		return e
	}
	return nil
}

// refused reports whether err is a mock flag MockAllowed refused: the answer to the request,
// never a reason to fall back.
func refused(err error) bool {
	var pe *provider.Error
	return errors.As(err, &pe) && pe.Mocked && pe.Status == http.StatusForbidden
}

// fallbackOverrides are the overrides a fallback's call runs with: the request's, except
// that the fallback does not fail on purpose nor fall back further.
func (o Overrides) fallbackOverrides() Overrides {
	o.MockFallbacks, o.Fallbacks = false, nil
	return o
}
