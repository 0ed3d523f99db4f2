package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/dynamoproxy"
	"github.com/llmgate/llmgate/internal/fakeopenai"
	"github.com/llmgate/llmgate/internal/store"
)

// TestRateLimits_ExactThroughTheGateway: 50 simultaneous chat calls on a key with one rate
// limit, through the whole gateway, on a DynamoDB that fails 20 % of its calls with
// transaction conflicts and throttles (dynamoproxy), as AWS does under contention. The fake upstream holds every call that reaches it
// until each of the 50 has either reached it or been refused, so no call settles (and frees
// a lease or held tokens) while the others are admitted. Exactly the calls the limit allows
// reach the upstream; every other one gets LiteLLM's 429 with retry-after. Once the held
// calls have settled, a call that only the settle makes room for is admitted.
func TestRateLimits_ExactThroughTheGateway(t *testing.T) {
	const calls = 50
	// Every call asks for at most 1,000 completion tokens: its worst case is its prompt
	// (a few tokens) plus 1,000, so a tpm_limit of 3,500 holds exactly 3 calls.
	const body = `{"model":"chat","messages":[{"role":"user","content":"Hello"}],"max_tokens":1000}`
	tests := []struct {
		name      string
		team      string // POST /team/new parameters; "" for a key without a team
		key       string // POST /key/generate parameters (team_id is added)
		want      int
		limitType string
		header    string // a response header each admitted call carries
		freedBy   bool   // settling the admitted calls makes room for another call
	}{
		{"key rpm_limit", "", `{"rpm_limit":10}`, 10, "requests", "x-ratelimit-limit-requests", false},
		{"key tpm_limit", "", `{"tpm_limit":3500}`, 3, "tokens", "x-ratelimit-limit-tokens", true},
		{"key max_parallel_requests", "", `{"max_parallel_requests":3}`, 3, "max_parallel_requests", "x-ratelimit-api_key-limit-max_parallel_requests", true},
		{"team tpm_limit", `{"tpm_limit":3500}`, `{}`, 3, "tokens", "x-litellm-key-spend", true},
	}
	t.Parallel()
	// The cases run one after another: 200 simultaneous reservations on DynamoDB Local under
	// -race can outlast the 3 s reserve budget, and a fail-closed 503 is not what this tests.
	// A case makes a few dozen DynamoDB requests, so 20 % of them may by chance include no
	// conflict: the kinds of faults injected are checked over all the cases.
	injected := map[dynamoproxy.Fault]int64{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var refused atomic.Int64
			release := make(chan struct{})
			var up *fakeopenai.Server
			up = fakeopenai.Start(fakeopenai.Options{OnRequest: func() { <-release }})
			t.Cleanup(up.Close)
			var once sync.Once
			open := func() { once.Do(func() { close(release) }) }
			t.Cleanup(open)
			// The upstream holds calls for as long as the others take to be admitted or
			// refused: far longer than the tests' 1 s deployment timeout on a busy machine.
			cfg := strings.ReplaceAll(configYAML([]deployment{{"chat", "chat-1", up.BaseURL}}, ""), "timeout: 1\n", "timeout: 60\n")
			g, faults := startFaultyGateway(t, cfg)
			params := tc.key
			if tc.team != "" {
				params = `{"team_id":"` + g.newTeam(t, tc.team) + `"}`
			}
			key, token := g.generateKey(t, params)
			faults.SetRate(faultRate)
			waitForMinuteStart(t) // rpm and tpm windows are clock minutes: keep the calls in one

			type answer struct {
				status int
				header http.Header
				body   []byte
			}
			answers := make([]answer, calls)
			var wg sync.WaitGroup
			for i := range calls {
				wg.Go(func() {
					status, h, b, err := g.do(context.Background(), http.MethodPost, "/v1/chat/completions", key, body)
					if err != nil {
						t.Errorf("call %d: %v", i, err)
					}
					answers[i] = answer{status, h, b}
					if status != http.StatusOK {
						refused.Add(1)
					}
				})
			}
			// Open the gate once every call has reached the upstream or been refused (or
			// after 30 s, when the counts below fail the test).
			if !eventually(30*time.Second, func() bool { return up.Requests()+refused.Load() >= calls }) {
				t.Errorf("after 30 s, %d calls reached the upstream and %d were refused, of %d", up.Requests(), refused.Load(), calls)
			}
			reached := up.Requests()
			open()
			wg.Wait()

			// A reservation that outlasts its 3 s budget (conflicts and throttles on a busy
			// machine) is refused with a 503 before the upstream; its slot may then stay held
			// until it is released, so each 503 may leave one admitted call fewer.
			unavailable := 0
			for _, a := range answers {
				if a.status == http.StatusServiceUnavailable {
					unavailable++
				}
			}
			if reached > int64(tc.want) || reached < int64(tc.want-unavailable) {
				t.Errorf("%d calls reached the upstream (%d answered 503), want exactly %d", reached, unavailable, tc.want)
			}
			ok := 0
			for i, a := range answers {
				switch a.status {
				case http.StatusServiceUnavailable:
					if e := decodeError(t, a.body); e.Error.Type != "service_unavailable_error" {
						t.Errorf("call %d: 503 of type %q, want service_unavailable_error", i, e.Error.Type)
					}
				case http.StatusOK:
					ok++
					if a.header.Get(tc.header) == "" {
						t.Errorf("call %d: admitted without the %s header", i, tc.header)
					}
				case http.StatusTooManyRequests:
					e := decodeError(t, a.body)
					if e.Error.Type != "throttling_error" || !strings.Contains(e.Error.Message, "Limit type: "+tc.limitType+".") ||
						a.header.Get("retry-after") == "" {
						t.Errorf("call %d: 429 %q %q, retry-after %q; want a throttling_error on %s with retry-after",
							i, e.Error.Type, e.Error.Message, a.header.Get("retry-after"), tc.limitType)
					}
				default:
					t.Errorf("call %d: status %d %s, want 200 or 429", i, a.status, a.body)
				}
			}
			if int64(ok) != reached {
				t.Errorf("%d calls answered 200, %d reached the upstream; want the same", ok, reached)
			}

			l := g.settledLedger(t, token, ok)
			l.checkReconciled(t)
			for f, n := range faults.Usage().Faults {
				injected[f] += n
			}
			status, _, b, err := g.do(context.Background(), http.MethodPost, "/v1/chat/completions", key, body)
			if err != nil {
				t.Fatal(err)
			}
			if tc.freedBy && status != http.StatusOK {
				t.Errorf("after the admitted calls settled: %d %s, want 200", status, b)
			}
			if !tc.freedBy && status != http.StatusTooManyRequests {
				t.Errorf("a call past the limit in the same minute: %d %s, want 429", status, b)
			}
		})
	}
	if injected[dynamoproxy.Conflict] == 0 || injected[dynamoproxy.Throughput]+injected[dynamoproxy.Throttling] == 0 {
		t.Errorf("faults injected: %v; want conflicts and throttles", injected)
	}
}

// newTeam creates a team through POST /team/new with params (JSON) and returns its id.
func (g *server) newTeam(t *testing.T, params string) string {
	t.Helper()
	status, _, body, err := g.do(context.Background(), http.MethodPost, "/team/new", masterKey, params)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /team/new %s: status %d, error %v: %s", params, status, err, body)
	}
	var out struct {
		TeamID string `json:"team_id"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.TeamID == "" {
		t.Fatalf("POST /team/new: no team_id in %s", body)
	}
	return out.TeamID
}

// waitForMinuteStart returns at once when at least 20 s of the current clock minute are left,
// else it sleeps into the next minute.
func waitForMinuteStart(t *testing.T) {
	t.Helper()
	now := time.Now()
	if left := now.Truncate(time.Minute).Add(time.Minute).Sub(now); left < 20*time.Second {
		time.Sleep(left + 100*time.Millisecond)
	}
}

// TestBudget_ExactUnderFaults: 40 simultaneous chat calls on a key whose budget pays for a
// few of them, through the whole gateway, on a DynamoDB that fails 20 % of its calls with
// conflicts and throttles. The fake upstream holds the admitted calls until every call has
// been admitted or refused, so each admitted call holds its reservation: the key's spend is
// then the admitted reservations, within the budget, with no room for one more; every other
// call gets the budget error (or a 503 before the upstream). Once all have settled the key's
// spend equals its spend logs and stays within the budget.
func TestBudget_ExactUnderFaults(t *testing.T) {
	t.Parallel()
	const calls = 40
	g, faults, up, open := gatedFaultyGateway(t, false)
	// A reservation is about 0.002 USD (1,000 output tokens at 0.000002): room for about 5.
	const budget = 0.0105
	key, token := g.generateKey(t, `{"max_budget": 0.0105}`)
	faults.SetRate(faultRate)

	var held ledger
	statuses, bodies, reached := burst(t, g, up, open, []string{key}, calls, func() { held = g.ledger(t, token) })
	if reached == 0 {
		t.Fatal("no call was admitted")
	}
	per := held.spend / float64(reached)
	if held.spend > budget+1e-12 || budget-held.spend >= per {
		t.Errorf("%d calls admitted holding %.10f of a %.4f budget (%.10f each); want the budget full to within one call", reached, held.spend, budget, per)
	}
	ok := countAnswers(t, statuses, bodies)
	if int64(ok) != reached {
		t.Errorf("%d calls answered 200, %d reached the upstream; want the same", ok, reached)
	}
	l := g.settledLedger(t, token, ok)
	l.checkReconciled(t)
	if l.spend > budget {
		t.Errorf("spend %.10f passed the budget %.4f", l.spend, budget)
	}
	if u := faults.Usage(); u.Faults[dynamoproxy.Conflict] == 0 || u.Faults[dynamoproxy.Throughput]+u.Faults[dynamoproxy.Throttling] == 0 {
		t.Errorf("faults injected: %v; want conflicts and throttles", u.Faults)
	}
}

// heldBody asks for at most 1,000 tokens: a reservation of about 0.002 USD on chat-1.
const heldBody = `{"model":"chat","messages":[{"role":"user","content":"Hello"}],"max_tokens":1000}`

// gatedFaultyGateway is a gateway behind the fault proxy whose upstream holds every call
// until open is called (the test's end opens it too), with a 60 s deployment timeout.
func gatedFaultyGateway(t *testing.T, split bool) (*server, *dynamoproxy.Proxy, *fakeopenai.Server, func()) {
	t.Helper()
	release := make(chan struct{})
	up := fakeopenai.Start(fakeopenai.Options{OnRequest: func() { <-release }})
	t.Cleanup(up.Close)
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	cfg := strings.ReplaceAll(configYAML([]deployment{{"chat", "chat-1", up.BaseURL}}, ""), "timeout: 1\n", "timeout: 60\n")
	if split {
		// Teams with budgets of $2 or more split into escrow shards ($1 each); calls 30
		// times dearer fill such a budget with fewer calls than the burst sends, and are
		// cheap enough to be charged on the shards.
		cfg = strings.ReplaceAll(cfg, fmt.Sprintf("output_cost_per_token: %g", outputPrice), fmt.Sprintf("output_cost_per_token: %g", 30*outputPrice))
		cfg = strings.ReplaceAll(cfg, fmt.Sprintf("input_cost_per_token: %g", inputPrice), fmt.Sprintf("input_cost_per_token: %g", 30*inputPrice))
		cfg += "llmgate_settings:\n  escrow_shards: 8\n"
	}
	g, faults := startFaultyGateway(t, cfg)
	return g, faults, up, open
}

// burst sends calls heldBody calls at once, the i-th with keys[i%len(keys)], to the gated
// upstream up: once every call reached it or was answered (so each admitted call holds its
// reservation), held runs, then open. It returns each call's status and body and how many
// calls reached the upstream.
func burst(t *testing.T, g *server, up *fakeopenai.Server, open func(), keys []string, calls int, held func()) ([]int, [][]byte, int64) {
	t.Helper()
	statuses := make([]int, calls)
	bodies := make([][]byte, calls)
	var answered atomic.Int64
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			status, _, b, err := g.do(context.Background(), http.MethodPost, "/v1/chat/completions", keys[i%len(keys)], heldBody)
			if err != nil {
				t.Errorf("call %d: %v", i, err)
			}
			statuses[i], bodies[i] = status, b
			answered.Add(1)
		})
	}
	if !eventually(30*time.Second, func() bool { return up.Requests()+answered.Load() >= int64(calls) }) {
		t.Errorf("after 30 s, %d calls reached the upstream and %d were answered, of %d", up.Requests(), answered.Load(), calls)
	}
	reached := up.Requests()
	held()
	open()
	wg.Wait()
	return statuses, bodies, reached
}

// countAnswers checks that every call was answered 200, a budget_exceeded 400 or a 503 (a
// refusal before the upstream), and returns how many were answered 200.
func countAnswers(t *testing.T, statuses []int, bodies [][]byte) int {
	t.Helper()
	ok := 0
	for i, st := range statuses {
		switch st {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
			if e := decodeError(t, bodies[i]); e.Error.Type != "budget_exceeded" {
				t.Errorf("call %d: 400 of type %q, want budget_exceeded", i, e.Error.Type)
			}
		case http.StatusServiceUnavailable:
			if e := decodeError(t, bodies[i]); e.Error.Type != "service_unavailable_error" {
				t.Errorf("call %d: 503 of type %q, want service_unavailable_error", i, e.Error.Type)
			}
		default:
			t.Errorf("call %d: status %d %s, want 200, 400 or 503", i, st, bodies[i])
		}
	}
	return ok
}

// TestBudget_TeamExactUnderFaults: 40 simultaneous calls on 4 keys of one user in a team
// whose budget pays for a few of them (the key's, user's and team's records are reserved and
// settled step by step, one single-item write each; for a team split into escrow shards,
// the team's charge is on a shard that borrows from the team record), at 20 % injected
// conflicts and throttles. While the admitted calls are held the team's spend is within its
// budget with no room for one more call; once all have settled the team's, the user's and
// each key's spend equal their spend logs exactly, and nothing stays reserved or held.
func TestBudget_TeamExactUnderFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		split  bool
		budget float64
		keys   int
	}{
		{"one team record", false, 0.0105, 4}, // about 5 reservations of 0.002
		// 2 shards; about 33 reservations of 0.064. 10 keys: a key record holds 4 calls in
		// flight, and a fifth is reserved in a transaction on the team record, not on a
		// shard (README, "Escrow shards").
		{"escrow shards", true, 2.1, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			teamExactUnderFaults(t, tc.split, tc.budget, tc.keys)
		})
	}
}

func teamExactUnderFaults(t *testing.T, split bool, budget float64, keys int) {
	const calls = 40
	g, faults, up, open := gatedFaultyGateway(t, split)
	ctx := context.Background()
	if status, _, b, err := g.do(ctx, http.MethodPost, "/user/new", masterKey, `{"user_id":"u-fault","max_budget":1000}`); err != nil || status != http.StatusOK {
		t.Fatalf("POST /user/new: %d %v %s", status, err, b)
	}
	team := g.newTeam(t, fmt.Sprintf(`{"max_budget":%g,"members_with_roles":[{"role":"user","user_id":"u-fault"}]}`, budget))
	if tm, err := g.reader.GetTeam(ctx, team); err != nil || (tm.EscrowShards > 1) != split {
		t.Fatalf("team %v split into %d escrow shards, want split %v", err, tm.EscrowShards, split)
	}
	var vkeys, tokens []string
	for range keys {
		k, tok := g.generateKey(t, `{"user_id":"u-fault","team_id":"`+team+`","max_budget":1000}`)
		vkeys, tokens = append(vkeys, k), append(tokens, tok)
	}
	faults.SetRate(faultRate)

	var held float64
	statuses, bodies, reached := burst(t, g, up, open, vkeys, calls, func() {
		tm, err := g.reader.GetTeam(ctx, team)
		if err != nil {
			t.Fatal(err)
		}
		held = tm.Spend
	})
	if reached == 0 {
		t.Fatal("no call was admitted")
	}
	// A call refused with a 503 (its reservation gave up under the faults, before the
	// upstream) may have held headroom for a while that a call refused meanwhile would have
	// had: the budget is then not full. Shards that borrow from the team record under
	// faults give up more often than one record does (more writes per refusal).
	unavailable := slices.Contains(statuses, http.StatusServiceUnavailable)
	t.Logf("%d calls admitted, %d refused with a 503", reached, countOf(statuses, http.StatusServiceUnavailable))
	per := held / float64(reached)
	if held > budget+1e-12 || budget-held >= per && !unavailable {
		t.Errorf("%d calls admitted holding %.10f of the team's %.4f budget (%.10f each); want it full to within one call", reached, held, budget, per)
	}
	ok := countAnswers(t, statuses, bodies)
	if int64(ok) != reached {
		t.Errorf("%d calls answered 200, %d reached the upstream; want the same", ok, reached)
	}
	// A 503 whose reservation could not be undone in time is released in the background:
	// wait for those releases too (the user's reservations), not only the settlements.
	var tm *store.Team
	var u *store.User
	var logs []store.SpendLog
	if !eventually(15*time.Second, func() bool {
		var err error
		if logs, err = g.reader.SpendLogs(ctx, store.SpendLogFilter{TeamID: team}); err != nil {
			t.Fatal(err)
		}
		if tm, err = g.reader.GetTeam(ctx, team); err != nil {
			t.Fatal(err)
		}
		if u, err = g.reader.GetUser(ctx, "u-fault"); err != nil {
			t.Fatal(err)
		}
		return len(logs) == ok && tm.Reserved == 0 && u.Reserved == 0
	}) {
		t.Fatalf("calls not settled after 15 s: team reserved %g, user reserved %g, %d spend logs; want 0, 0 and %d", tm.Reserved, u.Reserved, len(logs), ok)
	}
	sum := 0.0
	for _, l := range logs {
		sum += l.Spend
	}
	for name, got := range map[string]float64{"team": tm.Spend, "user": u.Spend} {
		if math.Abs(got-sum) > 1e-9 {
			t.Errorf("%s spend %.10f, spend logs add up to %.10f (%d logs); want equal", name, got, sum, len(logs))
		}
	}
	if tm.Spend > budget {
		t.Errorf("team spend %.10f of %.4f; want within the budget", tm.Spend, budget)
	}
	for _, tok := range tokens {
		g.ledger(t, tok).checkReconciled(t)
	}
	if u := faults.Usage(); u.Faults[dynamoproxy.Conflict] == 0 || u.Faults[dynamoproxy.Throughput]+u.Faults[dynamoproxy.Throttling] == 0 {
		t.Errorf("faults injected: %v; want conflicts and throttles", u.Faults)
	}
}

// countOf counts v in xs.
func countOf(xs []int, v int) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}
