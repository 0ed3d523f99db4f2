// Package lambdaapp builds the app.App a Lambda function serves, the same way for every
// function: the JSON logger, secrets from Secrets Manager into the environment
// (secretenv.Env), the bundled config.yaml (EnvConfig), then app.New. Main does it for a
// function's main.
package lambdaapp

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/lambdahttp"
	"github.com/llmgate/llmgate/internal/metrics"
	"github.com/llmgate/llmgate/internal/secretenv"
)

// EnvConfig names the environment variable holding the config file's path. When it is unset
// the function reads config.yaml from its working directory, the deployment package's root
// (/var/task), where `make build` bundles it next to bootstrap.
const EnvConfig = "LLMGATE_CONFIG"

// DefaultConfigPath is the config file read when EnvConfig is unset.
const DefaultConfigPath = "config.yaml"

// Logger returns a JSON logger on stderr at the level Lambda's log configuration asks for
// (AWS_LAMBDA_LOG_LEVEL; INFO when unset). A line logged with a request's context carries
// lambda_request_id and apigw_request_id, which join it to the stage's access log
// (lambdaRequestId, requestId).
func Logger() *slog.Logger {
	return newLogger(os.Stderr)
}

func newLogger(w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToUpper(os.Getenv("AWS_LAMBDA_LOG_LEVEL")) {
	case "TRACE", "DEBUG":
		level = slog.LevelDebug
	case "WARN":
		level = slog.LevelWarn
	case "ERROR", "FATAL":
		level = slog.LevelError
	}
	return slog.New(requestIDs{slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})})
}

// requestIDs adds the Lambda and API Gateway request ids of the record's context.
type requestIDs struct{ slog.Handler }

func (h requestIDs) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok && lc.AwsRequestID != "" {
		r.AddAttrs(slog.String("lambda_request_id", lc.AwsRequestID))
	}
	id := lambdahttp.APIRequestID(ctx)
	if rc, ok := core.GetAPIGatewayContextFromContext(ctx); ok && id == "" {
		id = rc.RequestID // the admin function's aws-lambda-go-api-proxy
	}
	if id != "" {
		r.AddAttrs(slog.String("apigw_request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDs) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDs{h.Handler.WithAttrs(as)}
}

func (h requestIDs) WithGroup(name string) slog.Handler { return requestIDs{h.Handler.WithGroup(name)} }

// New loads the secrets listed in secretenv.Env, then the config, and builds the app.
func New(ctx context.Context, log *slog.Logger) (*app.App, error) {
	if spec := os.Getenv(secretenv.Env); strings.TrimSpace(spec) != "" {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("load AWS config: %w", err)
		}
		if err := secretenv.Load(ctx, secretsmanager.NewFromConfig(awsCfg), spec); err != nil {
			return nil, fmt.Errorf("load secrets: %w", err)
		}
	}
	path := os.Getenv(EnvConfig)
	if path == "" {
		path = DefaultConfigPath
	}
	cfg, warnings, err := config.Load(path)
	for _, w := range warnings {
		log.WarnContext(ctx, "config", "warning", w)
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	// Metrics go to the function's log as EMF lines, which CloudWatch turns into metrics.
	a, err := app.New(ctx, cfg, log, app.WithMetrics(metrics.NewEMF(os.Stdout), nil))
	if err != nil {
		return nil, fmt.Errorf("build app: %w", err)
	}
	return a, nil
}

// mbPerVCPU is the memory at which Lambda gives a function one vCPU-second per second: CPU is
// proportional to memory, while the guest shows two vCPUs up to 3,008 MB.
const mbPerVCPU = 1769

// gcPercent is a function's GOGC. A full-path call allocates ~185 KB, most of it in the AWS
// SDK, on a live heap of a few MB, so at the default 100 the collector ran every few dozen
// calls and took 110-140 µs of a call's CPU; at 400, 25-30 µs (BenchmarkFullPath,
// gc-cpu-µs/op). The heap may grow to five times the live heap instead of twice; memoryLimit
// bounds it.
const gcPercent = 400

// tuneRuntime sizes the Go runtime to the Lambda function it runs in, from the memory Lambda
// gives it (AWS_LAMBDA_FUNCTION_MEMORY_SIZE); outside Lambda it does nothing, and an
// environment variable the Go runtime reads (GOMAXPROCS, GOGC, GOMEMLIMIT) wins over its
// setting:
//   - GOMAXPROCS: the whole vCPUs the memory pays for, at least one. An execution environment
//     serves one invocation at a time, whose work waits on DynamoDB and the upstream; with a
//     second P, each hand-off between the goroutines of an HTTP round trip wakes and parks
//     another thread, which costs a 512 MB function's 0.29 vCPU-second per second for
//     nothing: a full-path call used ~30 % less CPU with one (BenchmarkFullPath -cpu 1 vs 2,
//     about four DynamoDB requests per call).
//   - GOGC: gcPercent.
//   - GOMEMLIMIT: three quarters of the memory, so the collector works harder before a larger
//     heap could run the function out of memory.
func tuneRuntime(lookup func(string) (string, bool)) {
	v, ok := lookup("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
	mb, err := strconv.Atoi(v)
	if !ok || err != nil || mb <= 0 {
		return
	}
	if _, set := lookup("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(max(1, mb/mbPerVCPU))
	}
	if _, set := lookup("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	if _, set := lookup("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(int64(mb) << 20 / 4 * 3)
	}
}

// Main is a Lambda function's main: it sizes the Go runtime to the function (tuneRuntime),
// builds the app with Logger and New and hands both to start (which calls lambda.Start or
// lambdahttp.Start). When the app cannot be built it logs the error and exits with status 1,
// so Lambda reports the init failure.
func Main(start func(a *app.App, log *slog.Logger)) {
	tuneRuntime(os.LookupEnv)
	log := Logger()
	a, err := New(context.Background(), log)
	if err != nil {
		log.Error("init failed", "error", err)
		os.Exit(1)
	}
	start(a, log)
}
