package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/config"
)

// allocResult is the allocation cost of one chat call, from in-process Go benchmarks.
type allocResult struct {
	// Config is the target whose config the handler was built from.
	Config string `json:"config"`
	// Gateway is llmgate's handler (auth off) serving a chat call into an httptest recorder,
	// including its HTTP client call to the fake upstream and the fake upstream's own work.
	Gateway benchResult `json:"gateway"`
	// Direct is an HTTP client calling the fake upstream: the part of Gateway that is not
	// the gateway's own.
	Direct benchResult `json:"direct"`
	// Added is Gateway minus Direct: what the gateway itself allocates per call.
	AddedAllocs int64 `json:"added_allocs_per_request"`
	AddedBytes  int64 `json:"added_bytes_per_request"`
}

type benchResult struct {
	N           int   `json:"n"`
	NsPerOp     int64 `json:"ns_per_op"`
	AllocsPerOp int64 `json:"allocs_per_op"`
	BytesPerOp  int64 `json:"bytes_per_op"`
}

func toBenchResult(r testing.BenchmarkResult) benchResult {
	return benchResult{N: r.N, NsPerOp: r.NsPerOp(), AllocsPerOp: r.AllocsPerOp(), BytesPerOp: r.AllocedBytesPerOp()}
}

// measureAllocs runs llmgate's handler in this process, built by internal/app from the
// auth-off config (llmgate-nolog's when that target ran, so no DynamoDB call is counted),
// and a direct call to the same fake upstream, as Go benchmarks.
func measureAllocs(ctx context.Context, configPath string) (*allocResult, error) {
	// The auth-off config has no master key; one from the developer's shell must not turn
	// auth on in this process.
	os.Unsetenv("LITELLM_MASTER_KEY")
	cfg, _, err := config.Load(configPath)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", configPath, err)
	}
	a, err := app.New(ctx, cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		return nil, fmt.Errorf("build app: %w", err)
	}
	h := a.Handler()

	var failure error
	gw := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(chatBody))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				failure = fmt.Errorf("gateway answered %d: %s", rec.Code, bytes.TrimSpace(rec.Body.Bytes()))
				return
			}
		}
	})
	if failure != nil {
		return nil, failure
	}

	up := cfg.ModelList[0].LiteLLMParams.APIBase + "/chat/completions"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}
	defer hc.CloseIdleConnections()
	direct := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			req, _ := http.NewRequest(http.MethodPost, up, bytes.NewReader(chatBody))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				failure = fmt.Errorf("direct call: %w", err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	if failure != nil {
		return nil, failure
	}
	r := &allocResult{Config: strings.TrimSuffix(filepath.Base(configPath), ".yaml"), Gateway: toBenchResult(gw), Direct: toBenchResult(direct)}
	r.AddedAllocs = r.Gateway.AllocsPerOp - r.Direct.AllocsPerOp
	r.AddedBytes = r.Gateway.BytesPerOp - r.Direct.BytesPerOp
	return r, nil
}

// goBenchmarks runs the Go benchmarks of pkgs (the gateway's own, for instance) and returns
// their output.
func goBenchmarks(ctx context.Context, pkgs string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", pkgs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("go test -bench %s: %w", pkgs, err)
	}
	return string(out), nil
}
