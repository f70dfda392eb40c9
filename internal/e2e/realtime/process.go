// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package realtime replays scenarios from the scenario library in real time
// through the built distribution, with a real Alertmanager and a real
// Prometheus beside it, and scores what they saw: the alerts Alertmanager
// holds, the health scores Prometheus scraped and the rollout gate's
// verdicts. `make detect-e2e` (cmd/detect-e2e) runs a large subset; the
// e2e tests run a handful.
package realtime // import "github.com/deploylens/deploylens/internal/e2e/realtime"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a server binary started for a run.
type Process struct {
	Name    string
	cmd     *exec.Cmd
	output  *Buffer
	done    chan struct{}
	exitErr error
}

// Start runs argv with extra environment; the process dies with this one
// (Pdeathsig), even when the caller panics.
func Start(name string, env []string, argv ...string) (*Process, error) {
	p := &Process{Name: name, output: &Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...) //nolint:gosec,noctx // the binaries of the run, stopped by Stop
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Stop sends SIGTERM and waits up to grace for the exit (then kills); it
// returns the exit error, nil for a clean exit.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM", p.Name, grace)
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output is everything the process printed so far.
func (p *Process) Output() string { return p.output.String() }

// WaitReady polls url until it answers 200, the process exits or timeout passes.
func (p *Process) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if p.Exited() {
			return fmt.Errorf("%s exited at start (%w):\n%s", p.Name, p.exitErr, p.Output())
		}
		if status, err := Get(ctx, url); err == nil && status == http.StatusOK {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s after %s:\n%s", p.Name, url, timeout, p.Output())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Get fetches url and returns its HTTP status.
func Get(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// Buffer collects process output written from another goroutine.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *Buffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// errMissing marks a binary that is not installed.
var errMissing = errors.New("not installed")
