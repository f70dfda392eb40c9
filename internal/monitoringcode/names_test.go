// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPrometheusNamesOfProcessorMetrics pins the names the exporter writes, so that a rename in
// metadata.yaml shows up here as well as in every rule and panel that uses the old name.
func TestPrometheusNamesOfProcessorMetrics(t *testing.T) {
	cat := processorCatalog(t)
	got := map[string]string{}
	for name, s := range cat {
		got[s.otelName] = name
	}
	assert.Equal(t, map[string]string{
		"deployment.active":                  "deployment_active",
		"deployment.anomaly.score":           "deployment_anomaly_score",
		"deployment.change_failure.ratio":    "deployment_change_failure_ratio",
		"deployment.count":                   "deployment_count_total",
		"deployment.dependency.baseline":     "deployment_dependency_baseline",
		"deployment.dependency.health.score": "deployment_dependency_health_score",
		"deployment.dependency.lower":        "deployment_dependency_lower",
		"deployment.dependency.upper":        "deployment_dependency_upper",
		"deployment.dependency.value":        "deployment_dependency_value",
		"deployment.detection.time":          "deployment_detection_time_seconds",
		"deployment.duration":                "deployment_duration_seconds",
		"deployment.health.dimension.score":  "deployment_health_dimension_score",
		"deployment.health.recommendation":   "deployment_health_recommendation",
		"deployment.health.score":            "deployment_health_score",
		"deployment.health.verdict":          "deployment_health_verdict",
		"deployment.impact.services":         "deployment_impact_services",
		"deployment.indicator.baseline":      "deployment_indicator_baseline",
		"deployment.indicator.lower":         "deployment_indicator_lower",
		"deployment.indicator.upper":         "deployment_indicator_upper",
		"deployment.indicator.value":         "deployment_indicator_value",
		"deployment.interval":                "deployment_interval_seconds",
		"deployment.lead_time":               "deployment_lead_time_seconds",
		"deployment.recovery.time":           "deployment_recovery_time_seconds",
	}, got)

	score := cat["deployment_health_score"]
	require.NotNil(t, score)
	for _, l := range []string{"service_name", "service_namespace", "deployment_environment_name", "deployment_phase", "deployment_cohort"} {
		assert.Contains(t, score.labels, l)
	}
	// A verdict change must not start a new score series: the states are series of their own.
	assert.NotContains(t, score.labels, "deployment_health_verdict")
	assert.NotContains(t, score.labels, "deployment_health_recommendation")
	verdict, rec := cat["deployment_health_verdict"], cat["deployment_health_recommendation"]
	require.NotNil(t, verdict)
	require.NotNil(t, rec)
	assert.Equal(t, []string{"healthy", "degraded", "unhealthy", "inconclusive"}, verdict.labels["deployment_health_verdict"])
	assert.Equal(t, []string{"none", "investigate", "hold", "rollback"}, rec.labels["deployment_health_recommendation"])
	assert.NotContains(t, score.labels, "indicator_name")
}

var readmeNameRow = regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\| [^|]+ \\| `([a-z_]+)` \\|$")

// TestReadmeNamesTable keeps the table in deploy/prometheus/README.md true.
func TestReadmeNamesTable(t *testing.T) {
	raw, err := os.ReadFile(rulesReadmePath)
	require.NoError(t, err)
	documented := map[string]string{}
	for _, m := range readmeNameRow.FindAllStringSubmatch(string(raw), -1) {
		documented[m[1]] = m[2]
	}
	derived := map[string]string{}
	for name, s := range processorCatalog(t) {
		derived[s.otelName] = name
	}
	assert.Equal(t, derived, documented)
}
