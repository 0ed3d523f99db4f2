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
	"os/exec"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/llmgate/llmgate/internal/proctest"
)

// server is the moto server this binary shares between its tests.
var server = &proctest.Shared{Env: "LLMGATE_MOTO_ENDPOINT", Start: start}

// Stop ends the moto server this binary started, if any.
func Stop() { server.Stop() }

// Endpoint returns the URL of a running moto server, starting one if needed.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	endpoint, err := server.Endpoint()
	if err != nil {
		tb.Fatalf("mototest: start moto server: %v", err)
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
func start() (*exec.Cmd, string, error) {
	port, err := proctest.FreePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command("python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := proctest.Run(cmd, url+"/moto-api/", 30*time.Second); err != nil {
		return nil, "", fmt.Errorf("python3 -m moto.server (pip install 'moto[server]'): %w", err)
	}
	return cmd, url, nil
}
