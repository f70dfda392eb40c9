// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario // import "github.com/deploylens/deploylens/internal/scenario"

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// The composition of Library: how many seeds of each cell.
var (
	// LibraryTraffic are the deployed services' request rates, req/s.
	LibraryTraffic = []float64{1, 5, 20, 50, 200}
	// LibraryMagnitudes is the magnitude of each regression kind.
	LibraryMagnitudes = map[Kind]float64{
		KindErrorRatio:   3,   // 1% → 3%
		KindLatency:      1.3, // p95 +30%
		KindThroughput:   0.5, // −50%
		KindSaturation:   0.4, // CPU utilization +0.4 over the ramp
		KindCanaryErrors: 3,   // the canary's 1% → 3%; the aggregate moves by the canary's share
	}
)

const (
	// RegressionSeeds is the number of scenarios per regression kind and traffic level at ≥ LowTrafficRPS.
	RegressionSeeds = 4
	// LowTrafficRegressionSeeds is the same below LowTrafficRPS.
	LowTrafficRegressionSeeds = 2
	// CleanSeeds is the number of clean deployments per strategy and traffic level.
	CleanSeeds = 10

	// LibraryWarmUp is the steady traffic before each deployment.
	LibraryWarmUp = 30 * time.Minute
	// LibraryObserve is how long each scenario runs after the deployment starts.
	LibraryObserve = 20 * time.Minute
	// librarySaturationRamp is how long saturation takes to creep to its magnitude.
	librarySaturationRamp = 5 * time.Minute
)

// The widened shapes of the library (Scenario.Shape): rollouts as they also
// happen, beyond the classic cells.
const (
	// ShapeMixtureLatency: latency is a long-tailed mixture, and the new
	// version is MixtureLatencyMagnitude slower in every mode, errors unchanged.
	ShapeMixtureLatency = "mixture-latency"
	// ShapeErrorStep: the 5xx ratio is exactly 1 % and the new version's is
	// ErrorStepMagnitude times that (1 % → 4 %), on mixture latency.
	ShapeErrorStep = "error-step"
	// ShapeSurge: a clean rollout while traffic doubles (SurgeFactor) for ten
	// minutes, rising from up to two minutes before the start.
	ShapeSurge = "clean-surge"
	// ShapeQuietHour: a rollout between 01:00 and 05:00 UTC, at the trough of
	// a deep diurnal curve with noisier traffic; clean, or an error step.
	ShapeQuietHour = "clean-quiet"
	// ShapeQuietErrorStep: an error step at a quiet hour.
	ShapeQuietErrorStep = "error-step-quiet"

	// MixtureLatencyMagnitude is the latency-only regression of ShapeMixtureLatency (+40 %).
	MixtureLatencyMagnitude = 1.4
	// ErrorStepMagnitude is the error regression of the error steps (1 % → 4 %).
	ErrorStepMagnitude = 4
	// SurgeFactor is the traffic of ShapeSurge at its height, relative to before.
	SurgeFactor = 2
	// ShapeSeeds is the number of scenarios per widened shape and traffic level
	// (LowTrafficRegressionSeeds below LowTrafficRPS, QuietErrorSeeds for the quiet error steps).
	ShapeSeeds = 4
	// QuietErrorSeeds is the number of quiet-hour error steps per traffic level.
	QuietErrorSeeds = 2
)

// libraryCell is one cell of the library: a regression (or none) on a shape.
type libraryCell struct {
	shape     string
	kind      Kind
	magnitude float64
	strategy  deployevent.Strategy
}

// libraryEpoch is the first day of the library's simulated calendar; scenario
// i runs on day i, so a library replayed in order has increasing timestamps.
var libraryEpoch = time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC)

// serviceNames is the pool the library draws its services from.
var serviceNames = []string{
	"checkout", "cart", "catalog", "payments", "search",
	"recommendations", "shipping", "inventory", "accounts", "notifications",
}

// Library returns the standard scenarios of the detection benchmark, all
// derived from seed: for every regression kind, RegressionSeeds scenarios at
// each traffic level from 20 req/s up and LowTrafficRegressionSeeds below;
// CleanSeeds clean rolling and canary deployments at every traffic level; then
// the widened shapes (ShapeMixtureLatency, ShapeErrorStep, ShapeSurge,
// ShapeQuietHour, ShapeQuietErrorStep). The classic cells come first and
// draw exactly what they drew before the shapes were added.
func Library(seed int64) []Scenario {
	var out []Scenario
	lib := newRand(seed, streamSetup+100)
	add := func(c libraryCell, rps float64, n int) {
		for k := range n {
			name := fmt.Sprintf("%s/rps=%g/%02d", c.kind, rps, k)
			switch {
			case c.shape != "":
				name = fmt.Sprintf("%s/rps=%g/%02d", c.shape, rps, k)
			case c.kind == KindNone:
				name = fmt.Sprintf("clean-%s/rps=%g/%02d", c.strategy, rps, k)
			}
			cell := c
			if c.shape == ShapeSurge && k%2 == 1 {
				// Half the surges meet a canary, half a rolling update.
				cell.strategy = deployevent.StrategyCanary
			}
			out = append(out, libraryScenario(lib, len(out), name, cell, rps, seed))
		}
	}
	for _, kind := range Kinds {
		strategy := deployevent.StrategyRolling
		if kind == KindCanaryErrors {
			strategy = deployevent.StrategyCanary
		}
		for _, rps := range LibraryTraffic {
			n := RegressionSeeds
			if rps < LowTrafficRPS {
				n = LowTrafficRegressionSeeds
			}
			add(libraryCell{kind: kind, magnitude: LibraryMagnitudes[kind], strategy: strategy}, rps, n)
		}
	}
	for _, strategy := range []deployevent.Strategy{deployevent.StrategyRolling, deployevent.StrategyCanary} {
		for _, rps := range LibraryTraffic {
			add(libraryCell{kind: KindNone, strategy: strategy}, rps, CleanSeeds)
		}
	}
	rolling := deployevent.StrategyRolling
	for _, rps := range []float64{5, 20, 50, 200} {
		n := ShapeSeeds
		if rps < LowTrafficRPS {
			n = LowTrafficRegressionSeeds
		}
		add(libraryCell{shape: ShapeMixtureLatency, kind: KindLatency, magnitude: MixtureLatencyMagnitude, strategy: rolling}, rps, n)
		add(libraryCell{shape: ShapeErrorStep, kind: KindErrorRatio, magnitude: ErrorStepMagnitude, strategy: rolling}, rps, n)
	}
	for _, rps := range []float64{20, 50, 200} {
		add(libraryCell{shape: ShapeSurge, kind: KindNone, strategy: rolling}, rps, ShapeSeeds)
	}
	for _, rps := range []float64{5, 20, 50} {
		n := ShapeSeeds
		if rps < LowTrafficRPS {
			n = LowTrafficRegressionSeeds
		}
		add(libraryCell{shape: ShapeQuietHour, kind: KindNone, strategy: rolling}, rps, n)
	}
	for _, rps := range []float64{20, 50} {
		add(libraryCell{shape: ShapeQuietErrorStep, kind: KindErrorRatio, magnitude: ErrorStepMagnitude, strategy: rolling}, rps, QuietErrorSeeds)
	}
	return out
}

// libraryScenario draws one scenario's parameters from lib.
func libraryScenario(lib *rand.Rand, index int, name string, cell libraryCell, rps float64, seed int64) Scenario {
	kind, strategy := cell.kind, cell.strategy
	quiet := cell.shape == ShapeQuietHour || cell.shape == ShapeQuietErrorStep
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*lib.Float64() }
	steps := func(lo, hi int) time.Duration { return time.Duration(lo+lib.IntN(hi-lo+1)) * 5 * time.Second }

	perm := lib.Perm(len(serviceNames))
	deployed, bystander := serviceNames[perm[0]], serviceNames[perm[1]]
	// Deployments happen in working hours, on the scenario's own day; quiet
	// ones between 01:00 and 05:00 (the same draw, so the classic cells stay).
	minutes := lib.IntN(10 * 60)
	deployAt := libraryEpoch.Add(time.Duration(index)*24*time.Hour + 8*time.Hour + time.Duration(minutes)*time.Minute)
	if quiet {
		deployAt = libraryEpoch.Add(time.Duration(index)*24*time.Hour + time.Hour + time.Duration(minutes*2/5)*time.Minute)
	}

	// Rotate the signals so detection is exercised from spans, from metrics and from both.
	signals := []Signals{SignalTraces | SignalLogs, SignalMetrics | SignalLogs, SignalsAll}[index%3]
	if kind == KindSaturation && !signals.Has(SignalMetrics) {
		signals = SignalsAll
	}
	instances := 2
	switch {
	case rps >= 200:
		instances = 6
	case rps >= 50:
		instances = 4
	case rps >= 20:
		instances = 3
	}
	p50 := time.Duration(uniform(20, 60) * float64(time.Millisecond))
	minor, patch := 1+lib.IntN(40), lib.IntN(10)

	sc := Scenario{
		Name:           name,
		Shape:          cell.shape,
		Seed:           seed*1_000_003 + int64(index),
		Start:          deployAt.Add(-LibraryWarmUp),
		Step:           5 * time.Second,
		MetricInterval: 10 * time.Second,
		WarmUp:         LibraryWarmUp,
		Observe:        LibraryObserve,
		Services: []Service{
			{
				Name: deployed, Namespace: "shop", Environment: "production",
				Version:   fmt.Sprintf("1.%d.%d", minor, patch),
				Instances: instances,
				Signals:   signals,
				Traffic: Traffic{
					RPS:              rps,
					DiurnalAmplitude: uniform(0.2, 0.4),
					DiurnalPeak:      time.Duration(uniform(11, 17) * float64(time.Hour)),
					RateNoise:        uniform(0.03, 0.08),
					LatencyP50:       p50,
					LatencyP95:       time.Duration(float64(p50) * uniform(3.5, 5)),
					ErrorRatio:       uniform(0.007, 0.013),
					ErrorNoise:       0.15,
					ClientErrorRatio: uniform(0.01, 0.03),
					CPUUtilization:   uniform(0.25, 0.45),
				},
			},
			{
				// A bystander: not deployed, cheap (no spans), and must stay quiet.
				Name: bystander, Namespace: "shop", Environment: "production",
				Version:   fmt.Sprintf("2.%d.%d", lib.IntN(20), lib.IntN(10)),
				Instances: 2,
				Signals:   SignalMetrics | SignalLogs,
				Traffic: Traffic{
					RPS:              []float64{5, 10, 20}[lib.IntN(3)],
					DiurnalAmplitude: 0.3,
					DiurnalPeak:      14 * time.Hour,
					RateNoise:        0.05,
					LatencyP50:       30 * time.Millisecond,
					LatencyP95:       120 * time.Millisecond,
					ErrorRatio:       0.005,
					ErrorNoise:       0.15,
					ClientErrorRatio: 0.02,
					CPUUtilization:   0.3,
				},
			},
		},
		Deployment: Deployment{
			Service:          deployed,
			Version:          fmt.Sprintf("1.%d.0", minor+1),
			Strategy:         strategy,
			QueuedFor:        steps(6, 24),
			InstanceInterval: steps(4, 9),
			RefName:          "main",
			RepositoryURL:    "https://github.com/example-shop/" + deployed,
			Actor:            []string{"alice", "bob", "carol", "dave", "erin"}[lib.IntN(5)],
		},
	}
	d := &sc.Deployment
	d.Revision = fmt.Sprintf("%016x%016x%08x", lib.Uint64(), lib.Uint64(), lib.Uint32())
	d.CommitTime = deployAt.Add(-time.Duration(10+lib.IntN(24*60)) * time.Minute)
	d.ID = deployevent.DeriveID("scenario", name, d.Revision)
	d.PipelineRunID = strconv.Itoa(1_000_000 + lib.IntN(9_000_000))
	if strategy == deployevent.StrategyCanary {
		d.CanaryFraction = []float64{0.1, 0.2, 0.25}[lib.IntN(3)]
		d.CanaryDuration = steps(60, 120) // promoted after 5–10 minutes
	}
	if cell.shape != "" {
		shapeScenario(lib, &sc, cell)
	}
	if kind == KindNone {
		return sc
	}
	sc.Regression = &Regression{Kind: kind, Magnitude: cell.magnitude}
	switch kind {
	case KindSaturation:
		sc.Regression.Ramp = librarySaturationRamp
	case KindCanaryErrors:
		// The canary holds for the whole scenario: the regression stays in its cohort.
		d.CanaryFraction = []float64{0.2, 0.25}[lib.IntN(2)]
		d.CanaryDuration = LibraryObserve + time.Minute
	}
	return sc
}

// shapeScenario applies a widened shape to a drawn scenario. Every shape
// serves a long-tailed latency mixture: most requests hit caches, some read
// the database (×2.5–4), a few retry or time out (×8–15, wider).
func shapeScenario(lib *rand.Rand, sc *Scenario, cell libraryCell) {
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*lib.Float64() }
	t := &sc.Services[0].Traffic
	t.LatencyMixture = []LatencyMode{
		{Weight: 0.82, Factor: 1, Spread: 1},
		{Weight: 0.15, Factor: uniform(2.5, 4), Spread: 1.1},
		{Weight: 0.03, Factor: uniform(8, 15), Spread: 1.4},
	}
	switch cell.shape {
	case ShapeErrorStep, ShapeQuietErrorStep:
		t.ErrorRatio = 0.01
	case ShapeSurge:
		t.Surges = []Surge{{
			From:     -time.Duration(lib.IntN(25)) * 5 * time.Second,
			Ramp:     time.Minute,
			Duration: 10 * time.Minute,
			Factor:   SurgeFactor,
		}}
	}
	if cell.shape == ShapeQuietHour || cell.shape == ShapeQuietErrorStep {
		// Night traffic: the trough of a deep daily curve, and noisier.
		t.DiurnalAmplitude = uniform(0.5, 0.7)
		t.DiurnalPeak = time.Duration(uniform(13, 16) * float64(time.Hour))
		t.RateNoise = uniform(0.08, 0.12)
	}
}
