package app

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime/metrics"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/dynamotest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// BenchmarkFullPath is one chat call on the full path, in process: a virtual key with a
// budget, rpm, tpm and max_parallel_requests, its reservation and settle and spend log in
// DynamoDB Local, over the mock provider. cpu-µs/op is the process's user and system CPU per
// call, gc-cpu-µs/op the garbage collector's part of it; its CPU profile is the gateway's own
// per-call work on that path (DynamoDB Local runs in its own process). -cpu 1 is how a Lambda
// function runs it (see lambdaapp.tuneRuntime; GOGC=400 too):
//
//	scripts/with-dynamodb.sh go test -run '^$' -bench FullPath -cpuprofile cpu.out ./internal/app/
func BenchmarkFullPath(b *testing.B) {
	const master = "sk-bench-master"
	cfg, _, err := config.Parse([]byte("model_list:\n  - model_name: demo\n    litellm_params:\n      model: mock/demo\n    model_info:\n      input_cost_per_token: 0.000001\n      output_cost_per_token: 0.000002\ngeneral_settings:\n  master_key: "+master+"\n"),
		func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	cfg.Settings.DynamoDBEndpoint, cfg.Settings.TableName, cfg.Settings.Region = dynamotest.Endpoint(b), dynamotest.TableName(b), "us-east-1"
	ctx := context.Background()
	a, err := New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Store.EnsureTable(ctx); err != nil {
		b.Fatal(err)
	}
	h := a.Handler()
	serve := func(path, key, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: status %d: %s", path, rec.Code, rec.Body)
		}
		return rec
	}
	var gen struct{ Key string }
	rec := serve("/key/generate", master, `{"models":["demo"],"max_budget":1000000,"rpm_limit":10000000,"tpm_limit":10000000000,"max_parallel_requests":100000}`)
	if err := json.Unmarshal(rec.Body.Bytes(), &gen); err != nil || gen.Key == "" {
		b.Fatalf("/key/generate: %s", rec.Body)
	}
	body := `{"model":"demo","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence, please."}],"max_tokens":32}`
	serve("/v1/chat/completions", gen.Key, body) // warm the auth cache and the connections
	b.ReportAllocs()
	cpu0, gc0 := processCPU(b), gcCPU()
	for b.Loop() {
		if rec := serve("/v1/chat/completions", gen.Key, body); !bytes.Contains(rec.Body.Bytes(), []byte(`"usage"`)) {
			b.Fatalf("no usage in %s", rec.Body)
		}
	}
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric((gcCPU()-gc0)*1e6/float64(b.N), "gc-cpu-µs/op")
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// gcCPU is the CPU the garbage collector has used, in seconds (estimated by the runtime).
func gcCPU() float64 {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64()
}
