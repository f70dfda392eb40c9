// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package score

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/scenario"
)

var t0 = time.Date(2026, time.March, 2, 12, 0, 0, 0, time.UTC)

func label(regressed bool, rps float64, id string) scenario.Label {
	return scenario.Label{Regressed: regressed, TrafficRPS: rps, DeploymentID: id, DeploymentStart: t0, RegressionOnset: t0}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]Outcome{
		{Label: label(true, 50, "a"), Alarm: t0.Add(30 * time.Second), Alerts: 1},
		{Label: label(true, 50, "b"), Alarm: t0.Add(60 * time.Second), Alerts: 3},
		{Label: label(true, 50, "c")},                                            // missed: not in alerts_per_faulty_deployment
		{Label: label(true, 5, "d"), Alarm: t0.Add(10 * time.Second), Alerts: 2}, // low traffic: counted as faulty, not as detected
		{Label: label(false, 50, "e"), Alarm: t0.Add(5 * time.Second)},
		{Label: label(false, 50, "f")},
		{Label: label(false, 5, "g"), Alarm: t0.Add(5 * time.Second)},
		{Label: label(false, 1, "h")},
	})
	assert.Equal(t, 3, s.Regressions)
	assert.Equal(t, 2, s.Detected)
	assert.Equal(t, []float64{30, 60}, s.Delays)
	assert.Equal(t, 4, s.Clean)
	assert.Equal(t, 2, s.FalseAlarms)
	assert.Equal(t, 2, s.LowClean)
	assert.Equal(t, 1, s.LowFalseAlarms)
	assert.Equal(t, 1, s.LowRegressions)
	assert.Equal(t, 1, s.LowDetected)
	assert.Equal(t, 3, s.Faulty)
	assert.InDelta(t, 2, s.AlertsPerFaulty(), 1e-9)
	assert.Equal(t, strings.Join([]string{
		"detected: 66.7%", "false_alarms: 50.0%", "delay_median_s: 30", "delay_p95_s: 60",
		"low_traffic_false_alarms: 50.0%", "alerts_per_faulty_deployment: 2", "",
	}, "\n"), s.Lines())
}

func TestQuantileAndPercent(t *testing.T) {
	for _, tt := range []struct {
		values []float64
		q      float64
		want   float64
	}{
		{[]float64{10, 20, 30, 40}, 0.5, 20},
		{[]float64{10, 20, 30, 40}, 0.95, 40},
		{[]float64{10}, 0.95, 10},
	} {
		assert.Equal(t, tt.want, Quantile(tt.values, tt.q))
	}
	assert.True(t, math.IsNaN(Quantile(nil, 0.5)))
	assert.Equal(t, 0.0, Percent(1, 0))
	assert.Equal(t, 25.0, Percent(1, 4))
}

func TestTally(t *testing.T) {
	for _, tt := range []struct {
		name  string
		feed  func(*Tally)
		most  int
		first time.Duration
	}{
		{"one alert changing severity in place", func(tl *Tally) {
			tl.Apply("d", []Change{{"fp1", "DeploymentRegression", true}}, t0.Add(20*time.Second))
			tl.Apply("d", []Change{{"fp1", "DeploymentRegression", true}}, t0.Add(80*time.Second))
		}, 1, 20 * time.Second},
		{"one alert replaced in one emission, new label set first", func(tl *Tally) {
			tl.Apply("d", []Change{{"warning", "DeploymentRegression", true}}, t0.Add(20*time.Second))
			tl.Apply("d", []Change{{"critical", "DeploymentRegression", true}, {"warning", "DeploymentRegression", false}}, t0.Add(40*time.Second))
		}, 1, 20 * time.Second},
		{"several at once, resolved in between", func(tl *Tally) {
			tl.Apply("d", []Change{{"fp1", "DeploymentHealthDegraded", true}}, t0.Add(20*time.Second))
			tl.Apply("d", []Change{{"fp2", "DeploymentIndicatorRegression", true}}, t0.Add(30*time.Second))
			tl.Apply("d", []Change{{"fp1", "DeploymentHealthDegraded", false}}, t0.Add(40*time.Second))
			tl.Apply("d", []Change{{"fp3", "DeploymentUnhealthy", true}}, t0.Add(50*time.Second))
		}, 2, 20 * time.Second},
		{"facts of another kind are not counted", func(tl *Tally) {
			tl.Apply("d", []Change{{"fp1", "DeploymentStuck", true}}, t0.Add(10*time.Second))
			tl.Apply("d", []Change{{"fp2", "DeploymentRegression", true}}, t0.Add(30*time.Second))
			tl.Seen("d", map[string]string{"fp2": "DeploymentRegression", "fp3": "DeploymentFailed"}, t0.Add(40*time.Second))
		}, 1, 30 * time.Second},
		{"polled snapshots", func(tl *Tally) {
			tl.Seen("d", map[string]string{}, t0.Add(10*time.Second))
			tl.Seen("d", map[string]string{"a": "X", "b": "Y"}, t0.Add(20*time.Second))
			tl.Seen("d", map[string]string{"b": "Y"}, t0.Add(22*time.Second))
		}, 2, 20 * time.Second},
		{"never", func(*Tally) {}, 0, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tl := NewTally()
			tt.feed(tl)
			assert.Equal(t, tt.most, tl.Max("d"))
			if tt.first < 0 {
				require.True(t, tl.First("d").IsZero())
				return
			}
			assert.Equal(t, t0.Add(tt.first), tl.First("d"))
			assert.Zero(t, tl.Max("other"), "deployments are apart")
		})
	}
}
