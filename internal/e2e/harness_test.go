// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package e2e runs the ocb-built distribution (`make build`) as a user would:
// a real process on free 127.0.0.1 ports, real HTTP and OTLP clients, the
// file exporter's output read back, and a clean stop on SIGTERM.
package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/e2e/realtime"
)

// repoRoot is the repository's top directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// binaryPath finds the built distribution. Outside CI a missing binary skips
// the test with a hint; under CI it fails, since CI must have built it.
func binaryPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("DEPLOYLENS_BINARY")
	if path == "" {
		path = filepath.Join(repoRoot(t), "_build", "otelcol-deploylens")
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the distribution is not built at %s (CI runs `make test`, which builds it): %v", path, err)
		}
		t.Skipf("the distribution is not built at %s: run `make build` (or `make test`) first", path)
	}
	return path
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	port, err := realtime.FreePort()
	require.NoError(t, err)
	return port
}

// collector is one running otelcol-deploylens process.
type collector struct {
	t          testing.TB
	wrap       []string
	cmd        *exec.Cmd
	configPath string
	output     *realtime.Buffer
	done       chan struct{}
	exitErr    error
	// HealthPort is the health_check extension's port; TelemetryPort serves
	// the collector's own metrics in Prometheus format.
	HealthPort    int
	TelemetryPort int
}

// collectorConfig is the YAML of a test config. Every config gets the
// health_check extension and the collector's own metrics on free ports,
// through the placeholders ${HEALTH_PORT} and ${TELEMETRY_PORT}; extensions
// and telemetry are appended, so configs must not set service::extensions
// or service::telemetry themselves.
type collectorConfig struct {
	YAML string
	Env  map[string]string
	// Extensions are enabled beside health_check (their config is in YAML).
	Extensions []string
	// Wrap runs the binary through a command (e.g. into a namespace): the
	// collector's argv is appended to it.
	Wrap []string
}

const commonConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:${HEALTH_PORT}
`

const commonService = `
  extensions: [${EXTENSIONS}]
  telemetry:
    logs:
      level: info
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: ${TELEMETRY_PORT}
`

// startCollector starts the binary on the config and waits until its health
// check answers. The process is stopped (and its exit checked) at cleanup.
func startCollector(t testing.TB, cfg collectorConfig) *collector {
	t.Helper()
	c := &collector{t: t, wrap: cfg.Wrap, output: &realtime.Buffer{}, done: make(chan struct{}), HealthPort: freePort(t), TelemetryPort: freePort(t)}
	yaml := cfg.YAML
	require.Contains(t, yaml, "\nservice:\n", "a test config has a service section")
	yaml = strings.Replace(yaml, "\nservice:\n", "\nservice:"+commonService, 1)
	if strings.HasPrefix(strings.TrimLeft(yaml, "\n"), "extensions:\n") {
		// Merge health_check into the config's own extensions section.
		yaml = strings.Replace(yaml, "extensions:\n", strings.TrimPrefix(commonConfig, "\n"), 1)
	} else {
		yaml = commonConfig + yaml
	}
	yaml = strings.ReplaceAll(yaml, "${EXTENSIONS}", strings.Join(append([]string{"health_check"}, cfg.Extensions...), ", "))
	yaml = strings.ReplaceAll(yaml, "${HEALTH_PORT}", strconv.Itoa(c.HealthPort))
	yaml = strings.ReplaceAll(yaml, "${TELEMETRY_PORT}", strconv.Itoa(c.TelemetryPort))
	c.configPath = filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(c.configPath, []byte(yaml), 0o600))
	c.start(cfg.Env)
	t.Cleanup(func() {
		if c.running() {
			c.Stop()
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", c.output.String())
		}
	})
	return c
}

func (c *collector) start(env map[string]string) {
	c.t.Helper()
	c.done = make(chan struct{})
	argv := append(append([]string{}, c.wrap...), binaryPath(c.t), "--config", c.configPath)
	c.cmd = exec.Command(argv[0], argv[1:]...)
	c.cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	for k, v := range env {
		c.cmd.Env = append(c.cmd.Env, k+"="+v)
	}
	// The collector dies with the test binary, even when a test panics.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd.Stdout = c.output
	c.cmd.Stderr = c.output
	require.NoError(c.t, c.cmd.Start())
	go func() {
		c.exitErr = c.cmd.Wait()
		close(c.done)
	}()
	healthURL := fmt.Sprintf("http://127.0.0.1:%d/", c.HealthPort)
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-c.done:
			c.t.Fatalf("collector exited at start (%v):\n%s", c.exitErr, c.output.String())
		default:
		}
		resp, err := http.Get(healthURL)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("collector not healthy after 60s:\n%s", c.output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Restart stops the process cleanly (unless it is stopped already) and
// starts it again on the same config.
func (c *collector) Restart(env map[string]string) {
	c.t.Helper()
	if c.running() {
		c.Stop()
	}
	c.start(env)
}

func (c *collector) running() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and requires a clean exit (status 0) within 30 seconds.
func (c *collector) Stop() {
	c.t.Helper()
	require.NoError(c.t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		c.t.Fatalf("collector did not stop within 30s of SIGTERM:\n%s", c.output.String())
	}
	require.NoError(c.t, c.exitErr, "collector exits 0 on SIGTERM")
}

// Kill sends SIGKILL (no shutdown, no final flush) and waits for the exit.
func (c *collector) Kill() {
	c.t.Helper()
	require.NoError(c.t, c.cmd.Process.Signal(syscall.SIGKILL))
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("collector still running 10s after SIGKILL")
	}
}

// PID is the running process's id.
func (c *collector) PID() int { return c.cmd.Process.Pid }

// Output is everything the process printed so far.
func (c *collector) Output() string { return c.output.String() }

// SelfMetrics returns the collector's own metrics page (Prometheus text).
func (c *collector) SelfMetrics() string {
	c.t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.TelemetryPort))
	require.NoError(c.t, err)
	defer func() { _ = resp.Body.Close() }()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	require.NoError(c.t, err)
	return b.String()
}

// startServer runs a server binary (Alertmanager, Prometheus) until the test
// ends: it dies with the test binary, is stopped with SIGTERM at cleanup, and
// its output is logged when the test failed.
func startServer(t *testing.T, name string, argv ...string) {
	t.Helper()
	p, err := realtime.Start(name, nil, argv...)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Output())
		}
	})
}

// waitReady polls url until it answers 200.
func waitReady(t *testing.T, name, url string) {
	t.Helper()
	eventually(t, 30*time.Second, name+" ready", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fileLines reads the complete JSON lines the file exporter wrote so far (a
// line still being written, without its newline, is left for the next read);
// a missing file is empty.
func fileLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	if end := bytes.LastIndexByte(data, '\n'); end >= 0 {
		data = data[:end]
	} else {
		return nil
	}
	var lines [][]byte
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			lines = append(lines, line)
		}
	}
	return lines
}

// readLogs decodes the file exporter's logs output into one plog.Logs.
func readLogs(t testing.TB, path string) plog.Logs {
	t.Helper()
	out := plog.NewLogs()
	var u plog.JSONUnmarshaler
	decodeLines(t, path, u.UnmarshalLogs, func(l plog.Logs) { l.ResourceLogs().MoveAndAppendTo(out.ResourceLogs()) })
	return out
}

// decodeLines decodes each complete line of the file exporter's output at
// path and hands it to add.
func decodeLines[T any](t testing.TB, path string, decode func([]byte) (T, error), add func(T)) {
	t.Helper()
	for _, line := range fileLines(t, path) {
		v, err := decode(line)
		require.NoError(t, err)
		add(v)
	}
}

// lifecycleRecord is one deployment.lifecycle record flattened for assertions.
type lifecycleRecord struct {
	Resource map[string]any
	Attrs    map[string]any
	Time     time.Time
	Body     string
}

// lifecycleRecords lists the deployment.lifecycle records in logs.
func lifecycleRecords(logs plog.Logs) []lifecycleRecord {
	var out []lifecycleRecord
	for i := 0; i < logs.ResourceLogs().Len(); i++ {
		rl := logs.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if lr.EventName() != "deployment.lifecycle" {
					continue
				}
				out = append(out, lifecycleRecord{
					Resource: rl.Resource().Attributes().AsRaw(),
					Attrs:    lr.Attributes().AsRaw(),
					Time:     lr.Timestamp().AsTime(),
					Body:     lr.Body().AsString(),
				})
			}
		}
	}
	return out
}
