package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llmgate/llmgate/internal/dynamoproxy"
	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// masterKey is the master key of the full-path llmgate run.
const masterKey = "sk-bench-master-key"

// environment is what the targets share: the fake upstream, the llmgate binary, DynamoDB Local.
type environment struct {
	root, tmp string
	upstream  *fakeopenai.Server
	probe     *probeHook
	opts      options

	builds     sync.Map // package path → *build
	configPath string   // an auth-off config, for the allocation benchmark
}

// build is one binary the harness builds from this tree, once.
type build struct {
	once   sync.Once
	binary string
	err    error
}

// binary builds the main package pkg (once) into the temporary directory.
func (e *environment) binary(ctx context.Context, pkg string) (string, error) {
	v, _ := e.builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		b.binary = filepath.Join(e.tmp, filepath.Base(pkg))
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b.binary, pkg)
		cmd.Dir = e.root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	})
	return b.binary, b.err
}

// target is one way of reaching the fake upstream.
type target struct {
	client *client
	proc   *process  // the gateway process (nil for direct)
	ddb    *ddbProxy // DynamoDB counter (nil when the target does not use DynamoDB)
	stops  []func()
}

func (t *target) close() {
	t.client.close()
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
}

// measure sets up the named target, runs every load phase against it and tears it down.
func (e *environment) measure(ctx context.Context, name string) *targetResult {
	tr := &targetResult{Name: name}
	t, err := e.setup(ctx, name)
	if err != nil {
		tr.Error = err.Error()
		return tr
	}
	defer t.close()
	if err := e.load(ctx, t, tr); err != nil {
		tr.Error = err.Error()
	}
	return tr
}

func (e *environment) setup(ctx context.Context, name string) (*target, error) {
	switch name {
	case "direct":
		return &target{client: newClient(e.upstream.BaseURL, http.Header{"Authorization": {"Bearer sk-fake-upstream"}})}, nil
	case "llmgate":
		return e.llmgate(ctx, name, "")
	case "llmgate-nolog":
		return e.llmgate(ctx, name, "general_settings:\n  disable_spend_logs: true\n")
	case "llmgate-full":
		return e.llmgate(ctx, name, "general_settings:\n  master_key: "+masterKey+"\n")
	case "floor":
		return e.floor(ctx)
	case "portkey":
		return e.portkey(ctx)
	}
	return nil, fmt.Errorf("unknown target %q (direct, floor, llmgate, llmgate-nolog, llmgate-full, portkey)", name)
}

// llmgate builds cmd/llmgate (once) and starts it on a generated config plus extra YAML, its
// DynamoDB calls counted by a proxy in front of DynamoDB Local. With a master key in extra,
// the load uses a virtual key with a budget and rpm/tpm/parallel limits high enough not to
// refuse.
func (e *environment) llmgate(ctx context.Context, name, extra string) (*target, error) {
	g, err := e.gateway(ctx, name, extra, dynamoproxy.Options{})
	if err != nil {
		return nil, err
	}
	if name == "llmgate-nolog" || (name == "llmgate" && e.configPath == "") {
		e.configPath = g.config // the allocation benchmark's: auth off, preferably no spend logs
	}
	header := http.Header{}
	if strings.Contains(extra, "master_key") {
		key, err := (&adminClient{base: g.base}).key(ctx, `{"models":["bench"],"max_budget":1000000,"rpm_limit":10000000,"tpm_limit":10000000000,"max_parallel_requests":100000}`)
		if err != nil {
			g.close()
			return nil, err
		}
		header.Set("Authorization", "Bearer "+key)
	}
	return &target{client: newClient(g.base+"/v1", header), proc: g.proc, ddb: &ddbProxy{g.proxy}, stops: []func(){g.close}}, nil
}

// llmgateConfig is a LiteLLM-format config with one model group, "bench", served by the
// fake upstream as an OpenAI-compatible deployment.
func llmgateConfig(upstream string) string {
	return fmt.Sprintf(`model_list:
  - model_name: bench
    litellm_params:
      model: openai/bench
      api_base: %s
      api_key: sk-fake-upstream
    model_info:
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
`, upstream)
}

// floor starts bench/floor, the standard library's reverse proxy in its own process: what
// one more process hop costs on this machine, whatever the gateway does.
func (e *environment) floor(ctx context.Context) (*target, error) {
	binary, err := e.binary(ctx, "./bench/floor")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, "-port", fmt.Sprint(port), "-upstream", e.upstream.BaseURL)
	cmd.Env = cleanEnv()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := startProcess(ctx, "floor", e.tmp, base+"/health", cmd)
	if err != nil {
		return nil, err
	}
	header := http.Header{"Authorization": {"Bearer sk-fake-upstream"}}
	return &target{client: newClient(base, header), proc: p, stops: []func(){p.stop}}, nil
}

// portkey starts Portkey's gateway (headless) and points it at the fake upstream with its
// custom-host headers.
func (e *environment) portkey(ctx context.Context) (*target, error) {
	script := filepath.Join(e.root, e.opts.portkey)
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("portkey is not installed (npm ci --prefix bench): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", script, fmt.Sprintf("--port=%d", port), "--headless")
	cmd.Dir = filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(script)))) // bench/
	cmd.Env = cleanEnv()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	p, err := startProcess(ctx, "portkey", e.tmp, base+"/", cmd)
	if err != nil {
		return nil, err
	}
	header := http.Header{
		"Authorization":         {"Bearer sk-fake-upstream"},
		"X-Portkey-Provider":    {"openai"},
		"X-Portkey-Custom-Host": {e.upstream.BaseURL},
	}
	return &target{client: newClient(base+"/v1", header), proc: p, stops: []func(){p.stop}}, nil
}

// cleanEnv is the harness's environment without llmgate settings and master keys, so a
// developer's shell cannot change what is measured.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LLMGATE_") || strings.HasPrefix(kv, "LITELLM_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// phases is how much load a target gets.
type phases struct {
	requests int // per concurrency level
	rate     int // requests/s of the fixed-rate run
	streams  int
}

// load runs the phases: warm-up, throughput at each concurrency level (CPU and DynamoDB
// counted), the fixed-rate latency run, streams, and the sequential DynamoDB probe.
func (e *environment) load(ctx context.Context, t *target, tr *targetResult) error {
	o := e.opts
	ph := o.load
	if tr.Name == "llmgate-full" {
		ph = o.full
	}
	tr.Rate = ph.rate
	warm := closedLoop(ctx, t.client, chatBody, min(300, ph.requests), 8, o.phaseCap)
	if warm.Errors > 0 {
		return fmt.Errorf("warm-up: %d of %d requests failed, first: %s", warm.Errors, warm.Requests, warm.FirstErr)
	}
	closedLoop(ctx, t.client, streamBody, 50, 4, o.phaseCap)

	var cpu0 time.Duration
	var ddb0 ddbCounts
	if t.proc != nil {
		cpu0, _ = cpuTime(t.proc.pid())
	}
	if t.ddb != nil {
		ddb0 = t.ddb.Snapshot()
	}
	total := 0
	for _, c := range o.conc {
		r := closedLoop(ctx, t.client, chatBody, ph.requests, c, o.phaseCap)
		tr.Throughput = append(tr.Throughput, r)
		tr.MaxRPS = max(tr.MaxRPS, r.RPS)
		tr.Errors += r.Errors
		total += r.Requests
	}
	if t.proc != nil {
		cpu1, err := cpuTime(t.proc.pid())
		if err != nil {
			return err
		}
		tr.CPUPerRequest = (cpu1 - cpu0) / time.Duration(total)
	}
	if t.ddb != nil {
		d := t.ddb.Snapshot().Sub(ddb0)
		tr.DynamoDB = &ddbResult{Calls: d, CallsPerRequest: float64(d.Total()) / float64(total)}
	}

	tr.FixedRate = fixedRate(ctx, t.client, chatBody, ph.rate, o.rateFor)
	tr.Errors += tr.FixedRate.Errors
	tr.Stream = closedLoop(ctx, t.client, streamBody, ph.streams, o.streamConc, o.phaseCap)
	tr.Errors += tr.Stream.Errors

	if t.ddb != nil {
		tr.DynamoDB.Before, tr.DynamoDB.After, tr.DynamoDB.BackgroundReads = e.probeDynamoDB(ctx, t, 20)
	}
	if t.proc != nil {
		rss, err := peakRSS(t.proc.pid())
		if err != nil {
			return err
		}
		tr.PeakRSS = rss
	}
	return nil
}

// probeHook runs a function when a request reaches the fake upstream.
type probeHook struct{ fn atomic.Pointer[func()] }

func (p *probeHook) fire() {
	if f := p.fn.Load(); f != nil {
		(*f)()
	}
}

// probeDynamoDB sends n calls one at a time and splits each call's DynamoDB round trips into
// those before the upstream received it and those after (until the count stops moving, so
// a settle written after the answer is counted too). It returns the averages per call, and
// of the round trips before, the key reads (GetItem, BatchGetItem): after the warm-up they
// are the auth cache's background refresh, which no call waits for. All are -1 when no
// call reached the upstream.
func (e *environment) probeDynamoDB(ctx context.Context, t *target, n int) (before, after, reads float64) {
	defer e.probe.fn.Store(nil)
	var atUpstream atomic.Pointer[ddbCounts]
	mark := func() { c := t.ddb.Snapshot(); atUpstream.Store(&c) }
	e.probe.fn.Store(&mark)
	ok := 0
	for range n {
		start := t.ddb.Snapshot()
		atUpstream.Store(nil)
		if s := t.client.do(ctx, chatBody, time.Now()); s.err != nil {
			continue
		}
		end := settledCount(t.ddb)
		if at := atUpstream.Load(); at != nil {
			b := at.Sub(start)
			before += float64(b.Total())
			reads += float64(b.Calls["GetItem"] + b.Calls["BatchGetItem"])
			after += float64(end - at.Total())
			ok++
		}
	}
	if ok == 0 {
		return -1, -1, -1
	}
	return before / float64(ok), after / float64(ok), reads / float64(ok)
}

// settledCount waits until the proxy's round-trip count has not moved for 50 ms (at most 2 s).
func settledCount(p *ddbProxy) int64 {
	last, since := p.Snapshot().Total(), time.Now()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if n := p.Snapshot().Total(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= 50*time.Millisecond {
			break
		}
	}
	return last
}
