// Package proctest starts local server processes for tests (DynamoDB Local, moto server): on
// a free loopback port, killed with the test binary, and waited for until they answer HTTP.
package proctest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// FreePort returns a loopback TCP port that is free now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Run starts cmd and waits until a GET of probe gets an answer, for at most wait. The process
// dies with the test binary, even when a timeout kills the binary (Pdeathsig), and Run kills
// it when it does not answer in time.
func Run(cmd *exec.Cmd, probe string, wait time.Duration) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(cmd.Path), err)
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		resp, err := http.Get(probe)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	Kill(cmd)
	return fmt.Errorf("%s did not answer on %s within %.0fs", filepath.Base(cmd.Path), probe, wait.Seconds())
}

// Kill kills a process Run started and waits for it to end.
func Kill(cmd *exec.Cmd) {
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

// Shared is a server a test binary starts at most once, on the first Endpoint call, unless
// the environment variable Env names one already running.
type Shared struct {
	Env string
	// Start starts the server and returns its process and endpoint URL.
	Start func() (*exec.Cmd, string, error)

	once     sync.Once
	endpoint string
	err      error
	mu       sync.Mutex
	proc     *exec.Cmd
}

// Endpoint returns the server's URL, starting it on the first call.
func (s *Shared) Endpoint() (string, error) {
	s.once.Do(func() {
		if e := os.Getenv(s.Env); e != "" {
			s.endpoint = e
			return
		}
		var cmd *exec.Cmd
		cmd, s.endpoint, s.err = s.Start()
		s.mu.Lock()
		s.proc = cmd
		s.mu.Unlock()
	})
	return s.endpoint, s.err
}

// Stop kills the server if this binary started it.
func (s *Shared) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	Kill(s.proc)
	s.proc = nil
}
