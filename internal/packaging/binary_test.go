// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package packaging

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireStatic checks that the binary needs nothing from the image: no ELF interpreter, no
// shared library, and built with cgo off and -trimpath (as ocb builds it).
func requireStatic(t *testing.T, binary string) {
	t.Helper()
	f, err := elf.Open(binary)
	require.NoError(t, err, "%s is an ELF executable", binary)
	defer func() { _ = f.Close() }()
	for _, prog := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, prog.Type, "%s has a program interpreter (PT_INTERP): it is dynamically linked", binary)
		assert.NotEqual(t, elf.PT_DYNAMIC, prog.Type, "%s has a dynamic section (PT_DYNAMIC)", binary)
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "%s needs shared libraries (DT_NEEDED)", binary)

	info, err := buildinfo.ReadFile(binary)
	require.NoError(t, err, "%s carries Go build information", binary)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "0", settings["CGO_ENABLED"], "%s was built with CGO_ENABLED=0", binary)
	assert.Equal(t, "true", settings["-trimpath"], "%s was built with -trimpath (ocb's build)", binary)
	assert.Equal(t, "linux", settings["GOOS"])
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requireRunsLikeTheImage starts the binary the way the image does (ENTRYPOINT + CMD, the
// baked-in config) with an EMPTY environment and a working directory it cannot rely on,
// moves every listener of the config to a free 127.0.0.1 port with --set, waits until the
// health check, the rollout gate and the metrics endpoint answer, and requires a clean exit
// (status 0) on SIGTERM, as `docker stop` sends it.
func requireRunsLikeTheImage(t *testing.T, binary string) {
	t.Helper()
	img := inspectDockerfile(t)
	configPath := filepath.Join(repoRoot(t), img.configSource)
	raw, err := os.ReadFile(configPath)
	require.NoError(t, err)

	args := []string{"--config", configPath}
	urls := map[string]string{} // what to poll, by listener
	for _, l := range listeners(t, raw) {
		port := freePort(t)
		if l.telemetry {
			require.Equal(t, "service::telemetry::metrics::readers[0]::pull::exporter::prometheus", l.Path,
				"one pull reader (--set replaces the whole readers list)")
			args = append(args, fmt.Sprintf("--set=service::telemetry::metrics::readers=[{pull: {exporter: {prometheus: {host: 127.0.0.1, port: %d}}}}]", port))
			urls["metrics"] = fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
			continue
		}
		args = append(args, fmt.Sprintf("--set=%s=127.0.0.1:%d", l.Path, port))
		switch {
		case strings.HasPrefix(l.Path, "extensions::health_check"):
			urls["health"] = fmt.Sprintf("http://127.0.0.1:%d/", port)
		case strings.HasSuffix(l.Path, "::gate::endpoint"):
			urls["gate"] = fmt.Sprintf("http://127.0.0.1:%d/v1/status", port)
		}
	}
	require.Contains(t, urls, "health", "%s enables the health_check extension", img.configSource)

	cmd := exec.Command(binary, args...)
	cmd.Env = []string{} // empty, not inherited: the image sets no variable
	cmd.Dir = t.TempDir()
	output := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", output.String())
		}
	})

	client := &http.Client{Timeout: 2 * time.Second}
	for _, name := range []string{"health", "gate", "metrics"} {
		url, ok := urls[name]
		if !ok {
			continue
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			select {
			case <-exited:
				t.Fatalf("the collector exited at start (%v)", waitErr)
			default:
			}
			resp, err := client.Get(url)
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			require.True(t, time.Now().Before(deadline), "%s (%s) did not answer 200 within 60s", name, url)
			time.Sleep(100 * time.Millisecond)
		}
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-exited:
		require.NoError(t, waitErr, "the collector exits 0 on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("the collector did not stop within 30s of SIGTERM")
	}
}

// TestDistributionIsStatic checks the binary `make build` made: the same ocb, config and
// flags as the image's build stage.
func TestDistributionIsStatic(t *testing.T) {
	requireStatic(t, binaryPath(t))
}

func TestDistributionRunsWithEmptyEnvironment(t *testing.T) {
	requireRunsLikeTheImage(t, binaryPath(t))
}

// TestImageBuildRecipe does what the image's build stage does, without Docker: the build
// context as .dockerignore leaves it, ocb of the Makefile's version with the Dockerfile's
// arguments and CGO_ENABLED=0, then checks the binary it made. After `make build` the Go
// build cache holds every package, so it takes seconds; from a cold cache, minutes (-short skips it).
func TestImageBuildRecipe(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the image build recipe")
	}
	root := repoRoot(t)
	img := inspectDockerfile(t)
	dist := readDistribution(t)
	ocb := os.Getenv("OCB")
	if ocb == "" {
		ocb = filepath.Join(root, "bin", "ocb-"+makefileOCBVersion(t))
	}
	if _, err := os.Stat(ocb); err != nil {
		skipOrFail(t, "ocb is not installed at %s: run `make tools` (or set OCB): %v", ocb, err)
	}

	f, err := os.Open(filepath.Join(root, dockerignoreName))
	require.NoError(t, err)
	rules, err := ParseDockerignore(f)
	_ = f.Close()
	require.NoError(t, err)
	buildContext := filepath.Join(t.TempDir(), "src")
	require.NoError(t, CopyContext(root, buildContext, rules))

	ctx, cancel := contextWithTimeout(t, 20*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, ocb, img.builderArgs...)
	cmd.Dir = buildContext
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "ocb %s in the build context:\n%s", strings.Join(img.builderArgs, " "), out)
	t.Logf("ocb built the image's binary in %s", time.Since(start).Round(time.Second))

	binary := filepath.Join(buildContext, filepath.FromSlash(dist.OutputPath), dist.Name)
	requireStatic(t, binary)
	requireRunsLikeTheImage(t, binary)
	if made, err := fileDigest(filepath.Join(root, "_build", dist.Name)); err == nil {
		built, err := fileDigest(binary)
		require.NoError(t, err)
		t.Logf("same bytes as _build/%s (make build): %t", dist.Name, made == built)
	}
}

func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < d {
		return context.WithDeadline(context.Background(), deadline.Add(-10*time.Second))
	}
	return context.WithTimeout(context.Background(), d)
}
