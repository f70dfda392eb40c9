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
// and CleanSeeds clean rolling and canary deployments at every traffic level.
func Library(seed int64) []Scenario {
	var out []Scenario
	lib := newRand(seed, streamSetup+100)
	add := func(kind Kind, strategy deployevent.Strategy, rps float64, n int) {
		for k := range n {
			name := fmt.Sprintf("%s/rps=%g/%02d", kind, rps, k)
			if kind == KindNone {
				name = fmt.Sprintf("clean-%s/rps=%g/%02d", strategy, rps, k)
			}
			out = append(out, libraryScenario(lib, len(out), name, kind, strategy, rps, seed))
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
			add(kind, strategy, rps, n)
		}
	}
	for _, strategy := range []deployevent.Strategy{deployevent.StrategyRolling, deployevent.StrategyCanary} {
		for _, rps := range LibraryTraffic {
			add(KindNone, strategy, rps, CleanSeeds)
		}
	}
	return out
}

// libraryScenario draws one scenario's parameters from lib.
func libraryScenario(lib *rand.Rand, index int, name string, kind Kind, strategy deployevent.Strategy, rps float64, seed int64) Scenario {
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*lib.Float64() }
	steps := func(lo, hi int) time.Duration { return time.Duration(lo+lib.IntN(hi-lo+1)) * 5 * time.Second }

	perm := lib.Perm(len(serviceNames))
	deployed, bystander := serviceNames[perm[0]], serviceNames[perm[1]]
	// Deployments happen in working hours, on the scenario's own day.
	deployAt := libraryEpoch.Add(time.Duration(index)*24*time.Hour + 8*time.Hour + time.Duration(lib.IntN(10*60))*time.Minute)

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
	if kind == KindNone {
		return sc
	}
	sc.Regression = &Regression{Kind: kind, Magnitude: LibraryMagnitudes[kind]}
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
