package lambdaapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/lambdahttp"
)

func TestLogger_FollowsLambdaLogLevel(t *testing.T) {
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"", slog.LevelInfo}, {"DEBUG", slog.LevelDebug}, {"trace", slog.LevelDebug},
		{"WARN", slog.LevelWarn}, {"ERROR", slog.LevelError}, {"FATAL", slog.LevelError},
	}
	for _, tt := range tests {
		t.Setenv("AWS_LAMBDA_LOG_LEVEL", tt.level)
		h := Logger().Handler()
		if !h.Enabled(context.Background(), tt.want) || (tt.want > slog.LevelDebug && h.Enabled(context.Background(), tt.want-4)) {
			t.Errorf("AWS_LAMBDA_LOG_LEVEL=%q: logger does not start at %v", tt.level, tt.want)
		}
	}
}

func TestNew_Failures(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("general_settings:\n  master_key: not-sk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, secrets, config, wantErr string
	}{
		{"malformed secret list stops before any call", "LITELLM_MASTER_KEY", bad, "load secrets"},
		{"missing config file", "", filepath.Join(dir, "missing.yaml"), "missing.yaml"},
		{"invalid config", "", bad, "master_key"},
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LLMGATE_SECRETS", tt.secrets)
			t.Setenv(EnvConfig, tt.config)
			_, err := New(context.Background(), log)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// TestMain_InitFailureExits runs Main in a child process (it exits) with a config file that
// does not exist: it must log the failure as JSON and exit with status 1, without starting.
func TestMain_InitFailureExits(t *testing.T) {
	if os.Getenv("LAMBDAAPP_TEST_MAIN") == "1" {
		Main(func(*app.App, *slog.Logger) { os.Exit(3) })
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMain_InitFailureExits$")
	cmd.Env = append(os.Environ(), "LAMBDAAPP_TEST_MAIN=1", "LLMGATE_SECRETS=", EnvConfig+"="+filepath.Join(t.TempDir(), "missing.yaml"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("Main with a missing config: err = %v, want exit status 1; stderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"init failed"`) || !strings.Contains(stderr.String(), "missing.yaml") {
		t.Errorf("stderr = %s, want a JSON \"init failed\" record naming missing.yaml", stderr.String())
	}
}

// TestMain_SizesTheRuntimeToTheFunction runs Main in a child process with the memory size
// Lambda sets: GOMAXPROCS 1 for 512 MB (the guest still shows two vCPUs) and 2 for 3,538 MB,
// GOGC 400, a memory limit of three quarters of the memory; the Go runtime's own variables
// win, and outside Lambda the runtime's defaults stay.
func TestMain_SizesTheRuntimeToTheFunction(t *testing.T) {
	if os.Getenv("LAMBDAAPP_TEST_MAIN") == "runtime" {
		Main(func(*app.App, *slog.Logger) {
			gc := debug.SetGCPercent(-1)
			fmt.Print(runtime.GOMAXPROCS(0), " ", gc, " ", debug.SetMemoryLimit(-1))
			os.Exit(0)
		})
		return
	}
	if runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to tell the sizes apart")
	}
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte("model_list:\n  - model_name: demo\n    litellm_params:\n      model: mock/demo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  []string
		want string
	}{
		{[]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512"}, fmt.Sprint(1, " ", 400, " ", 384<<20)},
		{[]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=3538"}, fmt.Sprint(2, " ", 400, " ", 3538<<20/4*3)},
		{[]string{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512", "GOMAXPROCS=2", "GOGC=50", "GOMEMLIMIT=100MiB"}, fmt.Sprint(2, " ", 50, " ", 100<<20)},
		{nil, fmt.Sprint(runtime.NumCPU(), " ", 100, " ", int64(math.MaxInt64))},
	}
	for _, tt := range tests {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMain_SizesTheRuntimeToTheFunction$")
		cmd.Env = []string{"LAMBDAAPP_TEST_MAIN=runtime", EnvConfig + "=" + cfg, "HOME=" + t.TempDir(), "AWS_REGION=us-east-1"}
		cmd.Env = append(cmd.Env, tt.env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", tt.env, err)
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("%v: GOMAXPROCS, GOGC, memory limit = %s, want %s", tt.env, got, tt.want)
		}
	}
}

// A line logged with a request's context names the Lambda and API Gateway request ids, so
// it can be joined to the stage's access log.
func TestLogger_AddsRequestIDs(t *testing.T) {
	var buf strings.Builder
	log := newLogger(&buf)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-1"})
	r, err := lambdahttp.NewRequest(ctx, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/health",
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "apigw-1"}})
	if err != nil {
		t.Fatal(err)
	}
	log.With("fn", "x").InfoContext(r.Context(), "llm request")
	log.Info("no request")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || len(lines) != 2 {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if first["lambda_request_id"] != "lambda-1" || first["apigw_request_id"] != "apigw-1" || first["fn"] != "x" {
		t.Errorf("request line = %v, want both request ids", first)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil || second["lambda_request_id"] != nil || second["apigw_request_id"] != nil {
		t.Errorf("line without a request = %v (%v), want no ids", second, err)
	}
}
