// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/e2e/realtime"
	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

const prometheusBinary = "/usr/bin/prometheus"

// startPrometheus runs the real Prometheus (Debian package prometheus) on a
// free 127.0.0.1 port, scraping target every second, until the test ends.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	requireDebianBinary(t, prometheusBinary, "prometheus")
	dir := t.TempDir()
	port := freePort(t)
	config := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(config, fmt.Appendf(nil, `
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: deploylens
    static_configs:
      - targets: [%q]
`, target), 0o600))
	startServer(t, "prometheus", prometheusBinary,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
	)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	waitReady(t, "prometheus", base+"/-/ready")
	return base
}

// promQuery runs an instant PromQL query through Prometheus' HTTP API.
func promQuery(t *testing.T, base, query string) []realtime.Sample {
	t.Helper()
	samples, err := realtime.Query(context.Background(), base, query, time.Now())
	require.NoError(t, err)
	return samples
}

// replayScenario sends a library scenario to a collector as fast as it can,
// its simulated time ending about now (so the data is recent), pausing
// pause at the deployment's start (so scrapers see the steady state), and
// without the deployment's own succeeded event when keepRunning (the test
// ends the deployment itself).
func replayScenario(t *testing.T, otlpPort, webhookPort int, sc scenario.Scenario, pause time.Duration, keepRunning bool) scenario.Label {
	t.Helper()
	sc.Start = time.Now().Add(-sc.WarmUp - sc.Observe).Truncate(time.Second)
	ctx := context.Background()
	sender, err := otlpsend.New(ctx, otlpsend.Config{
		Endpoint:       fmt.Sprintf("127.0.0.1:%d", otlpPort),
		DeploymentsURL: fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", webhookPort),
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, sender.Shutdown(ctx)) }()
	steps, err := sc.Steps()
	require.NoError(t, err)
	deploymentStart := sc.Label().DeploymentStart
	paused := false
	for st := range steps {
		if !paused && !st.Time.Before(deploymentStart) {
			paused = true
			time.Sleep(pause)
		}
		if keepRunning {
			st.Events = slices.DeleteFunc(st.Events, func(e deployevent.Event) bool { return e.State == deployevent.StateSucceeded })
		}
		require.NoError(t, sender.Send(ctx, st))
	}
	return sc.Label()
}

func libraryScenario(t *testing.T, kind scenario.Kind, rps float64) scenario.Scenario {
	t.Helper()
	for _, sc := range scenario.Library(1) {
		if l := sc.Label(); l.Kind == kind && l.TrafficRPS == rps {
			return sc
		}
	}
	t.Fatalf("no library scenario %s at %g req/s", kind, rps)
	return scenario.Scenario{}
}

// alertSignals lists the deployment.alert records in the file exporter's output.
func alertSignals(t *testing.T, path string) []lifecycleRecord {
	t.Helper()
	var out []lifecycleRecord
	logs := readLogs(t, path)
	for i := 0; i < logs.ResourceLogs().Len(); i++ {
		rl := logs.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if lr := lrs.At(k); lr.EventName() == deployevent.AlertEventName {
					out = append(out, lifecycleRecord{Resource: rl.Resource().Attributes().AsRaw(), Attrs: lr.Attributes().AsRaw(), Body: lr.Body().AsString()})
				}
			}
		}
	}
	return out
}

// TestE2EKPIsInPrometheus: the built distribution with the prometheus
// exporter, scraped by a real Prometheus; a deployment whose new version
// triples the error ratio, driven through the deployment receiver and OTLP.
// Prometheus sees deployment_health_score fall and deployment_count count the
// deployment; the file exporter gets a firing deployment.alert that resolves
// when the deployment is rolled back.
func TestE2EKPIsInPrometheus(t *testing.T) {
	requireDebianBinary(t, prometheusBinary, "prometheus")
	otlpPort, webhookPort, promPort := freePort(t), freePort(t), freePort(t)
	alertsOut := filepath.Join(t.TempDir(), "alerts.json")
	startCollector(t, collectorConfig{YAML: fmt.Sprintf(`
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
      interval: 1s
      steady_interval: 1s
exporters:
  prometheus:
    endpoint: 127.0.0.1:%d
    resource_constant_labels:
      included: [service.name, service.namespace, deployment.environment.name]
    metric_expiration: 2m
  file/alerts: {path: %s, flush_interval: 100ms}
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
      exporters: [prometheus]
    logs:
      receivers: [otlp, deployment]
      processors: [deployment]
      exporters: [file/alerts]
`, otlpPort, webhookPort, promPort, alertsOut)})
	prom := startPrometheus(t, fmt.Sprintf("127.0.0.1:%d", promPort))

	label := replayScenario(t, otlpPort, webhookPort, libraryScenario(t, scenario.KindErrorRatio, 50), 4*time.Second, true)
	service := label.Service

	var firing lifecycleRecord
	eventually(t, 60*time.Second, "a firing deployment.alert for "+service, func() bool {
		for _, a := range alertSignals(t, alertsOut) {
			if a.Resource["service.name"] == service && a.Attrs["alert.state"] == "firing" && a.Attrs["deployment.id"] == label.DeploymentID {
				firing = a
				return true
			}
		}
		return false
	})
	require.NotEmpty(t, firing.Attrs["alert.fingerprint"])
	require.Contains(t, firing.Body, service)

	// Prometheus: the score fell while the deployment ran.
	selector := fmt.Sprintf(`{service_name=%q,deployment_cohort=""}`, service)
	eventually(t, 60*time.Second, "deployment_health_score below 70 in Prometheus", func() bool {
		// Verdict and recommendation are labels: one series per combination.
		low := promQuery(t, prom, "min(min_over_time(deployment_health_score"+selector+"[10m]))")
		return len(low) > 0 && low[0].Value < 70
	})
	high := promQuery(t, prom, "max(max_over_time(deployment_health_score"+selector+"[10m]))")
	require.NotEmpty(t, high)
	require.GreaterOrEqual(t, high[0].Value, 70.0, "it was healthy before the regression")

	// Roll the deployment back: counted, and every alert of it resolves.
	status, answer := postHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", webhookPort), fmt.Appendf(nil,
		`{"service":%q,"namespace":%q,"environment":%q,"version":%q,"previous_version":%q,"id":%q,"state":"rolled_back"}`,
		service, label.Namespace, label.Environment, label.Version, label.PreviousVersion, label.DeploymentID),
		map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, status, answer)
	eventually(t, 60*time.Second, "the firing alert resolved", func() bool {
		for _, a := range alertSignals(t, alertsOut) {
			if a.Attrs["alert.fingerprint"] == firing.Attrs["alert.fingerprint"] && a.Attrs["alert.state"] == "resolved" {
				return true
			}
		}
		return false
	})
	eventually(t, 60*time.Second, "deployment_count_total counting the rolled back deployment, alerted before its end", func() bool {
		counted := promQuery(t, prom, fmt.Sprintf(`deployment_count_total{service_name=%q,deployment_status="rolled_back",deployment_judgement="alerted"}`, service))
		return len(counted) == 1 && counted[0].Value == 1
	})
}
