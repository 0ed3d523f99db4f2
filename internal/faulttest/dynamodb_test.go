package faulttest

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// outcome is one call of a load run.
type outcome struct {
	start, end time.Time
	status     int
	errType    string
}

// loadRun records the calls of a load run as they are answered.
type loadRun struct {
	mu  sync.Mutex
	out []outcome
}

// outcomes returns a copy of the calls answered so far.
func (r *loadRun) outcomes() []outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]outcome(nil), r.out...)
}

// answeredBetween counts the calls that started after from and were answered before to.
func (r *loadRun) answeredBetween(from, to time.Time) int {
	n := 0
	for _, o := range r.outcomes() {
		if o.start.After(from) && o.end.Before(to) {
			n++
		}
	}
	return n
}

// load sends chat calls from workers, each sending its next call 10 ms after the previous
// one is answered (refusals are fast; the pause keeps the load from starving the machine),
// until stop is closed, and returns when the last call is answered.
func (r *loadRun) load(g *server, key, model string, workers int, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				o := outcome{start: time.Now()}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				status, _, body, err := g.do(ctx, http.MethodPost, "/v1/chat/completions", key, chatBody(model, false))
				cancel()
				o.end, o.status = time.Now(), status
				if err != nil {
					o.errType = "transport: " + err.Error()
				} else if status != http.StatusOK {
					var e apiError
					_ = json.Unmarshal(body, &e)
					o.errType = e.Error.Type
				}
				r.mu.Lock()
				r.out = append(r.out, o)
				r.mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// TestDynamoDBOutage_FailsClosedAndRecovers stops DynamoDB Local under load. Every call
// made while it is down must be refused with 503 before it reaches the upstream (the key is
// in the auth cache, so only the budget check stands between the call and the upstream);
// calls succeed again once DynamoDB is back, without restarting llmgate; and afterwards the
// key's spend equals what its spend logs add up to, once the rotator has settled the
// reservations whose settle could not be written.
func TestDynamoDBOutage_FailsClosedAndRecovers(t *testing.T) {
	ddb := dynamotest.StartPrivate(t)
	up := fakeopenai.Start(fakeopenai.Options{})
	defer up.Close()
	g := startGateway(t, ddb.Endpoint, configYAML([]deployment{{"chat", "chat-1", up.BaseURL}}, ""))
	key, token := g.generateKey(t, `{"max_budget": 100, "rpm_limit": 1000000, "max_parallel_requests": 1000}`)
	for range 3 {
		if status, _, body, err := g.do(context.Background(), http.MethodPost, "/v1/chat/completions", key, chatBody("chat", false)); err != nil || status != http.StatusOK {
			t.Fatalf("warm-up call: status %d, error %v: %s", status, err, body)
		}
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	var run loadRun
	go func() { run.load(g, key, "chat", 4, stop); close(done) }()

	time.Sleep(300 * time.Millisecond)
	down := time.Now()
	ddb.Stop()
	// A call admitted just before the stop may still reach the upstream a moment later.
	const grace = 200 * time.Millisecond
	time.Sleep(grace)
	reachedAtGrace := up.Requests()
	// The outage lasts until several calls made during it have been answered, at least 2 s
	// and at most 30 s, so a slow machine still exercises it. Answers can be slow to come: a
	// refusal may wait out the reserve time budget (limits.DefaultReserveTimeout) while the
	// store retries, and a call admitted just before the stop settles for up to 10 s after
	// its answer, during which its HTTP/1.1 connection reads no next request.
	time.Sleep(2 * time.Second)
	eventually(30*time.Second, func() bool { return run.answeredBetween(down.Add(grace), time.Now()) >= 8 })
	reachedWhileDown := up.Requests() - reachedAtGrace
	back := time.Now()
	ddb.Start(t)

	recovered := eventually(20*time.Second, func() bool { return up.Requests() > reachedAtGrace+reachedWhileDown+5 })
	time.Sleep(300 * time.Millisecond)
	close(stop)
	<-done
	outcomes := run.outcomes()

	if reachedWhileDown != 0 {
		t.Errorf("%d calls reached the upstream while DynamoDB was down; want 0 (fail closed)", reachedWhileDown)
	}
	refused, servedAfter := 0, 0
	for _, o := range outcomes {
		switch {
		case o.start.After(down.Add(grace)) && o.end.Before(back):
			refused++
			if o.status != http.StatusServiceUnavailable || o.errType != "service_unavailable_error" {
				t.Errorf("call during the outage: status %d, type %q; want 503 service_unavailable_error", o.status, o.errType)
			}
		case o.start.After(back) && o.status == http.StatusOK:
			servedAfter++
		}
	}
	if refused == 0 {
		t.Errorf("no call started and ended during the %v outage; the test did not exercise it", back.Sub(down))
	}
	if !recovered || servedAfter == 0 {
		t.Errorf("after DynamoDB came back: %d calls served (upstream saw %d new requests); want llmgate to recover by itself",
			servedAfter, up.Requests()-reachedAtGrace)
	}

	// What the outage left reserved is the rotator's to settle once the reservations expire.
	ctx := context.Background()
	if _, err := g.app.Store.SettleStale(ctx, time.Now().Add(g.app.Config.Settings.ReservationTTL.Std()+time.Minute), 1000); err != nil {
		t.Fatalf("settle stale reservations: %v", err)
	}
	l := g.ledger(t, token)
	l.checkReconciled(t)
	ok := 0
	for _, o := range outcomes {
		if o.status == http.StatusOK {
			ok++
		}
	}
	if served := up.Completed(); int64(ok+3) > served {
		t.Errorf("clients got %d answers, the upstream served %d; every answer must come from the upstream", ok+3, served)
	}
	t.Logf("%d calls: %d refused during the outage, %d served after it; %d spend logs", len(outcomes), refused, servedAfter, len(l.logs))
}
