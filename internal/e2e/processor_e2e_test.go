// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// telemetrygenPath finds the contrib telemetrygen binary (`make` builds it
// into bin/). Like the distribution, it is required under CI.
func telemetrygenPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("TELEMETRYGEN")
	if path == "" {
		path = filepath.Join(repoRoot(t), "bin", "telemetrygen")
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("telemetrygen is not built at %s (CI runs `make test`, which builds it): %v", path, err)
		}
		t.Skipf("telemetrygen is not built at %s: run `make tools` first", path)
	}
	return path
}

// spansPerTrace is what telemetrygen sends per trace: a parent and one child
// (it keeps one child even when asked for none).
const spansPerTrace = 2

// sendSpans sends n traces (n*spansPerTrace spans) for service over OTLP/gRPC
// with telemetrygen, with extra resource attributes given as key=value
// (values quoted as telemetrygen expects: key="value").
func sendSpans(t *testing.T, grpcPort int, service string, n int, resourceAttrs ...string) {
	t.Helper()
	args := []string{"traces",
		"--otlp-endpoint", fmt.Sprintf("127.0.0.1:%d", grpcPort), "--otlp-insecure",
		"--service", service, "--traces", strconv.Itoa(n), "--rate", "0", "--child-spans", "1",
	}
	for _, a := range resourceAttrs {
		args = append(args, "--otlp-attributes", a)
	}
	cmd := exec.Command(telemetrygenPath(t), args...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "telemetrygen: %s", out)
}

// githubStatus returns the real GitHub deployment_status payload with its
// state replaced, signed, ready to post.
func githubStatus(t *testing.T, state string) ([]byte, map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "receiver", "deploymentreceiver", "testdata", "github", "github-deployment_status-success.json"))
	require.NoError(t, err)
	var payload map[string]any
	require.NoError(t, json.Unmarshal(raw, &payload))
	payload["deployment_status"].(map[string]any)["state"] = state
	body, err := json.Marshal(payload)
	require.NoError(t, err)
	return body, map[string]string{
		"Content-Type":        "application/json",
		"X-GitHub-Event":      "deployment_status",
		"X-Hub-Signature-256": signGitHub(body),
	}
}

// spanTags lists, per span of service, the deployment tags it came out with
// (resource attributes, where the processor writes them by default).
func spanTags(traces ptrace.Traces, service string) []map[string]any {
	var out []map[string]any
	for i := 0; i < traces.ResourceSpans().Len(); i++ {
		rs := traces.ResourceSpans().At(i)
		res := rs.Resource().Attributes().AsRaw()
		if res["service.name"] != service {
			continue
		}
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			for k := 0; k < rs.ScopeSpans().At(j).Spans().Len(); k++ {
				out = append(out, res)
			}
		}
	}
	return out
}

// waitForSpans waits until the traces file holds the spans of at least n
// traces of service and returns the tags of all spans, in arrival order.
func waitForSpans(t *testing.T, path, service string, n int) []map[string]any {
	t.Helper()
	n *= spansPerTrace
	var tags []map[string]any
	eventually(t, 20*time.Second, fmt.Sprintf("%d spans of %s", n, service), func() bool {
		tags = spanTags(readTraces(t, path), service)
		return len(tags) >= n
	})
	return tags
}

// TestE2EProcessorTagsSpansWithGitHubDeployment: a GitHub deployment_status
// in_progress goes through the receiver into the processor's logs pipeline;
// spans of that service, sent over OTLP by telemetrygen through the same
// processor in a traces pipeline, come out tagged `during` with the
// deployment's id; after `success`, `post`.
func TestE2EProcessorTagsSpansWithGitHubDeployment(t *testing.T) {
	webhookPort, grpcPort := freePort(t), freePort(t)
	dir := t.TempDir()
	tracesOut, logsOut := filepath.Join(dir, "traces.json"), filepath.Join(dir, "logs.json")
	startCollector(t, collectorConfig{
		YAML: fmt.Sprintf(`
receivers:
  deployment:
    endpoint: 127.0.0.1:%d
    github: {secret: "${env:GITHUB_WEBHOOK_SECRET}"}
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
processors:
  deployment: {}
exporters:
  file/traces: {path: %s, flush_interval: 100ms}
  file/logs: {path: %s, flush_interval: 100ms}
service:
  pipelines:
    logs:
      receivers: [deployment]
      processors: [deployment]
      exporters: [file/logs]
    traces:
      receivers: [otlp]
      processors: [deployment]
      exporters: [file/traces]
`, webhookPort, grpcPort, tracesOut, logsOut),
		Env: map[string]string{"GITHUB_WEBHOOK_SECRET": githubSecret},
	})
	webhook := fmt.Sprintf("http://127.0.0.1:%d/webhooks/github", webhookPort)
	const service = "Hello-World" // the repository name: GitHub's service.name
	env := `deployment.environment.name="production"`

	// Before any deployment the service is steady.
	sendSpans(t, grpcPort, service, 2, env)
	tags := waitForSpans(t, tracesOut, service, 2)
	for _, tag := range tags {
		assert.Equal(t, "steady", tag["deployment.phase"])
		assert.NotContains(t, tag, "deployment.id")
	}

	body, headers := githubStatus(t, "in_progress")
	status, answer := postHTTP(t, webhook, body, headers)
	require.Equal(t, http.StatusOK, status, answer)
	sendSpans(t, grpcPort, service, 3, env)
	tags = waitForSpans(t, tracesOut, service, 5)
	for _, tag := range tags[2*spansPerTrace:] {
		assert.Equal(t, "during", tag["deployment.phase"])
		assert.Equal(t, "github-145988746", tag["deployment.id"])
	}

	body, headers = githubStatus(t, "success")
	status, answer = postHTTP(t, webhook, body, headers)
	require.Equal(t, http.StatusOK, status, answer)
	sendSpans(t, grpcPort, service, 3, env)
	tags = waitForSpans(t, tracesOut, service, 8)
	for _, tag := range tags[5*spansPerTrace:] {
		assert.Equal(t, "post", tag["deployment.phase"])
		assert.Equal(t, "github-145988746", tag["deployment.id"])
	}

	// Another service's spans are not touched by Hello-World's deployment.
	sendSpans(t, grpcPort, "cart", 1, env)
	for _, tag := range waitForSpans(t, tracesOut, "cart", 1) {
		assert.Equal(t, "steady", tag["deployment.phase"])
	}

	// The lifecycle records passed through the processor unchanged but for tags.
	eventually(t, 10*time.Second, "two lifecycle records", func() bool {
		return len(lifecycleRecords(readLogs(t, logsOut))) == 2
	})
}

// TestE2EProcessorStateSurvivesRestart: with `storage: file_storage`, a
// deployment that started before a restart is still `during`, with the same
// id, after it.
func TestE2EProcessorStateSurvivesRestart(t *testing.T) {
	webhookPort, grpcPort := freePort(t), freePort(t)
	dir := t.TempDir()
	storageDir := filepath.Join(dir, "storage")
	require.NoError(t, os.MkdirAll(storageDir, 0o700))
	tracesOut := filepath.Join(dir, "traces.json")
	c := startCollector(t, collectorConfig{YAML: fmt.Sprintf(`
extensions:
  file_storage:
    directory: %s
receivers:
  deployment:
    endpoint: 127.0.0.1:%d
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
processors:
  deployment:
    storage: file_storage
exporters:
  file/traces: {path: %s, flush_interval: 100ms}
  debug: {}
service:
  pipelines:
    logs:
      receivers: [deployment]
      processors: [deployment]
      exporters: [debug]
    traces:
      receivers: [otlp]
      processors: [deployment]
      exporters: [file/traces]
`, storageDir, webhookPort, grpcPort, tracesOut), Extensions: []string{"file_storage"}})
	status, answer := postHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", webhookPort),
		[]byte(`{"service":"checkout","namespace":"shop","environment":"production","version":"1.4.2",
			"previous_version":"1.4.1","id":"deploy-restart-1","state":"started","strategy":"rolling"}`),
		map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, status, answer)

	attrs := []string{`service.namespace="shop"`, `deployment.environment.name="production"`}
	sendSpans(t, grpcPort, "checkout", 1, attrs...)
	before := waitForSpans(t, tracesOut, "checkout", 1)
	require.Equal(t, "during", before[0]["deployment.phase"])

	// A fresh output file, whatever the file exporter does with an old one at start.
	require.NoError(t, os.Remove(tracesOut))
	c.Restart(nil)

	sendSpans(t, grpcPort, "checkout", 1, attrs...)
	after := waitForSpans(t, tracesOut, "checkout", 1)
	assert.Equal(t, "during", after[len(after)-1]["deployment.phase"], "the phase survived the restart")
	assert.Equal(t, "deploy-restart-1", after[len(after)-1]["deployment.id"], "the deployment id survived the restart")
}

// readTraces decodes the file exporter's traces output into one ptrace.Traces.
func readTraces(t testing.TB, path string) ptrace.Traces {
	t.Helper()
	out := ptrace.NewTraces()
	var u ptrace.JSONUnmarshaler
	decodeLines(t, path, u.UnmarshalTraces, func(tr ptrace.Traces) { tr.ResourceSpans().MoveAndAppendTo(out.ResourceSpans()) })
	return out
}
