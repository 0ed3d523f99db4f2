package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/fakeopenai"
	"github.com/llmgate/llmgate/internal/provider/registry"
	"github.com/llmgate/llmgate/internal/router"
)

// The benchmarks compare a call straight to a fake OpenAI upstream with the same call
// through the gateway (auth and limits off, the real openai provider over HTTP), all on
// 127.0.0.1:
//
//	go test -run '^$' -bench . -benchmem ./internal/gateway/

const benchBody = `{"model":"gpt","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence, please."}],"max_tokens":64}`

type benchEnv struct {
	upstream *fakeopenai.Server
	gateway  *httptest.Server
	client   *http.Client
}

// newOpenAIGateway is a gateway (auth and limits off) with one model group, "gpt", served
// by the real openai provider over HTTP at apiBase.
func newOpenAIGateway(tb testing.TB, apiBase string) *Gateway {
	tb.Helper()
	cfg := &config.Config{ModelList: []config.Deployment{{ModelName: "gpt",
		LiteLLMParams: config.LiteLLMParams{Model: "openai/gpt-4o-mini", APIBase: apiBase, APIKey: "sk-test"}}}}
	rtr, err := router.New(router.Options{Config: cfg, Providers: registry.New(nil)})
	if err != nil {
		tb.Fatal(err)
	}
	gw, err := New(Options{Config: cfg, Router: rtr})
	if err != nil {
		tb.Fatal(err)
	}
	return gw
}

func newBenchEnv(b *testing.B, o fakeopenai.Options) *benchEnv {
	b.Helper()
	up := fakeopenai.Start(o)
	b.Cleanup(up.Close)
	srv := httptest.NewServer(newOpenAIGateway(b, up.BaseURL))
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	b.Cleanup(tr.CloseIdleConnections)
	return &benchEnv{upstream: up, gateway: srv, client: &http.Client{Transport: tr}}
}

// post sends body to base and reads the answer; ttfb is the time to the first body byte.
func (e *benchEnv) post(b *testing.B, base, body string) (total, ttfb time.Duration) {
	start := time.Now()
	resp, err := e.client.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.Peek(1); err != nil {
		b.Fatal(err)
	}
	ttfb = time.Since(start)
	if _, err := io.Copy(io.Discard, r); err != nil {
		b.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
	return time.Since(start), ttfb
}

// BenchmarkChat measures a non-streamed call direct and through the gateway, back to back.
func BenchmarkChat(b *testing.B) {
	env := newBenchEnv(b, fakeopenai.Options{})
	for _, target := range []struct{ name, base string }{{"direct", env.upstream.URL}, {"gateway", env.gateway.URL}} {
		b.Run(target.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				env.post(b, target.base, benchBody)
			}
		})
	}
}

// BenchmarkStreamTTFB measures the time to the first streamed byte, direct and through the
// gateway.
func BenchmarkStreamTTFB(b *testing.B) {
	env := newBenchEnv(b, fakeopenai.Options{Chunks: 16})
	body := strings.Replace(benchBody, `"max_tokens":64`, `"max_tokens":64,"stream":true`, 1)
	for _, target := range []struct{ name, base string }{{"direct", env.upstream.URL}, {"gateway", env.gateway.URL}} {
		b.Run(target.name, func(b *testing.B) {
			var ttfbs []time.Duration
			for b.Loop() {
				_, ttfb := env.post(b, target.base, body)
				ttfbs = append(ttfbs, ttfb)
			}
			b.ReportMetric(float64(percentile(ttfbs, 50).Microseconds()), "ttfb-p50-µs")
		})
	}
}

// BenchmarkGatewayHandler is the gateway's own cost per call, in process: the handler over
// the mock provider, no network. Its allocs/op are the gateway's allocations per request.
func BenchmarkGatewayHandler(b *testing.B) {
	cfg := testConfig()
	h := newHarness(b, cfg, nil, nil)
	gw := h.srv.Config.Handler
	body := []byte(strings.Replace(benchBody, `"gpt"`, `"demo"`, 1))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/v1/chat/completions", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkAddedLatencyAt500RPS sends calls at 500 per second straight to an upstream with a
// fixed 20 ms latency and 500 per second through the gateway, interleaved so both see the same
// machine load, and reports the added latency at the 50th and 99th percentiles.
func BenchmarkAddedLatencyAt500RPS(b *testing.B) {
	const rate, calls = 500, 1500 // per target
	env := newBenchEnv(b, fakeopenai.Options{Latency: 20 * time.Millisecond})
	run := func() (direct, through []time.Duration) {
		lat := make([]time.Duration, 2*calls)
		var wg sync.WaitGroup
		tick := time.NewTicker(time.Second / (2 * rate))
		defer tick.Stop()
		for i := range lat {
			<-tick.C
			base := env.upstream.URL
			if i%2 == 1 {
				base = env.gateway.URL
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat[i], _ = env.post(b, base, benchBody)
			}()
		}
		wg.Wait()
		for i, l := range lat {
			if i%2 == 0 {
				direct = append(direct, l)
			} else {
				through = append(through, l)
			}
		}
		return direct, through
	}
	for b.Loop() {
		run() // warm the connection pools
		direct, through := run()
		for _, p := range []float64{50, 99} {
			added := percentile(through, p) - percentile(direct, p)
			b.ReportMetric(float64(added.Microseconds())/1000, "added-p"+strconv.Itoa(int(p))+"-ms")
		}
	}
}

// BenchmarkMemoryPerStream holds streams open and reports the heap and stack each takes in
// the gateway: streams held through the gateway minus the same streams held straight to the
// upstream (which runs in this process too). The clients are bare TCP connections read
// from this goroutine, so they add next to nothing. The upstream pauses between chunks,
// so every stream stays in flight while memory is measured.
func BenchmarkMemoryPerStream(b *testing.B) {
	const streams = 200
	env := newBenchEnv(b, fakeopenai.Options{Chunks: 4, ChunkDelay: 2 * time.Second})
	body := strings.Replace(benchBody, `"max_tokens":64`, `"max_tokens":64,"stream":true`, 1)
	held := func(base string) int64 {
		host := strings.TrimPrefix(base, "http://")
		req := "POST /v1/chat/completions HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, 0, streams)
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		buf := make([]byte, 1024)
		for range streams {
			c, err := net.Dial("tcp", host)
			if err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
			if _, err := io.WriteString(c, req); err != nil {
				b.Fatal(err)
			}
			var got []byte
			for !bytes.Contains(got, []byte("data: ")) { // the first chunk is out
				n, err := c.Read(buf)
				if err != nil {
					b.Fatal(err)
				}
				got = append(got, buf[:n]...)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		return int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)
	}
	for b.Loop() {
		direct := held(env.upstream.URL)
		through := held(env.gateway.URL)
		b.ReportMetric(float64(through-direct)/streams/1024, "KiB/stream")
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p/100))]
}
