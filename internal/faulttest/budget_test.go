package faulttest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issue 13: the budget promise against an untrusted key holder. Each test fails on the code
// before the reservation bound (see /work/notes/budget.md).

// billingUpstream is an OpenAI-compatible upstream whose answer depends on the model it is
// asked for (the deployment's litellm_params.model):
//   - "honest": usage within the providers' rules (prompt ≤ the body's bytes / 2,
//     completion = max_tokens), streams end with a usage chunk;
//   - "nousage": the same answer without usage;
//   - "negusage" / "hugeusage": prompt_tokens -1000000 / 1e308;
//   - "overcount": a usage within the call's token bound that costs more than its
//     reservation (every token of the bound but one reported as output);
//   - "down": 500, so the router falls back.
func billingUpstream(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			Model     string `json:"model"`
			Stream    bool   `json:"stream"`
			MaxTokens int    `json:"max_tokens"`
		}
		_ = json.Unmarshal(body, &req)
		if req.Model == "down" {
			http.Error(w, `{"error":{"message":"down","type":"server_error"}}`, http.StatusInternalServerError)
			return
		}
		out := max(req.MaxTokens, 1)
		usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, len(body)/2, out, len(body)/2+out)
		switch req.Model {
		case "nousage":
			usage = ""
		case "negusage":
			usage = `{"prompt_tokens":-1000000,"completion_tokens":1,"total_tokens":-999999}`
		case "hugeusage":
			usage = `{"prompt_tokens":1e308,"completion_tokens":1,"total_tokens":1e308}`
		case "overcount":
			usage = fmt.Sprintf(`{"prompt_tokens":1,"completion_tokens":%d,"total_tokens":%d}`, len(body)+out, len(body)+out+1)
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"id":"c1","object":"chat.completion","created":1,"model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]`, req.Model)
			if usage != "" {
				fmt.Fprintf(w, `,"usage":%s`, usage)
			}
			fmt.Fprint(w, "}")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := range 8 {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t%d \"}}]}\n\n", i)
			fl.Flush()
		}
		if usage != "" {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":%s}\n\n", usage)
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

// budgetConfig has a cheap group per upstream behaviour, "tofallback" that falls back to the
// 10× dearer "dear", and "unpriced" with no price at all.
func budgetConfig(apiBase, extra string) string {
	var b strings.Builder
	b.WriteString("model_list:\n")
	dep := func(group, model string, in, out float64) {
		fmt.Fprintf(&b, "  - model_name: %s\n    litellm_params:\n      model: openai/%s\n      api_base: %s\n      api_key: sk-fake\n      timeout: 5\n", group, model, apiBase)
		if in >= 0 {
			fmt.Fprintf(&b, "    model_info:\n      input_cost_per_token: %g\n      output_cost_per_token: %g\n", in, out)
		}
	}
	for _, m := range []string{"honest", "nousage", "negusage", "hugeusage", "overcount"} {
		dep(m, m, inputPrice, outputPrice)
	}
	dep("tofallback", "down", inputPrice, outputPrice)
	dep("dear", "honest", 10*inputPrice, 10*outputPrice)
	dep("unpriced", "my-finetune-xyz", -1, -1)
	fmt.Fprintf(&b, "router_settings:\n  num_retries: 0\n  fallbacks: [{\"tofallback\": [\"dear\"]}]\ngeneral_settings:\n  master_key: %s\n%s", masterKey, extra)
	return b.String()
}

// budgetFixture is a gateway on budgetConfig with a key that belongs to a user and a team,
// each with the same budget.
type budgetFixture struct {
	g          *server
	key, token string
	user, team string
	budget     float64
}

// newBudgetFixture starts the gateway (endpoint "" for the shared DynamoDB Local, else a
// fault proxy's URL, as startGateway takes it) and creates the user, team and key.
func newBudgetFixture(t *testing.T, endpoint string, budget float64) *budgetFixture {
	t.Helper()
	return budgetFixtureOn(t, startGateway(t, endpoint, budgetConfig(billingUpstream(t), "")), budget)
}

// budgetFixtureOn creates the user, team and key on a gateway started on budgetConfig.
func budgetFixtureOn(t *testing.T, g *server, budget float64) *budgetFixture {
	t.Helper()
	f := &budgetFixture{g: g, budget: budget, user: "u-budget", team: "t-budget"}
	f.admin(t, "/user/new", fmt.Sprintf(`{"user_id":%q,"max_budget":%g}`, f.user, budget))
	f.admin(t, "/team/new", fmt.Sprintf(`{"team_id":%q,"max_budget":%g,"members_with_roles":[{"role":"user","user_id":%q}]}`, f.team, budget, f.user))
	f.key, f.token = g.generateKey(t, fmt.Sprintf(`{"user_id":%q,"team_id":%q,"max_budget":%g}`, f.user, f.team, budget))
	return f
}

func (f *budgetFixture) admin(t *testing.T, path, body string) {
	t.Helper()
	status, _, out, err := f.g.do(context.Background(), http.MethodPost, path, masterKey, body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST %s %s: %d %v %s", path, body, status, err, out)
	}
}

func (f *budgetFixture) chat(t *testing.T, body string) (int, []byte) {
	t.Helper()
	status, _, out, err := f.g.do(context.Background(), http.MethodPost, "/v1/chat/completions", f.key, body)
	if err != nil {
		t.Fatal(err)
	}
	return status, out
}

// spends are the spend of the key, its user and its team, and the sum of the key's logs.
func (f *budgetFixture) spends(t *testing.T, logs int) (key, user, team, logSum float64) {
	t.Helper()
	l := f.g.settledLedger(t, f.token, logs)
	u, err := f.g.reader.GetUser(context.Background(), f.user)
	if err != nil {
		t.Fatal(err)
	}
	tm, err := f.g.reader.GetTeam(context.Background(), f.team)
	if err != nil {
		t.Fatal(err)
	}
	return l.spend, u.Spend, tm.Spend, l.logSum
}

func TestBudget_KeysThatDifferOnlyInCaseAreRefused(t *testing.T) {
	f := newBudgetFixture(t, "", 1)
	for _, body := range []string{
		`{"model":"honest","messages":[{"role":"user","content":"hi"}],"max_tokens":4000,"MAX_TOKENS":1}`,
		`{"model":"honest","messages":[{"role":"user","content":"hi"}],"max_tokens":1,"max_tokens":4000}`,
		`{"model":"honest","Messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}],"messages":[],"max_tokens":1}`,
		`{"model":"honest","messages":[],"MAX_TOKENS":1}`,
	} {
		status, out := f.chat(t, body)
		if e := decodeError(t, out); status != http.StatusBadRequest || e.Error.Param == nil {
			t.Errorf("%.80s: %d %s, want a 400 naming the key", body, status, out)
		}
	}
	if k, _, _, _ := f.spends(t, 0); k != 0 {
		t.Errorf("spend %g after refused calls, want 0", k)
	}
}

func TestBudget_HugeToolSchemaIsReservedAtItsSize(t *testing.T) {
	// $0.02 pays for 20,000 input tokens: a 200 KB tool schema with max_tokens 10 does not fit.
	f := newBudgetFixture(t, "", 0.02)
	schema := `{"type":"object","description":"` + strings.Repeat("a", 200_000) + `"}`
	body := `{"model":"honest","messages":[{"role":"user","content":"hi"}],"max_tokens":10,"tools":[{"type":"function","function":{"name":"f","parameters":` + schema + `}}]}`
	status, out := f.chat(t, body)
	if e := decodeError(t, out); status != http.StatusBadRequest || e.Error.Type != "budget_exceeded" {
		t.Errorf("%d %s, want a 400 budget_exceeded before the call", status, out)
	}
	if k, _, _, _ := f.spends(t, 0); k != 0 {
		t.Errorf("spend %g, want 0", k)
	}
}

func TestBudget_UsageMissingOrOutOfRangeIsChargedTheReservation(t *testing.T) {
	f := newBudgetFixture(t, "", 1)
	body := func(model string) string {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hello"}],"max_tokens":100}`
	}
	for _, m := range []string{"nousage", "negusage", "hugeusage"} {
		if status, out := f.chat(t, body(m)); status != http.StatusOK {
			t.Fatalf("%s: %d %s", m, status, out)
		}
	}
	key, user, team, logSum := f.spends(t, 3)
	// Each call's reservation: its prompt bound (body bytes + 64) at the input price plus 100
	// completion tokens at the output price.
	var want float64
	for _, m := range []string{"nousage", "negusage", "hugeusage"} {
		want += float64(len(body(m))+64)*inputPrice + 100*outputPrice
	}
	for name, got := range map[string]float64{"key": key, "user": user, "team": team, "spend logs": logSum} {
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s spend %.10f, want the three reservations %.10f", name, got, want)
		}
	}
}

// TestBudget_OverrunIsChargedAsReportedAndCounted: a provider that reports more than the
// bound allows (here: output tokens beyond max_tokens, within the total) is charged what it
// reported, never silently: an error line and the budget_overrun metric say so.
func TestBudget_OverrunIsChargedAsReportedAndCounted(t *testing.T) {
	f := newBudgetFixture(t, "", 1)
	body := `{"model":"overcount","messages":[{"role":"user","content":"` + strings.Repeat("x", 500) + `"}],"max_tokens":10}`
	if status, out := f.chat(t, body); status != http.StatusOK {
		t.Fatalf("%d %s", status, out)
	}
	if status, out := f.chat(t, chatBody("honest", false)); status != http.StatusOK {
		t.Fatalf("honest call: %d %s", status, out)
	}
	reservation := float64(len(body)+64)*inputPrice + 10*outputPrice
	overrun := inputPrice + float64(len(body)+10)*outputPrice // the upstream reads the body as sent
	key, _, _, logSum := f.spends(t, 2)
	honest := key - overrun
	if overrun <= reservation || honest <= 0 || honest > reservation || math.Abs(key-logSum) > 1e-12 {
		t.Errorf("spend %.10f (logs %.10f), want the reported %.10f (above the reservation %.10f) plus an honest call's",
			key, logSum, overrun, reservation)
	}
	if lines := f.g.logLines(t, "budget_overrun"); len(lines) != 1 || lines[0]["level"] != "ERROR" {
		t.Errorf("budget_overrun log lines %v, want one at error level", lines)
	}
	for model, want := range map[string]float64{"overcount": 1, "honest": 0} {
		if got := f.g.counter(t, "litellm_budget_overrun_metric_total", map[string]string{"model": model, "hashed_api_key": f.token}); got != want {
			t.Errorf("litellm_budget_overrun_metric_total{model=%q} = %v, want %v", model, got, want)
		}
	}
}

// TestBudget_RefusedCallsAreFreeAndTheLogSaysWhy: a call refused before its reservation
// (a malformed body, an unpriced model, a bound above the budget) costs nothing, writes no
// spend log, and its request log line carries the refusal's type and message.
func TestBudget_RefusedCallsAreFreeAndTheLogSaysWhy(t *testing.T) {
	f := newBudgetFixture(t, "", 0.0001)
	cases := []struct{ body, errType, reason string }{
		{`{"model":"honest","messages":[],"max_tokens":1,"MAX_TOKENS":9}`, "invalid_request_error", "differ only in case"},
		{`{"model":"unpriced","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`, "invalid_request_error", "my-finetune-xyz"},
		{`{"model":"honest","messages":[{"role":"user","content":"hi"}],"max_tokens":100000}`, "budget_exceeded", "udget"},
	}
	for _, tc := range cases {
		status, out := f.chat(t, tc.body)
		if e := decodeError(t, out); status != http.StatusBadRequest || e.Error.Type != tc.errType {
			t.Fatalf("%s: %d %s, want a 400 %s", tc.body, status, out, tc.errType)
		}
	}
	if l := f.g.ledger(t, f.token); l.spend != 0 || l.reserved != 0 || len(l.logs) != 0 {
		t.Errorf("spend %g, reserved %g, %d spend logs after refused calls; want none", l.spend, l.reserved, len(l.logs))
	}
	var lines []map[string]any
	eventually(2*time.Second, func() bool { lines = f.g.logLines(t, "llm request"); return len(lines) == len(cases) })
	if len(lines) != len(cases) {
		t.Fatalf("%d request log lines, want %d", len(lines), len(cases))
	}
	for _, tc := range cases {
		found := false
		for _, l := range lines {
			found = found || l["status"] == 400.0 && l["cost"] == 0.0 && l["error_type"] == tc.errType && strings.Contains(fmt.Sprint(l["error"]), tc.reason)
		}
		if !found {
			t.Errorf("no request log line with status 400, cost 0, error_type %s and an error naming %q in %v", tc.errType, tc.reason, lines)
		}
	}
}

func TestBudget_FallbackToADearerGroupIsReservedAndPricedThere(t *testing.T) {
	body := `{"model":"tofallback","messages":[{"role":"user","content":"hello"}],"max_tokens":100}`
	dearReservation := float64(len(body)+64)*10*inputPrice + 100*10*outputPrice
	// A budget the cheap group's reservation fits but the dear one's does not.
	f := newBudgetFixture(t, "", dearReservation*0.9)
	if status, out := f.chat(t, body); status != http.StatusBadRequest {
		t.Errorf("%d %s, want a 400: the fallback's price does not fit", status, out)
	}
	f2 := newBudgetFixture(t, "", 1)
	status, out := f2.chat(t, body)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, out)
	}
	key, _, _, _ := f2.spends(t, 1)
	// The dear deployment answered with usage prompt = len(forwarded body)/2 and 100 out.
	if key < 100*10*outputPrice {
		t.Errorf("spend %.10f, want at least the dear group's price for 100 output tokens", key)
	}
}

func TestBudget_UnpricedModelIsRefusedUnderABudget(t *testing.T) {
	f := newBudgetFixture(t, "", 1)
	status, out := f.chat(t, `{"model":"unpriced","messages":[{"role":"user","content":"hello"}],"max_tokens":10}`)
	e := decodeError(t, out)
	if status != http.StatusBadRequest || !strings.Contains(e.Error.Message, "my-finetune-xyz") || !strings.Contains(e.Error.Message, "input_cost_per_token") {
		t.Errorf("%d %s, want a 400 naming the model and how to price it", status, out)
	}
}

// TestBudget_MemberBudgetSetOnAnotherInstanceBindsAtOnce: a member budget set through
// another instance's /team/member_update, after this instance cached the key with no member
// budget, bounds the very next calls (the reservation transaction checks the membership
// item, whatever the cache says).
func TestBudget_MemberBudgetSetOnAnotherInstanceBindsAtOnce(t *testing.T) {
	g := startGateway(t, "", budgetConfig(billingUpstream(t), "llmgate_settings:\n  auth_cache_ttl: 1h\n"))
	f := budgetFixtureOn(t, g, 1)
	body := `{"model":"honest","messages":[{"role":"user","content":"hello"}],"max_tokens":100}`
	if status, out := f.chat(t, body); status != http.StatusOK {
		t.Fatalf("first call (caches the key): %d %s", status, out)
	}
	reservation := float64(len(body)+64)*inputPrice + 100*outputPrice
	memberBudget := 2.5 * reservation
	other := g.another(t)
	status, _, out, err := other.do(context.Background(), http.MethodPost, "/team/member_update", masterKey,
		fmt.Sprintf(`{"team_id":%q,"user_id":%q,"max_budget_in_team":%g}`, f.team, f.user, memberBudget))
	if err != nil || status != http.StatusOK {
		t.Fatalf("member_update on the other instance: %d %v %s", status, err, out)
	}
	admitted, refused := 0, 0
	for range 5 {
		status, out := f.chat(t, body)
		if status == http.StatusOK {
			admitted++
			continue
		}
		if e := decodeError(t, out); status != http.StatusBadRequest || e.Error.Type != "budget_exceeded" {
			t.Fatalf("%d %s, want 200 or a budget refusal", status, out)
		}
		refused++
	}
	f.spends(t, 1+admitted) // every call settled
	m, err := g.reader.GetMembership(context.Background(), f.team, f.user)
	if err != nil {
		t.Fatal(err)
	}
	if refused == 0 || m.Spend > memberBudget || m.Spend == 0 {
		t.Errorf("%d of 5 calls admitted, member spend %.10f of budget %.10f: want calls refused once the member budget is reserved, and the admitted ones charged to it",
			admitted, m.Spend, memberBudget)
	}
}

// TestBudget_AdversarialConcurrency: 40 calls at once on a budget worth 5 normal calls, mixing
// huge tool schemas, case-duplicate keys, streams cut at random points, answers without
// usage, fallbacks to a dearer group and out-of-range usages. Spend never passes the budget on
// the key, the user or the team, and the spend logs add up to each exactly. The ledger helper
// (issue 15) runs runAdversarialMix behind its DynamoDB fault proxy too.
func TestBudget_AdversarialConcurrency(t *testing.T) {
	normal := float64(len(chatBody("honest", false))+64)*inputPrice + 64*outputPrice
	f := newBudgetFixture(t, "", 5*normal)
	runAdversarialMix(t, f, 40)
}

// runAdversarialMix sends n adversarial calls at once through f and checks the ledger.
func runAdversarialMix(t *testing.T, f *budgetFixture, n int) {
	t.Helper()
	big := `"tools":[{"type":"function","function":{"name":"f","parameters":{"description":"` + strings.Repeat("b", 100_000) + `"}}}]`
	bodies := []string{
		chatBody("honest", false),
		chatBody("honest", true),
		`{"model":"honest","messages":[{"role":"user","content":"hi"}],"max_tokens":10,` + big + `}`,
		`{"model":"honest","messages":[{"role":"user","content":"hi"}],"max_tokens":4000,"MAX_TOKENS":1}`,
		chatBody("nousage", false),
		chatBody("nousage", true),
		chatBody("tofallback", false),
		chatBody("negusage", false),
		chatBody("hugeusage", true),
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range n {
		body := bodies[i%len(bodies)]
		cut := rand.IntN(3) == 0 && strings.Contains(body, `"stream":true`)
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.g.srv.URL+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+f.key)
			resp, err := f.g.hc.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
			if cut { // leave after a random number of lines
				r := bufio.NewReader(resp.Body)
				for range rand.IntN(6) {
					if _, err := r.ReadString('\n'); err != nil {
						break
					}
				}
				cancel()
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
		})
	}
	wg.Wait()
	key, user, team, logSum := f.spends(t, admitted)
	for name, got := range map[string]float64{"key": key, "user": user, "team": team} {
		if got > f.budget+1e-12 {
			t.Errorf("%s spend %.10f passed the budget %.10f", name, got, f.budget)
		}
		if math.Abs(got-logSum) > 1e-9 {
			t.Errorf("%s spend %.10f, spend logs add up to %.10f", name, got, logSum)
		}
	}
	if admitted == 0 {
		t.Error("no call admitted: the mix tests nothing")
	}
	t.Logf("%d of %d admitted; spend %.6f of %.6f", admitted, n, key, f.budget)
}
