// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package k8s

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// TestThreeTiers runs the agent, gateway and gate configs of deploy/kubernetes as they are,
// except for addresses: every listener on a free 127.0.0.1 port, the agent's DNS resolver
// replaced by a static list of the two gateways, the gateways' gate-N exporters pointed at
// gate N, backends and Alertmanagers at a closed port. Deployment events posted to the agent
// must each be applied by exactly one gateway, both gates must learn every service, and
// application logs sent beside them must not reach the gates.
func TestThreeTiers(t *testing.T) {
	binary := binaryPath(t)
	configs := map[string]collectorConfig{}
	for _, cfg := range manifestConfigs(t, loadManifests(t)) {
		configs[cfg.where] = cfg
	}
	pick := func(file, key string) collectorConfig {
		t.Helper()
		for where, cfg := range configs {
			if strings.HasPrefix(where, filepath.Join("deploy", "kubernetes", file)+":") && strings.HasSuffix(where, " key "+key) {
				return cfg
			}
		}
		t.Fatalf("no config %s in %s", key, file)
		return collectorConfig{}
	}
	closed := freePort(t) // nothing listens there: backends and Alertmanagers

	var gateOTLP, gateHTTP, gateMetrics [2]int
	for i := range 2 {
		cfg := loopback(t, pick("gate.yaml", "gate.yaml"))
		gateOTLP[i] = cfg.ports["receivers::otlp::protocols::grpc::endpoint"]
		gateHTTP[i] = cfg.ports["exporters::deployment::gate::endpoint"]
		gateMetrics[i] = cfg.ports["telemetry"]
		setPath(t, cfg.doc, []any{fmt.Sprintf("http://127.0.0.1:%d", closed)}, "exporters", "deployment", "alertmanager", "endpoints")
		cfg.start(t, binary, fmt.Sprintf("gate-%d", i))
	}

	var gatewayOTLP, gatewayMetrics [2]int
	for i := range 2 {
		cfg := loopback(t, pick("gateway.yaml", "gateway.yaml"))
		gatewayOTLP[i] = cfg.ports["receivers::otlp::protocols::grpc::endpoint"]
		gatewayMetrics[i] = cfg.ports["telemetry"]
		exporters := cfg.doc["exporters"].(map[string]any)
		for id, exporter := range exporters {
			e := exporter.(map[string]any)
			switch id {
			case "otlp_grpc/gate-0", "otlp_grpc/gate-1":
				n, _ := strconv.Atoi(id[len(id)-1:])
				require.Contains(t, e["endpoint"], fmt.Sprintf("deploylens-gate-%d.deploylens-gate.", n), "%s sends to gate %d", id, n)
				e["endpoint"] = fmt.Sprintf("127.0.0.1:%d", gateOTLP[n])
			case "prometheus_remote_write":
				e["http"].(map[string]any)["endpoint"] = fmt.Sprintf("http://127.0.0.1:%d/api/v1/write", closed)
			default:
				e["endpoint"] = fmt.Sprintf("127.0.0.1:%d", closed)
			}
		}
		cfg.start(t, binary, fmt.Sprintf("gateway-%d", i))
	}

	agent := loopback(t, pick("agent.yaml", "agent.yaml"))
	resolver := agent.doc["exporters"].(map[string]any)["load_balancing"].(map[string]any)["resolver"].(map[string]any)
	require.Contains(t, resolver, "dns", "the agent finds the gateways through DNS")
	delete(resolver, "dns")
	resolver["static"] = map[string]any{"hostnames": []any{
		fmt.Sprintf("127.0.0.1:%d", gatewayOTLP[0]), fmt.Sprintf("127.0.0.1:%d", gatewayOTLP[1]),
	}}
	agent.start(t, binary, "agent")

	services := []string{"checkout", "cart", "search", "payments", "catalog", "shipping", "users", "ads"}
	// One application log record per service (OTLP/HTTP JSON): data the gates must not get.
	otlpLogs := fmt.Sprintf("http://127.0.0.1:%d/v1/logs", agent.ports["receivers::otlp::protocols::http::endpoint"])
	for _, service := range services {
		body := fmt.Sprintf(`{"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": %q}}]},
			"scopeLogs": [{"logRecords": [{"body": {"stringValue": "order placed"}}]}]}]}`, service)
		resp, err := http.Post(otlpLogs, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "the agent takes the log of %s", service)
	}
	// And one span per service: it must land on the gateway that gets the service's events.
	otlpTraces := fmt.Sprintf("http://127.0.0.1:%d/v1/traces", agent.ports["receivers::otlp::protocols::http::endpoint"])
	now := time.Now().UnixNano()
	for i, service := range services {
		body := fmt.Sprintf(`{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": %q}}]},
			"scopeSpans": [{"spans": [{"traceId": "%032x", "spanId": "%016x", "name": "GET /", "kind": 2,
			"startTimeUnixNano": "%d", "endTimeUnixNano": "%d"}]}]}]}`, service, i+1, i+1, now-int64(time.Millisecond), now)
		resp, err := http.Post(otlpTraces, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "the agent takes the span of %s", service)
	}
	webhook := fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", agent.ports["receivers::deployment::endpoint"])
	for _, service := range services {
		body := fmt.Sprintf(`{"service": %q, "environment": "production", "version": "1.4.2", "previous_version": "1.4.1", "state": "started", "strategy": "canary"}`, service)
		req, err := http.NewRequest(http.MethodPost, webhook, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if token := agent.env["DEPLOY_TOKEN"]; token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, "the agent takes the event for %s", service)
	}

	for i, port := range gateHTTP {
		require.Eventually(t, func() bool {
			known := gateServices(t, port)
			return !slices.ContainsFunc(services, func(s string) bool { return !slices.Contains(known, s) })
		}, 30*time.Second, 200*time.Millisecond, "gate-%d learns every service whichever gateway judged it", i)
	}
	applied := [2]int{}
	for i, port := range gatewayMetrics {
		applied[i] = sumSeries(t, port, "otelcol_processor_deployment_events_applied")
	}
	assert.Equal(t, len(services), applied[0]+applied[1], "each event is applied by exactly one gateway (gateway-0: %d, gateway-1: %d)", applied[0], applied[1])

	// A service's spans, logs and events meet on one gateway.
	require.Eventually(t, func() bool {
		return sumSeries(t, gatewayMetrics[0], "otelcol_receiver_accepted_spans")+
			sumSeries(t, gatewayMetrics[1], "otelcol_receiver_accepted_spans") == len(services)
	}, 30*time.Second, 200*time.Millisecond, "the gateways receive every span")
	for i, port := range gatewayMetrics {
		assert.Equal(t, applied[i], sumSeries(t, port, "otelcol_receiver_accepted_spans"),
			"gateway-%d gets the spans of the services whose events it applied", i)
		assert.Equal(t, 2*applied[i], sumSeries(t, port, "otelcol_receiver_accepted_log_records"),
			"gateway-%d gets the logs of the services whose events it applied", i)
	}

	// The gateways forward the judgement stream only: the application logs stop at filter/judgement.
	require.Eventually(t, func() bool {
		return sumSeries(t, gatewayMetrics[0], "otelcol_processor_filter_logs_filtered")+
			sumSeries(t, gatewayMetrics[1], "otelcol_processor_filter_logs_filtered") == len(services)
	}, 30*time.Second, 200*time.Millisecond, "the gateways' filter/judgement drops the application logs")
	for i := range 2 {
		assert.Equal(t, len(services), sumSeries(t, gateMetrics[i], "otelcol_receiver_accepted_log_records"),
			"gate-%d receives the lifecycle events and nothing else", i)
	}
}

// runnable is a collector config with its addresses moved to loopback.
type runnable struct {
	collectorConfig
	doc map[string]any
	// ports are the new listener ports by config key (telemetry: the own-metrics reader).
	ports map[string]int
}

// loopback moves every listener of a config to a free 127.0.0.1 port and every
// file_storage directory to a temporary one.
func loopback(t *testing.T, cfg collectorConfig) *runnable {
	t.Helper()
	r := &runnable{collectorConfig: cfg, ports: map[string]int{}}
	require.NoError(t, yaml.Unmarshal(cfg.yaml, &r.doc), cfg.where)
	var walk func(path string, node map[string]any)
	walk = func(path string, node map[string]any) {
		for key, value := range node {
			if key == "endpoint" {
				port := freePort(t)
				node[key] = fmt.Sprintf("127.0.0.1:%d", port)
				r.ports[path+"::endpoint"] = port
				continue
			}
			if m, ok := value.(map[string]any); ok {
				walk(path+"::"+key, m)
			}
		}
	}
	for _, section := range []string{"extensions", "receivers"} {
		if m, ok := r.doc[section].(map[string]any); ok {
			for id, c := range m {
				if c, ok := c.(map[string]any); ok {
					walk(section+"::"+id, c)
				}
			}
		}
	}
	if exporter, ok := r.doc["exporters"].(map[string]any)["deployment"].(map[string]any); ok {
		if gate, ok := exporter["gate"].(map[string]any); ok {
			port := freePort(t)
			gate["endpoint"] = fmt.Sprintf("127.0.0.1:%d", port)
			r.ports["exporters::deployment::gate::endpoint"] = port
		}
	}
	if storage, ok := r.doc["extensions"].(map[string]any)["file_storage"].(map[string]any); ok {
		storage["directory"] = t.TempDir()
	}
	port := freePort(t)
	r.ports["telemetry"] = port
	setPath(t, r.doc, []any{map[string]any{"pull": map[string]any{"exporter": map[string]any{
		"prometheus": map[string]any{"host": "127.0.0.1", "port": port},
	}}}}, "service", "telemetry", "metrics", "readers")
	require.Contains(t, r.ports, "extensions::health_check::endpoint", "%s: health_check", cfg.where)
	return r
}

func setPath(t *testing.T, doc map[string]any, value any, path ...string) {
	t.Helper()
	node := doc
	for _, key := range path[:len(path)-1] {
		next, ok := node[key].(map[string]any)
		if !ok {
			next = map[string]any{}
			node[key] = next
		}
		node = next
	}
	node[path[len(path)-1]] = value
}

// start runs the config until the test ends, requires the health check to answer, and
// at cleanup a clean exit on SIGTERM.
func (r *runnable) start(t *testing.T, binary, name string) {
	t.Helper()
	data, err := yaml.Marshal(r.doc)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), name+".yaml")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	cmd := exec.Command(binary, "--config", path)
	cmd.Env = []string{"GOMAXPROCS=1"}
	for k, v := range r.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	output := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = output, output
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			assert.NoError(t, waitErr, "%s exits 0 on SIGTERM", name)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop within 30s of SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("%s (%s) output:\n%s", name, r.where, output.String())
		}
	})
	health := fmt.Sprintf("http://127.0.0.1:%d/", r.ports["extensions::health_check::endpoint"])
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		resp, err := http.Get(health)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 60*time.Second, 100*time.Millisecond, "%s becomes healthy", name)
	select {
	case <-exited:
		t.Fatalf("%s exited at start: %v\n%s", name, waitErr, output.String())
	default:
	}
}

// gateServices lists the services a gate's status page knows.
func gateServices(t *testing.T, port int) []string {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/status", port))
	if err != nil {
		return nil
	}
	defer func() { _ = resp.Body.Close() }()
	var status any
	if json.NewDecoder(resp.Body).Decode(&status) != nil {
		return nil
	}
	var names []string
	var walk func(node any)
	walk = func(node any) {
		switch v := node.(type) {
		case map[string]any:
			if s, ok := v["service"].(string); ok && !slices.Contains(names, s) {
				names = append(names, s)
			}
			for _, child := range v {
				walk(child)
			}
		case []any:
			for _, child := range v {
				walk(child)
			}
		}
	}
	walk(status)
	return names
}

// sumSeries adds up every series of one metric of a collector's own metrics (0 when absent).
func sumSeries(t *testing.T, port int, name string) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `(\{[^}]*\})?\s+(\S+)$`)
	total := 0.0
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if m := line.FindStringSubmatch(scanner.Text()); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			total += v
		}
	}
	require.NoError(t, scanner.Err())
	return int(total)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
