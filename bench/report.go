package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// printReport writes the results as one table plus the checks, in Markdown so the same text
// goes into bench/README.md.
func printReport(w io.Writer, rep *report) {
	fmt.Fprintf(w, "\nllmgate bench, %s, %d CPUs, load average at start %s\n", rep.Date.Format(time.RFC3339), rep.Machine.CPUs, rep.Machine.Load)
	fmt.Fprintf(w, "load: %v requests at concurrency %v; %v rps for %v; %v streams (%v chunks) at concurrency %v; upstream latency %v\n\n",
		rep.Options["requests_per_level"], rep.Options["concurrency"], rep.Options["rate"], rep.Options["rate_for"],
		rep.Options["streams"], rep.Options["chunks"], rep.Options["stream_concurrency"], rep.Options["upstream_latency"])
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, "| "+strings.Join(cells, "\t| ")+"\t|") }
	row("target", "req/s (best)", "p50 / p90 / p99 at a fixed rate", "added p50 / p90 / p99", "stream TTFB p50 (added)",
		"CPU/req", "peak RSS", "DynamoDB calls/req (before+after)", "errors")
	row("---", "---", "---", "---", "---", "---", "---", "---", "---")
	for _, t := range rep.Targets {
		if t.Error != "" {
			row(t.Name, "failed: "+oneLine(t.Error), "", "", "", "", "", "", "")
			continue
		}
		added, addedTTFB := "-", ""
		if t.Name != "direct" {
			added = fmt.Sprintf("%s / %s / %s", ms(t.AddedP50), ms(t.AddedP90), ms(t.AddedP99))
			addedTTFB = " (" + ms(t.AddedTTFB) + ")"
		}
		cpu, rss := "-", "-"
		if t.CPUPerRequest > 0 || t.PeakRSS > 0 {
			cpu = fmt.Sprintf("%.0f µs", float64(t.CPUPerRequest)/float64(time.Microsecond))
			rss = fmt.Sprintf("%.0f MiB", float64(t.PeakRSS)/(1<<20))
		}
		ddb := "-"
		if d := t.DynamoDB; d != nil {
			ddb = fmt.Sprintf("%.2f (%.2f+%.2f)", d.CallsPerRequest, d.Before, d.After)
			if d.BackgroundReads > 0 {
				ddb = fmt.Sprintf("%.2f (%.2f+%.2f, %.2f of them background reads)", d.CallsPerRequest, d.Before, d.After, d.BackgroundReads)
			}
		}
		row(t.Name, fmt.Sprintf("%.0f", t.MaxRPS),
			fmt.Sprintf("%s / %s / %s @%d/s", ms(t.FixedRate.P50), ms(t.FixedRate.P90), ms(t.FixedRate.P99), t.Rate), added,
			ms(t.Stream.TTFBP50)+addedTTFB, cpu, rss, ddb, fmt.Sprint(t.Errors))
	}
	tw.Flush()

	fmt.Fprintln(w)
	for _, t := range rep.Targets {
		if t.Error != "" || len(t.Throughput) == 0 {
			continue
		}
		var parts []string
		for i, r := range t.Throughput {
			capped := ""
			if r.Capped {
				capped = fmt.Sprintf(" (%d sent before the time cap)", r.Requests)
			}
			parts = append(parts, fmt.Sprintf("c=%v: %.0f%s", rep.Options["concurrency"].([]int)[i], r.RPS, capped))
		}
		fmt.Fprintf(w, "%-13s req/s by concurrency: %s\n", t.Name, strings.Join(parts, ", "))
	}
	printOverFloor(w, rep.Targets)
	if a := rep.Allocs; a != nil {
		fmt.Fprintf(w, "\nallocations per chat call (in-process Go benchmark, %s config): gateway %d allocs / %d B, direct %d allocs / %d B, added by llmgate %d allocs / %d B\n",
			a.Config, a.Gateway.AllocsPerOp, a.Gateway.BytesPerOp, a.Direct.AllocsPerOp, a.Direct.BytesPerOp, a.AddedAllocs, a.AddedBytes)
	}
	if l := rep.Lambda; l != nil {
		fmt.Fprintln(w)
		printLambda(w, l)
	}
	if c := rep.Capacity; c != nil {
		fmt.Fprintln(w)
		printCapacity(w, c)
	}
	if rep.GoBench != "" {
		fmt.Fprintf(w, "\nGo benchmarks:\n%s", rep.GoBench)
	}
	fmt.Fprintln(w)
	for _, c := range rep.Checks {
		mark := "MET "
		if !c.OK {
			mark = "MISS"
		}
		fmt.Fprintf(w, "%s %s: %s\n", mark, c.What, c.Got)
	}
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "FAIL %s\n", oneLine(f))
	}
}

// printOverFloor writes what each gateway adds beyond the floor target (the standard
// library's reverse proxy in its own process): the part of its added latency that is its
// own work rather than the extra process hop.
func printOverFloor(w io.Writer, targets []*targetResult) {
	var floor *targetResult
	for _, t := range targets {
		if t.Name == "floor" && t.Error == "" {
			floor = t
		}
	}
	if floor == nil {
		return
	}
	fmt.Fprintf(w, "\nthe floor (one more process hop, nothing else) adds p50 %s, p99 %s, stream TTFB %s; beyond it:\n",
		ms(floor.AddedP50), ms(floor.AddedP99), ms(floor.AddedTTFB))
	for _, t := range targets {
		if t.Error != "" || t.Name == "direct" || t.Name == "floor" {
			continue
		}
		fmt.Fprintf(w, "  %-13s p50 %+.3f ms, p99 %+.3f ms, stream TTFB %+.3f ms\n", t.Name,
			msf(t.AddedP50-floor.AddedP50), msf(t.AddedP99-floor.AddedP99), msf(t.AddedTTFB-floor.AddedTTFB))
	}
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ms formats d in milliseconds with microsecond precision.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// printCapacity writes the priced write units per call of each scenario, where they go, the
// capacity model and the team load run.
func printCapacity(w io.Writer, c *capacityResult) {
	if len(c.Scenarios) > 0 {
		fmt.Fprintf(w, "DynamoDB capacity per call, priced as DynamoDB bills it (internal/dynamoproxy: 1 KB write units, transactions x2, index entries; %d calls one at a time per scenario):\n\n", c.Scenarios[0].Calls)
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		row := func(cells ...string) { fmt.Fprintln(tw, "| "+strings.Join(cells, "\t| ")+"\t|") }
		row("scenario", "WCU/call", "RCU/call", "one key: calls/s at 1,000 WCU/s (at half)", fmt.Sprintf("one team of %d keys", teamKeys), "deployment", "bound by (one team)")
		row("---", "---", "---", "---", "---", "---", "---")
		for _, s := range c.Scenarios {
			rate := func(m sustain) string {
				if m.Bound == "" {
					return "no shared item"
				}
				return fmt.Sprintf("%.0f (%.0f)", m.Limit, m.Half)
			}
			row(s.Name, fmt.Sprintf("%.2f", s.WCUPerCall), fmt.Sprintf("%.2f", s.RCUPerCall), rate(s.Model[0]), rate(s.Model[1]), rate(s.Model[2]), s.Model[1].Bound)
		}
		tw.Flush()
		for _, s := range c.Scenarios {
			fmt.Fprintf(w, "\n%s: what a call writes\n\n", s.Name)
			tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
			row := func(cells ...string) { fmt.Fprintln(tw, "| "+strings.Join(cells, "\t| ")+"\t|") }
			row("item", "shared by", "writes/call", "bytes", "WCU/call")
			row("---", "---", "---", "---", "---")
			for _, it := range s.Items {
				row(it.Class, it.Scope, fmt.Sprintf("%.2f", it.WritesPerCall), fmt.Sprint(it.Bytes), fmt.Sprintf("%.2f", it.WCUPerCall))
			}
			tw.Flush()
		}
	}
	if t := c.Team; t != nil {
		fmt.Fprintf(w, "\nteam load run: %d keys in one team (max_budget $%g, escrow_shards %d), %d calls at %.0f calls/s, %.0f%% of DynamoDB calls failed by the proxy (%v)\n",
			t.Keys, t.Budget, t.EscrowShards, t.Calls, t.RPS, 100*t.FaultRate, t.Faults)
		printLoad(w, t)
	}
	if t := c.Key; t != nil {
		fmt.Fprintf(w, "\none-key load run: one key (max_budget $%g, %d escrow shards written), %d calls held %s by the upstream at %.0f calls/s, %.0f%% of DynamoDB calls failed by the proxy (%v)\n",
			t.Budget, t.EscrowShards, t.Calls, t.Latency, t.RPS, 100*t.FaultRate, t.Faults)
		printLoad(w, t)
	}
}

// printLoad writes a load run's answers, spend and hottest items.
func printLoad(w io.Writer, t *teamLoad) {
	fmt.Fprintf(w, "  answers: %d ok, %d refused by the budget, %d unavailable (503), %d other; %.2f WCU per call; %d calls held RES# items\n", t.OK, t.Refused, t.Unavail, t.Other, t.WCUPerCall, t.Spilled)
	fmt.Fprintf(w, "  %s spend $%.9f of max_budget $%g (spend <= budget: %v)\n", t.Scope, t.Spend, t.Budget, t.Spend <= t.Budget)
	for _, h := range t.Hot {
		fmt.Fprintf(w, "  hot: %-50s shared by %-10s peak %6.1f WCU/s here, %7.1f WCU/s at 2,000 calls/s\n", h.Item, h.Scope, h.PeakWCU, h.At2000WCU)
	}
}
