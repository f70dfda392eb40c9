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

// The topologies of Topologies (Scenario.Topology, Label.Topology).
const (
	// TopologyImpactEndpoint: payment's new version fails only the route
	// checkout calls (RouteCharge), and only as its callers see it: checkout
	// is harmed, frontend (RouteStatus) and payment's own spans are not.
	TopologyImpactEndpoint = "impact-endpoint"
	// TopologyImpactSlow: payment's new version is slower on every route, in
	// its own spans and in every caller's calls.
	TopologyImpactSlow = "impact-slow"
	// TopologyCallerOwn: checkout's new version fails its own requests while
	// its dependencies stay healthy.
	TopologyCallerOwn = "caller-own"
	// TopologyTwoRollouts: payment and checkout roll out together, and one of
	// them (alternating) is harmful: payment failing RouteCharge into
	// checkout's own 5xx (odd scenario indices), or checkout itself (even).
	TopologyTwoRollouts = "two-rollouts"
	// TopologyCleanPair: payment and checkout roll out together and neither
	// is harmful: every alarm is a false one.
	TopologyCleanPair = "clean-pair"
)

// The services and routes of the topology scenarios: frontend and checkout
// call payment, checkout also calls inventory.
const (
	ServiceFrontend  = "frontend"
	ServiceCheckout  = "checkout"
	ServicePayment   = "payment"
	ServiceInventory = "inventory"

	// RouteCharge is the payment route checkout calls (POST).
	RouteCharge = "/charge"
	// RouteStatus is the payment route frontend calls (GET).
	RouteStatus = "/status"
)

// The composition of Topologies.
var (
	// TopologyNames are the topologies, in library order.
	TopologyNames = []string{TopologyImpactEndpoint, TopologyImpactSlow, TopologyCallerOwn, TopologyTwoRollouts, TopologyCleanPair}
	// TopologyTraffic are the main deployed service's request rates, req/s.
	TopologyTraffic = []float64{20, 50, 200}
)

const (
	// TopologySeeds is the number of scenarios per topology and traffic level.
	TopologySeeds = 4
	// TopologyObserve is how long each topology scenario runs after the deployment starts.
	TopologyObserve = 10 * time.Minute
)

// Traffic shape of the topology scenarios, relative to payment's rate.
const (
	// topologyCheckoutShare is checkout's and inventory's rate relative to payment's (frontend's is payment's).
	topologyCheckoutShare = 0.6
	// topologyStatusFraction is the share of frontend requests that check payment's status.
	topologyStatusFraction = 0.5
	// topologyStatusPropagate is the probability that a failed status check fails the frontend request.
	topologyStatusPropagate = 0.5
)

// topologyEpoch is the first day of the topology scenarios' calendar, apart
// from the library's.
var topologyEpoch = time.Date(2026, time.September, 7, 0, 0, 0, 0, time.UTC)

// The routes of the topology services: weight and latency factor.
var (
	frontendRoutes = []Route{
		{Method: "GET", Route: "/", Weight: 0.3, LatencyFactor: 1},
		{Method: "GET", Route: "/api/products/{id}", Weight: 0.45, LatencyFactor: 1.2},
		{Method: "GET", Route: "/api/cart", Weight: 0.25, LatencyFactor: 0.8},
	}
	checkoutRoutes = []Route{
		{Method: "POST", Route: "/api/checkout", Weight: 0.85, LatencyFactor: 1.5},
		{Method: "GET", Route: "/api/orders/{id}", Weight: 0.15, LatencyFactor: 0.8},
	}
	paymentRoutes = []Route{
		{Method: "POST", Route: RouteCharge, Weight: 0.5, LatencyFactor: 1.3},
		{Method: "GET", Route: RouteStatus, Weight: 0.4, LatencyFactor: 0.5},
		{Method: "POST", Route: "/refund", Weight: 0.1, LatencyFactor: 1.5},
	}
	inventoryRoutes = []Route{
		{Method: "GET", Route: "/stock/{sku}", Weight: 0.7, LatencyFactor: 1},
		{Method: "POST", Route: "/reserve", Weight: 0.3, LatencyFactor: 1.4},
	}
)

// Topologies returns the multi-service scenarios, all derived from seed and
// apart from Library: for each topology (TopologyNames) and traffic level
// (TopologyTraffic, the main deployed service's rate), TopologySeeds
// scenarios named like "impact-endpoint/rps=50/2". Every scenario runs
// frontend, checkout, payment and inventory with traces and metrics
// (frontend and checkout calling payment, checkout calling inventory), a
// LibraryWarmUp warm-up and TopologyObserve of observation.
func Topologies(seed int64) []Scenario {
	lib := newRand(seed, streamSetup+200)
	var out []Scenario
	for _, topology := range TopologyNames {
		for _, rps := range TopologyTraffic {
			for k := range TopologySeeds {
				out = append(out, topologyScenario(lib, len(out), k, topology, rps, seed))
			}
		}
	}
	return out
}

// topologyScenario draws one topology scenario's parameters from lib; k is
// its index within its (topology, rps) cell.
func topologyScenario(lib *rand.Rand, index, k int, topology string, rps float64, seed int64) Scenario {
	uniform := func(lo, hi float64) float64 { return lo + (hi-lo)*lib.Float64() }
	steps := func(lo, hi int) time.Duration { return time.Duration(lo+lib.IntN(hi-lo+1)) * 5 * time.Second }
	name := fmt.Sprintf("%s/rps=%g/%d", topology, rps, k)

	main, also := ServicePayment, ""
	switch {
	case topology == TopologyCallerOwn:
		main = ServiceCheckout
	case topology == TopologyTwoRollouts && k%2 == 1:
		also = ServiceCheckout
	case topology == TopologyTwoRollouts:
		main, also = ServiceCheckout, ServicePayment
	case topology == TopologyCleanPair:
		also = ServiceCheckout
	}
	// Rates follow payment's; rps is the main deployed service's.
	paymentRate, checkoutRate := rps, rps*topologyCheckoutShare
	if main == ServiceCheckout {
		paymentRate, checkoutRate = rps/topologyCheckoutShare, rps
	}
	deployAt := topologyEpoch.Add(time.Duration(index)*24*time.Hour + 8*time.Hour + time.Duration(lib.IntN(10*60))*time.Minute)
	amplitude := uniform(0.2, 0.4)
	peak := time.Duration(uniform(11, 17) * float64(time.Hour))

	minors := map[string]int{}
	service := func(name string, rate float64, routes []Route, p50lo, p50hi float64) Service {
		p50 := time.Duration(uniform(p50lo, p50hi) * float64(time.Millisecond))
		minors[name] = 1 + lib.IntN(40)
		instances := 2
		switch {
		case rate >= 200:
			instances = 6
		case rate >= 50:
			instances = 4
		case rate >= 20:
			instances = 3
		}
		return Service{
			Name: name, Namespace: "shop", Environment: "production",
			Version:   fmt.Sprintf("1.%d.%d", minors[name], lib.IntN(10)),
			Instances: instances,
			Signals:   SignalTraces | SignalMetrics,
			Traffic: Traffic{
				RPS:              rate,
				DiurnalAmplitude: amplitude,
				DiurnalPeak:      peak,
				RateNoise:        uniform(0.03, 0.08),
				LatencyP50:       p50,
				LatencyP95:       time.Duration(float64(p50) * uniform(3.5, 5)),
				ErrorRatio:       uniform(0.007, 0.013),
				ErrorNoise:       0.15,
				ClientErrorRatio: uniform(0.01, 0.03),
				CPUUtilization:   uniform(0.25, 0.45),
				Routes:           routes,
			},
		}
	}
	frontend := service(ServiceFrontend, paymentRate, frontendRoutes, 15, 30)
	frontend.Calls = []Call{{Callee: ServicePayment, Route: RouteStatus, Fraction: topologyStatusFraction, Propagate: Probability(topologyStatusPropagate)}}
	checkout := service(ServiceCheckout, checkoutRate, checkoutRoutes, 20, 40)
	checkout.Calls = []Call{
		{Callee: ServicePayment, Route: RouteCharge, Routes: []string{"/api/checkout"}},
		{Callee: ServiceInventory, Route: "/reserve", Routes: []string{"/api/checkout"}},
	}
	payment := service(ServicePayment, paymentRate, paymentRoutes, 30, 60)
	inventory := service(ServiceInventory, checkoutRate, inventoryRoutes, 10, 25)

	sc := Scenario{
		Name:           name,
		Topology:       topology,
		Seed:           seed*1_000_003 + 500_000 + int64(index),
		Start:          deployAt.Add(-LibraryWarmUp),
		Step:           5 * time.Second,
		MetricInterval: 10 * time.Second,
		WarmUp:         LibraryWarmUp,
		Observe:        TopologyObserve,
		Services:       []Service{frontend, checkout, payment, inventory},
	}
	deployment := func(svc string) Deployment {
		d := Deployment{
			Service:          svc,
			Version:          fmt.Sprintf("1.%d.0", minors[svc]+1),
			Strategy:         deployevent.StrategyRolling,
			QueuedFor:        steps(6, 24),
			InstanceInterval: steps(4, 9),
			RefName:          "main",
			RepositoryURL:    "https://github.com/example-shop/" + svc,
			Actor:            []string{"alice", "bob", "carol", "dave", "erin"}[lib.IntN(5)],
		}
		d.Revision = fmt.Sprintf("%016x%016x%08x", lib.Uint64(), lib.Uint64(), lib.Uint32())
		d.CommitTime = deployAt.Add(-time.Duration(10+lib.IntN(24*60)) * time.Minute)
		d.ID = deployevent.DeriveID("scenario", name, svc, d.Revision)
		d.PipelineRunID = strconv.Itoa(1_000_000 + lib.IntN(9_000_000))
		return d
	}
	sc.Deployment = deployment(main)
	if also != "" {
		a := deployment(also)
		a.Offset = steps(0, 6) // within 30 s of the main one
		sc.Also = []Deployment{a}
	}

	// A 5xx ratio of 6–10 % on the charge route, from payment's background.
	chargeFailure := func() float64 { return uniform(0.06, 0.10) / sc.service(ServicePayment).Traffic.ErrorRatio }
	switch {
	case topology == TopologyCleanPair:
		// Clean: no regression.
	case topology == TopologyImpactEndpoint:
		sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: chargeFailure(), Routes: []string{RouteCharge}, CallersOnly: true}
	case topology == TopologyImpactSlow:
		sc.Regression = &Regression{Kind: KindLatency, Magnitude: uniform(1.5, 2)}
	case main == ServicePayment: // two rollouts, payment harmful
		sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: chargeFailure(), Routes: []string{RouteCharge}}
	default: // checkout harmful: caller-own, or two rollouts
		// ×5–7 of checkout's own 5xx ratio: its requests also fail when its
		// calls do (about 2 points more), so the whole error ratio rises
		// ×2.3–3, like the library's error_ratio regressions (×3) and past
		// the processor's tolerance (×1.5); ×3–4 made it ×1.4–1.7.
		sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: uniform(5, 7)}
	}
	return sc
}
