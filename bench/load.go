package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// chatBody is the request every load phase sends. The model name is the llmgate model group
// and, for the direct and Portkey runs, the name the fake upstream echoes.
var (
	chatBody = []byte(`{"model":"bench","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}`)
	// responsesBody is the same question to the Responses API, as Codex CLI asks (store false).
	responsesBody = []byte(`{"model":"bench","input":"Say hello in one short sentence.","max_output_tokens":32,"store":false}`)
	streamBody    = []byte(`{"model":"bench","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32,"stream":true}`)
)

// client sends load to one target.
type client struct {
	url    string // chat completions URL
	header http.Header
	hc     *http.Client
}

func newClient(baseURL string, header http.Header) *client {
	tr := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &client{url: baseURL + "/chat/completions", header: header, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// sample is the outcome of one request.
type sample struct {
	latency time.Duration // until the whole body was read
	ttfb    time.Duration // until the first body byte (streams)
	err     error
}

// do sends one request and reads the whole answer. start is when the request was due (for the
// fixed-rate run, so that queueing inside the client counts against the target, not for it).
func (c *client) do(ctx context.Context, body []byte, start time.Time) sample {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return sample{err: err}
	}
	req.Header = c.header.Clone()
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return sample{err: err}
	}
	defer resp.Body.Close()
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	var ttfb time.Duration
	if _, err := br.Peek(1); err == nil {
		ttfb = time.Since(start)
	}
	n, err := io.Copy(io.Discard, br)
	lat := time.Since(start)
	if err != nil {
		return sample{err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return sample{err: fmt.Errorf("status %d (%d bytes)", resp.StatusCode, n)}
	}
	return sample{latency: lat, ttfb: ttfb}
}

// result summarises a run of samples.
type result struct {
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	FirstErr string        `json:"first_error,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	RPS      float64       `json:"requests_per_second"`
	P50      time.Duration `json:"p50_ns"`
	P90      time.Duration `json:"p90_ns"`
	P99      time.Duration `json:"p99_ns"`
	TTFBP50  time.Duration `json:"ttfb_p50_ns,omitempty"`
	TTFBP99  time.Duration `json:"ttfb_p99_ns,omitempty"`
	// Capped is set when the run stopped at its time limit before sending every request.
	Capped bool `json:"capped,omitempty"`
}

func summarise(samples []sample, elapsed time.Duration) result {
	r := result{Requests: len(samples), Elapsed: elapsed}
	var lat, ttfb []time.Duration
	for _, s := range samples {
		if s.err != nil {
			if r.Errors == 0 {
				r.FirstErr = s.err.Error()
			}
			r.Errors++
			continue
		}
		lat = append(lat, s.latency)
		if s.ttfb > 0 {
			ttfb = append(ttfb, s.ttfb)
		}
	}
	r.RPS = float64(len(lat)) / elapsed.Seconds()
	r.P50, r.P90, r.P99 = percentile(lat, 50), percentile(lat, 90), percentile(lat, 99)
	r.TTFBP50, r.TTFBP99 = percentile(ttfb, 50), percentile(ttfb, 99)
	return r
}

// percentile returns the p-th percentile (nearest rank) of d, sorting d in place.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d))*p/100+0.5) - 1
	return d[max(0, min(i, len(d)-1))]
}

// closedLoop sends n requests from conc workers, each sending its next request when the
// previous one is answered: the throughput run. After limit it sends no more (a slow target
// then gets fewer than n).
func closedLoop(ctx context.Context, c *client, body []byte, n, conc int, limit time.Duration) result {
	samples := make([]sample, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(limit)
	for range conc {
		wg.Go(func() {
			for {
				if ctx.Err() != nil || time.Now().After(stop) {
					return
				}
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				samples[i] = c.do(ctx, body, time.Now())
			}
		})
	}
	wg.Wait()
	sent := min(int(next.Load()), n) // every index handed out was sent and recorded
	r := summarise(samples[:sent], time.Since(start))
	r.Capped = sent < n && ctx.Err() == nil
	return r
}

// fixedRate sends requests at rate per second for d, each on its own goroutine whatever the
// answers do (an open loop), and measures each latency from when the request was due.
func fixedRate(ctx context.Context, c *client, body []byte, rate int, d time.Duration) result {
	n := int(float64(rate) * d.Seconds())
	samples := make([]sample, n)
	interval := time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		if ctx.Err() != nil {
			samples = samples[:i]
			break
		}
		wg.Go(func() { samples[i] = c.do(ctx, body, due) })
	}
	wg.Wait()
	return summarise(samples, time.Since(start))
}
