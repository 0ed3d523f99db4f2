// Package functions_test runs the built bootstrap binaries under the Lambda Runtime Interface
// Emulator (aws-lambda-rie), invokes them with the sample events in events/ and checks the
// answers; it also logs each function's init and first-invoke durations as the emulator
// reports them.
package functions_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmgate/llmgate/internal/dynamotest"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

// rieModule is the emulator, pinned; the test installs it into the repository's
// bin/<module version>/, so a changed pin installs anew.
const rieModule = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

const masterKey = "sk-llmgate-events-master-key"

const config = `
model_list:
  - model_name: demo
    litellm_params: {model: mock/demo}
    model_info: {input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
`

func TestBootstrapsUnderTheRuntimeInterfaceEmulator(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("aws-lambda-rie runs only on Linux")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	rie := installRIE(t, root)
	dir := t.TempDir()
	configPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	_, table := dynamotest.NewTable(t)
	env := []string{
		"LLMGATE_CONFIG=" + configPath,
		"LLMGATE_TABLE=" + table,
		"LLMGATE_DYNAMODB_ENDPOINT=" + dynamotest.Endpoint(t),
		"LITELLM_MASTER_KEY=" + masterKey,
		"AWS_REGION=us-east-1",
		"AWS_LAMBDA_FUNCTION_TIMEOUT=60",
		"PATH=" + os.Getenv("PATH"),
	}

	tests := []struct {
		fn    string
		env   []string
		event string
		check func(t *testing.T, out []byte)
	}{
		{"completions", nil, "chat-stream.json", func(t *testing.T, out []byte) {
			prelude, body, ok := bytes.Cut(out, make([]byte, 8))
			var p struct {
				StatusCode int               `json:"statusCode"`
				Headers    map[string]string `json:"headers"`
			}
			if !ok || json.Unmarshal(prelude, &p) != nil {
				t.Fatalf("answer %q is not a streaming prelude + 8 NUL bytes + body", out)
			}
			if p.StatusCode != http.StatusOK || !strings.HasPrefix(p.Headers["Content-Type"], "text/event-stream") {
				t.Errorf("prelude = %s, want 200 text/event-stream", prelude)
			}
			if !bytes.Contains(body, []byte("chat.completion.chunk")) || !bytes.HasSuffix(bytes.TrimSpace(body), []byte("data: [DONE]")) {
				t.Errorf("body = %q, want SSE chunks ending in [DONE]", body)
			}
		}},
		{"completions", []string{"LLMGATE_LAMBDA_BUFFERED=1"}, "chat.json", proxyAnswer(http.StatusOK, `"object":"chat.completion"`)},
		{"admin", nil, "health-readiness.json", proxyAnswer(http.StatusOK, `healthy`)},
		{"admin", nil, "key-generate.json", proxyAnswer(http.StatusOK, `sk-events-replay-Q7xL2m9Tz4Kp8Wb3`)},
		{"rotator", nil, "rotator-scheduled.json", func(t *testing.T, out []byte) {
			if string(bytes.TrimSpace(out)) != "null" {
				t.Errorf("answer = %q, want null (a successful run)", out)
			}
		}},
	}
	built := map[string]string{}
	for _, tt := range tests {
		name := tt.fn + "/" + tt.event
		t.Run(name, func(t *testing.T) {
			if built[tt.fn] == "" {
				built[tt.fn] = buildBootstrap(t, root, tt.fn, filepath.Join(dir, tt.fn))
			}
			event, err := os.ReadFile(filepath.Join(root, "events", tt.event))
			if err != nil {
				t.Fatal(err)
			}
			emu := startRIE(t, rie, built[tt.fn], append(env, tt.env...))
			out := emu.invoke(t, event)
			tt.check(t, out)
			init, ok1 := emu.reported(initReport)
			invoke, ok2 := emu.reported(invokeDone)
			if !ok1 || !ok2 {
				t.Fatalf("no INIT REPORT or INVOKE RTDONE duration in the emulator's log:\n%s", emu.log())
			}
			t.Logf("%s: init %.1f ms, first invoke %.1f ms (INIT REPORT, INVOKE RTDONE under aws-lambda-rie, %s/%s)",
				tt.fn, init, invoke, runtime.GOOS, runtime.GOARCH)
		})
	}
}

// proxyAnswer checks a buffered API Gateway proxy response.
func proxyAnswer(status int, bodyContains string) func(t *testing.T, out []byte) {
	return func(t *testing.T, out []byte) {
		t.Helper()
		var resp struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("answer %q is not a proxy response: %v", out, err)
		}
		if resp.StatusCode != status || !strings.Contains(resp.Body, bodyContains) {
			t.Errorf("answer = %d %s, want %d with %s", resp.StatusCode, resp.Body, status, bodyContains)
		}
	}
}

func installRIE(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(root, "bin", path.Base(rieModule), "aws-lambda-rie")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	cmd := exec.Command("go", "install", rieModule)
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(bin))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s: %v\n%s", rieModule, err, out)
	}
	return bin
}

// buildBootstrap builds a function as make build does, for this machine's architecture.
func buildBootstrap(t *testing.T, root, fn, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags", "-s -w", "-o", out, "./functions/"+fn)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", fn, err, b)
	}
	return out
}

// emulator is one aws-lambda-rie process serving one bootstrap.
type emulator struct {
	addr string
	mu   sync.Mutex
	logs bytes.Buffer
}

func (e *emulator) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.Write(p)
}

func (e *emulator) log() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.logs.String()
}

// The emulator's log lines with the init phase's duration and the first invoke's.
var (
	initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)
	invokeDone = regexp.MustCompile(`INVOKE RTDONE\(status: \w+, produced bytes: \d+, duration: ([0-9.]+)ms\)`)
)

// reported is the duration in milliseconds on the first line of the log that re matches,
// waiting a little for it: the emulator may log an invoke's end after it answered.
func (e *emulator) reported(re *regexp.Regexp) (float64, bool) {
	var m []string
	for deadline := time.Now().Add(5 * time.Second); m == nil && time.Now().Before(deadline); {
		if m = re.FindStringSubmatch(e.log()); m == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if m == nil {
		return 0, false
	}
	var ms float64
	_, err := fmt.Sscan(m[1], &ms)
	return ms, err == nil
}

func startRIE(t *testing.T, rie, bootstrap string, env []string) *emulator {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	e := &emulator{addr: addr}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, "./bootstrap")
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = e, e
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aws-lambda-rie: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("aws-lambda-rie log:\n%s", e.log())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("aws-lambda-rie did not listen on %s:\n%s", addr, e.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *emulator) invoke(t *testing.T, event []byte) []byte {
	t.Helper()
	c := &http.Client{Timeout: 60 * time.Second}
	resp, err := c.Post("http://"+e.addr+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke: %d %q %v", resp.StatusCode, out, err)
	}
	return out
}
