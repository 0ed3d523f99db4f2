package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgate/llmgate/internal/dynamoproxy"
	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// Per-partition write limit of DynamoDB (an item lives in one partition; so does each index
// partition key's entries, up to the partition's size).
const partitionWCU = 1000

// capacityResult is what one call consumes in DynamoDB, priced as DynamoDB bills it, per
// scenario; the capacity model built from it; and the team and one-key load runs.
type capacityResult struct {
	Scenarios []*scenarioCapacity `json:"scenarios"`
	Team      *teamLoad           `json:"team_load,omitempty"`
	Key       *teamLoad           `json:"key_load,omitempty"`
}

// scenarioCapacity is one kind of caller's calls, one at a time, priced per item.
type scenarioCapacity struct {
	Name       string     `json:"name"`
	Calls      int        `json:"calls"`
	WCUPerCall float64    `json:"wcu_per_call"`
	RCUPerCall float64    `json:"rcu_per_call"`
	Items      []itemCost `json:"items"`
	// Sustainable calls/s under the per-partition limit, and at half of it, for calls on one
	// key, on one team of teamKeys keys, and on a whole deployment; Bound names the item.
	Key, Team, Deployment sustain   `json:"-"`
	Model                 []sustain `json:"model"`
}

// itemCost is an item class's share of a call. Per item: the hottest item of the class.
type itemCost struct {
	Class         string  `json:"class"`
	Scope         string  `json:"scope"` // call, key, user, team, deployment
	WritesPerCall float64 `json:"writes_per_call"`
	WCUPerCall    float64 `json:"wcu_per_call"`      // all items of the class
	ItemWCU       float64 `json:"item_wcu_per_call"` // its hottest item (or index partition)
	Bytes         int     `json:"bytes"`
}

// sustain is the capacity model's answer for one shape of load.
type sustain struct {
	Load  string  `json:"load"`
	Limit float64 `json:"calls_per_second_at_limit"`
	Half  float64 `json:"calls_per_second_at_half"`
	Bound string  `json:"bound_by"`
}

// teamKeys is how many keys share a team in the model and the team load run.
const teamKeys = 1000

// classify names an item's class and the scope whose calls share it.
func classify(u *dynamoproxy.ItemUsage) (class, scope string) {
	if u.Index != "" {
		switch u.Index {
		case "by_key":
			return "index by_key (a key's spend logs)", "key"
		case "by_user":
			return "index by_user", "user"
		case "by_team":
			return "index by_team", "team"
		case "by_kind":
			return "index by_kind " + u.PK, "deployment"
		}
		return "index " + u.Index + " (shard " + u.PK + ")", "deployment"
	}
	if logDayShard(u.PK) {
		return "LOG#<day>#<shard> spend logs by day (partition)", "deployment"
	}
	head, rest, _ := strings.Cut(u.PK, "#")
	switch head {
	case "KEY":
		if strings.HasPrefix(u.SK, "KEY#E") {
			return "KEY# " + u.SK + " escrow shard", "key"
		}
		return "KEY# key record", "key"
	case "USER":
		return "USER# user record", "user"
	case "TEAM":
		if strings.HasPrefix(u.SK, "MEMBER#") {
			return "TEAM# MEMBER# membership", "user"
		}
		if strings.HasPrefix(u.SK, "TEAM#E") {
			return "TEAM# " + u.SK + " escrow shard", "team"
		}
		return "TEAM# team record", "team"
	case "RL":
		sc, _, _ := strings.Cut(rest, "#")
		scope := map[string]string{"api_key": "key", "model_per_key": "key", "user": "user", "team_member": "user", "team": "team", "model_per_team": "team"}[sc]
		return "RL#" + sc + " rate window", scope
	case "RES":
		return "RES# reservation", "call"
	case "LOG":
		return "LOG# spend log", "call"
	case "PROXY":
		return "PROXY#BUDGET", "deployment"
	}
	return head + "#", "deployment"
}

// logDayShard reports whether pk is a day's shard of spend logs, LOG#<UTC date>#<n>.
func logDayShard(pk string) bool {
	rest, ok := strings.CutPrefix(pk, "LOG#")
	day, _, sharded := strings.Cut(rest, "#")
	_, err := time.Parse(time.DateOnly, day)
	return ok && sharded && err == nil
}

// priced are the usages the capacity model prices: the table's items and the index
// partitions, but a day's shard of spend logs as its partition, which takes a deployment's
// logs / LogShards (each log item is written once).
func priced(u dynamoproxy.Usage) []map[string]*dynamoproxy.ItemUsage {
	items, days := map[string]*dynamoproxy.ItemUsage{}, map[string]*dynamoproxy.ItemUsage{}
	for k, it := range u.Items {
		if !logDayShard(it.PK) {
			items[k] = it
		}
	}
	for k, it := range u.Partitions {
		if logDayShard(it.PK) {
			days[k] = it
		}
	}
	return []map[string]*dynamoproxy.ItemUsage{items, days, u.IndexKeys}
}

// capacitySection runs the priced scenarios and the load runs the options ask for.
func (e *environment) capacitySection(ctx context.Context) (*capacityResult, error) {
	res := &capacityResult{}
	if n := e.opts.capacityN; n > 0 {
		c, err := e.capacity(ctx, n)
		if err != nil {
			return nil, err
		}
		res = c
	}
	if o := e.opts; o.teamKeys > 0 {
		fmt.Fprintf(os.Stderr, "bench: team load run (%d keys)\n", o.teamKeys)
		tl, err := e.teamLoadRun(ctx, o.teamKeys, o.teamCalls, o.teamConc, o.teamFaults, o.teamBudget)
		if err != nil {
			return res, fmt.Errorf("team load run: %w", err)
		}
		res.Team = tl
	}
	if o := e.opts; o.keyCalls > 0 {
		fmt.Fprintf(os.Stderr, "bench: one-key load run (%d calls at concurrency %d, upstream latency %v)\n", o.keyCalls, o.keyConc, o.keyLatency)
		kl, err := e.keyLoadRun(ctx, o.keyCalls, o.keyConc, o.keyFaults, o.keyBudget, o.keyLatency)
		if err != nil {
			return res, fmt.Errorf("one-key load run: %w", err)
		}
		res.Key = kl
	}
	return res, nil
}

// price turns a priced run of calls into per-call costs by item class, and the model.
func price(name string, u dynamoproxy.Usage, calls int) *scenarioCapacity {
	sc := &scenarioCapacity{Name: name, Calls: calls, WCUPerCall: u.WCU / float64(calls), RCUPerCall: u.RCU / float64(calls)}
	by := map[string]*itemCost{}
	add := func(m map[string]*dynamoproxy.ItemUsage) {
		for _, it := range m {
			if it.Writes == 0 {
				continue
			}
			class, scope := classify(it)
			c := by[class]
			if c == nil {
				c = &itemCost{Class: class, Scope: scope}
				by[class] = c
			}
			c.WritesPerCall += float64(it.Writes) / float64(calls)
			c.WCUPerCall += it.WCU / float64(calls)
			if w := it.WCU / float64(calls); w > c.ItemWCU {
				c.ItemWCU, c.Bytes = w, it.Bytes
			}
		}
	}
	for _, m := range priced(u) {
		add(m)
	}
	for _, c := range by {
		sc.Items = append(sc.Items, *c)
	}
	sort.Slice(sc.Items, func(i, j int) bool { return sc.Items[i].WCUPerCall > sc.Items[j].WCUPerCall })
	// share is the fraction of a load's calls that land on one item of a scope.
	model := func(load string, share map[string]float64) sustain {
		s := sustain{Load: load, Limit: math.Inf(1)}
		for _, c := range sc.Items {
			f, ok := share[c.Scope]
			if !ok || c.ItemWCU == 0 {
				continue
			}
			if r := partitionWCU / (c.ItemWCU * f); r < s.Limit {
				s.Limit, s.Bound = r, c.Class
			}
		}
		if math.IsInf(s.Limit, 1) {
			s.Limit = 0 // no item shared by the load's calls: unbounded (JSON has no infinity)
		}
		s.Half = s.Limit / 2
		return s
	}
	sc.Model = []sustain{
		model("one key", map[string]float64{"key": 1, "user": 1, "team": 1, "deployment": 1}),
		model(fmt.Sprintf("one team of %d keys", teamKeys), map[string]float64{"key": 1.0 / teamKeys, "user": 1.0 / teamKeys, "team": 1, "deployment": 1}),
		model("deployment (many teams)", map[string]float64{"deployment": 1}),
	}
	return sc
}

// capacity prices each scenario's calls: cmd/llmgate on a pricing dynamoproxy, n calls one at
// a time after a warm-up, counted once every settle has been written.
func (e *environment) capacity(ctx context.Context, n int) (*capacityResult, error) {
	res := &capacityResult{}
	full, err := e.gateway(ctx, "capacity-full", "general_settings:\n  master_key: "+masterKey+"\n", dynamoproxy.Options{Price: true})
	if err != nil {
		return nil, err
	}
	defer full.close()
	admin := &adminClient{base: full.base}
	key, err := admin.key(ctx, `{"models":["bench"],"max_budget":1000000,"rpm_limit":10000000,"tpm_limit":10000000000,"max_parallel_requests":100000}`)
	if err != nil {
		return nil, err
	}
	if _, err := admin.do(ctx, "/user/new", `{"user_id":"bench-user","max_budget":1000000}`); err != nil {
		return nil, err
	}
	if _, err := admin.do(ctx, "/team/new", `{"team_id":"bench-team","max_budget":1000000,"members_with_roles":[{"user_id":"bench-user","role":"user"}]}`); err != nil {
		return nil, err
	}
	teamKey, err := admin.key(ctx, `{"models":["bench"],"user_id":"bench-user","team_id":"bench-team","max_budget":1000000,"rpm_limit":10000000,"tpm_limit":10000000000,"max_parallel_requests":100000}`)
	if err != nil {
		return nil, err
	}
	// A team's rpm and tpm count in one rate-window item per minute (RL#team#<id>#<minute>),
	// written in the call's transaction: the model shows what that item bounds.
	if _, err := admin.do(ctx, "/team/new", `{"team_id":"bench-team-rl","rpm_limit":10000000,"tpm_limit":10000000000}`); err != nil {
		return nil, err
	}
	rateKey, err := admin.key(ctx, `{"models":["bench"],"team_id":"bench-team-rl","max_budget":1000000}`)
	if err != nil {
		return nil, err
	}
	off, err := e.gateway(ctx, "capacity-authoff", "", dynamoproxy.Options{Price: true})
	if err != nil {
		return nil, err
	}
	defer off.close()
	for _, s := range []struct {
		name, key string
		g         *llmgateProc
		route     string
		body      []byte
	}{
		{"key (budget, rpm, tpm, parallel)", key, full, "/chat/completions", chatBody},
		{"key + user + team budgets", teamKey, full, "/chat/completions", chatBody},
		{"key + user + team, Responses API", teamKey, full, "/responses", responsesBody},
		{"key + team rpm and tpm limits", rateKey, full, "/chat/completions", chatBody},
		{"master key", masterKey, full, "/chat/completions", chatBody},
		{"auth off", "", off, "/chat/completions", chatBody},
	} {
		sc, err := s.g.priceCalls(ctx, s.name, s.key, s.route, s.body, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		res.Scenarios = append(res.Scenarios, sc)
	}
	return res, nil
}

// llmgateProc is cmd/llmgate on its own table behind a dynamoproxy.
type llmgateProc struct {
	base   string
	config string // the config file it runs on
	proxy  *dynamoproxy.Proxy
	proc   *process
}

func (g *llmgateProc) close() {
	g.proc.stop()
	g.proxy.Close()
}

// gateway builds cmd/llmgate (once) and starts it on a generated config plus extra YAML, on
// its own table behind a dynamoproxy with options o, in front of the fake upstream.
func (e *environment) gateway(ctx context.Context, name, extra string, o dynamoproxy.Options) (*llmgateProc, error) {
	return e.gatewayOn(ctx, e.upstream.BaseURL, name, extra, o)
}

// gatewayOn is gateway in front of the upstream at base URL up.
func (e *environment) gatewayOn(ctx context.Context, up, name, extra string, o dynamoproxy.Options) (*llmgateProc, error) {
	o.Target = os.Getenv("LLMGATE_DYNAMODB_ENDPOINT")
	if o.Target == "" {
		return nil, errors.New("LLMGATE_DYNAMODB_ENDPOINT is not set (run make bench, or scripts/with-dynamodb.sh go run ./bench)")
	}
	binary, err := e.binary(ctx, "./cmd/llmgate")
	if err != nil {
		return nil, err
	}
	p, err := dynamoproxy.Start(o)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(e.tmp, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(llmgateConfig(up)+extra), 0o600); err != nil {
		p.Close()
		return nil, fmt.Errorf("write config: %w", err)
	}
	port, err := freePort()
	if err != nil {
		p.Close()
		return nil, err
	}
	cmd := exec.Command(binary, "--config", cfgPath, "--port", fmt.Sprint(port))
	cmd.Env = append(cleanEnv(), "LLMGATE_DYNAMODB_ENDPOINT="+p.URL(), "LLMGATE_TABLE="+uniqueName("bench-"+name))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	proc, err := startProcess(ctx, name, e.tmp, base+"/health/liveliness", cmd)
	if err != nil {
		p.Close()
		return nil, err
	}
	return &llmgateProc{base: base, config: cfgPath, proxy: p, proc: proc}, nil
}

// priceCalls sends n calls with key one at a time (after 5 warm-ups that fill the auth
// cache) and prices what they wrote once the writes have stopped.
func (g *llmgateProc) priceCalls(ctx context.Context, name, key, route string, body []byte, n int) (*scenarioCapacity, error) {
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	c := newClient(g.base+"/v1", h)
	c.url = g.base + "/v1" + route
	defer c.close()
	for range 5 {
		if s := c.do(ctx, body, time.Now()); s.err != nil {
			return nil, fmt.Errorf("warm-up: %w", s.err)
		}
	}
	quiet(g.proxy)
	g.proxy.Reset()
	for range n {
		if s := c.do(ctx, body, time.Now()); s.err != nil {
			return nil, s.err
		}
	}
	quiet(g.proxy)
	return price(name, g.proxy.Usage(), n), nil
}

// quiet waits until the proxy has seen no request for 100 ms (at most 5 s): llmgate settles
// after it answers.
func quiet(p *dynamoproxy.Proxy) {
	total := func() int64 {
		var t int64
		for _, v := range p.Usage().Calls {
			t += v
		}
		return t
	}
	last, since := total(), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if t := total(); t != last {
			last, since = t, time.Now()
		} else if time.Since(since) >= 100*time.Millisecond {
			return
		}
	}
}

// adminClient calls the management API with the master key.
type adminClient struct{ base string }

func (a *adminClient) do(ctx context.Context, path, body string) ([]byte, error) {
	method := http.MethodPost
	if body == "" {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+masterKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: status %d: %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

func (a *adminClient) key(ctx context.Context, params string) (string, error) {
	b, err := a.do(ctx, "/key/generate", params)
	if err != nil {
		return "", err
	}
	var out struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Key == "" {
		return "", fmt.Errorf("/key/generate: no key in %s", b)
	}
	return out.Key, nil
}

// spend is the spend of the record an info endpoint (path) answers with under field.
func (a *adminClient) spend(ctx context.Context, path, field string) (float64, error) {
	b, err := a.do(ctx, path, "")
	if err != nil {
		return 0, err
	}
	var info map[string]json.RawMessage
	var rec struct {
		Spend float64 `json:"spend"`
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := json.Unmarshal(info[field], &rec); err != nil {
		return 0, fmt.Errorf("%s %s: %w", path, field, err)
	}
	return rec.Spend, nil
}

// teamLoad is a load scenario of calls under one budget through a pricing proxy that also
// injects faults: many keys under one team budget (the team load run), or one key's budget
// (the one-key load run: Scope "key", Keys 1, Budget and Spend the key's).
type teamLoad struct {
	Scope      string  `json:"scope"`
	Keys       int     `json:"keys"`
	Calls      int     `json:"calls"`
	OK         int     `json:"ok"`
	Refused    int     `json:"refused_budget"`
	Unavail    int     `json:"unavailable"`
	Other      int     `json:"other_errors"`
	FaultRate  float64 `json:"fault_rate"`
	Faults     map[dynamoproxy.Fault]int64
	WCUPerCall float64 `json:"wcu_per_call"`
	// Spilled counts the RES# items written: calls whose key record or key escrow shard held
	// 4 entries already (held reservations, README "Escrow shards").
	Spilled int     `json:"spilled"`
	RPS     float64 `json:"calls_per_second"`
	// Hottest items: measured peak WCU/s at this run's rate, and WCU/s scaled to 2,000 calls/s
	// (an item's WCU per call × 2,000 × the share of calls that reach it).
	Hot    []hotItem `json:"hot_items"`
	Budget float64   `json:"max_budget"`
	// EscrowShards is llmgate_settings.escrow_shards in the team run (the team gets one
	// shard per $1 of max_budget up to it), the shards the calls wrote in the one-key run
	// (one per $1 of the key's max_budget up to that setting and 32).
	EscrowShards int     `json:"escrow_shards"`
	Spend        float64 `json:"spend"`
	// Latency is the fake upstream's latency in the one-key run: how long calls stay in
	// flight.
	Latency     string  `json:"upstream_latency,omitempty"`
	ElapsedSecs float64 `json:"elapsed_seconds"`
}

type hotItem struct {
	Item      string  `json:"item"`
	Scope     string  `json:"scope"`
	PeakWCU   float64 `json:"peak_wcu_per_second"`
	At2000WCU float64 `json:"wcu_per_second_at_2000_calls_per_second"`
}

// teamLoadRun: keys keys in one team with a budget the load exhausts, calls spread over them
// at concurrency conc, with faults injected at rate.
func (e *environment) teamLoadRun(ctx context.Context, keys, calls, conc int, rate, budget float64) (*teamLoad, error) {
	cfg := fmt.Sprintf("general_settings:\n  master_key: %s\nllmgate_settings:\n  escrow_shards: %d\n", masterKey, e.opts.teamEscrow)
	g, err := e.gateway(ctx, "teamload", cfg, dynamoproxy.Options{Price: true})
	if err != nil {
		return nil, err
	}
	defer g.close()
	admin := &adminClient{base: g.base}
	if _, err := admin.do(ctx, "/team/new", fmt.Sprintf(`{"team_id":"load-team","max_budget":%g}`, budget)); err != nil {
		return nil, err
	}
	ks := make([]string, keys)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < keys; i = int(next.Add(1)) - 1 {
				k, err := admin.key(ctx, `{"models":["bench"],"team_id":"load-team","max_budget":1000,"rpm_limit":1000000,"tpm_limit":1000000000,"max_parallel_requests":1000}`)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ks[i] = k
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return nil, *p
	}
	tl := &teamLoad{Scope: "team", Keys: keys, Calls: calls, FaultRate: rate, Budget: budget, EscrowShards: e.opts.teamEscrow}
	if err := g.loadRun(ctx, tl, ks, conc); err != nil {
		return nil, err
	}
	tl.Spend, err = admin.spend(ctx, "/team/info?team_id=load-team", "team_info")
	return tl, err
}

// keyLoadRun: one key whose budget is its only limit (so it is split into escrow shards),
// calls at concurrency conc held in flight for latency by an upstream of their own, with
// faults injected at rate.
func (e *environment) keyLoadRun(ctx context.Context, calls, conc int, rate, budget float64, latency time.Duration) (*teamLoad, error) {
	up := fakeopenai.Start(fakeopenai.Options{Latency: latency})
	defer up.Close()
	cfg := fmt.Sprintf("general_settings:\n  master_key: %s\nllmgate_settings:\n  escrow_shards: %d\n", masterKey, e.opts.teamEscrow)
	g, err := e.gatewayOn(ctx, up.BaseURL, "keyload", cfg, dynamoproxy.Options{Price: true})
	if err != nil {
		return nil, err
	}
	defer g.close()
	admin := &adminClient{base: g.base}
	key, err := admin.key(ctx, fmt.Sprintf(`{"models":["bench"],"max_budget":%g}`, budget))
	if err != nil {
		return nil, err
	}
	tl := &teamLoad{Scope: "key", Keys: 1, Calls: calls, FaultRate: rate, Budget: budget, Latency: latency.String()}
	if err := g.loadRun(ctx, tl, []string{key}, conc); err != nil {
		return nil, err
	}
	for _, it := range g.proxy.Usage().Items {
		if strings.HasPrefix(it.SK, "KEY#E") {
			tl.EscrowShards++ // the shards the calls wrote
		}
	}
	tl.Spend, err = admin.spend(ctx, "/key/info?key="+key, "info")
	return tl, err
}

// loadRun sends tl.Calls calls spread over keys at concurrency conc with faults injected at
// tl.FaultRate, and fills in tl the answers, faults, WCU per call and the hottest items (the
// bank, the team or key record, always among them).
func (g *llmgateProc) loadRun(ctx context.Context, tl *teamLoad, keys []string, conc int) error {
	quiet(g.proxy)
	g.proxy.Reset()
	g.proxy.SetRate(tl.FaultRate)
	clients := make([]*client, len(keys))
	for i, k := range keys {
		clients[i] = &client{url: g.base + "/v1/chat/completions", header: http.Header{"Authorization": {"Bearer " + k}}, hc: http.DefaultClient}
	}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < tl.Calls; i = int(next.Add(1)) - 1 {
				s := clients[i%len(keys)].do(ctx, chatBody, time.Now())
				mu.Lock()
				switch {
				case s.err == nil:
					tl.OK++
				case strings.Contains(s.err.Error(), "status 400"):
					tl.Refused++
				case strings.Contains(s.err.Error(), "status 503"):
					tl.Unavail++
				default:
					tl.Other++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	tl.ElapsedSecs = time.Since(start).Seconds()
	tl.RPS = float64(tl.Calls) / tl.ElapsedSecs
	quiet(g.proxy)
	g.proxy.SetRate(0)
	u := g.proxy.Usage()
	tl.Faults = u.Faults
	tl.WCUPerCall = u.WCU / float64(tl.Calls)
	// An item's WCU per call of the run already holds its share of the calls (a key's
	// 1/keys, the team's all), the same share as at 2,000 calls/s over as many keys.
	hot := func(it *dynamoproxy.ItemUsage) {
		class, scope := classify(it)
		tl.Hot = append(tl.Hot, hotItem{Item: class, Scope: scope, PeakWCU: it.PeakWCU, At2000WCU: it.WCU / float64(tl.Calls) * 2000})
	}
	for _, it := range u.Items {
		if strings.HasPrefix(it.PK, "RES#") {
			tl.Spilled++
		}
	}
	isBank := func(it *dynamoproxy.ItemUsage) bool { return it.Index == "" && it.SK == strings.ToUpper(tl.Scope) }
	bank := false
	for _, m := range priced(u) {
		for _, it := range dynamoproxy.Sorted(m)[:min(6, len(m))] {
			hot(it)
			bank = bank || isBank(it)
		}
	}
	for _, it := range u.Items {
		if !bank && isBank(it) {
			hot(it)
		}
	}
	return nil
}
