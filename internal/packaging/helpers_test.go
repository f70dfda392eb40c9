// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package packaging

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const (
	dockerfileName   = "Dockerfile"
	dockerignoreName = ".dockerignore"
	builderConfig    = "builder-config.yaml"
)

// repoRoot is the repository's top directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// skipOrFail skips outside CI and fails under CI, where everything must be in place.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// binaryPath finds the built distribution (DEPLOYLENS_BINARY, else _build/otelcol-deploylens).
func binaryPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("DEPLOYLENS_BINARY")
	if path == "" {
		path = filepath.Join(repoRoot(t), "_build", "otelcol-deploylens")
	}
	if _, err := os.Stat(path); err != nil {
		skipOrFail(t, "the distribution is not built at %s: run `make build` (or `make test`) first: %v", path, err)
	}
	return path
}

// makefileOCBVersion is OCB_VERSION from the Makefile: the ocb every build must use.
func makefileOCBVersion(t testing.TB) string {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Makefile"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	re := regexp.MustCompile(`^OCB_VERSION\s*:?=\s*(\S+)\s*$`)
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if m := re.FindStringSubmatch(scanner.Text()); m != nil {
			return m[1]
		}
	}
	require.NoError(t, scanner.Err())
	t.Fatal("Makefile: no OCB_VERSION := line")
	return ""
}

// makefileOCBArgs are the arguments `make build` gives ocb ($(OCB) …).
func makefileOCBArgs(t testing.TB) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\t\$\(OCB\)\s+(.*)$`).FindSubmatch(raw)
	require.NotNil(t, m, "Makefile: no recipe line running $(OCB)")
	return strings.Fields(string(m[1]))
}

// distribution is the part of builder-config.yaml that says where ocb puts the binary.
type distribution struct {
	Name       string `yaml:"name"`
	OutputPath string `yaml:"output_path"`
	Version    string `yaml:"version"`
}

func readDistribution(t testing.TB) distribution {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), builderConfig))
	require.NoError(t, err)
	var cfg struct {
		Dist distribution `yaml:"dist"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg), builderConfig)
	require.NotEmpty(t, cfg.Dist.Name, "%s: dist::name", builderConfig)
	require.NotEmpty(t, cfg.Dist.OutputPath, "%s: dist::output_path", builderConfig)
	return cfg.Dist
}

// listener is an address the collector config makes the collector listen on.
type listener struct {
	// Path is the config key, e.g. receivers::otlp::protocols::grpc::endpoint.
	Path string
	Host string
	Port int
	// telemetry marks service::telemetry::metrics::readers[i]::pull::exporter::prometheus.
	telemetry bool
}

// listeners finds every address a collector config listens on: every `endpoint` under
// extensions and receivers, the `gate` endpoint of deployment exporters, and the pull
// readers of the collector's own metrics. Client endpoints (other exporters) are not listeners.
func listeners(t testing.TB, configYAML []byte) []listener {
	t.Helper()
	var cfg map[string]any
	require.NoError(t, yaml.Unmarshal(configYAML, &cfg))
	var out []listener
	add := func(path string, value any) {
		s, ok := value.(string)
		require.True(t, ok, "%s: endpoint is not a string: %v", path, value)
		host, port, err := net.SplitHostPort(s)
		require.NoError(t, err, "%s: %q", path, s)
		p, err := strconv.Atoi(port)
		require.NoError(t, err, "%s: port of %q", path, s)
		out = append(out, listener{Path: path, Host: host, Port: p})
	}
	var walk func(path string, node any)
	walk = func(path string, node any) {
		m, ok := node.(map[string]any)
		if !ok {
			return
		}
		for key, value := range m {
			if key == "endpoint" {
				add(path+"::"+key, value)
				continue
			}
			walk(path+"::"+key, value)
		}
	}
	for _, section := range []string{"extensions", "receivers"} {
		if m, ok := cfg[section].(map[string]any); ok {
			for id, c := range m {
				walk(section+"::"+id, c)
			}
		}
	}
	if exporters, ok := cfg["exporters"].(map[string]any); ok {
		for id, c := range exporters {
			if id != "deployment" && !strings.HasPrefix(id, "deployment/") {
				continue
			}
			if gate, ok := c.(map[string]any)["gate"].(map[string]any); ok {
				if endpoint, ok := gate["endpoint"]; ok {
					add("exporters::"+id+"::gate::endpoint", endpoint)
				}
			}
		}
	}
	service, _ := cfg["service"].(map[string]any)
	telemetry, _ := service["telemetry"].(map[string]any)
	metrics, _ := telemetry["metrics"].(map[string]any)
	readers, _ := metrics["readers"].([]any)
	for i, reader := range readers {
		path := fmt.Sprintf("service::telemetry::metrics::readers[%d]::pull::exporter::prometheus", i)
		pull, _ := reader.(map[string]any)["pull"].(map[string]any)
		exporter, _ := pull["exporter"].(map[string]any)
		prom, ok := exporter["prometheus"].(map[string]any)
		if !ok {
			continue
		}
		host, _ := prom["host"].(string)
		port, ok := prom["port"].(int)
		require.True(t, ok, "%s::port must be a number", path)
		out = append(out, listener{Path: path, Host: host, Port: port, telemetry: true})
	}
	return out
}
