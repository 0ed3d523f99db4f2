package translate

import (
	"context"
	"sync/atomic"
	"time"
)

// Watchdog is a stream's idle timeout: it cancels the call's context once its timeout
// passes without Touch, so the timeout bounds each wait for the upstream (the answer's
// headers, then each event) rather than the whole stream, as the read timeout of LiteLLM's
// HTTP client does. A nil *Watchdog does nothing.
type Watchdog struct {
	name    string
	timeout time.Duration
	timer   *time.Timer // nil without a timeout
	cancel  context.CancelFunc
	fired   atomic.Bool
}

// NewWatchdog returns a copy of ctx that the returned watchdog cancels once timeout passes
// without Touch (timeout <= 0: never), or when it is stopped. name is the provider's, for
// its error.
func NewWatchdog(ctx context.Context, name string, timeout time.Duration) (context.Context, *Watchdog) {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watchdog{name: name, timeout: timeout, cancel: cancel}
	if timeout > 0 {
		w.timer = time.AfterFunc(timeout, func() {
			w.fired.Store(true)
			cancel()
		})
	}
	return ctx, w
}

// Touch records progress: the timeout starts again.
func (w *Watchdog) Touch() {
	if w != nil && w.timer != nil {
		w.timer.Reset(w.timeout)
	}
}

// Stop stops the timer and cancels the context, releasing the call.
func (w *Watchdog) Stop() {
	if w == nil {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.cancel()
}

// Explain returns the retryable 408 timeout error if the watchdog fired, since its
// cancellation is then what made the call fail with err (which would otherwise read as the
// caller's cancellation); else err.
func (w *Watchdog) Explain(err error) error {
	if w != nil && w.fired.Load() {
		return TransportError(w.name, context.DeadlineExceeded)
	}
	return err
}
