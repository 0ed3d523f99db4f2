// Package mototest gives tests an AWS Secrets Manager endpoint on moto server
// (`python3 -m moto.server`).
//
// The endpoint comes from LLMGATE_MOTO_ENDPOINT when set; otherwise the first test that asks
// starts moto server on a free loopback port, once per test binary, and Main stops it when the
// tests end. moto keeps one account's state for the whole process, so each test should name its
// secrets under its own prefix (Prefix).
package mototest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

var (
	once     sync.Once
	endpoint string
	startErr error
	proc     *exec.Cmd
)

// Main runs the tests and stops a moto server this binary started. Use it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop ends the moto server this binary started, if any.
func Stop() {
	if proc != nil && proc.Process != nil {
		_ = proc.Process.Kill()
		_ = proc.Wait()
		proc = nil
	}
}

// Endpoint returns the URL of a running moto server, starting one if needed.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		if e := os.Getenv("LLMGATE_MOTO_ENDPOINT"); e != "" {
			endpoint = e
			return
		}
		endpoint, startErr = start()
	})
	if startErr != nil {
		tb.Fatalf("mototest: start moto server: %v", startErr)
	}
	return endpoint
}

// SecretsManager returns a Secrets Manager client for the moto endpoint.
func SecretsManager(tb testing.TB) *secretsmanager.Client {
	tb.Helper()
	ep := Endpoint(tb)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(ep) })
}

// Prefix returns a secret name prefix no other test uses.
func Prefix(tb testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "test/" + hex.EncodeToString(b[:]) + "/"
}

// start launches moto server on a free loopback port and waits until it answers.
func start() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start python3 -m moto.server (pip install 'moto[server]'): %w", err)
	}
	proc = cmd
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return url, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	Stop()
	return "", fmt.Errorf("moto server did not answer on %s within 30s", url)
}
