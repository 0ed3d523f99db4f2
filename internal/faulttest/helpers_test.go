package faulttest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/dynamoproxy"
	"github.com/llmgate/llmgate/internal/dynamotest"
	"github.com/llmgate/llmgate/internal/metrics/prom"
	"github.com/llmgate/llmgate/internal/proctest"
	"github.com/llmgate/llmgate/internal/store"
)

func TestMain(m *testing.M) { dynamotest.Main(m) }

const masterKey = "sk-faulttest-master-key"

// Prices of the test models, per token.
const (
	inputPrice  = 0.000001
	outputPrice = 0.000002
)

// server is llmgate's handler as internal/app builds it, served on a loopback port in this
// process.
type server struct {
	app *app.App
	srv *httptest.Server
	hc  *http.Client
	// reader reads the ledger; behind a fault proxy it goes around the proxy.
	reader *store.Store
	// metrics holds the Prometheus series, as the local server's /metrics serves them.
	metrics *prom.Recorder
	// logs holds every log line of the gateway, as JSON.
	logs *proctest.LogBuffer
}

// lines returns the log records whose msg starts with msg.
func (g *server) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(g.logs.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON (%v): %s", err, line)
		}
		if m, _ := rec["msg"].(string); strings.HasPrefix(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

// deployment is one model_list entry of a test config, served by a fake upstream.
type deployment struct {
	group, id, apiBase string
}

// configYAML is a LiteLLM-format config: the deployments (OpenAI-compatible, priced, with a
// 1 s timeout so a hanging upstream fails fast), a master key, and extra top-level YAML
// (router_settings, ...).
func configYAML(deps []deployment, extra string) string {
	var b strings.Builder
	b.WriteString("model_list:\n")
	for _, d := range deps {
		fmt.Fprintf(&b, `  - model_name: %s
    litellm_params:
      model: openai/%s
      api_base: %s
      api_key: sk-fake-upstream
      timeout: 1
    model_info:
      id: %s
      input_cost_per_token: %g
      output_cost_per_token: %g
`, d.group, d.group, d.apiBase, d.id, inputPrice, outputPrice)
	}
	fmt.Fprintf(&b, "general_settings:\n  master_key: %s\n%s", masterKey, extra)
	return b.String()
}

// startGateway builds the app from cfgYAML (the process environment is not consulted, so a
// developer's LLMGATE_* or LITELLM_* variables cannot change the test) on DynamoDB at
// endpoint ("" for the shared DynamoDB Local, with a fresh table).
func startGateway(t *testing.T, endpoint, cfgYAML string) *server {
	t.Helper()
	cfg, _, err := config.Parse([]byte(cfgYAML), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("parse config: %v\n%s", err, cfgYAML)
	}
	if endpoint == "" {
		_, table := dynamotest.NewTable(t)
		cfg.Settings.DynamoDBEndpoint, cfg.Settings.TableName = dynamotest.Endpoint(t), table
	} else {
		cfg.Settings.DynamoDBEndpoint, cfg.Settings.TableName = endpoint, dynamotest.TableName(t)
	}
	return serve(t, cfg, endpoint != "")
}

// another is a second gateway process on g's table and config, with its own caches: what
// one instance changes, the other learns only from the table.
func (g *server) another(t *testing.T) *server {
	t.Helper()
	return serve(t, g.app.Config, false)
}

// serve starts a gateway on cfg (creating its table when create is set).
func serve(t *testing.T, cfg *config.Config, create bool) *server {
	t.Helper()
	logs := &proctest.LogBuffer{}
	log := slog.New(slog.NewMultiHandler(
		slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}),
		slog.NewJSONHandler(logs, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pm := prom.New()
	a, err := app.New(ctx, cfg, log, app.WithMetrics(pm, pm.Handler()))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	if create {
		if err := a.Store.EnsureTable(ctx); err != nil {
			t.Fatalf("create table: %v", err)
		}
	}
	srv := httptest.NewServer(a.Handler())
	g := &server{app: a, srv: srv, hc: &http.Client{Timeout: 30 * time.Second}, reader: a.Store, metrics: pm, logs: logs}
	t.Cleanup(func() {
		g.hc.CloseIdleConnections()
		srv.Close()
	})
	return g
}

// faultRate is the share of DynamoDB calls that fail (conflicts, throttles) in the tests
// run behind a fault proxy, as the issue of production scale asks them to survive.
const faultRate = 0.2

// startFaultyGateway is startGateway on a fresh table behind a dynamoproxy that injects
// TransactionConflict, ProvisionedThroughputExceeded and Throttling once the test calls
// SetRate (so setup through the admin API is not disturbed). The ledger is read around it.
func startFaultyGateway(t *testing.T, cfgYAML string) (*server, *dynamoproxy.Proxy) {
	t.Helper()
	p, err := dynamoproxy.Start(dynamoproxy.Options{Target: dynamotest.Endpoint(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	g := startGateway(t, p.URL(), cfgYAML)
	direct := dynamotest.Client(t)
	g.reader = store.NewWithClient(direct, g.app.Store.Table())
	t.Cleanup(func() {
		_, _ = direct.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(g.app.Store.Table())})
	})
	return g, p
}

// counter sums the Prometheus counter name over the series whose labels include want, as
// GET /metrics serves it.
func (g *server) counter(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	g.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	var sum float64
series:
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
				continue series
			}
		}
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// do sends a JSON request with the key and returns the status, headers and body.
func (g *server) do(ctx context.Context, method, path, key, body string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, g.srv.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// generateKey creates a virtual key through POST /key/generate with params (JSON) and returns
// the key and its hash.
func (g *server) generateKey(t *testing.T, params string) (key, token string) {
	t.Helper()
	status, _, body, err := g.do(context.Background(), http.MethodPost, "/key/generate", masterKey, params)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST /key/generate %s: status %d, error %v: %s", params, status, err, body)
	}
	var out struct {
		Key   string `json:"key"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Key == "" || out.Token == "" {
		t.Fatalf("POST /key/generate: no key and token in %s", body)
	}
	return out.Key, out.Token
}

// chatBody is a chat request for model; stream asks for a streamed answer.
func chatBody(model string, stream bool) string {
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Hello"}],"max_tokens":64,"stream":%t}`, model, stream)
}

// apiError is the OpenAI error envelope.
type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    string  `json:"code"`
	} `json:"error"`
}

// decodeError parses an OpenAI error body, failing the test if it is not one.
func decodeError(t *testing.T, body []byte) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Type == "" || e.Error.Message == "" {
		t.Fatalf("answer is not an OpenAI error (type and message required): %s", body)
	}
	return e
}

// ledger is what the store says a key spent, next to what its spend logs add up to.
type ledger struct {
	spend    float64 // key record
	reserved float64 // what calls not yet settled hold
	inflight int64   // parallel-request leases held
	logs     []store.SpendLog
	logSum   float64
}

func (g *server) ledger(t *testing.T, token string) ledger {
	t.Helper()
	ctx := context.Background()
	// Logs first: a settle writes the log with (or, when the key is the only record charged,
	// just before) the key's spend, so a key read after its logs that holds no reservation
	// holds every settle they show (read before, it may miss the last ones).
	logs, err := g.reader.SpendLogs(ctx, store.SpendLogFilter{APIKey: token})
	if err != nil {
		t.Fatalf("read spend logs: %v", err)
	}
	k, err := g.reader.GetKey(ctx, token)
	if err != nil {
		t.Fatalf("read key: %v", err)
	}
	l := ledger{spend: k.Spend, reserved: k.Reserved, inflight: k.Limits.Inflight, logs: logs}
	for _, s := range logs {
		l.logSum += s.Spend
	}
	return l
}

// settledLedger waits until the key holds no lease and no reservation and has logs spend
// logs (calls settle after their answer is sent), then returns its ledger; it fails the test
// if that does not happen within 15 s (a settle retries conflicts and throttles for up to 10 s).
func (g *server) settledLedger(t *testing.T, token string, logs int) ledger {
	t.Helper()
	var l ledger
	if !eventually(15*time.Second, func() bool { l = g.ledger(t, token); return l.inflight == 0 && l.reserved == 0 && len(l.logs) == logs }) {
		t.Fatalf("calls not settled after 15 s: %d leases held, %g reserved, %d spend logs; want 0, 0 and %d", l.inflight, l.reserved, len(l.logs), logs)
	}
	return l
}

// checkReconciled fails the test unless the key's spend equals the sum of its spend logs and
// it holds no parallel-request lease.
func (l ledger) checkReconciled(t *testing.T) {
	t.Helper()
	if math.Abs(l.spend-l.logSum) > 1e-9 {
		t.Errorf("key spend %.10f, spend logs add up to %.10f (%d logs); want equal", l.spend, l.logSum, len(l.logs))
	}
	if l.inflight != 0 {
		t.Errorf("key holds %d parallel-request leases after every call ended; want 0", l.inflight)
	}
}

// eventually polls cond every 20 ms until it holds or d passes, and reports whether it held.
func eventually(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requestGoroutines returns the goroutines that run llmgate code (a frame or the creator in
// github.com/llmgate/llmgate, other than this package's tests and the fake upstream), and
// their stacks for a failure message. Idle pooled connections of the HTTP and DynamoDB
// clients are the standard library's and do not count.
func requestGoroutines() (int, string) {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var stacks bytes.Buffer
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		s := string(g)
		if !strings.Contains(s, "github.com/llmgate/llmgate/internal/") {
			continue
		}
		own := strings.Contains(s, "internal/faulttest.") || strings.Contains(s, "internal/fakeopenai.")
		if own && !strings.Contains(s, "internal/gateway.") && !strings.Contains(s, "internal/router.") {
			continue
		}
		n++
		stacks.WriteString(s)
		stacks.WriteString("\n\n")
	}
	return n, stacks.String()
}
