package proctest

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestRun_KillsAProcessThatDoesNotAnswer(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "60")
	probe := fmt.Sprintf("http://127.0.0.1:%d", port)
	err = Run(cmd, probe, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "sleep did not answer on "+probe) {
		t.Fatalf("err = %v, want sleep did not answer on %s", err, probe)
	}
	if cmd.ProcessState == nil {
		t.Fatal("the process was not killed and waited for")
	}
}

func TestRun_ReportsAProgramThatCannotStart(t *testing.T) {
	err := Run(exec.Command("/nonexistent/server"), "http://127.0.0.1:1", time.Second)
	if err == nil || !strings.HasPrefix(err.Error(), "start server: ") {
		t.Fatalf("err = %v, want start server: ...", err)
	}
}

func TestShared_UsesTheRunningServerNamedByEnv(t *testing.T) {
	t.Setenv("PROCTEST_ENDPOINT", "http://127.0.0.1:9")
	started := 0
	s := &Shared{Env: "PROCTEST_ENDPOINT", Start: func() (*exec.Cmd, string, error) {
		started++
		return nil, "", nil
	}}
	for range 2 {
		if ep, err := s.Endpoint(); ep != "http://127.0.0.1:9" || err != nil {
			t.Fatalf("Endpoint() = %q, %v; want the env value", ep, err)
		}
	}
	if started != 0 {
		t.Errorf("Start called %d times, want 0", started)
	}
}

func TestShared_StartsOnceAndStops(t *testing.T) {
	t.Setenv("PROCTEST_ENDPOINT", "")
	started := 0
	var cmd *exec.Cmd
	s := &Shared{Env: "PROCTEST_ENDPOINT", Start: func() (*exec.Cmd, string, error) {
		started++
		cmd = exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			return nil, "", err
		}
		return cmd, "http://x", nil
	}}
	for range 2 {
		if ep, err := s.Endpoint(); ep != "http://x" || err != nil {
			t.Fatalf("Endpoint() = %q, %v; want http://x", ep, err)
		}
	}
	if started != 1 {
		t.Errorf("Start called %d times, want 1", started)
	}
	s.Stop()
	if cmd.ProcessState == nil {
		t.Error("Stop did not end the process")
	}
}
