// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario // import "github.com/deploylens/deploylens/internal/scenario"

import (
	"errors"
	"fmt"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Signals says which telemetry a service emits.
type Signals uint8

// The signals a service can emit.
const (
	// SignalTraces: one SERVER span per request, and one CLIENT span per
	// call the request makes (Service.Calls).
	SignalTraces Signals = 1 << iota
	// SignalMetrics: the http.server.request.duration histogram, the
	// http.client.request.duration histogram of the calls, and the
	// process.cpu.utilization gauge (the only place saturation shows).
	SignalMetrics
	// SignalLogs: one ERROR log record per 5xx response.
	SignalLogs
)

// SignalsAll is every signal.
const SignalsAll = SignalTraces | SignalMetrics | SignalLogs

// Has reports whether every signal of o is in s.
func (s Signals) Has(o Signals) bool { return s&o == o }

func (s Signals) String() string {
	out := ""
	for _, n := range []struct {
		bit  Signals
		name string
	}{{SignalTraces, "traces"}, {SignalMetrics, "metrics"}, {SignalLogs, "logs"}} {
		if s.Has(n.bit) {
			if out != "" {
				out += "+"
			}
			out += n.name
		}
	}
	if out == "" {
		return "none"
	}
	return out
}

// Kind is the kind of a labelled regression.
type Kind string

// The regression kinds. Magnitude means something different for each.
const (
	// KindNone: a clean deployment.
	KindNone Kind = "none"
	// KindErrorRatio: the new version's 5xx ratio is multiplied by Magnitude (3: 1% → 3%).
	KindErrorRatio Kind = "error_ratio"
	// KindLatency: the new version's latencies are multiplied by Magnitude (1.3: p95 +30%).
	KindLatency Kind = "latency"
	// KindThroughput: the new version loses the fraction Magnitude of its requests (0.5: −50%).
	KindThroughput Kind = "throughput"
	// KindSaturation: the new version's CPU utilization creeps up by Magnitude
	// (absolute, 0–1) over Regression.Ramp.
	KindSaturation Kind = "saturation"
	// KindCanaryErrors: a canary whose 5xx ratio is multiplied by Magnitude while
	// the baseline cohort stays healthy; the aggregate barely moves.
	KindCanaryErrors Kind = "canary_errors"
)

// Kinds lists the regression kinds (not KindNone).
var Kinds = []Kind{KindErrorRatio, KindLatency, KindThroughput, KindSaturation, KindCanaryErrors}

// LowTrafficRPS is the traffic below which a deployment is "low traffic": the
// benchmark expects an inconclusive verdict there rather than an alarm.
const LowTrafficRPS = 20

// Scenario is one deployment story in simulated time: steady traffic for
// WarmUp, then a deployment of one service, then Observe more of traffic.
type Scenario struct {
	// Name is unique within a library, e.g. "error_ratio/rps=50/3".
	Name string
	// Shape names the library cell's shape beyond its regression (ShapeSurge,
	// ShapeQuietHour …); empty for the classic cells. Reports group by it.
	Shape string
	// Topology names the call graph of a Topologies scenario
	// (TopologyImpactEndpoint …); empty for the classic scenarios.
	Topology string
	// Seed makes the scenario deterministic.
	Seed int64
	// Start is when simulated time begins (the first step's window opens).
	Start time.Time
	// Step is the simulated time one Step covers (default 5s).
	Step time.Duration
	// MetricInterval is the metric export interval, a multiple of Step (default 10s).
	MetricInterval time.Duration
	// WarmUp is the steady traffic before the deployment starts, long enough for a baseline.
	WarmUp time.Duration
	// Observe is how long the scenario runs after the deployment starts.
	Observe time.Duration
	// Services are the services serving traffic; Deployment.Service names the deployed one.
	Services []Service
	// Deployment is the deployment of one of the services: the main one, the
	// one Regression belongs to and Label describes.
	Deployment Deployment
	// Also are further deployments of other services, each starting at
	// Deployment's start plus its Offset, with lifecycle events of its own.
	// They are always clean: Regression belongs to Deployment.
	Also []Deployment
	// Regression, when set, is what the new version breaks; nil is a clean deployment.
	Regression *Regression
}

// Service is one service and its traffic model.
type Service struct {
	Name        string
	Namespace   string
	Environment string
	// Version is the version running before the deployment.
	Version string
	// Instances is how many replicas serve the traffic (default 3).
	Instances int
	// Signals is what the service emits (default traces+metrics+logs).
	Signals Signals
	// Traffic is the service's request model.
	Traffic Traffic
	// Calls are the service's outgoing calls to other services of the
	// scenario: CLIENT spans (and the http.client.request.duration
	// histogram) from this service, whose outcome and latency the callee's
	// model draws and which add to this service's own latency and errors.
	Calls []Call
}

// Call is a dependency of a service: some of its requests call one route of
// another service, inside the request. The call's outcome and latency come
// from the callee's model at that moment (its error ratio and latency on a
// callee replica drawn by the callee's serving shares, with the callee's
// regression when that replica runs the regressed version). Calls are the
// callers' view: the callee's own traffic (its SERVER spans from its own
// Traffic.RPS) does not change. A call is one level deep: the callee's own
// calls do not add to it.
type Call struct {
	// Callee is the called service, by name (one of Scenario.Services).
	Callee string
	// Route is the callee's http.route called (default: the callee's first route).
	Route string
	// Routes are the caller's http.routes whose requests make the call (empty: all).
	Routes []string
	// Fraction is the share of those requests that make the call (0: 1, every one).
	Fraction float64
	// Propagate is the probability that a 5xx response of the call makes the
	// caller's request a 5xx too (a 502, 503 or 504). nil means 1 (always);
	// Probability(0) never propagates: the caller degrades gracefully.
	Propagate *float64
}

// Probability returns a pointer to p, for Call.Propagate.
func Probability(p float64) *float64 { return &p }

// propagation is the call's Propagate with its default.
func (c *Call) propagation() float64 {
	if c.Propagate == nil {
		return 1
	}
	return *c.Propagate
}

// Traffic is a service's request model. Requests arrive as a Poisson process
// whose rate follows a diurnal curve with slow multiplicative noise.
type Traffic struct {
	// RPS is the expected request rate at the deployment's start (the diurnal
	// curve is scaled so that it is exactly this then).
	RPS float64
	// DiurnalAmplitude is the relative daily swing of the rate (0.3: ±30%).
	DiurnalAmplitude float64
	// DiurnalPeak is the time of day (since midnight UTC) of the daily peak.
	DiurnalPeak time.Duration
	// RateNoise is the standard deviation of the slow log-rate noise (0.05: ±5%).
	RateNoise float64
	// LatencyP50 and LatencyP95 shape the lognormal latency of a route with factor 1.
	LatencyP50, LatencyP95 time.Duration
	// ErrorRatio is the background ratio of 5xx responses.
	ErrorRatio float64
	// ErrorNoise is the standard deviation of the slow log noise on ErrorRatio.
	ErrorNoise float64
	// ClientErrorRatio is the ratio of 4xx responses (not errors of the server).
	ClientErrorRatio float64
	// CPUUtilization is the mean per-instance CPU utilization (0–1) at RPS.
	CPUUtilization float64
	// Routes are the endpoints and their share of requests (default: a small shop API).
	Routes []Route
	// LatencyMixture, when set, makes latency a mixture of lognormal modes
	// (cache hits, database reads, retries and timeouts) instead of the one
	// lognormal of LatencyP50/LatencyP95, which then shapes the mode with
	// Factor 1 and Spread 1: a long tail that a single lognormal lacks.
	LatencyMixture []LatencyMode
	// Surges are bursts of extra traffic (a campaign, a retry storm upstream).
	Surges []Surge
}

// LatencyMode is one component of a latency mixture.
type LatencyMode struct {
	// Weight is the relative share of requests served in this mode.
	Weight float64
	// Factor is the mode's median relative to LatencyP50.
	Factor float64
	// Spread is the mode's log-space spread relative to LatencyP50/LatencyP95's (0: 1).
	Spread float64
}

// Surge multiplies a service's request rate for a while, whichever version
// serves it: more requests, and as much more load on every instance.
type Surge struct {
	// From is when the surge begins to rise, relative to the deployment start
	// (negative: before it).
	From time.Duration
	// Ramp is how long the rate takes to rise to Factor, and to fall back.
	Ramp time.Duration
	// Duration is how long the surge lasts, from From to the end of its fall.
	Duration time.Duration
	// Factor multiplies the rate at the surge's height (2: twice the traffic).
	Factor float64
}

// factor is the surge's rate multiplier at offset since the deployment start.
func (s *Surge) factor(offset time.Duration) float64 {
	in := offset - s.From
	if in < 0 || in >= s.Duration {
		return 1
	}
	height := 1.0
	if s.Ramp > 0 {
		rise := min(in, s.Duration-in)
		height = min(1, float64(rise)/float64(s.Ramp))
	}
	return 1 + (s.Factor-1)*height
}

// Route is one endpoint of a service.
type Route struct {
	Method string
	Route  string
	// Weight is the relative share of requests.
	Weight float64
	// LatencyFactor scales the service's latency for this route.
	LatencyFactor float64
}

// Deployment is the rollout of a new version of one service.
type Deployment struct {
	// Service is the name of the deployed service (one of Scenario.Services).
	Service string
	// Offset is when the deployment starts relative to Scenario.Deployment's
	// start, for the deployments of Scenario.Also (≥ 0, rounded up to a
	// step); Scenario.Deployment's own must be 0.
	Offset time.Duration
	// Version is the version being deployed.
	Version string
	// ID is the deployment.id of the lifecycle events.
	ID string
	// Strategy is rolling or canary.
	Strategy deployevent.Strategy
	// QueuedFor is how long before the start the deployment is queued (0: no queued event).
	QueuedFor time.Duration
	// InstanceInterval is the time between two instance replacements (rolling,
	// and a canary's promotion); rounded up to a multiple of Step.
	InstanceInterval time.Duration
	// CanaryFraction is the share of traffic the canary serves (canary).
	CanaryFraction float64
	// CanaryDuration is how long the canary serves before promotion (canary);
	// at or beyond Observe the canary is never promoted within the scenario.
	CanaryDuration time.Duration
	// Silent deployments send no lifecycle events: the collector must infer
	// the deployment from the new service.version on telemetry.
	Silent bool
	// CI/CD context carried on the lifecycle events.
	Revision      string
	RefName       string
	RepositoryURL string
	PipelineRunID string
	Actor         string
	CommitTime    time.Time
}

// Regression is what a new version breaks.
type Regression struct {
	Kind Kind
	// StartsAt is when, after the deployment starts, the new version begins to
	// misbehave (usually 0: as soon as it serves).
	StartsAt time.Duration
	// Magnitude is the size of the regression; see the Kind constants.
	Magnitude float64
	// Ramp is how long a saturation regression takes to reach its magnitude.
	Ramp time.Duration
	// Routes, when set, limits an error_ratio, latency or canary_errors
	// regression to the requests (and calls) to these http.routes of the
	// deployed service; the others stay healthy.
	Routes []string
	// CallersOnly shows an error_ratio, latency or canary_errors regression
	// only on the calls of other services (Service.Calls) to the new
	// version, not on its own SERVER spans, histograms and logs: harm seen
	// only by the callers (connections refused before the server sees them).
	CallersOnly bool
}

// routeScoped reports whether the kind can be limited to routes or to callers.
func (k Kind) routeScoped() bool {
	return k == KindErrorRatio || k == KindLatency || k == KindCanaryErrors
}

// affects reports whether the regression affects requests to the route.
func (r *Regression) affects(route string) bool {
	if len(r.Routes) == 0 {
		return true
	}
	for _, x := range r.Routes {
		if x == route {
			return true
		}
	}
	return false
}

// Defaults applied by withDefaults.
const (
	defaultStep           = 5 * time.Second
	defaultMetricInterval = 10 * time.Second
	defaultInstances      = 3
	defaultInterval       = 30 * time.Second
	defaultCanaryFraction = 0.2
	defaultCanaryDuration = 5 * time.Minute
	defaultLatencyP50     = 40 * time.Millisecond
	defaultLatencyP95     = 180 * time.Millisecond
	defaultCPU            = 0.35
	defaultSaturationRamp = 4 * time.Minute
)

// defaultRoutes is a small shop API: most reads are cheap, checkout is slow.
var defaultRoutes = []Route{
	{Method: "GET", Route: "/api/products/{id}", Weight: 0.5, LatencyFactor: 1},
	{Method: "GET", Route: "/api/products", Weight: 0.25, LatencyFactor: 1.4},
	{Method: "POST", Route: "/api/cart/items", Weight: 0.15, LatencyFactor: 0.8},
	{Method: "POST", Route: "/api/checkout", Weight: 0.1, LatencyFactor: 2.5},
}

// withDefaults returns a copy with zero fields defaulted and durations
// rounded up to whole steps, so plan times fall on step boundaries.
func (s *Scenario) withDefaults() Scenario {
	c := *s
	if c.Step <= 0 {
		c.Step = defaultStep
	}
	if c.MetricInterval <= 0 {
		c.MetricInterval = defaultMetricInterval
	}
	c.MetricInterval = roundUp(c.MetricInterval, c.Step)
	c.WarmUp = roundUp(c.WarmUp, c.Step)
	c.Observe = roundUp(c.Observe, c.Step)
	c.Services = append([]Service(nil), s.Services...)
	for i := range c.Services {
		svc := &c.Services[i]
		if svc.Instances <= 0 {
			svc.Instances = defaultInstances
		}
		if svc.Signals == 0 {
			svc.Signals = SignalsAll
		}
		t := &svc.Traffic
		if t.LatencyP50 <= 0 {
			t.LatencyP50 = defaultLatencyP50
		}
		if t.LatencyP95 <= 0 {
			t.LatencyP95 = defaultLatencyP95
		}
		if t.CPUUtilization <= 0 {
			t.CPUUtilization = defaultCPU
		}
		if len(t.Routes) == 0 {
			t.Routes = defaultRoutes
		}
	}
	for i := range c.Services {
		svc := &c.Services[i]
		if len(svc.Calls) == 0 {
			continue
		}
		svc.Calls = append([]Call(nil), svc.Calls...)
		for k := range svc.Calls {
			call := &svc.Calls[k]
			if call.Fraction == 0 {
				call.Fraction = 1
			}
			if callee := c.service(call.Callee); call.Route == "" && callee != nil {
				call.Route = callee.Traffic.Routes[0].Route
			}
		}
	}
	c.Deployment = c.defaultDeployment(c.Deployment)
	if len(s.Also) > 0 {
		c.Also = make([]Deployment, len(s.Also))
		for k := range s.Also {
			c.Also[k] = c.defaultDeployment(s.Also[k])
			c.Also[k].Offset = roundUp(c.Also[k].Offset, c.Step)
		}
	}
	if c.Regression != nil {
		r := *c.Regression
		if r.Kind == KindSaturation && r.Ramp <= 0 {
			r.Ramp = defaultSaturationRamp
		}
		r.StartsAt = roundUp(r.StartsAt, c.Step)
		c.Regression = &r
	}
	return c
}

// defaultDeployment returns d with zero fields defaulted (c's Step must be).
func (c *Scenario) defaultDeployment(d Deployment) Deployment {
	if d.Strategy == "" {
		d.Strategy = deployevent.StrategyRolling
	}
	if d.InstanceInterval <= 0 {
		d.InstanceInterval = defaultInterval
	}
	d.InstanceInterval = roundUp(d.InstanceInterval, c.Step)
	if d.CanaryFraction <= 0 {
		d.CanaryFraction = defaultCanaryFraction
	}
	if d.CanaryDuration <= 0 {
		d.CanaryDuration = defaultCanaryDuration
	}
	d.CanaryDuration = roundUp(d.CanaryDuration, c.Step)
	if d.ID == "" {
		d.ID = deployevent.DeriveID("scenario", c.Name, d.Service, d.Version)
	}
	return d
}

func roundUp(d, step time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + step - 1) / step * step
}

// Validate reports the first thing that makes the scenario unusable.
func (s *Scenario) Validate() error {
	c := s.withDefaults()
	if c.Start.IsZero() {
		return errors.New("scenario: Start is zero")
	}
	if c.WarmUp < c.Deployment.QueuedFor {
		return errors.New("scenario: WarmUp is shorter than Deployment.QueuedFor")
	}
	if c.Observe <= 0 {
		return errors.New("scenario: Observe must be positive")
	}
	if len(c.Services) == 0 {
		return errors.New("scenario: no services")
	}
	names := map[string]bool{}
	for i := range c.Services {
		svc := &c.Services[i]
		if svc.Name == "" {
			return fmt.Errorf("scenario: service %d has no name", i)
		}
		if names[svc.Name] {
			return fmt.Errorf("scenario: service %q twice", svc.Name)
		}
		names[svc.Name] = true
		if svc.Version == "" {
			return fmt.Errorf("scenario: service %q has no version", svc.Name)
		}
		t := &svc.Traffic
		if t.RPS < 0 || t.ErrorRatio < 0 || t.ClientErrorRatio < 0 || t.ErrorRatio+t.ClientErrorRatio >= 1 {
			return fmt.Errorf("scenario: service %q: rates and ratios must be ≥ 0 and ratios sum below 1", svc.Name)
		}
		if t.DiurnalAmplitude < 0 || t.DiurnalAmplitude >= 1 {
			return fmt.Errorf("scenario: service %q: DiurnalAmplitude must be in [0, 1)", svc.Name)
		}
		if t.LatencyP95 < t.LatencyP50 {
			return fmt.Errorf("scenario: service %q: LatencyP95 below LatencyP50", svc.Name)
		}
		for _, r := range t.Routes {
			if r.Weight <= 0 || r.LatencyFactor <= 0 {
				return fmt.Errorf("scenario: service %q route %q: Weight and LatencyFactor must be positive", svc.Name, r.Route)
			}
		}
		for _, m := range t.LatencyMixture {
			if m.Weight <= 0 || m.Factor <= 0 || m.Spread < 0 {
				return fmt.Errorf("scenario: service %q: a latency mode needs a positive Weight and Factor and a Spread ≥ 0", svc.Name)
			}
		}
		for _, su := range t.Surges {
			if su.Factor <= 0 || su.Duration <= 0 || su.Ramp < 0 || 2*su.Ramp > su.Duration {
				return fmt.Errorf("scenario: service %q: a surge needs a positive Factor and Duration and a Ramp within half the Duration", svc.Name)
			}
		}
	}
	d := &c.Deployment
	if !names[d.Service] {
		return fmt.Errorf("scenario: deployed service %q is not among the services", d.Service)
	}
	if d.Offset != 0 {
		return errors.New("scenario: Deployment.Offset must be 0 (it offsets the deployments of Also)")
	}
	if err := c.validateDeployment(d, "Deployment"); err != nil {
		return err
	}
	deployedNames := map[string]bool{d.Service: true}
	for k := range c.Also {
		a := &c.Also[k]
		what := fmt.Sprintf("Also[%d]", k)
		if !names[a.Service] {
			return fmt.Errorf("scenario: %s: service %q is not among the services", what, a.Service)
		}
		if deployedNames[a.Service] {
			return fmt.Errorf("scenario: %s: service %q is deployed twice", what, a.Service)
		}
		deployedNames[a.Service] = true
		if a.Offset < 0 || a.Offset >= c.Observe {
			return fmt.Errorf("scenario: %s: Offset must be in [0, Observe)", what)
		}
		if c.WarmUp+a.Offset < a.QueuedFor {
			return fmt.Errorf("scenario: %s: WarmUp plus Offset is shorter than QueuedFor", what)
		}
		if err := c.validateDeployment(a, what); err != nil {
			return err
		}
	}
	if err := c.validateCalls(); err != nil {
		return err
	}
	if r := c.Regression; r != nil {
		if len(r.Routes) > 0 || r.CallersOnly {
			if !r.Kind.routeScoped() {
				return fmt.Errorf("scenario: a %s regression cannot be limited to routes or callers", r.Kind)
			}
			svc := c.deployed()
			for _, route := range r.Routes {
				if svc.route(route) < 0 {
					return fmt.Errorf("scenario: regression route %q is not a route of %q", route, svc.Name)
				}
			}
		}
		switch r.Kind {
		case KindErrorRatio, KindCanaryErrors:
			if r.Magnitude <= 0 {
				return fmt.Errorf("scenario: %s magnitude must be positive", r.Kind)
			}
			if r.Kind == KindCanaryErrors && d.Strategy != deployevent.StrategyCanary {
				return errors.New("scenario: canary_errors needs the canary strategy")
			}
		case KindLatency:
			if r.Magnitude <= 0 {
				return errors.New("scenario: latency magnitude must be positive")
			}
		case KindThroughput:
			if r.Magnitude <= 0 || r.Magnitude > 1 {
				return errors.New("scenario: throughput magnitude is the fraction lost, in (0, 1]")
			}
		case KindSaturation:
			if r.Magnitude <= 0 || r.Magnitude > 1 {
				return errors.New("scenario: saturation magnitude is a utilization increase, in (0, 1]")
			}
			if !c.deployed().Signals.Has(SignalMetrics) {
				return errors.New("scenario: a saturation regression needs a service that emits metrics")
			}
		default:
			return fmt.Errorf("scenario: unknown regression kind %q", r.Kind)
		}
		if r.StartsAt >= c.Observe {
			return errors.New("scenario: the regression starts after the scenario ends")
		}
	}
	return nil
}

// validateDeployment checks one deployment of a defaulted scenario whose service exists.
func (s *Scenario) validateDeployment(d *Deployment, what string) error {
	if d.Version == "" || d.Version == s.service(d.Service).Version {
		return fmt.Errorf("scenario: %s.Version must be set and differ from the running version", what)
	}
	switch d.Strategy {
	case deployevent.StrategyRolling:
	case deployevent.StrategyCanary:
		if d.CanaryFraction >= 1 {
			return fmt.Errorf("scenario: %s: CanaryFraction must be below 1", what)
		}
	default:
		return fmt.Errorf("scenario: %s: strategy %q is not rolling or canary", what, d.Strategy)
	}
	return nil
}

// validateCalls checks the services' calls of a defaulted scenario.
func (s *Scenario) validateCalls() error {
	for i := range s.Services {
		svc := &s.Services[i]
		for k := range svc.Calls {
			call := &svc.Calls[k]
			callee := s.service(call.Callee)
			switch {
			case callee == nil:
				return fmt.Errorf("scenario: service %q calls %q, which is not among the services", svc.Name, call.Callee)
			case callee == svc:
				return fmt.Errorf("scenario: service %q calls itself", svc.Name)
			case callee.route(call.Route) < 0:
				return fmt.Errorf("scenario: service %q calls route %q, which %q does not serve", svc.Name, call.Route, callee.Name)
			case call.Fraction < 0 || call.Fraction > 1:
				return fmt.Errorf("scenario: service %q: the Fraction of its call to %q must be in [0, 1]", svc.Name, callee.Name)
			}
			if p := call.propagation(); p < 0 || p > 1 {
				return fmt.Errorf("scenario: service %q: the Propagate of its call to %q must be in [0, 1]", svc.Name, callee.Name)
			}
			for _, route := range call.Routes {
				if svc.route(route) < 0 {
					return fmt.Errorf("scenario: service %q calls %q from route %q, which it does not serve", svc.Name, callee.Name, route)
				}
			}
		}
	}
	return nil
}

// deployed returns the deployed service (the scenario must be valid or defaulted).
func (s *Scenario) deployed() *Service {
	return s.service(s.Deployment.Service)
}

// service returns the service of that name, nil when there is none.
func (s *Scenario) service(name string) *Service {
	if i := s.serviceIndex(name); i >= 0 {
		return &s.Services[i]
	}
	return nil
}

// serviceIndex returns the index of the service of that name, -1 when there is none.
func (s *Scenario) serviceIndex(name string) int {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return i
		}
	}
	return -1
}

// route returns the index of the first of the service's routes with that
// http.route, -1 when there is none.
func (svc *Service) route(route string) int {
	for i := range svc.Traffic.Routes {
		if svc.Traffic.Routes[i].Route == route {
			return i
		}
	}
	return -1
}

// DeploymentStart is when the deployment starts and the first new instance serves.
func (s *Scenario) DeploymentStart() time.Time {
	c := s.withDefaults()
	return c.Start.Add(c.WarmUp)
}

// End is when the last step's window closes.
func (s *Scenario) End() time.Time {
	c := s.withDefaults()
	return c.Start.Add(c.WarmUp + c.Observe)
}

// WithSignals returns a copy whose services all emit sig, so a harness can
// choose, say, the cheaper metrics-only mode for every scenario of a library.
func (s Scenario) WithSignals(sig Signals) Scenario {
	s.Services = append([]Service(nil), s.Services...)
	for i := range s.Services {
		s.Services[i].Signals = sig
	}
	return s
}
