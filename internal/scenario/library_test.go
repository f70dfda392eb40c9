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

func TestLibraryComposition(t *testing.T) {
	lib := Library(1)
	names := map[string]bool{}
	regressedHigh, regressedLow, clean, cleanLow := 0, 0, 0, 0
	byKind := map[Kind]int{}
	var previousStart time.Time
	for i := range lib {
		sc := &lib[i]
		require.NoError(t, sc.Validate(), sc.Name)
		require.False(t, names[sc.Name], "duplicate name %s", sc.Name)
		names[sc.Name] = true
		require.True(t, sc.Start.After(previousStart), "scenarios run on increasing days")
		previousStart = sc.Start
		require.Len(t, sc.Services, 2, "a deployed service and a bystander")

		label := sc.Label()
		assert.Equal(t, sc.Name, label.Scenario)
		assert.Equal(t, LibraryWarmUp, label.DeploymentStart.Sub(sc.Start))
		assert.False(t, label.RolloutEnd.IsZero() && label.Kind != KindCanaryErrors, "%s: the rollout ends within the scenario", sc.Name)
		assert.GreaterOrEqual(t, label.TrafficRPS, 1.0)
		assert.LessOrEqual(t, label.TrafficRPS, 200.0)
		byKind[label.Kind]++
		switch {
		case label.Regressed && !label.LowTraffic():
			regressedHigh++
		case label.Regressed:
			regressedLow++
		case label.LowTraffic():
			clean++
			cleanLow++
		default:
			clean++
		}
		if label.Regressed {
			assert.Equal(t, label.DeploymentStart, label.RegressionOnset, "library regressions start with the deployment")
		}
		if label.Regressed && sc.Shape == "" {
			assert.Equal(t, LibraryMagnitudes[label.Kind], label.Magnitude)
		}
		if label.Kind == KindCanaryErrors {
			assert.Equal(t, deployevent.CohortCanary, label.Cohort)
			assert.Equal(t, deployevent.StrategyCanary, label.Strategy)
		}
		if label.Kind == KindSaturation {
			assert.True(t, label.Signals.Has(SignalMetrics))
		}
	}
	// The classic cells, then the widened shapes (two regression shapes at
	// three traffic levels and one low, the quiet error steps; the surges and
	// quiet clean rollouts).
	shapeRegressions := 2*3*ShapeSeeds + 2*QuietErrorSeeds
	assert.Equal(t, len(Kinds)*3*RegressionSeeds+shapeRegressions, regressedHigh)
	assert.Equal(t, len(Kinds)*2*LowTrafficRegressionSeeds+2*LowTrafficRegressionSeeds, regressedLow)
	assert.Equal(t, 2*len(LibraryTraffic)*CleanSeeds+3*ShapeSeeds+2*ShapeSeeds+LowTrafficRegressionSeeds, clean)
	assert.Equal(t, 2*2*CleanSeeds+LowTrafficRegressionSeeds, cleanLow)
	assert.GreaterOrEqual(t, regressedHigh, 40, "enough regressions for a detection rate")
	assert.GreaterOrEqual(t, clean, 50, "enough clean deployments that 2% is one")
	for _, kind := range []Kind{KindThroughput, KindSaturation, KindCanaryErrors} {
		assert.Equal(t, 3*RegressionSeeds+2*LowTrafficRegressionSeeds, byKind[kind], kind)
	}
	for _, kind := range []Kind{KindErrorRatio, KindLatency} {
		assert.Greater(t, byKind[kind], 3*RegressionSeeds+2*LowTrafficRegressionSeeds, "%s: the shapes add some", kind)
	}

	again := Library(1)
	assert.Equal(t, lib, again, "the library is deterministic")
	other := Library(2)
	assert.NotEqual(t, lib[0].Seed, other[0].Seed)
}

func TestLibraryScenarioRuns(t *testing.T) {
	// One scenario of each kind at low traffic: generates, carries its events,
	// and the bystander never changes version.
	lib := Library(1)
	seen := map[Kind]bool{}
	for i := range lib {
		sc := lib[i]
		label := sc.Label()
		if seen[label.Kind] || label.TrafficRPS != 5 {
			continue
		}
		seen[label.Kind] = true
		events := 0
		bystander := sc.Services[1]
		require.NoError(t, sc.Run(func(st Step) error {
			events += len(st.Events)
			for _, rm := range st.Metrics.ResourceMetrics().All() {
				res := rm.Resource().Attributes()
				if str(res, deployevent.AttrServiceName) == bystander.Name {
					require.Equal(t, bystander.Version, str(res, deployevent.AttrServiceVersion))
				}
			}
			return nil
		}), sc.Name)
		assert.Positive(t, events, sc.Name)
	}
	assert.Len(t, seen, len(Kinds)+1)
}
