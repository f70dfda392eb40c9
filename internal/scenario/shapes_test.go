// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// testMixture is the library's kind of mixture with fixed factors.
var testMixture = []LatencyMode{
	{Weight: 0.82, Factor: 1, Spread: 1},
	{Weight: 0.15, Factor: 3, Spread: 1.1},
	{Weight: 0.03, Factor: 12, Spread: 1.4},
}

func TestLatencyMixtureHasALongTail(t *testing.T) {
	single := testScenario(100)
	single.WarmUp, single.Observe = 5*time.Minute, time.Minute
	mixed := single
	mixed.Services = []Service{single.Services[0]}
	mixed.Services[0].Traffic.LatencyMixture = testMixture
	one, _ := collect(t, &single)
	mix, _ := collect(t, &mixed)

	// The main mode is the single lognormal: the medians stay close, while
	// the slow modes stretch the tail far beyond what one lognormal has.
	assert.InEpsilon(t, quantile(one, 0.5), quantile(mix, 0.5), 0.25, "median")
	assert.Greater(t, quantile(mix, 0.99)/quantile(mix, 0.5), 2*quantile(one, 0.99)/quantile(one, 0.5), "p99 / p50")
	singleMedian := quantile(one, 0.5)
	slow := len(filter(mix, func(r *request) bool { return r.latency > 8*singleMedian }))
	assert.InDelta(t, 0.03+0.15*0.1, float64(slow)/float64(len(mix)), 0.02, "the slowest mode and the database mode's tail")
}

func TestMixtureLatencyRegressionIsLatencyOnly(t *testing.T) {
	base := testScenario(100)
	base.WarmUp, base.Observe = 5*time.Minute, 10*time.Minute
	base.Services[0].Traffic.LatencyMixture = testMixture
	clean := base
	regressed := base
	regressed.Regression = &Regression{Kind: KindLatency, Magnitude: MixtureLatencyMagnitude}
	cleanRequests, _ := collect(t, &clean)
	regressedRequests, _ := collect(t, &regressed)
	after := func(r *request) bool { return !r.end.Before(clean.Label().RolloutEnd) }

	for _, q := range []float64{0.5, 0.95, 0.99} {
		assert.InEpsilon(t, MixtureLatencyMagnitude, quantile(filter(regressedRequests, after), q)/quantile(filter(cleanRequests, after), q), 0.06, "quantile %g", q)
	}
	assert.InDelta(t, errorRatio(filter(cleanRequests, after)), errorRatio(filter(regressedRequests, after)), 1e-12, "the same errors")
}

func TestSurge(t *testing.T) {
	for _, tt := range []struct {
		name   string
		offset time.Duration
		want   float64
	}{
		{"before", -2 * time.Minute, 1},
		{"rising halfway", -30 * time.Second, 1.5},
		{"at its height", 3 * time.Minute, 2},
		{"falling halfway", 8*time.Minute + 30*time.Second, 1.5},
		{"over", 9 * time.Minute, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := Surge{From: -time.Minute, Ramp: time.Minute, Duration: 10 * time.Minute, Factor: 2}
			assert.InDelta(t, tt.want, s.factor(tt.offset), 1e-9)
		})
	}

	sc := testScenario(50)
	sc.WarmUp, sc.Observe = 10*time.Minute, 15*time.Minute
	sc.Services[0].Traffic.Surges = []Surge{{From: -time.Minute, Ramp: time.Minute, Duration: 10 * time.Minute, Factor: SurgeFactor}}
	requests, cpu := collect(t, &sc)
	deploy := sc.DeploymentStart()
	rate := func(from, to time.Duration) float64 {
		in := filter(requests, func(r *request) bool { return !r.end.Before(deploy.Add(from)) && r.end.Before(deploy.Add(to)) })
		return float64(len(in)) / (to - from).Seconds()
	}
	assert.InEpsilon(t, 50, rate(-8*time.Minute, -time.Minute), 0.05, "before the surge")
	assert.InEpsilon(t, 100, rate(time.Minute, 7*time.Minute), 0.05, "twice the traffic at its height, across the rollout")
	assert.InEpsilon(t, 50, rate(10*time.Minute, 15*time.Minute), 0.05, "after it")
	// More requests per instance is more CPU, whichever version serves them.
	height := meanCPU(cpu, func(c *cpuReading) bool {
		return c.at.After(deploy.Add(3*time.Minute)) && c.at.Before(deploy.Add(7*time.Minute))
	})
	before := meanCPU(cpu, func(c *cpuReading) bool { return c.at.Before(deploy.Add(-time.Minute)) })
	assert.InDelta(t, before+(0.35-idleCPU), height, 0.02)
}

func TestValidateShapes(t *testing.T) {
	for _, tt := range []struct {
		name   string
		mutate func(*Traffic)
		want   string
	}{
		{"mode without weight", func(tr *Traffic) { tr.LatencyMixture = []LatencyMode{{Factor: 1}} }, "latency mode"},
		{"mode without factor", func(tr *Traffic) { tr.LatencyMixture = []LatencyMode{{Weight: 1}} }, "latency mode"},
		{"surge without factor", func(tr *Traffic) { tr.Surges = []Surge{{Duration: time.Minute}} }, "surge"},
		{"surge ramp too long", func(tr *Traffic) { tr.Surges = []Surge{{Duration: time.Minute, Ramp: time.Minute, Factor: 2}} }, "surge"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sc := testScenario(10)
			tt.mutate(&sc.Services[0].Traffic)
			err := sc.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLibraryShapes(t *testing.T) {
	count := map[string]int{}
	for _, sc := range Library(1) {
		label := sc.Label()
		assert.Equal(t, sc.Shape, label.Shape)
		if sc.Shape == "" {
			assert.Empty(t, sc.Services[0].Traffic.LatencyMixture, "%s: the classic cells keep one lognormal", sc.Name)
			continue
		}
		count[sc.Shape]++
		tr := sc.Services[0].Traffic
		assert.Len(t, tr.LatencyMixture, 3, "%s: every shape serves the mixture", sc.Name)
		hour := label.DeploymentStart.Hour()
		switch sc.Shape {
		case ShapeMixtureLatency:
			assert.Equal(t, KindLatency, label.Kind)
			assert.Equal(t, MixtureLatencyMagnitude, label.Magnitude)
		case ShapeErrorStep, ShapeQuietErrorStep:
			assert.Equal(t, KindErrorRatio, label.Kind)
			assert.Equal(t, float64(ErrorStepMagnitude), label.Magnitude)
			assert.Equal(t, 0.01, tr.ErrorRatio, "1 % → 4 %")
		case ShapeSurge:
			assert.False(t, label.Regressed)
			require.Len(t, tr.Surges, 1)
			assert.Equal(t, float64(SurgeFactor), tr.Surges[0].Factor)
			assert.LessOrEqual(t, tr.Surges[0].From, time.Duration(0), "the rollout happens during the surge")
			assert.GreaterOrEqual(t, tr.Surges[0].From, -2*time.Minute)
		case ShapeQuietHour:
			assert.False(t, label.Regressed)
		}
		if sc.Shape == ShapeQuietHour || sc.Shape == ShapeQuietErrorStep {
			assert.True(t, hour >= 1 && hour < 5, "%s deploys at %s", sc.Name, label.DeploymentStart)
			assert.GreaterOrEqual(t, tr.DiurnalAmplitude, 0.5)
		} else {
			assert.True(t, hour >= 8 && hour < 18, "%s deploys at %s", sc.Name, label.DeploymentStart)
		}
	}
	assert.Equal(t, map[string]int{
		ShapeMixtureLatency: 3*ShapeSeeds + LowTrafficRegressionSeeds,
		ShapeErrorStep:      3*ShapeSeeds + LowTrafficRegressionSeeds,
		ShapeSurge:          3 * ShapeSeeds,
		ShapeQuietHour:      2*ShapeSeeds + LowTrafficRegressionSeeds,
		ShapeQuietErrorStep: 2 * QuietErrorSeeds,
	}, count)
}

func TestLibrarySurgeMeetsBothStrategies(t *testing.T) {
	strategies := map[deployevent.Strategy]int{}
	for _, sc := range Library(1) {
		if sc.Shape == ShapeSurge {
			strategies[sc.Deployment.Strategy]++
		}
	}
	assert.Equal(t, map[deployevent.Strategy]int{deployevent.StrategyRolling: 6, deployevent.StrategyCanary: 6}, strategies)
}
