// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

//go:build linux

package deploymentexporter

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shippedAlertmanagerConfig is the Alertmanager configuration deploylens ships.
var shippedAlertmanagerConfig = filepath.Join("..", "..", "deploy", "alertmanager", "alertmanager.yaml")

const amtoolPath = "/usr/bin/amtool"

func TestShippedAlertmanagerConfigChecks(t *testing.T) {
	requireBinary(t, amtoolPath, "prometheus-alertmanager")
	out, err := exec.Command(amtoolPath, "check-config", shippedAlertmanagerConfig).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS")
	assert.Contains(t, string(out), "3 inhibit rules")
}

// The routes send what the config's comments say where they say.
func TestShippedAlertmanagerConfigRoutes(t *testing.T) {
	requireBinary(t, amtoolPath, "prometheus-alertmanager")
	deployment := []string{"service=checkout", "namespace=shop", "environment=production", "deployment_id=gh-1234"}
	for _, tt := range []struct {
		labels []string
		want   string
	}{
		{labels: []string{"alertname=DeploymentRegression", "severity=critical"}, want: "on-call"},
		{labels: []string{"alertname=DeploymentRegression", "severity=warning"}, want: "platform-team"},
		{labels: []string{"alertname=DeploymentFailed", "severity=warning"}, want: "platform-team"},
		{labels: []string{"alertname=DeploymentStuck", "severity=warning"}, want: "platform-team"},
	} {
		args := append([]string{"config", "routes", "test", "--config.file=" + shippedAlertmanagerConfig}, append(tt.labels, deployment...)...)
		out, err := exec.Command(amtoolPath, args...).Output() // stderr has a warning about --alertmanager.url
		require.NoError(t, err, "%s", out)
		assert.Equal(t, tt.want, strings.TrimSpace(string(out)), "%v", tt.labels)
	}
}

// In a real Alertmanager running the shipped config, the greater alert of a
// deployment inhibits the lesser ones of the same deployment, not another's.
func TestShippedAlertmanagerConfigInhibits(t *testing.T) {
	raw, err := os.ReadFile(shippedAlertmanagerConfig)
	require.NoError(t, err)
	base := startAlertmanagerWith(t, string(raw))
	now := time.Now().UTC().Truncate(time.Millisecond)
	c := startCore(t, testConfig(func(cfg *Config) { cfg.Alertmanager.Endpoints = []string{base} }), nil, nil)

	regression := criticalAlert()
	regression.name, regression.fingerprint, regression.indicator = "DeploymentRegression", "fp-deploy", ""
	perIndicator := criticalAlert()
	perIndicator.name, perIndicator.fingerprint, perIndicator.severity = "DeploymentIndicatorRegression", "fp-indicator", "warning"
	other := perIndicator
	other.fingerprint, other.deploymentID = "fp-other", "gh-999"
	for _, a := range []*testAlert{&regression, &perIndicator, &other} {
		a.startedAt, a.at = now, now
	}
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(regression, perIndicator, other)))

	states := map[string]string{}
	require.Eventually(t, func() bool {
		clear(states)
		for _, a := range listAlerts(t, base) {
			states[a.Labels["alertname"]+"/"+a.Labels["deployment_id"]] = *a.Status.State
		}
		return len(states) == 3 && states["DeploymentIndicatorRegression/gh-1234"] == models.AlertStatusStateSuppressed
	}, 15*time.Second, 100*time.Millisecond, "states: %v", states)
	assert.Equal(t, models.AlertStatusStateActive, states["DeploymentRegression/gh-1234"])
	assert.Equal(t, models.AlertStatusStateActive, states["DeploymentIndicatorRegression/gh-999"], "another deployment's alert is not inhibited")
}
