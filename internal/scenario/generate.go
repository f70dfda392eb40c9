// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario // import "github.com/deploylens/deploylens/internal/scenario"

import (
	"errors"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Step is the telemetry of one step of simulated time. Requests (span ends,
// error logs) and lifecycle events of a step lie in [Time−Scenario.Step, Time);
// metric data points are stamped Time. Each Step owns fresh pdata.
type Step struct {
	// Index counts steps from 0.
	Index int
	// Time is when the step's window closes: the simulated "now" at which
	// an SDK would export the step's data.
	Time time.Time
	// Logs are the deployment.lifecycle records of Events (first, each in a
	// resource of its own) followed by the services' application logs.
	Logs    plog.Logs
	Traces  ptrace.Traces
	Metrics pmetric.Metrics
	// Events are the lifecycle events of this step, also present in Logs.
	Events []deployevent.Event
}

// Telemetry names written by the generator (OpenTelemetry semantic conventions).
const (
	MetricRequestDuration       = "http.server.request.duration"
	MetricClientRequestDuration = "http.client.request.duration"
	MetricCPUUtilization        = "process.cpu.utilization"

	AttrInstanceID     = "service.instance.id"
	AttrPodName        = "k8s.pod.name"
	AttrHTTPMethod     = "http.request.method"
	AttrHTTPRoute      = "http.route"
	AttrHTTPStatusCode = "http.response.status_code"
	AttrURLScheme      = "url.scheme"
	AttrErrorType      = "error.type"
	// Attributes of the CLIENT spans and the client histogram of calls.
	AttrPeerService   = "peer.service"
	AttrServerAddress = "server.address"
	AttrURLTemplate   = "url.template"

	// ScopeName is the instrumentation scope of generated telemetry.
	ScopeName = "github.com/deploylens/deploylens/internal/scenario"
)

// DurationBuckets are the explicit bucket bounds, in seconds, semantic
// conventions advise for http.server.request.duration.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// Latency tail: a small share of requests (GC pauses, cold caches) is much slower.
const (
	tailProbability = 0.002
	tailFactor      = 8
	// idleCPU is an instance's utilization with no traffic.
	idleCPU = 0.05
	// cpuNoise is the standard deviation of a CPU utilization reading.
	cpuNoise = 0.015
	// Time constants of the slow rate and error-ratio noise.
	rateNoiseTau  = 2 * time.Minute
	errorNoiseTau = 5 * time.Minute
)

// Run generates the scenario step by step and hands each Step to emit. An
// error from emit stops the run and is returned, except ErrStop: a clean stop.
func (s *Scenario) Run(emit func(Step) error) error {
	steps, err := s.Steps()
	if err != nil {
		return err
	}
	for st := range steps {
		if err := emit(st); err != nil {
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return nil
}

// Steps returns the scenario's steps in time order. Each iteration generates
// afresh from the seed, so ranging twice yields identical telemetry;
// breaking out of the loop stops generation.
func (s *Scenario) Steps() (iter.Seq[Step], error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	c := s.withDefaults()
	return func(yield func(Step) bool) {
		g := newGenerator(&c)
		for k := range g.steps {
			if !yield(g.step(k)) {
				return
			}
		}
	}, nil
}

// ErrStop, returned by a Run callback, stops the run early without an error.
var ErrStop = errors.New("scenario: stopped")

type generator struct {
	sc          *Scenario
	plan        *plan
	steps       int
	stepSeconds float64
	traffic     *rand.Rand // requests: counts, routes, statuses, latencies
	noise       *rand.Rand // rate and error-ratio noise, CPU readings
	ids         *rand.Rand // trace and span ids
	calls       *rand.Rand // calls between services
	services    []serviceModel
	instances   []instanceState
	shares      []float64
	nextEvent   int
	// hasCalls is whether any service calls another.
	hasCalls bool
	// regressedRoutes marks the main service's routes its regression
	// affects; nil: all of them.
	regressedRoutes []bool
	// pending are the calls of the request being generated.
	pending []callResult
}

// callModel is one Call, resolved to indices.
type callModel struct {
	callee int
	// route is the callee's route called.
	route int
	// from marks the caller's routes that make the call; nil: all.
	from      []bool
	fraction  float64
	propagate float64
}

// replica is one serving instance of a callee, as its callers draw it.
type replica struct {
	// cdf is the cumulative share of the service's traffic up to this replica.
	cdf float64
	// fx are the regression's effects on calls to it in the current step.
	fx effects
}

// callResult is one call made by a request.
type callResult struct {
	call    int
	status  int
	latency float64 // seconds
}

type serviceModel struct {
	svc *Service
	// routeCDF is the cumulative share of the routes.
	routeCDF []float64
	// logMedian and sigma parametrize the lognormal latency, in seconds.
	logMedian, sigma float64
	// modes is the latency mixture (empty: the one lognormal above).
	modes           []latencyMode
	deployStart     time.Time
	rateNoise       ar1
	errorNoise      ar1
	diurnalAtDeploy float64
	// calls are the service's outgoing calls.
	calls []callModel
	// instances are the indices of the service's instances in the plan.
	instances []int
	// replicas are the serving instances in the current step, when the
	// service is called.
	replicas []replica
	called   bool
	// Per-step values.
	rate, errorRatio float64
}

// latencyMode is one mixture component in log space, with its cumulative share.
type latencyMode struct {
	cdf, logMedian, sigma float64
}

type instanceState struct {
	*planInstance
	model    *serviceModel
	resource pcommon.Resource
	// nominalRate is the instance's request rate when the service runs at RPS.
	nominalRate float64
	// expectedRate is the instance's request rate in the current step.
	expectedRate float64
	series       []series
	seriesIndex  map[seriesKey]int
	// clientSeries is the http.client.request.duration histogram of the calls.
	clientSeries []clientSeries
	clientIndex  map[clientKey]int
}

type seriesKey struct {
	route  int
	status int
}

// series is the cumulative state of one histogram data point.
type series struct {
	seriesKey
	histogram
}

// clientKey identifies a client histogram data point: the callee, the
// method and the response status.
type clientKey struct {
	callee int
	method string
	status int
}

type clientSeries struct {
	clientKey
	histogram
}

// histogram is a cumulative explicit-bucket histogram over DurationBuckets.
type histogram struct {
	count    uint64
	sum      float64
	min, max float64
	buckets  []uint64
}

func newHistogram(seconds float64) histogram {
	return histogram{min: seconds, max: seconds, buckets: make([]uint64, len(DurationBuckets)+1)}
}

func (h *histogram) add(seconds float64) {
	h.count++
	h.sum += seconds
	h.min = math.Min(h.min, seconds)
	h.max = math.Max(h.max, seconds)
	// Buckets are (bound[i-1], bound[i]]: the first bound not below the value.
	h.buckets[sort.SearchFloat64s(DurationBuckets, seconds)]++
}

func (h *histogram) writeTo(dp pmetric.HistogramDataPoint) {
	dp.SetCount(h.count)
	dp.SetSum(h.sum)
	dp.SetMin(h.min)
	dp.SetMax(h.max)
	dp.ExplicitBounds().FromRaw(DurationBuckets)
	dp.BucketCounts().FromRaw(h.buckets)
}

func newGenerator(sc *Scenario) *generator {
	g := &generator{
		sc:          sc,
		plan:        newPlan(sc),
		steps:       int((sc.WarmUp + sc.Observe) / sc.Step),
		stepSeconds: sc.Step.Seconds(),
		traffic:     newRand(sc.Seed, streamTraffic),
		noise:       newRand(sc.Seed, streamNoise),
		ids:         newRand(sc.Seed, streamIDs),
		calls:       newRand(sc.Seed, streamCalls),
	}
	deployStart := sc.Start.Add(sc.WarmUp)
	g.services = make([]serviceModel, len(sc.Services))
	for i := range sc.Services {
		svc := &sc.Services[i]
		t := &svc.Traffic
		m := &g.services[i]
		m.svc = svc
		total := 0.0
		for _, r := range t.Routes {
			total += r.Weight
		}
		acc := 0.0
		for _, r := range t.Routes {
			acc += r.Weight / total
			m.routeCDF = append(m.routeCDF, acc)
		}
		m.logMedian = math.Log(t.LatencyP50.Seconds())
		m.sigma = lognormalSigma(t.LatencyP50.Seconds(), t.LatencyP95.Seconds())
		m.modes = mixture(t.LatencyMixture, m.logMedian, m.sigma)
		m.deployStart = deployStart
		m.rateNoise = newAR1(g.noise, t.RateNoise, g.stepSeconds, rateNoiseTau.Seconds())
		m.errorNoise = newAR1(g.noise, t.ErrorNoise, g.stepSeconds, errorNoiseTau.Seconds())
		m.diurnalAtDeploy = diurnal(t, deployStart)
	}
	g.instances = make([]instanceState, len(g.plan.instances))
	for i := range g.plan.instances {
		pi := &g.plan.instances[i]
		svc := &sc.Services[pi.service]
		in := &g.instances[i]
		in.planInstance = pi
		in.model = &g.services[pi.service]
		in.nominalRate = svc.Traffic.RPS / float64(svc.Instances)
		in.seriesIndex = map[seriesKey]int{}
		in.resource = pcommon.NewResource()
		attrs := in.resource.Attributes()
		attrs.PutStr(deployevent.AttrServiceName, svc.Name)
		if svc.Namespace != "" {
			attrs.PutStr(deployevent.AttrServiceNamespace, svc.Namespace)
		}
		if svc.Environment != "" {
			attrs.PutStr(deployevent.AttrEnvironment, svc.Environment)
		}
		attrs.PutStr(deployevent.AttrServiceVersion, pi.version)
		attrs.PutStr(AttrInstanceID, pi.id)
		attrs.PutStr(AttrPodName, pi.id)
	}
	g.shares = make([]float64, len(g.instances))
	for i := range g.plan.instances {
		m := &g.services[g.plan.instances[i].service]
		m.instances = append(m.instances, i)
	}
	for i := range sc.Services {
		svc := &sc.Services[i]
		for k := range svc.Calls {
			c := &svc.Calls[k]
			callee := sc.serviceIndex(c.Callee)
			cm := callModel{callee: callee, route: sc.Services[callee].route(c.Route), fraction: c.Fraction, propagate: c.propagation()}
			if len(c.Routes) > 0 {
				cm.from = make([]bool, len(svc.Traffic.Routes))
				for r := range svc.Traffic.Routes {
					cm.from[r] = slices.Contains(c.Routes, svc.Traffic.Routes[r].Route)
				}
			}
			g.services[i].calls = append(g.services[i].calls, cm)
			g.services[callee].called = true
			g.hasCalls = true
		}
	}
	if r := sc.Regression; r != nil && len(r.Routes) > 0 {
		routes := sc.Services[g.plan.mainService].Traffic.Routes
		g.regressedRoutes = make([]bool, len(routes))
		for k := range routes {
			g.regressedRoutes[k] = r.affects(routes[k].Route)
		}
	}
	return g
}

// mixture turns latency modes into log-space components with cumulative shares.
func mixture(modes []LatencyMode, logMedian, sigma float64) []latencyMode {
	total := 0.0
	for _, m := range modes {
		total += m.Weight
	}
	out := make([]latencyMode, len(modes))
	acc := 0.0
	for i, m := range modes {
		acc += m.Weight / total
		spread := m.Spread
		if spread == 0 {
			spread = 1
		}
		out[i] = latencyMode{cdf: acc, logMedian: logMedian + math.Log(m.Factor), sigma: sigma * spread}
	}
	return out
}

// latency draws one request's latency in seconds, before route and regression factors.
func (m *serviceModel) latency(r *rand.Rand) float64 {
	if len(m.modes) == 0 {
		return math.Exp(m.logMedian + m.sigma*r.NormFloat64())
	}
	u := r.Float64()
	k := 0
	for k < len(m.modes)-1 && u > m.modes[k].cdf {
		k++
	}
	return math.Exp(m.modes[k].logMedian + m.modes[k].sigma*r.NormFloat64())
}

// surge is the product of the service's surges at t.
func (m *serviceModel) surge(t time.Time) float64 {
	f := 1.0
	for i := range m.svc.Traffic.Surges {
		f *= m.svc.Traffic.Surges[i].factor(t.Sub(m.deployStart))
	}
	return f
}

// diurnal is the daily traffic curve at t, peaking at DiurnalPeak.
func diurnal(t *Traffic, at time.Time) float64 {
	u := at.UTC()
	sinceMidnight := time.Duration(u.Hour())*time.Hour + time.Duration(u.Minute())*time.Minute + time.Duration(u.Second())*time.Second
	phase := 2 * math.Pi * (sinceMidnight - t.DiurnalPeak).Hours() / 24
	return 1 + t.DiurnalAmplitude*math.Cos(phase)
}

// regression effects on one instance at a time.
type effects struct {
	errorFactor, latencyFactor, keep, cpu float64
}

// effects returns the regression's effects on the instance at `at`, on its
// own requests or (call) on the calls of other services to it.
func (g *generator) effects(in *instanceState, at time.Time, call bool) effects {
	e := effects{errorFactor: 1, latencyFactor: 1, keep: 1}
	r := g.sc.Regression
	if r == nil || !in.isNew || in.service != g.plan.mainService || at.Before(g.plan.onset) || (r.CallersOnly && !call) {
		return e
	}
	switch r.Kind {
	case KindErrorRatio, KindCanaryErrors:
		e.errorFactor = r.Magnitude
	case KindLatency:
		e.latencyFactor = r.Magnitude
	case KindThroughput:
		e.keep = 1 - r.Magnitude
	case KindSaturation:
		// The creep starts when the instance (or the regression) starts.
		since := at.Sub(maxTime(g.plan.onset, in.from))
		e.cpu = r.Magnitude * math.Min(1, since.Seconds()/r.Ramp.Seconds())
	}
	return e
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (g *generator) step(k int) Step {
	sc := g.sc
	windowStart := sc.Start.Add(time.Duration(k) * sc.Step)
	windowEnd := windowStart.Add(sc.Step)
	st := Step{Index: k, Time: windowEnd, Logs: plog.NewLogs(), Traces: ptrace.NewTraces(), Metrics: pmetric.NewMetrics()}

	for g.nextEvent < len(g.plan.events) && g.plan.events[g.nextEvent].Timestamp.Before(windowEnd) {
		e := g.plan.events[g.nextEvent]
		e.AppendTo(st.Logs, e.Timestamp)
		st.Events = append(st.Events, e)
		g.nextEvent++
	}

	for i := range g.services {
		m := &g.services[i]
		t := &m.svc.Traffic
		noise := m.rateNoise.next(g.noise) - t.RateNoise*t.RateNoise/2
		m.rate = t.RPS * diurnal(t, windowStart) / m.diurnalAtDeploy * math.Exp(noise) * m.surge(windowStart)
		noise = m.errorNoise.next(g.noise) - t.ErrorNoise*t.ErrorNoise/2
		m.errorRatio = t.ErrorRatio * math.Exp(noise)
	}

	g.plan.shares(windowStart, g.shares)
	if g.hasCalls {
		g.replicas(windowStart)
	}
	exportMetrics := (windowEnd.Sub(sc.Start))%sc.MetricInterval == 0
	for i := range g.instances {
		in := &g.instances[i]
		if g.shares[i] == 0 {
			continue
		}
		fx := g.effects(in, windowStart, false)
		in.expectedRate = in.model.rate * g.shares[i] * fx.keep
		g.requests(&st, in, fx, windowStart)
		lastStep := !in.until.IsZero() && !windowEnd.Before(in.until)
		if in.model.svc.Signals.Has(SignalMetrics) && (exportMetrics || lastStep) {
			g.exportMetrics(&st, in, fx, windowEnd)
		}
	}
	return st
}

// replicas lists, for every called service, its serving instances of the
// step with their cumulative shares and the regression's effects on calls.
func (g *generator) replicas(windowStart time.Time) {
	for s := range g.services {
		m := &g.services[s]
		if !m.called {
			continue
		}
		m.replicas = m.replicas[:0]
		total := 0.0
		for _, i := range m.instances {
			if g.shares[i] == 0 {
				continue
			}
			total += g.shares[i]
			m.replicas = append(m.replicas, replica{cdf: total, fx: g.effects(&g.instances[i], windowStart, true)})
		}
		for k := range m.replicas {
			m.replicas[k].cdf /= total
		}
	}
}

// makeCalls draws the calls one request to route of m makes, into
// g.pending, and returns the request's latency and status with them: the
// calls' latencies add to the request's, and a failed call fails the
// request with the call's Propagate probability.
func (g *generator) makeCalls(m *serviceModel, route, status int, latency float64) (float64, int) {
	g.pending = g.pending[:0]
	for k := range m.calls {
		c := &m.calls[k]
		if c.from != nil && !c.from[route] {
			continue
		}
		if c.fraction < 1 && g.calls.Float64() >= c.fraction {
			continue
		}
		callee := &g.services[c.callee]
		if len(callee.replicas) == 0 {
			continue
		}
		rep := &callee.replicas[0]
		if len(callee.replicas) > 1 {
			u := g.calls.Float64()
			j := 0
			for j < len(callee.replicas)-1 && u >= callee.replicas[j].cdf {
				j++
			}
			rep = &callee.replicas[j]
		}
		errorFactor, latencyFactor := rep.fx.errorFactor, rep.fx.latencyFactor
		if c.callee == g.plan.mainService && g.regressedRoutes != nil && !g.regressedRoutes[c.route] {
			errorFactor, latencyFactor = 1, 1
		}
		t := &callee.svc.Traffic
		r := &t.Routes[c.route]
		callStatus := drawStatus(g.calls, r.Method, math.Min(callee.errorRatio*errorFactor, 1-t.ClientErrorRatio), t.ClientErrorRatio)
		callLatency := callee.latency(g.calls) * r.LatencyFactor * latencyFactor
		if g.calls.Float64() < tailProbability {
			callLatency *= tailFactor
		}
		g.pending = append(g.pending, callResult{call: k, status: callStatus, latency: callLatency})
		latency += callLatency
		if callStatus >= 500 && status < 500 && (c.propagate >= 1 || (c.propagate > 0 && g.calls.Float64() < c.propagate)) {
			status = propagatedStatus(callStatus)
		}
	}
	return latency, status
}

// propagatedStatus is the caller's response to a failed call: the
// upstream's unavailability or timeout, otherwise a bad gateway.
func propagatedStatus(callStatus int) int {
	switch callStatus {
	case 503, 504:
		return callStatus
	default:
		return 502
	}
}

// requests draws the instance's requests of one step and records them in
// every signal the service emits.
func (g *generator) requests(st *Step, in *instanceState, fx effects, windowStart time.Time) {
	m := in.model
	signals := m.svc.Signals
	n := poisson(g.traffic, in.expectedRate*g.stepSeconds)
	if n == 0 {
		return
	}
	var spans ptrace.SpanSlice
	if signals.Has(SignalTraces) {
		rs := st.Traces.ResourceSpans().AppendEmpty()
		in.resource.CopyTo(rs.Resource())
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(ScopeName)
		spans = ss.Spans()
		spans.EnsureCapacity(n)
	}
	var records plog.LogRecordSlice
	haveRecords := false
	errorRatio := math.Min(m.errorRatio*fx.errorFactor, 1-m.svc.Traffic.ClientErrorRatio)
	// A regression limited to some routes leaves the others healthy.
	var regressed []bool
	healthyRatio := math.Min(m.errorRatio, 1-m.svc.Traffic.ClientErrorRatio)
	if in.service == g.plan.mainService {
		regressed = g.regressedRoutes
	}
	routes := m.svc.Traffic.Routes
	stepNanos := float64(g.sc.Step)
	calling := len(m.calls) > 0
	for range n {
		route := 0
		u := g.traffic.Float64()
		for route < len(m.routeCDF)-1 && u > m.routeCDF[route] {
			route++
		}
		routeRatio, routeLatency := errorRatio, fx.latencyFactor
		if regressed != nil && !regressed[route] {
			routeRatio, routeLatency = healthyRatio, 1
		}
		status := drawStatus(g.traffic, routes[route].Method, routeRatio, m.svc.Traffic.ClientErrorRatio)
		latency := m.latency(g.traffic) * routes[route].LatencyFactor * routeLatency
		if g.traffic.Float64() < tailProbability {
			latency *= tailFactor
		}
		end := windowStart.Add(time.Duration(g.traffic.Float64() * stepNanos))
		own := latency
		if calling {
			latency, status = g.makeCalls(m, route, status, latency)
		}

		if signals.Has(SignalMetrics) {
			in.record(seriesKey{route: route, status: status}, latency)
			if calling {
				for k := range g.pending {
					c := &g.pending[k]
					call := &m.calls[c.call]
					in.recordCall(clientKey{callee: call.callee, method: g.services[call.callee].svc.Traffic.Routes[call.route].Method, status: c.status}, c.latency)
				}
			}
		}
		var traceID pcommon.TraceID
		var spanID pcommon.SpanID
		if signals.Has(SignalTraces) {
			traceID, spanID = g.newIDs()
			writeSpan(spans.AppendEmpty(), &routes[route], status, end, latency, traceID, spanID)
			if calling && len(g.pending) > 0 {
				// The calls run one after another inside the request, after
				// the first half of its own work.
				at := end.Add(-time.Duration(latency * float64(time.Second))).Add(time.Duration(own / 2 * float64(time.Second)))
				for k := range g.pending {
					c := &g.pending[k]
					call := &m.calls[c.call]
					callee := g.services[call.callee].svc
					callEnd := at.Add(time.Duration(c.latency * float64(time.Second)))
					writeClientSpan(spans.AppendEmpty(), callee.Name, &callee.Traffic.Routes[call.route], c.status, at, callEnd, traceID, spanID, g.newSpanID())
					at = callEnd
				}
			}
		}
		if status >= 500 && signals.Has(SignalLogs) {
			if !haveRecords {
				haveRecords = true
				rl := st.Logs.ResourceLogs().AppendEmpty()
				in.resource.CopyTo(rl.Resource())
				sl := rl.ScopeLogs().AppendEmpty()
				sl.Scope().SetName(ScopeName)
				records = sl.LogRecords()
			}
			writeErrorLog(records.AppendEmpty(), &routes[route], status, end, traceID, spanID)
		}
	}
}

// Response status codes: the server's errors and the clients'.
var (
	serverErrors      = []int{500, 502, 503, 504}
	serverErrorsCDF   = []float64{0.5, 0.65, 0.9, 1}
	clientErrors      = []int{404, 400, 401, 429}
	clientErrorsCDF   = []float64{0.6, 0.85, 0.95, 1}
	serverErrorReason = map[int]string{500: "internal error", 502: "bad response from upstream", 503: "upstream unavailable", 504: "upstream timed out"}
)

func drawStatus(r *rand.Rand, method string, errorRatio, clientErrorRatio float64) int {
	u := r.Float64()
	switch {
	case u < errorRatio:
		return pick(serverErrors, serverErrorsCDF, u/errorRatio)
	case u < errorRatio+clientErrorRatio:
		return pick(clientErrors, clientErrorsCDF, (u-errorRatio)/clientErrorRatio)
	case method == "POST":
		return 201
	default:
		return 200
	}
}

func pick(values []int, cdf []float64, u float64) int {
	for i, c := range cdf {
		if u < c {
			return values[i]
		}
	}
	return values[len(values)-1]
}

func (g *generator) newIDs() (pcommon.TraceID, pcommon.SpanID) {
	var traceID pcommon.TraceID
	var spanID pcommon.SpanID
	putUint64(traceID[:8], g.ids.Uint64())
	putUint64(traceID[8:], g.ids.Uint64())
	putUint64(spanID[:], g.ids.Uint64()|1) // never the invalid all-zero id
	return traceID, spanID
}

func (g *generator) newSpanID() pcommon.SpanID {
	var spanID pcommon.SpanID
	putUint64(spanID[:], g.ids.Uint64()|1)
	return spanID
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

func writeSpan(span ptrace.Span, route *Route, status int, end time.Time, latency float64, traceID pcommon.TraceID, spanID pcommon.SpanID) {
	span.SetTraceID(traceID)
	span.SetSpanID(spanID)
	span.SetName(route.Method + " " + route.Route)
	span.SetKind(ptrace.SpanKindServer)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Duration(latency * float64(time.Second)))))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	attrs := span.Attributes()
	attrs.EnsureCapacity(5)
	attrs.PutStr(AttrHTTPMethod, route.Method)
	attrs.PutStr(AttrHTTPRoute, route.Route)
	attrs.PutInt(AttrHTTPStatusCode, int64(status))
	attrs.PutStr(AttrURLScheme, "https")
	if status >= 500 {
		// Semantic conventions: 5xx is an error of a server span, 4xx is not.
		attrs.PutStr(AttrErrorType, strconv.Itoa(status))
		span.Status().SetCode(ptrace.StatusCodeError)
	}
}

// writeClientSpan writes the CLIENT span of one call to callee's route,
// a child of the caller's SERVER span parent.
func writeClientSpan(span ptrace.Span, callee string, route *Route, status int, start, end time.Time, traceID pcommon.TraceID, parent, spanID pcommon.SpanID) {
	span.SetTraceID(traceID)
	span.SetSpanID(spanID)
	span.SetParentSpanID(parent)
	span.SetName(route.Method + " " + route.Route)
	span.SetKind(ptrace.SpanKindClient)
	span.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	span.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
	attrs := span.Attributes()
	attrs.EnsureCapacity(7)
	attrs.PutStr(AttrPeerService, callee)
	attrs.PutStr(AttrServerAddress, callee)
	attrs.PutStr(AttrHTTPMethod, route.Method)
	attrs.PutStr(AttrURLTemplate, route.Route)
	attrs.PutStr(AttrHTTPRoute, route.Route)
	attrs.PutInt(AttrHTTPStatusCode, int64(status))
	if status >= 500 {
		attrs.PutStr(AttrErrorType, strconv.Itoa(status))
		span.Status().SetCode(ptrace.StatusCodeError)
	}
}

func writeErrorLog(lr plog.LogRecord, route *Route, status int, at time.Time, traceID pcommon.TraceID, spanID pcommon.SpanID) {
	ts := pcommon.NewTimestampFromTime(at)
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.SetSeverityNumber(plog.SeverityNumberError)
	lr.SetSeverityText("ERROR")
	lr.Body().SetStr(route.Method + " " + route.Route + " failed: " + strconv.Itoa(status) + " " + serverErrorReason[status])
	if !traceID.IsEmpty() {
		lr.SetTraceID(traceID)
		lr.SetSpanID(spanID)
	}
	attrs := lr.Attributes()
	attrs.PutStr(AttrHTTPMethod, route.Method)
	attrs.PutStr(AttrHTTPRoute, route.Route)
	attrs.PutInt(AttrHTTPStatusCode, int64(status))
}

// record adds one request to the instance's cumulative histogram.
func (in *instanceState) record(key seriesKey, seconds float64) {
	idx, ok := in.seriesIndex[key]
	if !ok {
		idx = len(in.series)
		in.seriesIndex[key] = idx
		in.series = append(in.series, series{seriesKey: key, histogram: newHistogram(seconds)})
	}
	in.series[idx].add(seconds)
}

// recordCall adds one call to the instance's cumulative client histogram.
func (in *instanceState) recordCall(key clientKey, seconds float64) {
	if in.clientIndex == nil {
		in.clientIndex = map[clientKey]int{}
	}
	idx, ok := in.clientIndex[key]
	if !ok {
		idx = len(in.clientSeries)
		in.clientIndex[key] = idx
		in.clientSeries = append(in.clientSeries, clientSeries{clientKey: key, histogram: newHistogram(seconds)})
	}
	in.clientSeries[idx].add(seconds)
}

// exportMetrics writes what the instance's SDK would export at `at`: its
// cumulative request-duration histogram and a CPU utilization reading.
func (g *generator) exportMetrics(st *Step, in *instanceState, fx effects, at time.Time) {
	rm := st.Metrics.ResourceMetrics().AppendEmpty()
	in.resource.CopyTo(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(ScopeName)
	start := pcommon.NewTimestampFromTime(in.from)
	now := pcommon.NewTimestampFromTime(at)
	routes := in.model.svc.Traffic.Routes

	if len(in.series) > 0 {
		metric := sm.Metrics().AppendEmpty()
		metric.SetName(MetricRequestDuration)
		metric.SetUnit("s")
		metric.SetDescription("Duration of HTTP server requests.")
		hist := metric.SetEmptyHistogram()
		hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		points := hist.DataPoints()
		points.EnsureCapacity(len(in.series))
		for i := range in.series {
			s := &in.series[i]
			dp := points.AppendEmpty()
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(now)
			route := &routes[s.route]
			attrs := dp.Attributes()
			attrs.PutStr(AttrHTTPMethod, route.Method)
			attrs.PutStr(AttrHTTPRoute, route.Route)
			attrs.PutInt(AttrHTTPStatusCode, int64(s.status))
			attrs.PutStr(AttrURLScheme, "https")
			if s.status >= 500 {
				attrs.PutStr(AttrErrorType, strconv.Itoa(s.status))
			}
			s.writeTo(dp)
		}
	}

	if len(in.clientSeries) > 0 {
		metric := sm.Metrics().AppendEmpty()
		metric.SetName(MetricClientRequestDuration)
		metric.SetUnit("s")
		metric.SetDescription("Duration of HTTP client requests.")
		hist := metric.SetEmptyHistogram()
		hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		points := hist.DataPoints()
		points.EnsureCapacity(len(in.clientSeries))
		for i := range in.clientSeries {
			s := &in.clientSeries[i]
			dp := points.AppendEmpty()
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(now)
			attrs := dp.Attributes()
			attrs.PutStr(AttrServerAddress, g.services[s.callee].svc.Name)
			attrs.PutStr(AttrHTTPMethod, s.method)
			attrs.PutInt(AttrHTTPStatusCode, int64(s.status))
			if s.status >= 500 {
				attrs.PutStr(AttrErrorType, strconv.Itoa(s.status))
			}
			s.writeTo(dp)
		}
	}

	load := 0.0
	if in.nominalRate > 0 {
		load = in.expectedRate / in.nominalRate
	}
	cpu := idleCPU + (in.model.svc.Traffic.CPUUtilization-idleCPU)*load + fx.cpu + cpuNoise*g.noise.NormFloat64()
	metric := sm.Metrics().AppendEmpty()
	metric.SetName(MetricCPUUtilization)
	metric.SetUnit("1")
	metric.SetDescription("Difference in process.cpu.time since the last measurement, divided by the elapsed time and number of CPUs available to the process.")
	dp := metric.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(now)
	dp.SetDoubleValue(math.Min(1, math.Max(0, cpu)))
}
