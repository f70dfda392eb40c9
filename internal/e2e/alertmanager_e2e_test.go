// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

const alertmanagerBinary = "/usr/bin/prometheus-alertmanager"

// requireDebianBinary skips when a Debian package's binary is absent outside
// CI, and fails under CI, where .ci/run installs it.
func requireDebianBinary(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: .ci/run installs the Debian package %s", path, pkg)
		}
		t.Skipf("%s is missing: apt-get install %s to run this test", path, pkg)
	}
}

// startAlertmanager runs the real Alertmanager on 127.0.0.1:port (clustering
// off, state in a temp dir) until the test ends, and returns its base URL.
func startAlertmanager(t *testing.T, port int) string {
	t.Helper()
	requireDebianBinary(t, alertmanagerBinary, "prometheus-alertmanager")
	dir := t.TempDir()
	config := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(config, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o600))
	startServer(t, "alertmanager", alertmanagerBinary,
		"--config.file="+config,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
		"--cluster.listen-address=",
	)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitReady(t, "alertmanager", base+"/-/ready")
	return base
}

// amAlert is the part of Alertmanager's GET /api/v2/alerts answer we check.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

func alertmanagerAlerts(t *testing.T, base string) []amAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var alerts []amAlert
	require.NoError(t, json.Unmarshal(body, &alerts), "%s", body)
	return alerts
}

// alertSignal is a firing deployment.alert record as the processor writes it.
func alertSignal(service, deploymentID string, startedAt time.Time) plog.Logs {
	logs := plog.NewLogs()
	rl := logs.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(deployevent.AttrServiceName, service)
	rl.Resource().Attributes().PutStr(deployevent.AttrServiceNamespace, "shop")
	rl.Resource().Attributes().PutStr(deployevent.AttrEnvironment, "production")
	rl.Resource().Attributes().PutStr(deployevent.AttrServiceVersion, "1.4.2")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(deployevent.AlertEventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.Body().SetStr(service + " 1.4.2 in production: error ratio 4.1% vs baseline 0.9% (expected ≤ 1.6%); recommendation: rollback")
	a := lr.Attributes()
	a.PutStr(deployevent.AttrAlertName, "DeploymentIndicatorRegression")
	a.PutStr(deployevent.AttrAlertState, deployevent.AlertFiring)
	a.PutStr(deployevent.AttrAlertSeverity, deployevent.SeverityCritical)
	a.PutStr(deployevent.AttrAlertFingerprint, "e2e-"+deploymentID)
	a.PutStr(deployevent.AttrAlertRecommendation, string(deployevent.RecommendRollback))
	a.PutStr(deployevent.AttrAlertStartedAt, startedAt.UTC().Format(time.RFC3339Nano))
	a.PutStr(deployevent.AttrDeploymentID, deploymentID)
	a.PutStr(deployevent.AttrDeploymentPhase, "during")
	a.PutStr(deployevent.AttrIndicatorName, "error_ratio")
	a.PutDouble(deployevent.AttrIndicatorValue, 0.041)
	a.PutDouble(deployevent.AttrIndicatorBaseline, 0.009)
	return logs
}

// startQueuedAlertsCollector runs an OTLP logs pipeline into the deployment
// exporter delivering to Alertmanager on amPort through persistent sending
// queues (file_storage) retrying forever; exporterYAML adds to the exporter's
// settings (indented four spaces).
func startQueuedAlertsCollector(t *testing.T, otlpPort, amPort int, exporterYAML string) *collector {
	t.Helper()
	storageDir := filepath.Join(t.TempDir(), "queue")
	require.NoError(t, os.MkdirAll(storageDir, 0o700))
	return startCollector(t, collectorConfig{YAML: fmt.Sprintf(`
extensions:
  file_storage:
    directory: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  deployment:
    alertmanager:
      endpoints: [http://127.0.0.1:%d]
      timeout: 2s
%s    sending_queue:
      storage: file_storage
    retry_on_failure:
      initial_interval: 500ms
      max_interval: 2s
      max_elapsed_time: 0s
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [deployment]
`, storageDir, otlpPort, amPort, exporterYAML), Extensions: []string{"file_storage"}})
}

// sendLogs sends each of logs over OTLP/gRPC to 127.0.0.1:port.
func sendLogs(t *testing.T, port int, logs ...plog.Logs) {
	t.Helper()
	ctx := context.Background()
	sender, err := otlpsend.New(ctx, otlpsend.Config{Endpoint: fmt.Sprintf("127.0.0.1:%d", port)})
	require.NoError(t, err)
	for _, l := range logs {
		require.NoError(t, sender.Send(ctx, scenario.Step{Time: time.Now(), Logs: l}))
	}
	require.NoError(t, sender.Shutdown(ctx))
}

// TestE2EAlertsQueuedAcrossRestart: an alert arrives while Alertmanager is
// down; the collector is restarted with the alert still queued (persistent
// sending queue on file_storage); Alertmanager comes up; the alert is
// delivered with its labels.
func TestE2EAlertsQueuedAcrossRestart(t *testing.T) {
	requireDebianBinary(t, alertmanagerBinary, "prometheus-alertmanager")
	amPort, otlpPort, gatePort := freePort(t), freePort(t), freePort(t)
	c := startQueuedAlertsCollector(t, otlpPort, amPort, fmt.Sprintf("    gate:\n      endpoint: 127.0.0.1:%d\n", gatePort))
	startedAt := time.Now().Add(-time.Minute).Truncate(time.Second)
	sendLogs(t, otlpPort, alertSignal("checkout", "deploy-queued-1", startedAt))

	// Let the exporter try (and fail) at least once, then restart it with the alert queued.
	time.Sleep(2 * time.Second)
	c.Stop()
	base := startAlertmanager(t, amPort)
	require.Empty(t, alertmanagerAlerts(t, base))
	c.Restart(nil)

	var alerts []amAlert
	eventually(t, 60*time.Second, "the queued alert in Alertmanager after the restart", func() bool {
		alerts = alertmanagerAlerts(t, base)
		return len(alerts) > 0
	})
	require.Len(t, alerts, 1)
	got := alerts[0]
	assert.Equal(t, "DeploymentIndicatorRegression", got.Labels["alertname"])
	assert.Equal(t, "checkout", got.Labels["service"])
	assert.Equal(t, "shop", got.Labels["namespace"])
	assert.Equal(t, "production", got.Labels["environment"])
	assert.Equal(t, "critical", got.Labels["severity"])
	assert.Equal(t, "deploy-queued-1", got.Labels["deployment_id"])
	assert.Equal(t, "1.4.2", got.Labels["version"])
	assert.Equal(t, "rollback", got.Annotations["recommendation"])
	assert.Contains(t, got.Annotations["summary"], "checkout")
	assert.True(t, got.StartsAt.Equal(startedAt), "startsAt is when the alert began: %s vs %s", got.StartsAt, startedAt)
	assert.Equal(t, "active", got.Status.State)
}

// gateConfig is one collector doing it all: receivers, the processor in every
// pipeline, and the exporter delivering to a real Alertmanager and serving
// the gate.
const gateConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
  deployment:
    endpoint: 127.0.0.1:%d
processors:
  deployment:
    signals:
      interval: 2s
exporters:
  deployment:
    alertmanager:
      endpoints: [http://127.0.0.1:%d]
    gate:
      endpoint: 127.0.0.1:%d
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [deployment]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      processors: [deployment]
      exporters: [deployment]
    logs:
      receivers: [otlp, deployment]
      processors: [deployment]
      exporters: [deployment]
`

// gateVerdict asks the gate about a service and returns the verdict JSON.
func gateVerdict(t *testing.T, gatePort int, l scenario.Label) map[string]any {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/verdict?service=%s&environment=%s&namespace=%s", gatePort, l.Service, l.Environment, l.Namespace))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var v map[string]any
	require.NoError(t, json.Unmarshal(body, &v), "%s", body)
	return v
}

// flaggerGate posts a Flagger webhook body for the service to /v1/gate.
func flaggerGate(t *testing.T, gatePort int, l scenario.Label) (int, string) {
	t.Helper()
	return postHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/v1/gate", gatePort), fmt.Appendf(nil,
		`{"name":%q,"namespace":%q,"phase":"Progressing","checksum":"abc","metadata":{"environment":%q}}`, l.Service, l.Namespace, l.Environment),
		map[string]string{"Content-Type": "application/json"})
}

// TestE2EScenarioAlertsAndGate: the scenario library drives real OTLP traffic
// and lifecycle events through the built distribution with a real
// Alertmanager. A regressing deployment reaches Alertmanager with its labels
// within two minutes and the gate fails it (verdict fail, Flagger 412); a
// clean deployment raises no alert and passes (verdict pass, Flagger 200).
func TestE2EScenarioAlertsAndGate(t *testing.T) {
	requireDebianBinary(t, alertmanagerBinary, "prometheus-alertmanager")
	for _, tt := range []struct {
		name string
		kind scenario.Kind
	}{
		{"regression", scenario.KindErrorRatio},
		{"clean", scenario.KindNone},
	} {
		t.Run(tt.name, func(t *testing.T) {
			otlpPort, webhookPort, amPort, gatePort := freePort(t), freePort(t), freePort(t), freePort(t)
			am := startAlertmanager(t, amPort)
			startCollector(t, collectorConfig{YAML: fmt.Sprintf(gateConfig, otlpPort, webhookPort, amPort, gatePort)})
			sent := time.Now()
			label := replayScenario(t, otlpPort, webhookPort, libraryScenario(t, tt.kind, 50), 0, tt.kind != scenario.KindNone)

			if tt.kind == scenario.KindNone {
				var v map[string]any
				eventually(t, 60*time.Second, "the gate to pass the clean deployment", func() bool {
					v = gateVerdict(t, gatePort, label)
					return v["verdict"] == "pass"
				})
				assert.Equal(t, label.DeploymentID, v["deployment_id"])
				status, answer := flaggerGate(t, gatePort, label)
				assert.Equal(t, http.StatusOK, status, answer)
				// Give a late alert every chance to show up before asserting none did.
				time.Sleep(5 * time.Second)
				for _, a := range alertmanagerAlerts(t, am) {
					assert.NotEqual(t, label.Service, a.Labels["service"], "no alert for the clean deployment: %v", a.Labels)
				}
				return
			}

			var got amAlert
			eventually(t, 2*time.Minute, "an alert for "+label.Service+" in Alertmanager", func() bool {
				for _, a := range alertmanagerAlerts(t, am) {
					if a.Labels["service"] == label.Service && a.Labels["deployment_id"] == label.DeploymentID {
						got = a
						return true
					}
				}
				return false
			})
			t.Logf("first alert in Alertmanager %.1fs after the scenario started to replay: %s", time.Since(sent).Seconds(), got.Labels["alertname"])
			assert.Equal(t, label.Namespace, got.Labels["namespace"])
			assert.Equal(t, label.Environment, got.Labels["environment"])
			assert.Equal(t, label.Version, got.Labels["version"])
			assert.Contains(t, []string{"warning", "critical"}, got.Labels["severity"])
			assert.NotEmpty(t, got.Labels["alertname"])
			assert.NotEmpty(t, got.Annotations["summary"])
			assert.NotEmpty(t, got.Annotations["recommendation"])

			var v map[string]any
			eventually(t, 30*time.Second, "the gate to fail the regressing deployment", func() bool {
				v = gateVerdict(t, gatePort, label)
				return v["verdict"] == "fail"
			})
			assert.Equal(t, label.DeploymentID, v["deployment_id"])
			assert.NotEmpty(t, v["reasons"])
			status, answer := flaggerGate(t, gatePort, label)
			assert.Equal(t, http.StatusPreconditionFailed, status, answer)
		})
	}
}
