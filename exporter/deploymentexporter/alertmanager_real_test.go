// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package deploymentexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const alertmanagerPath = "/usr/bin/prometheus-alertmanager"

// startAlertmanager runs the real Alertmanager (Debian package
// prometheus-alertmanager) on a free loopback port, clustering off, and
// returns its base URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	return startAlertmanagerWith(t, "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
}

// startAlertmanagerWith runs it with the given configuration.
func startAlertmanagerWith(t *testing.T, configYAML string) string {
	t.Helper()
	requireBinary(t, alertmanagerPath, "prometheus-alertmanager")
	dir := t.TempDir()
	config := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(config, []byte(configYAML), 0o600))
	addr := freeAddr(t)
	cmd := exec.Command(alertmanagerPath,
		"--config.file="+config,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logFile, err := os.Create(filepath.Join(dir, "alertmanager.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("alertmanager log:\n%s", b)
			}
		}
	})
	base := "http://" + addr
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	require.Eventually(t, func() bool {
		resp, err := client.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "Alertmanager did not become ready")
	return base
}

func listAlerts(t *testing.T, base string) models.GettableAlerts {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get(base + "/api/v2/alerts")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var alerts models.GettableAlerts
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&alerts))
	return alerts
}

// The exporter posts to the real Alertmanager binary, which accepts and
// lists the alert with our labels and annotations, and drops it on resolve.
func TestRealAlertmanager(t *testing.T) {
	base := startAlertmanager(t)
	// Real time: Alertmanager judges endsAt against its own clock.
	now := time.Now().UTC().Truncate(time.Millisecond)
	cfg := testConfig(func(cfg *Config) {
		cfg.Alertmanager.Endpoints = []string{base}
		cfg.RunbookURL = "https://runbooks.example.com/{alertname}"
	})
	c := startCore(t, cfg, nil, nil)

	alert := criticalAlert()
	alert.startedAt, alert.at = now.Add(-time.Minute), now
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(alert)))

	var listed models.GettableAlerts
	require.Eventually(t, func() bool {
		listed = listAlerts(t, base)
		return len(listed) == 1
	}, 15*time.Second, 100*time.Millisecond, "the alert reached Alertmanager")
	got := listed[0]
	assert.Equal(t, models.LabelSet{
		"alertname": "DeploymentErrorRateRegression", "service": "checkout", "namespace": "shop",
		"environment": "production", "severity": "critical", "deployment_id": "gh-1234", "version": "1.4.2",
		"indicator": "error_rate",
	}, got.Labels)
	assert.Equal(t, "rollback", got.Annotations["recommendation"])
	assert.Equal(t, "https://runbooks.example.com/DeploymentErrorRateRegression", got.Annotations["runbook_url"])
	assert.Equal(t, alert.body, got.Annotations["summary"])
	assert.Contains(t, got.Annotations["evidence"], "indicator=error_rate")
	assert.NotEmpty(t, got.Annotations["description"])
	require.NotNil(t, got.StartsAt)
	assert.True(t, time.Time(*got.StartsAt).Equal(now.Add(-time.Minute)), "startsAt is when the alert fired: %s", got.StartsAt)
	require.NotNil(t, got.EndsAt)
	assert.True(t, time.Time(*got.EndsAt).Equal(now.Add(5*time.Minute)), "endsAt is signal time + resolve_timeout: %s", got.EndsAt)
	require.NotNil(t, got.Status)
	assert.Contains(t, []string{"active", "unprocessed"}, *got.Status.State)

	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(alert.resolved(time.Now()))))
	require.Eventually(t, func() bool { return len(listAlerts(t, base)) == 0 }, 15*time.Second, 100*time.Millisecond,
		"the resolved alert is no longer listed")
}

// One faulty deployment is one alert in Alertmanager: its severity changes
// in place (the old label set is resolved at once, not left to expire) and
// its annotations carry every indicator's evidence.
func TestRealAlertmanagerSeverityChangesInPlace(t *testing.T) {
	base := startAlertmanager(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := startCore(t, testConfig(func(cfg *Config) { cfg.Alertmanager.Endpoints = []string{base} }), nil, nil)

	regression := criticalAlert()
	regression.name, regression.fingerprint, regression.indicator = "DeploymentRegression", "fp-deploy-1", ""
	regression.severity, regression.recommendation = "warning", "hold"
	regression.startedAt, regression.at = now.Add(-20*time.Second), now.Add(-20*time.Second)
	regression.evidences = []map[string]any{
		{"indicator.name": "error_ratio", "indicator.value": 0.041, "indicator.baseline": 0.009, "indicator.upper": 0.016, "anomaly.score": 0.97, "anomaly.test": "two_proportion_z"},
		{"indicator.name": "latency_p95", "indicator.value": 0.31, "indicator.baseline": 0.18, "anomaly.score": 0.8, "anomaly.test": "mann_whitney_u"},
	}
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(regression)))
	require.Eventually(t, func() bool { return len(listAlerts(t, base)) == 1 }, 15*time.Second, 100*time.Millisecond)

	critical := regression
	critical.severity, critical.previousSeverity, critical.recommendation, critical.at = "critical", "warning", "rollback", now
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(critical)))

	var active models.GettableAlerts
	require.Eventually(t, func() bool {
		active = nil
		for _, a := range listAlerts(t, base) {
			if *a.Status.State == "active" || *a.Status.State == "unprocessed" {
				active = append(active, a)
			}
		}
		return len(active) == 1 && active[0].Labels["severity"] == "critical"
	}, 15*time.Second, 100*time.Millisecond, "one active alert, now critical: %v", active)
	got := active[0]
	assert.Equal(t, models.LabelSet{
		"alertname": "DeploymentRegression", "service": "checkout", "namespace": "shop", "environment": "production",
		"severity": "critical", "deployment_id": "gh-1234", "version": "1.4.2",
	}, got.Labels, "no indicator label: the alert is about the deployment")
	assert.True(t, time.Time(*got.StartsAt).Equal(now.Add(-20*time.Second)), "the same alert: it started when it first fired")
	assert.Contains(t, got.Annotations["evidence"], "indicator=error_ratio")
	assert.Contains(t, got.Annotations["evidence"], "indicator=latency_p95")
	assert.Contains(t, got.Annotations["description"], "latency p95")
	assert.Equal(t, "rollback", got.Annotations["recommendation"])
}
