package translate

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/provider"
)

func TestWatchdog(t *testing.T) {
	boom := errors.New("boom")
	t.Run("silent for its timeout, it cancels and explains the failure as a timeout", func(t *testing.T) {
		ctx, w := NewWatchdog(context.Background(), "p", 20*time.Millisecond)
		defer w.Stop()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("not cancelled")
		}
		var pe *provider.Error
		if err := w.Explain(boom); !errors.As(err, &pe) || pe.Status != http.StatusRequestTimeout || !pe.Retryable {
			t.Errorf("Explain = %v, want the retryable 408", err)
		}
	})
	t.Run("touched, its timeout starts again", func(t *testing.T) {
		const timeout = 100 * time.Millisecond
		ctx, w := NewWatchdog(context.Background(), "p", timeout)
		defer w.Stop()
		for range 12 { // three timeouts in all
			time.Sleep(timeout / 4)
			w.Touch()
		}
		if ctx.Err() != nil || w.Explain(boom) != boom {
			t.Errorf("cancelled (%v) though touched more often than its timeout", ctx.Err())
		}
	})
	for _, timeout := range []time.Duration{0, time.Hour} {
		t.Run("stopped, it cancels without a timeout", func(t *testing.T) {
			ctx, w := NewWatchdog(context.Background(), "p", timeout)
			w.Stop()
			if ctx.Err() == nil || w.Explain(boom) != boom {
				t.Errorf("timeout %v: ctx.Err() = %v, Explain = %v; want cancelled and boom", timeout, ctx.Err(), w.Explain(boom))
			}
		})
	}
}

func TestStream_CloseStopsTheWatchdog(t *testing.T) {
	ctx, w := NewWatchdog(context.Background(), "p", time.Hour)
	s := NewStream("id", 1, "m", false, &scripted{}, nil, w)
	s.Close()
	if ctx.Err() == nil {
		t.Error("the call's context is still live after Close")
	}
}
