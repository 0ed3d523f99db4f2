// Command bench measures what llmgate adds to a call: the same load sent straight to a fake
// OpenAI-compatible upstream, through llmgate with auth off, through llmgate with virtual
// keys, budgets and rate limits on DynamoDB Local, and through Portkey's open-source gateway.
// Everything runs on 127.0.0.1 and every run is bounded by a request count or a duration.
//
// Run it with `make bench` (which starts DynamoDB Local and installs Portkey from
// bench/package.json); bench/README.md explains the columns.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llmgate/llmgate/internal/fakeopenai"
)

// options are the harness's flags.
type options struct {
	load         phases        // the load of every target but llmgate-full
	full         phases        // the load of llmgate-full (DynamoDB Local serializes its writes)
	phaseCap     time.Duration // a throughput run stops sending after this long
	conc         []int         // concurrency levels of the throughput runs
	rateFor      time.Duration // length of the fixed-rate run
	streamConc   int           // concurrency of the streamed requests
	latency      time.Duration // fake upstream latency before the first byte
	chunks       int           // streamed chunks per answer
	chunkDelay   time.Duration // delay between streamed chunks
	targets      []string      // which targets to run
	out          string        // results directory
	portkey      string        // Portkey's start-server.js
	goBenchmarks string        // packages whose Go benchmarks run too ("" for none)
	lambda       bool          // report Lambda figures (needs make build)
	keep         bool          // keep the temporary directory (configs, server logs)
	capacityN    int           // calls priced per capacity scenario (0: no capacity section)
	teamKeys     int           // keys of the team load run (0: no team load run)
	teamCalls    int           // calls of the team load run
	teamConc     int           // its concurrency
	teamFaults   float64       // share of DynamoDB calls that fail during it
	teamBudget   float64       // its team's max_budget (USD)
	teamEscrow   int           // llmgate_settings.escrow_shards of the team and one-key load runs
	keyCalls     int           // calls of the one-key load run (0: none)
	keyConc      int           // its concurrency
	keyFaults    float64       // share of DynamoDB calls that fail during it
	keyBudget    float64       // its key's max_budget (USD)
	keyLatency   time.Duration // its upstream's latency: how long its calls stay in flight
}

func main() {
	var o options
	var conc, targets string
	flag.IntVar(&o.load.requests, "n", 2000, "requests per concurrency level")
	flag.StringVar(&conc, "c", "1,16,64", "concurrency levels of the throughput runs")
	flag.IntVar(&o.load.rate, "rate", 500, "requests per second of the fixed-rate latency run")
	flag.DurationVar(&o.rateFor, "rate-for", 5*time.Second, "length of the fixed-rate run")
	flag.IntVar(&o.load.streams, "streams", 1000, "streamed requests")
	flag.IntVar(&o.full.requests, "full-n", 300, "llmgate-full: requests per concurrency level")
	flag.IntVar(&o.full.rate, "full-rate", 50, "llmgate-full: requests per second of the fixed-rate run")
	flag.IntVar(&o.full.streams, "full-streams", 100, "llmgate-full: streamed requests")
	flag.DurationVar(&o.phaseCap, "phase-cap", 20*time.Second, "a throughput run stops sending new requests after this long")
	flag.IntVar(&o.streamConc, "stream-c", 8, "concurrency of the streamed requests")
	flag.DurationVar(&o.latency, "latency", 0, "fake upstream latency before the first byte")
	flag.IntVar(&o.chunks, "chunks", 16, "streamed chunks per answer")
	flag.DurationVar(&o.chunkDelay, "chunk-delay", 0, "delay between streamed chunks")
	flag.StringVar(&targets, "targets", "direct,floor,llmgate,llmgate-nolog,llmgate-full,portkey", "targets to run")
	flag.StringVar(&o.out, "out", "bench/results", "directory for the JSON results")
	flag.StringVar(&o.portkey, "portkey", "bench/node_modules/@portkey-ai/gateway/build/start-server.js", "Portkey's start-server.js")
	flag.StringVar(&o.goBenchmarks, "go-bench", "./internal/gateway/", "packages whose Go benchmarks run too (go test -bench); empty for none")
	flag.BoolVar(&o.lambda, "lambda", true, "report Lambda bootstrap sizes and RIE timings when make build has run")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory with the generated configs and server logs")
	flag.IntVar(&o.capacityN, "capacity-n", 20, "calls priced per capacity scenario (key; key + user + team; master key; auth off); 0 skips")
	flag.IntVar(&o.teamKeys, "team-keys", teamKeys, "keys in the team load run; 0 skips it")
	flag.IntVar(&o.teamCalls, "team-calls", 2000, "calls of the team load run, spread over its keys")
	flag.IntVar(&o.teamConc, "team-c", 16, "concurrency of the team load run")
	flag.Float64Var(&o.teamFaults, "team-faults", 0.2, "share of DynamoDB calls that fail with conflicts and throttles during the team load run")
	flag.Float64Var(&o.teamBudget, "team-budget", 0.05, "the team load run's team max_budget in USD (the load is meant to exhaust it)")
	flag.IntVar(&o.teamEscrow, "team-escrow-shards", 64, "llmgate_settings.escrow_shards of the team and one-key load runs (a team or key gets one shard per $1 of budget up to this, a key up to 32; 0: none)")
	flag.IntVar(&o.keyCalls, "key-calls", 0, "calls of the one-key load run (one key whose budget is its only limit); 0 skips it")
	flag.IntVar(&o.keyConc, "key-c", 256, "concurrency of the one-key load run (calls in flight on the key)")
	flag.Float64Var(&o.keyFaults, "key-faults", 0.2, "share of DynamoDB calls that fail with conflicts and throttles during the one-key load run")
	flag.Float64Var(&o.keyBudget, "key-budget", 32, "the one-key load run's key max_budget in USD (one escrow shard per $1, up to 32)")
	flag.DurationVar(&o.keyLatency, "key-latency", time.Second, "upstream latency of the one-key load run: how long its calls stay in flight")
	flag.Parse()
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: bad concurrency %q\n", s)
			os.Exit(2)
		}
		o.conc = append(o.conc, n)
	}
	o.targets = strings.Split(targets, ",")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// report is what one run of the harness measured; it is written to bench/results as JSON.
type report struct {
	Date     time.Time       `json:"date"`
	Machine  machine         `json:"machine"`
	Options  map[string]any  `json:"options"`
	Targets  []*targetResult `json:"targets"`
	Allocs   *allocResult    `json:"allocations,omitempty"`
	Lambda   *lambdaResult   `json:"lambda,omitempty"`
	Capacity *capacityResult `json:"capacity,omitempty"`
	GoBench  string          `json:"go_benchmarks,omitempty"`
	Checks   []check         `json:"checks"`
	Failures []string        `json:"failures,omitempty"`
}

type machine struct {
	CPUs    int       `json:"cpus"`
	GoOS    string    `json:"goos"`
	GoArch  string    `json:"goarch"`
	Load    string    `json:"loadavg_at_start"`
	Version string    `json:"go_version"`
	Start   time.Time `json:"start"`
}

// targetResult is what one target measured.
type targetResult struct {
	Name       string   `json:"name"`
	Throughput []result `json:"throughput"` // one per concurrency level
	FixedRate  result   `json:"fixed_rate"`
	Stream     result   `json:"stream"`
	MaxRPS     float64  `json:"max_requests_per_second"`
	Rate       int      `json:"fixed_rate_rps"` // requests/s of FixedRate
	// Added latency against the direct run, at the fixed rate.
	AddedP50  time.Duration `json:"added_p50_ns"`
	AddedP90  time.Duration `json:"added_p90_ns"`
	AddedP99  time.Duration `json:"added_p99_ns"`
	AddedTTFB time.Duration `json:"added_stream_ttfb_p50_ns"`
	// CPUPerRequest is the gateway process's user+system CPU over the throughput runs,
	// divided by their requests.
	CPUPerRequest time.Duration `json:"cpu_per_request_ns,omitempty"`
	PeakRSS       int64         `json:"peak_rss_bytes,omitempty"`
	DynamoDB      *ddbResult    `json:"dynamodb,omitempty"`
	Errors        int           `json:"errors"`
	Error         string        `json:"error,omitempty"`
}

// ddbResult is DynamoDB's part of a target's work.
type ddbResult struct {
	CallsPerRequest float64   `json:"calls_per_request"`
	Calls           ddbCounts `json:"calls"`
	// Before and After are the round trips of sequential probe calls before the upstream
	// received the call and after it (until the counts settle), per call.
	Before float64 `json:"before_upstream_per_request"`
	After  float64 `json:"after_upstream_per_request"`
	// BackgroundReads are the key reads among Before: the auth cache's refresh of a key in
	// use, which runs beside the call (no call waits for it).
	BackgroundReads float64 `json:"background_reads_before_upstream_per_request"`
}

// check is one of the targets and whether this run met it.
type check struct {
	What string `json:"what"`
	Got  string `json:"got"`
	OK   bool   `json:"ok"`
}

func run(ctx context.Context, o options, w io.Writer) error {
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return errors.New("run from the repository root (make bench)")
	}
	tmp, err := os.MkdirTemp("", "llmgate-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(os.Stderr, "bench: configs and logs in %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	load, _ := os.ReadFile("/proc/loadavg")
	rep := &report{
		Date: time.Now().UTC(),
		Machine: machine{CPUs: runtime.NumCPU(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH,
			Load: strings.TrimSpace(string(load)), Version: runtime.Version(), Start: time.Now().UTC()},
		Options: map[string]any{
			"requests_per_level": o.load.requests, "concurrency": o.conc, "rate": o.load.rate,
			"rate_for": o.rateFor.String(), "streams": o.load.streams, "stream_concurrency": o.streamConc,
			"full_requests_per_level": o.full.requests, "full_rate": o.full.rate, "full_streams": o.full.streams,
			"phase_cap":        o.phaseCap.String(),
			"upstream_latency": o.latency.String(), "chunks": o.chunks, "chunk_delay": o.chunkDelay.String(),
		},
	}

	var probe probeHook
	up := fakeopenai.Start(fakeopenai.Options{
		Latency: o.latency, Chunks: o.chunks, ChunkDelay: o.chunkDelay, OnRequest: probe.fire,
	})
	defer up.Close()

	env := &environment{root: root, tmp: tmp, upstream: up, probe: &probe, opts: o}

	var direct *targetResult
	for _, name := range o.targets {
		fmt.Fprintf(os.Stderr, "bench: %s\n", name)
		tr := env.measure(ctx, name)
		rep.Targets = append(rep.Targets, tr)
		if tr.Error != "" {
			rep.Failures = append(rep.Failures, name+": "+tr.Error)
		} else if tr.Errors > 0 {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %d requests failed", name, tr.Errors))
		}
		if name == "direct" {
			direct = tr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if direct != nil {
		for _, tr := range rep.Targets {
			tr.addedAgainst(direct)
		}
	}

	if env.configPath != "" {
		fmt.Fprintln(os.Stderr, "bench: allocations")
		a, err := measureAllocs(ctx, env.configPath)
		if err != nil {
			rep.Failures = append(rep.Failures, "allocations: "+err.Error())
		}
		rep.Allocs = a
	}
	if o.capacityN > 0 || o.teamKeys > 0 || o.keyCalls > 0 {
		fmt.Fprintln(os.Stderr, "bench: capacity")
		c, err := env.capacitySection(ctx)
		if err != nil {
			rep.Failures = append(rep.Failures, "capacity: "+err.Error())
		}
		rep.Capacity = c
	}
	if o.goBenchmarks != "" {
		fmt.Fprintln(os.Stderr, "bench: go benchmarks")
		out, err := goBenchmarks(ctx, o.goBenchmarks)
		rep.GoBench = out
		if err != nil {
			rep.Failures = append(rep.Failures, "go benchmarks: "+err.Error())
		}
	}
	if o.lambda {
		fmt.Fprintln(os.Stderr, "bench: lambda")
		l, err := measureLambda(ctx, root, tmp)
		if err != nil {
			rep.Failures = append(rep.Failures, "lambda: "+err.Error())
		}
		rep.Lambda = l
	}

	rep.Checks = checks(rep)
	printReport(w, rep)
	if err := writeReport(o.out, rep); err != nil {
		return err
	}
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d part(s) failed: %s", len(rep.Failures), strings.Join(rep.Failures, "; "))
	}
	return nil
}

func (tr *targetResult) addedAgainst(direct *targetResult) {
	if tr.Error != "" || tr.Name == "direct" {
		return
	}
	tr.AddedP50 = tr.FixedRate.P50 - direct.FixedRate.P50
	tr.AddedP90 = tr.FixedRate.P90 - direct.FixedRate.P90
	tr.AddedP99 = tr.FixedRate.P99 - direct.FixedRate.P99
	tr.AddedTTFB = tr.Stream.TTFBP50 - direct.Stream.TTFBP50
}

func checks(rep *report) []check {
	by := map[string]*targetResult{}
	for _, tr := range rep.Targets {
		if tr.Error == "" {
			by[tr.Name] = tr
		}
	}
	var cs []check
	for _, name := range []string{"llmgate", "llmgate-nolog"} {
		g, d, p := by[name], by["direct"], by["portkey"]
		if g == nil {
			continue
		}
		if d != nil {
			cs = append(cs,
				check{What: fmt.Sprintf("%s adds <= 0.3 ms p50 at %v rps", name, rep.Options["rate"]), Got: ms(g.AddedP50), OK: g.AddedP50 <= 300*time.Microsecond},
				check{What: fmt.Sprintf("%s adds <= 1 ms p99 at %v rps", name, rep.Options["rate"]), Got: ms(g.AddedP99), OK: g.AddedP99 <= time.Millisecond},
				check{What: name + " stream TTFB overhead <= 1 ms (p50)", Got: ms(g.AddedTTFB), OK: g.AddedTTFB <= time.Millisecond},
			)
		}
		if p != nil && p.MaxRPS > 0 {
			ratio := g.MaxRPS / p.MaxRPS
			cs = append(cs, check{What: name + " throughput >= 3x Portkey's", Got: fmt.Sprintf("%.1fx", ratio), OK: ratio >= 3})
		}
	}
	if f := by["llmgate-full"]; f != nil && f.CPUPerRequest > 0 {
		// The local server out of process, HTTP server and upstream client included; what a
		// Lambda function spends is BenchmarkFullPath -cpu 1 (make bench-go).
		cs = append(cs, check{What: "full path: gateway CPU <= 1 ms per call (llmgate-full)",
			Got: fmt.Sprintf("%.0f µs", float64(f.CPUPerRequest)/float64(time.Microsecond)), OK: f.CPUPerRequest <= time.Millisecond})
	}
	if f := by["llmgate-full"]; f != nil && f.DynamoDB != nil {
		d := f.DynamoDB
		waited := d.Before - d.BackgroundReads
		cs = append(cs, check{What: "full path: 1 DynamoDB round trip before the upstream, 1 after (warm path)",
			Got: fmt.Sprintf("%.2f before (+%.2f background key refresh), %.2f after", waited, d.BackgroundReads, d.After),
			OK:  math.Abs(waited-1) < 1e-9 && math.Abs(d.After-1) < 1e-9})
	}
	return cs
}

func writeReport(dir string, rep *report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	b = append(b, '\n')
	for _, name := range []string{rep.Date.Format("20060102T150405Z") + ".json", "latest.json"} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	slog.Info("results written", "dir", dir)
	return nil
}
