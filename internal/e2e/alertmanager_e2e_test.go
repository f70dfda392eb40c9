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

// TestE2EAlertsQueuedAcrossRestart: an alert arrives while Alertmanager is
// down; the collector is restarted with the alert still queued (persistent
// sending queue on file_storage); Alertmanager comes up; the alert is
// delivered with its labels.
func TestE2EAlertsQueuedAcrossRestart(t *testing.T) {
	requireDebianBinary(t, alertmanagerBinary, "prometheus-alertmanager")
	amPort, otlpPort, gatePort := freePort(t), freePort(t), freePort(t)
	storageDir := filepath.Join(t.TempDir(), "queue")
	require.NoError(t, os.MkdirAll(storageDir, 0o700))
	c := startCollector(t, collectorConfig{YAML: fmt.Sprintf(`
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
    gate:
      endpoint: 127.0.0.1:%d
    sending_queue:
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
`, storageDir, otlpPort, amPort, gatePort), Extensions: []string{"file_storage"}})

	ctx := context.Background()
	sender, err := otlpsend.New(ctx, otlpsend.Config{Endpoint: fmt.Sprintf("127.0.0.1:%d", otlpPort)})
	require.NoError(t, err)
	startedAt := time.Now().Add(-time.Minute).Truncate(time.Second)
	require.NoError(t, sender.Send(ctx, scenario.Step{Time: time.Now(), Logs: alertSignal("checkout", "deploy-queued-1", startedAt)}))
	require.NoError(t, sender.Shutdown(ctx))

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
