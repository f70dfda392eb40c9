// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// callScenario is a caller ("api", 50 req/s, routes /a and /b) whose /a
// requests call the deployed callee ("db", 20 req/s, routes /q and /r),
// without noise on the callee's 5xx ratio.
func callScenario() Scenario {
	return Scenario{
		Name:    "calls",
		Seed:    7,
		Start:   testStart,
		WarmUp:  5 * time.Minute,
		Observe: 10 * time.Minute,
		Services: []Service{
			{
				Name: "api", Namespace: "shop", Environment: "production", Version: "3.1.0",
				Instances: 2,
				Signals:   SignalTraces | SignalMetrics,
				Traffic: Traffic{
					RPS: 50, LatencyP50: 20 * time.Millisecond, LatencyP95: 80 * time.Millisecond,
					ErrorRatio: 0.01, ClientErrorRatio: 0.02,
					Routes: []Route{
						{Method: "GET", Route: "/a", Weight: 0.5, LatencyFactor: 1},
						{Method: "GET", Route: "/b", Weight: 0.5, LatencyFactor: 1},
					},
				},
				Calls: []Call{{Callee: "db", Routes: []string{"/a"}}},
			},
			{
				Name: "db", Namespace: "shop", Environment: "production", Version: "1.0.0",
				Instances: 3,
				Signals:   SignalTraces | SignalMetrics,
				Traffic: Traffic{
					RPS: 20, LatencyP50: 40 * time.Millisecond, LatencyP95: 160 * time.Millisecond,
					ErrorRatio: 0.05, ClientErrorRatio: 0.02,
					Routes: []Route{
						{Method: "GET", Route: "/q", Weight: 0.5, LatencyFactor: 1},
						{Method: "GET", Route: "/r", Weight: 0.5, LatencyFactor: 2},
					},
				},
			},
		},
		Deployment: Deployment{Service: "db", Version: "1.1.0", QueuedFor: time.Minute, InstanceInterval: 20 * time.Second},
	}
}

// span is one generated span with what the tests look at.
type span struct {
	service, version          string
	kind                      ptrace.SpanKind
	traceID, spanID, parentID string
	name, route, urlTemplate  string
	peer, serverAddress       string
	method, errorType         string
	status                    int64
	isError                   bool
	start, end                time.Time
	latency                   float64 // seconds
}

func collectSpans(t *testing.T, sc *Scenario) []span {
	t.Helper()
	var out []span
	require.NoError(t, sc.Run(func(st Step) error {
		for _, rs := range st.Traces.ResourceSpans().All() {
			res := rs.Resource().Attributes()
			for _, ss := range rs.ScopeSpans().All() {
				for _, s := range ss.Spans().All() {
					a := s.Attributes()
					code, _ := a.Get(AttrHTTPStatusCode)
					out = append(out, span{
						service: str(res, deployevent.AttrServiceName), version: str(res, deployevent.AttrServiceVersion),
						kind:    s.Kind(),
						traceID: s.TraceID().String(), spanID: s.SpanID().String(), parentID: s.ParentSpanID().String(),
						name: s.Name(), route: attr(a, AttrHTTPRoute), urlTemplate: attr(a, AttrURLTemplate),
						peer: attr(a, AttrPeerService), serverAddress: attr(a, AttrServerAddress),
						method: attr(a, AttrHTTPMethod), errorType: attr(a, AttrErrorType),
						status:  code.Int(),
						isError: s.Status().Code() == ptrace.StatusCodeError,
						start:   s.StartTimestamp().AsTime(), end: s.EndTimestamp().AsTime(),
						latency: s.EndTimestamp().AsTime().Sub(s.StartTimestamp().AsTime()).Seconds(),
					})
				}
			}
		}
		return nil
	}))
	return out
}

// attr is the attribute's value as a string, "" when it is missing.
func attr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func spansWhere(ss []span, keep func(*span) bool) []span {
	var out []span
	for i := range ss {
		if keep(&ss[i]) {
			out = append(out, ss[i])
		}
	}
	return out
}

func spanErrorRatio(ss []span) float64 {
	errs := 0
	for i := range ss {
		if ss[i].status >= 500 {
			errs++
		}
	}
	return float64(errs) / float64(len(ss))
}

func spanMedian(ss []span) float64 {
	lat := make([]float64, len(ss))
	for i := range ss {
		lat[i] = ss[i].latency
	}
	sort.Float64s(lat)
	return lat[len(lat)/2]
}

// requireSameSpans fails at the first span that differs, ids aside when
// ignoreIDs (they come from a stream the client spans share).
func requireSameSpans(t *testing.T, want, got []span, ignoreIDs bool, msg string) {
	t.Helper()
	require.Len(t, got, len(want), msg)
	for i := range want {
		w, g := want[i], got[i]
		if ignoreIDs {
			w.traceID, w.spanID, w.parentID = "", "", ""
			g.traceID, g.spanID, g.parentID = "", "", ""
		}
		if w != g {
			require.Equal(t, w, g, "%s: span %d", msg, i)
		}
	}
}

func statuses(ss []span) []int64 {
	out := make([]int64, len(ss))
	for i := range ss {
		out[i] = ss[i].status
	}
	return out
}

// calls are the CLIENT spans of caller to callee; server the SERVER spans of service.
func calls(ss []span, caller, callee string) []span {
	return spansWhere(ss, func(s *span) bool {
		return s.kind == ptrace.SpanKindClient && s.service == caller && s.peer == callee
	})
}

func server(ss []span, service string) []span {
	return spansWhere(ss, func(s *span) bool { return s.kind == ptrace.SpanKindServer && s.service == service })
}

func between(from, to time.Time) func(*span) bool {
	return func(s *span) bool { return !s.end.Before(from) && s.end.Before(to) }
}

func TestCallSpans(t *testing.T) {
	sc := callScenario()
	spans := collectSpans(t, &sc)
	parents := map[string]*span{}
	for i := range spans {
		if spans[i].kind == ptrace.SpanKindServer {
			parents[spans[i].traceID+spans[i].spanID] = &spans[i]
		}
	}
	children := map[string]int{}
	clientSpans := calls(spans, "api", "db")
	require.NotEmpty(t, clientSpans)
	for i := range clientSpans {
		c := &clientSpans[i]
		parent := parents[c.traceID+c.parentID]
		require.NotNil(t, parent, "a call is the child of a server span of the same trace")
		children[c.traceID+c.parentID]++
		assert.Equal(t, "api", parent.service, "the caller's span")
		assert.Equal(t, parent.version, c.version, "from the caller's resource")
		assert.Equal(t, "/a", parent.route, "only /a calls")
		assert.Equal(t, "GET /q", c.name, "the callee's first route by default")
		assert.Equal(t, "db", c.serverAddress)
		assert.Equal(t, "GET", c.method)
		assert.Equal(t, "/q", c.route)
		assert.Equal(t, "/q", c.urlTemplate)
		assert.True(t, !c.start.Before(parent.start) && c.end.Before(parent.end), "the call runs inside the request")
		assert.Less(t, c.latency, parent.latency)
		assert.Equal(t, c.status >= 500, c.isError, "5xx calls are errors")
		assert.Equal(t, c.status >= 500, c.errorType != "", "error.type on 5xx")
		if c.status >= 500 {
			assert.GreaterOrEqual(t, parent.status, int64(500), "a failed call fails the request (Propagate 1)")
		}
	}
	for _, s := range server(spans, "api") {
		want := 0
		if s.route == "/a" {
			want = 1
		}
		require.Equal(t, want, children[s.traceID+s.spanID], "every /a request makes one call (Fraction 1)")
	}
	assert.Empty(t, spansWhere(spans, func(s *span) bool { return s.kind == ptrace.SpanKindClient && s.service == "db" }), "db calls nobody")
}

func TestCallFraction(t *testing.T) {
	sc := callScenario()
	sc.Services[0].Calls = []Call{{Callee: "db", Route: "/r", Fraction: 0.3}}
	spans := collectSpans(t, &sc)
	clientSpans := calls(spans, "api", "db")
	assert.InEpsilon(t, 0.3, float64(len(clientSpans))/float64(len(server(spans, "api"))), 0.05, "Fraction of every route's requests")
	for _, c := range clientSpans {
		require.Equal(t, "/r", c.route)
	}
}

func TestCallOutcomesFollowCallee(t *testing.T) {
	// The calls see the callee's 5xx ratio and latency, and its regression
	// once the new version serves.
	clean := callScenario()
	label := clean.Label()
	before := between(clean.Start, label.DeploymentStart)
	after := between(label.RolloutEnd, label.End)
	cleanCalls := calls(collectSpans(t, &clean), "api", "db")
	assert.InEpsilon(t, 0.05, spanErrorRatio(cleanCalls), 0.1, "the callee's 5xx ratio")
	// The callee's route /q has factor 1: its p50, plus nothing else.
	assert.InEpsilon(t, 0.040, spanMedian(cleanCalls), 0.05, "the callee's median latency")

	t.Run("error_ratio", func(t *testing.T) {
		sc := callScenario()
		sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3}
		spans := collectSpans(t, &sc)
		c := calls(spans, "api", "db")
		assert.InEpsilon(t, 0.05, spanErrorRatio(spansWhere(c, before)), 0.15)
		assert.InEpsilon(t, 0.15, spanErrorRatio(spansWhere(c, after)), 0.1, "×3 once rolled out")
		own := server(spans, "db")
		assert.InEpsilon(t, 0.15, spanErrorRatio(spansWhere(own, after)), 0.15, "and the callee's own spans too")
		// The caller's 5xx: its own 1 %, and the failed calls of its /a half.
		caller := server(spans, "api")
		assert.InDelta(t, 0.01+0.5*0.15, spanErrorRatio(spansWhere(caller, after)), 0.015, "a failed call fails the caller")
	})
	t.Run("latency", func(t *testing.T) {
		sc := callScenario()
		sc.Regression = &Regression{Kind: KindLatency, Magnitude: 2}
		c := calls(collectSpans(t, &sc), "api", "db")
		assert.InEpsilon(t, 2, spanMedian(spansWhere(c, after))/spanMedian(spansWhere(cleanCalls, after)), 0.08)
		assert.InEpsilon(t, 1, spanMedian(spansWhere(c, before))/spanMedian(spansWhere(cleanCalls, before)), 0.05)
	})
	t.Run("during the rollout", func(t *testing.T) {
		// A replica drawn by the serving shares: one new replica of three serves a third of the calls.
		sc := callScenario()
		sc.Observe = 30 * time.Minute
		sc.Deployment.InstanceInterval = 20 * time.Minute
		sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 5}
		c := calls(collectSpans(t, &sc), "api", "db")
		first := between(label.DeploymentStart, label.DeploymentStart.Add(20*time.Minute))
		assert.InEpsilon(t, 0.05*(2.0/3+5.0/3), spanErrorRatio(spansWhere(c, first)), 0.12)
	})
}

func TestCallsUseTheirOwnStream(t *testing.T) {
	// Adding calls changes no other draw: the callee's own spans are those of
	// a run without calls, and so are the caller's requests (latency aside).
	with := callScenario()
	without := callScenario()
	without.Services = append([]Service(nil), without.Services...)
	without.Services[0].Calls = nil
	withSpans, withoutSpans := collectSpans(t, &with), collectSpans(t, &without)
	requireSameSpans(t, server(withoutSpans, "db"), server(withSpans, "db"), true, "the callee's own traffic stays as it is")
	a, b := server(withSpans, "api"), server(withoutSpans, "api")
	require.Len(t, a, len(b))
	for i := range a {
		require.Equal(t, b[i].route, a[i].route)
		require.Equal(t, b[i].end, a[i].end)
		if b[i].status >= 500 {
			require.Equal(t, b[i].status, a[i].status)
		}
		require.GreaterOrEqual(t, a[i].latency, b[i].latency-1e-9)
	}
}

func TestCallPropagation(t *testing.T) {
	run := func(p *float64) []span {
		sc := callScenario()
		sc.Services = append([]Service(nil), sc.Services...)
		sc.Services[1].Traffic.ErrorRatio = 0.1
		sc.Services[0].Calls = []Call{{Callee: "db", Propagate: p}}
		return collectSpans(t, &sc)
	}
	parentOf := func(spans []span) func(*span) *span {
		byID := map[string]*span{}
		for i := range spans {
			byID[spans[i].traceID+spans[i].spanID] = &spans[i]
		}
		return func(c *span) *span { return byID[c.traceID+c.parentID] }
	}
	// failedShare is the share of failed calls whose request failed.
	failedShare := func(spans []span) float64 {
		parent := parentOf(spans)
		failed := spansWhere(calls(spans, "api", "db"), func(s *span) bool { return s.status >= 500 })
		n := 0
		for i := range failed {
			if p := parent(&failed[i]); p.status >= 500 {
				n++
			}
		}
		return float64(n) / float64(len(failed))
	}

	always := run(nil)
	assert.Equal(t, 1.0, failedShare(always), "Propagate nil: always")
	// The caller answers a bad gateway, or the upstream's 503 and 504
	// (unless it failed on its own, 1 % of the time).
	parent := parentOf(always)
	mapped, failed := 0, spansWhere(calls(always, "api", "db"), func(s *span) bool { return s.status >= 500 })
	for i := range failed {
		if int64(propagatedStatus(int(failed[i].status))) == parent(&failed[i]).status {
			mapped++
		}
	}
	assert.Greater(t, float64(mapped)/float64(len(failed)), 0.97)
	assert.Equal(t, 502, propagatedStatus(500))
	assert.Equal(t, 502, propagatedStatus(502))
	assert.Equal(t, 503, propagatedStatus(503))
	assert.Equal(t, 504, propagatedStatus(504))
	never := run(Probability(0))
	assert.Less(t, failedShare(never), 0.03, "Probability(0): never (the caller's own 1 % only)")
	noCalls := callScenario()
	noCalls.Services = append([]Service(nil), noCalls.Services...)
	noCalls.Services[0].Calls = nil
	assert.Equal(t, statuses(server(collectSpans(t, &noCalls), "api")), statuses(server(never, "api")), "no propagation: the caller's statuses are its own")
	half := run(Probability(0.5))
	assert.InDelta(t, 0.5+0.5*0.01, failedShare(half), 0.04, "Probability(0.5): half")
}

func TestRegressionRoutes(t *testing.T) {
	clean := callScenario()
	clean.Services = append([]Service(nil), clean.Services...)
	clean.Services[0].Calls = []Call{{Callee: "db", Route: "/q"}, {Callee: "db", Route: "/r"}}
	label := clean.Label()
	after := between(label.RolloutEnd, label.End)
	cleanSpans := collectSpans(t, &clean)
	route := func(ss []span, r string) []span { return spansWhere(ss, func(s *span) bool { return s.route == r }) }

	t.Run("own requests", func(t *testing.T) {
		sc := clean
		sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3, Routes: []string{"/q"}}
		spans := collectSpans(t, &sc)
		own, cleanOwn := server(spans, "db"), server(cleanSpans, "db")
		assert.Equal(t, statuses(route(cleanOwn, "/r")), statuses(route(own, "/r")), "/r is untouched")
		assert.InEpsilon(t, 3, spanErrorRatio(spansWhere(route(own, "/q"), after))/spanErrorRatio(spansWhere(route(cleanOwn, "/q"), after)), 0.3)
		c, cleanC := calls(spans, "api", "db"), calls(cleanSpans, "api", "db")
		assert.Equal(t, statuses(route(cleanC, "/r")), statuses(route(c, "/r")), "calls to /r are untouched")
		assert.InEpsilon(t, 0.15, spanErrorRatio(spansWhere(route(c, "/q"), after)), 0.15, "calls to /q fail ×3")
	})
	t.Run("callers only", func(t *testing.T) {
		sc := clean
		sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3, Routes: []string{"/q"}, CallersOnly: true}
		spans := collectSpans(t, &sc)
		requireSameSpans(t, server(cleanSpans, "db"), server(spans, "db"), false, "the callee's own spans are the clean run's")
		c, cleanC := calls(spans, "api", "db"), calls(cleanSpans, "api", "db")
		assert.Equal(t, statuses(route(cleanC, "/r")), statuses(route(c, "/r")))
		assert.InEpsilon(t, 0.15, spanErrorRatio(spansWhere(route(c, "/q"), after)), 0.15, "the callers see the harm")

		l := sc.Label()
		assert.Equal(t, "db", l.Culprit)
		assert.Equal(t, []string{"api"}, l.Harmed)
		assert.True(t, l.CallersOnly)
	})
	t.Run("callers only latency", func(t *testing.T) {
		sc := clean
		sc.Regression = &Regression{Kind: KindLatency, Magnitude: 2, CallersOnly: true}
		spans := collectSpans(t, &sc)
		requireSameSpans(t, server(cleanSpans, "db"), server(spans, "db"), false, "the callee's own spans are the clean run's")
		c, cleanC := calls(spans, "api", "db"), calls(cleanSpans, "api", "db")
		assert.InEpsilon(t, 2, spanMedian(spansWhere(c, after))/spanMedian(spansWhere(cleanC, after)), 0.08)
	})
}

func TestHarmedLabel(t *testing.T) {
	sc := callScenario()
	sc.Services = append([]Service(nil), sc.Services...)
	sc.Services = append(sc.Services, Service{
		Name: "batch", Version: "0.1.0", Traffic: Traffic{RPS: 1},
		Calls: []Call{{Callee: "db", Route: "/r"}},
	})
	assert.Empty(t, sc.Label().Culprit, "clean: no culprit")
	assert.Nil(t, sc.Label().Harmed)
	sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3}
	assert.Equal(t, []string{"api", "batch"}, sc.Label().Harmed, "every caller, sorted")
	sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3, Routes: []string{"/r"}}
	assert.Equal(t, []string{"batch"}, sc.Label().Harmed, "only the callers of an affected route")
	sc.Regression = &Regression{Kind: KindThroughput, Magnitude: 0.5}
	assert.Nil(t, sc.Label().Harmed, "calls do not see a throughput regression")
	assert.Equal(t, "db", sc.Label().Culprit)
}

func TestClientHistogram(t *testing.T) {
	type key struct {
		address, method string
		status          int64
	}
	sc := callScenario()
	sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3}
	want := map[key]uint64{}
	for _, c := range calls(collectSpans(t, &sc), "api", "db") {
		want[key{c.serverAddress, c.method, c.status}]++
	}
	require.Contains(t, want, key{"db", "GET", 500})
	// A metrics-only run makes the same calls: they draw from a stream of their own.
	for _, signals := range []Signals{SignalTraces | SignalMetrics, SignalMetrics} {
		variant := sc.WithSignals(signals)
		type point struct {
			instance string
			key
		}
		last := map[point]uint64{}
		require.NoError(t, variant.Run(func(st Step) error {
			for _, rm := range st.Metrics.ResourceMetrics().All() {
				res := rm.Resource().Attributes()
				for _, sm := range rm.ScopeMetrics().All() {
					for _, m := range sm.Metrics().All() {
						if m.Name() != MetricClientRequestDuration {
							continue
						}
						require.Equal(t, "api", str(res, deployevent.AttrServiceName), "the caller exports it")
						require.Equal(t, "s", m.Unit())
						require.Equal(t, pmetric.AggregationTemporalityCumulative, m.Histogram().AggregationTemporality())
						for _, dp := range m.Histogram().DataPoints().All() {
							a := dp.Attributes()
							require.Equal(t, DurationBuckets, dp.ExplicitBounds().AsRaw())
							code, _ := a.Get(AttrHTTPStatusCode)
							errorType, hasType := a.Get(AttrErrorType)
							require.Equal(t, code.Int() >= 500, hasType, "error.type on 5xx")
							if hasType {
								require.Equal(t, strconv.FormatInt(code.Int(), 10), errorType.Str())
							}
							wantLen := 3
							if hasType {
								wantLen = 4
							}
							require.Equal(t, wantLen, a.Len(), "server.address, method, status (and error.type)")
							var sum uint64
							for _, c := range dp.BucketCounts().All() {
								sum += c
							}
							require.Equal(t, dp.Count(), sum)
							p := point{str(res, AttrInstanceID), key{str(a, AttrServerAddress), str(a, AttrHTTPMethod), code.Int()}}
							require.GreaterOrEqual(t, dp.Count(), last[p], "cumulative")
							last[p] = dp.Count()
						}
					}
				}
			}
			return nil
		}))
		got := map[key]uint64{}
		for p, n := range last {
			got[p.key] += n
		}
		assert.Equal(t, want, got, "%s: the client histogram counts the calls", signals)
	}
}

func TestAlsoDeployments(t *testing.T) {
	sc := testScenario(20)
	sc.Services = append(sc.Services, Service{
		Name: "cart", Namespace: "shop", Environment: "production", Version: "2.0.0",
		Instances: 2, Signals: SignalTraces,
		Traffic: Traffic{RPS: 10, ErrorRatio: 0.01, Routes: []Route{{Method: "GET", Route: "/cart", Weight: 1, LatencyFactor: 1}}},
	})
	sc.Also = []Deployment{{Service: "cart", Version: "2.1.0", Offset: 2 * time.Minute, QueuedFor: 30 * time.Second, InstanceInterval: 20 * time.Second}}
	require.NoError(t, sc.Validate())
	label := sc.Label()
	cartStart := label.DeploymentStart.Add(2 * time.Minute)
	require.Len(t, label.Deployments, 2)
	assert.Equal(t, DeployedLabel{Service: "checkout", DeploymentID: label.DeploymentID, Version: "1.5.0", PreviousVersion: "1.4.2", Start: label.DeploymentStart, RolloutEnd: label.RolloutEnd}, label.Deployments[0], "the main one first")
	cart := label.Deployments[1]
	assert.Equal(t, "cart", cart.Service)
	assert.Equal(t, "2.1.0", cart.Version)
	assert.Equal(t, "2.0.0", cart.PreviousVersion)
	assert.Equal(t, cartStart, cart.Start)
	assert.Equal(t, cartStart.Add(2*20*time.Second), cart.RolloutEnd)
	assert.NotEqual(t, label.DeploymentID, cart.DeploymentID)
	assert.Equal(t, "checkout", label.Service, "the classic fields describe the main deployment")

	var events []deployevent.Event
	var spans []span
	require.NoError(t, sc.Run(func(st Step) error {
		events = append(events, st.Events...)
		return nil
	}))
	spans = collectSpans(t, &sc)
	assert.Equal(t, sc.Events(), events)
	states := map[string][]deployevent.State{}
	for i, e := range events {
		if i > 0 {
			assert.False(t, e.Timestamp.Before(events[i-1].Timestamp), "events in time order")
		}
		states[e.Service] = append(states[e.Service], e.State)
		switch e.Service {
		case "cart":
			assert.Equal(t, cart.DeploymentID, e.ID)
			assert.Equal(t, "2.1.0", e.Version)
			assert.Equal(t, "2.0.0", e.PreviousVersion)
			if e.State == deployevent.StateStarted {
				assert.Equal(t, cartStart, e.Timestamp)
			}
			if e.State == deployevent.StateQueued {
				assert.Equal(t, cartStart.Add(-30*time.Second), e.Timestamp)
			}
			if e.State == deployevent.StateSucceeded {
				assert.Equal(t, cart.RolloutEnd, e.Timestamp)
			}
		case "checkout":
			assert.Equal(t, label.DeploymentID, e.ID)
		}
	}
	lifecycle := []deployevent.State{deployevent.StateQueued, deployevent.StateStarted, deployevent.StateProgressing, deployevent.StateSucceeded}
	assert.Equal(t, map[string][]deployevent.State{"checkout": lifecycle, "cart": lifecycle}, states)

	cartSpans := server(spans, "cart")
	for _, s := range cartSpans {
		if s.end.Before(cartStart) {
			require.Equal(t, "2.0.0", s.version)
		}
		if !s.end.Before(cart.RolloutEnd) {
			require.Equal(t, "2.1.0", s.version)
		}
	}

	// The regression belongs to the main deployment: cart's new version is clean.
	regressed := sc
	regressed.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 5}
	assert.Equal(t, statuses(cartSpans), statuses(server(collectSpans(t, &regressed), "cart")))
}

func TestValidateCallsAndAlso(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Scenario)
		err    string
	}{
		{"valid", func(*Scenario) {}, ""},
		{"unknown callee", func(s *Scenario) { s.Services[0].Calls = []Call{{Callee: "nope"}} }, "not among"},
		{"self call", func(s *Scenario) { s.Services[0].Calls = []Call{{Callee: "api"}} }, "calls itself"},
		{"unknown callee route", func(s *Scenario) { s.Services[0].Calls = []Call{{Callee: "db", Route: "/x"}} }, "does not serve"},
		{"unknown caller route", func(s *Scenario) { s.Services[0].Calls = []Call{{Callee: "db", Routes: []string{"/x"}}} }, "does not serve"},
		{"fraction", func(s *Scenario) { s.Services[0].Calls = []Call{{Callee: "db", Fraction: 1.5}} }, "Fraction"},
		{"propagate", func(s *Scenario) { s.Services[0].Calls = []Call{{Callee: "db", Propagate: Probability(-1)}} }, "Propagate"},
		{"regression route", func(s *Scenario) {
			s.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 2, Routes: []string{"/x"}}
		}, "not a route"},
		{"routes on throughput", func(s *Scenario) {
			s.Regression = &Regression{Kind: KindThroughput, Magnitude: 0.5, Routes: []string{"/q"}}
		}, "cannot be limited"},
		{"callers only saturation", func(s *Scenario) { s.Regression = &Regression{Kind: KindSaturation, Magnitude: 0.2, CallersOnly: true} }, "cannot be limited"},
		{"main offset", func(s *Scenario) { s.Deployment.Offset = time.Minute }, "Offset must be 0"},
		{"also unknown", func(s *Scenario) { s.Also = []Deployment{{Service: "nope", Version: "2"}} }, "not among"},
		{"also the main service", func(s *Scenario) { s.Also = []Deployment{{Service: "db", Version: "2"}} }, "deployed twice"},
		{"also twice", func(s *Scenario) {
			s.Also = []Deployment{{Service: "api", Version: "4"}, {Service: "api", Version: "5"}}
		}, "deployed twice"},
		{"also version", func(s *Scenario) { s.Also = []Deployment{{Service: "api", Version: "3.1.0"}} }, "differ"},
		{"also offset", func(s *Scenario) { s.Also = []Deployment{{Service: "api", Version: "4", Offset: time.Hour}} }, "Offset"},
		{"also queued", func(s *Scenario) { s.Also = []Deployment{{Service: "api", Version: "4", QueuedFor: time.Hour}} }, "QueuedFor"},
		{"also strategy", func(s *Scenario) {
			s.Also = []Deployment{{Service: "api", Version: "4", Strategy: deployevent.StrategyBlueGreen}}
		}, "rolling or canary"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := callScenario()
			sc.Services = append([]Service(nil), sc.Services...)
			tt.modify(&sc)
			err := sc.Validate()
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.err)
		})
	}
}

func TestTopologiesComposition(t *testing.T) {
	topo := Topologies(1)
	require.Len(t, topo, len(TopologyNames)*len(TopologyTraffic)*TopologySeeds)
	require.Len(t, topo, 60)
	names := map[string]bool{}
	count := map[string]int{}
	var previousStart time.Time
	for i := range topo {
		sc := &topo[i]
		require.NoError(t, sc.Validate(), sc.Name)
		require.False(t, names[sc.Name], "duplicate name %s", sc.Name)
		names[sc.Name] = true
		require.True(t, sc.Start.After(previousStart), "scenarios run on increasing days")
		previousStart = sc.Start
		count[sc.Topology]++
		k := i % TopologySeeds
		rps := TopologyTraffic[i/TopologySeeds%len(TopologyTraffic)]
		assert.Equal(t, fmt.Sprintf("%s/rps=%g/%d", sc.Topology, rps, k), sc.Name)
		assert.Equal(t, LibraryWarmUp, sc.WarmUp)
		assert.Equal(t, TopologyObserve, sc.Observe)

		l := sc.Label()
		assert.Equal(t, sc.Topology, l.Topology)
		assert.Equal(t, rps, l.TrafficRPS, "%s: rps is the main deployed service's", sc.Name)
		if sc.Topology != TopologyCleanPair {
			assert.True(t, l.Regressed)
			assert.Equal(t, l.Service, l.Culprit)
			assert.Equal(t, l.DeploymentStart, l.RegressionOnset)
		}
		assert.False(t, l.RolloutEnd.IsZero(), "%s: the rollout ends within the scenario", sc.Name)
		assert.Equal(t, 1+len(sc.Also), len(l.Deployments))
		assert.Equal(t, l.Service, l.Deployments[0].Service)

		svc := map[string]*Service{}
		for j := range sc.Services {
			svc[sc.Services[j].Name] = &sc.Services[j]
			assert.Equal(t, SignalTraces|SignalMetrics, sc.Services[j].Signals)
		}
		payment := svc[ServicePayment].Traffic.RPS
		assert.InEpsilon(t, payment, svc[ServiceFrontend].Traffic.RPS, 1e-9, "frontend ≈ payment")
		assert.InEpsilon(t, 0.6*payment, svc[ServiceCheckout].Traffic.RPS, 1e-9, "checkout ≈ payment / 2")
		// Each caller → payment edge carries at least ~10 calls/s at 20 req/s.
		for _, caller := range []string{ServiceFrontend, ServiceCheckout} {
			assert.GreaterOrEqual(t, edgeRate(svc[caller], ServicePayment), 0.49*payment, "%s: %s → payment", sc.Name, caller)
		}
		r := sc.Regression
		switch sc.Topology {
		case TopologyImpactEndpoint:
			assert.Equal(t, ServicePayment, l.Culprit)
			assert.Equal(t, []string{ServiceCheckout}, l.Harmed)
			assert.True(t, l.CallersOnly)
			assert.Equal(t, KindErrorRatio, r.Kind)
			assert.Equal(t, []string{RouteCharge}, r.Routes)
			failing := svc[ServicePayment].Traffic.ErrorRatio * r.Magnitude
			assert.True(t, failing >= 0.06-1e-9 && failing <= 0.10+1e-9, "%s: 6–10 %% 5xx, got %g", sc.Name, failing)
			assert.Empty(t, sc.Also)
		case TopologyImpactSlow:
			assert.Equal(t, ServicePayment, l.Culprit)
			assert.Equal(t, []string{ServiceCheckout, ServiceFrontend}, l.Harmed)
			assert.False(t, l.CallersOnly)
			assert.Equal(t, KindLatency, r.Kind)
			assert.True(t, r.Magnitude >= 1.5 && r.Magnitude <= 2)
			assert.Empty(t, r.Routes)
		case TopologyCallerOwn:
			assert.Equal(t, ServiceCheckout, l.Culprit)
			assert.Empty(t, l.Harmed)
			assert.Equal(t, KindErrorRatio, r.Kind)
			assert.True(t, r.Magnitude >= 5 && r.Magnitude <= 7)
		case TopologyCleanPair:
			assert.Nil(t, r)
			assert.Empty(t, l.Culprit)
			assert.Empty(t, l.Harmed)
			require.Len(t, sc.Also, 1)
			assert.Equal(t, ServiceCheckout, sc.Also[0].Service)
		case TopologyTwoRollouts:
			require.Len(t, sc.Also, 1)
			assert.True(t, sc.Also[0].Offset >= 0 && sc.Also[0].Offset <= 30*time.Second)
			assert.Equal(t, l.DeploymentStart.Add(sc.Also[0].Offset), l.Deployments[1].Start)
			assert.False(t, l.CallersOnly)
			if k%2 == 1 {
				assert.Equal(t, ServicePayment, l.Culprit)
				assert.Equal(t, ServiceCheckout, sc.Also[0].Service)
				assert.Equal(t, []string{ServiceCheckout}, l.Harmed)
				assert.Equal(t, []string{RouteCharge}, r.Routes)
				assert.Equal(t, 1.0, svc[ServiceCheckout].Calls[0].propagation())
			} else {
				assert.Equal(t, ServiceCheckout, l.Culprit)
				assert.Equal(t, ServicePayment, sc.Also[0].Service)
				assert.Empty(t, l.Harmed)
			}
		}
	}
	want := map[string]int{}
	for _, name := range TopologyNames {
		want[name] = len(TopologyTraffic) * TopologySeeds
	}
	assert.Equal(t, want, count)
}

// edgeRate is the expected rate of caller's calls to callee, at the caller's RPS.
func edgeRate(caller *Service, callee string) float64 {
	total := 0.0
	for _, r := range caller.Traffic.Routes {
		total += r.Weight
	}
	rate := 0.0
	for _, c := range caller.Calls {
		if c.Callee != callee {
			continue
		}
		share := 0.0
		for _, r := range caller.Traffic.Routes {
			if len(c.Routes) == 0 || slices.Contains(c.Routes, r.Route) {
				share += r.Weight / total
			}
		}
		fraction := c.Fraction
		if fraction == 0 {
			fraction = 1
		}
		rate += caller.Traffic.RPS * share * fraction
	}
	return rate
}

func TestTopologiesDeterministic(t *testing.T) {
	a, b := Topologies(1), Topologies(1)
	assert.Equal(t, a, b, "the same seed gives the same topologies")
	other := Topologies(2)
	assert.NotEqual(t, a[0].Seed, other[0].Seed)
	seeds := map[int64]bool{}
	for _, sc := range Library(1) {
		seeds[sc.Seed] = true
	}
	for _, sc := range a {
		assert.False(t, seeds[sc.Seed], "%s: a seed of its own, apart from Library's", sc.Name)
	}
	sc := a[0]
	first := fingerprint(t, &sc)
	assert.Equal(t, first, fingerprint(t, &b[0]), "the same telemetry, byte for byte")
	assert.NotEqual(t, first, fingerprint(t, &a[1]))
}

func TestImpactEndpoint(t *testing.T) {
	sc := topologyByName(t, TopologyImpactEndpoint+"/rps=20/0")
	label := sc.Label()
	before := between(sc.Start, label.DeploymentStart)
	after := between(label.RolloutEnd, label.End)
	spans := collectSpans(t, &sc)

	checkout := calls(spans, ServiceCheckout, ServicePayment)
	failing := sc.Services[2].Traffic.ErrorRatio * sc.Regression.Magnitude
	assert.Less(t, spanErrorRatio(spansWhere(checkout, before)), 0.025, "checkout's charges before")
	assert.InEpsilon(t, failing, spanErrorRatio(spansWhere(checkout, after)), 0.35, "checkout's charges fail once payment rolled out")
	assert.Greater(t, spanErrorRatio(spansWhere(checkout, after)), 3*spanErrorRatio(spansWhere(checkout, before)))
	for _, c := range checkout {
		require.Equal(t, "POST "+RouteCharge, c.name)
	}

	frontend := calls(spans, ServiceFrontend, ServicePayment)
	for _, c := range frontend {
		require.Equal(t, "GET "+RouteStatus, c.name)
	}
	assert.Less(t, spanErrorRatio(spansWhere(frontend, after)), 0.03, "frontend's status checks stay healthy")
	assert.Less(t, spanErrorRatio(spansWhere(frontend, after)), 2*spanErrorRatio(spansWhere(frontend, before))+0.005)

	// Callers only: payment's own spans are those of a clean rollout.
	clean := sc
	clean.Regression = nil
	cleanSpans := collectSpans(t, &clean)
	requireSameSpans(t, server(cleanSpans, ServicePayment), server(spans, ServicePayment), false, "payment's own spans are unaffected")
	assert.Less(t, spanErrorRatio(spansWhere(server(spans, ServicePayment), after)), 0.025)
	// Checkout's own requests fail with its charges.
	assert.Greater(t, spanErrorRatio(spansWhere(server(spans, ServiceCheckout), after)), 0.04, "checkout's own 5xx rise")
	assert.Less(t, spanErrorRatio(spansWhere(server(spans, ServiceFrontend), after)), 0.03, "frontend's do not")
}

func TestImpactSlow(t *testing.T) {
	sc := topologyByName(t, TopologyImpactSlow+"/rps=20/1")
	label := sc.Label()
	after := between(label.RolloutEnd, label.End)
	clean := sc
	clean.Regression = nil
	spans, cleanSpans := collectSpans(t, &sc), collectSpans(t, &clean)
	m := sc.Regression.Magnitude
	for _, caller := range []string{ServiceFrontend, ServiceCheckout} {
		ratio := spanMedian(spansWhere(calls(spans, caller, ServicePayment), after)) / spanMedian(spansWhere(calls(cleanSpans, caller, ServicePayment), after))
		assert.InEpsilon(t, m, ratio, 0.1, "%s's calls to payment slow down", caller)
		assert.Greater(t, spanMedian(spansWhere(server(spans, caller), after)), spanMedian(spansWhere(server(cleanSpans, caller), after)), "and so do %s's requests", caller)
	}
	ratio := spanMedian(spansWhere(server(spans, ServicePayment), after)) / spanMedian(spansWhere(server(cleanSpans, ServicePayment), after))
	assert.InEpsilon(t, m, ratio, 0.1, "payment's own spans slow down too")
	inventory := calls(spans, ServiceCheckout, ServiceInventory)
	assert.InEpsilon(t, 1, spanMedian(spansWhere(inventory, after))/spanMedian(spansWhere(calls(cleanSpans, ServiceCheckout, ServiceInventory), after)), 0.05, "inventory stays fast")
}

func TestTwoRollouts(t *testing.T) {
	for _, name := range []string{TopologyTwoRollouts + "/rps=20/1", TopologyTwoRollouts + "/rps=20/0"} {
		t.Run(name, func(t *testing.T) {
			sc := topologyByName(t, name)
			label := sc.Label()
			started := map[string]time.Time{}
			succeeded := map[string]bool{}
			for _, e := range sc.Events() {
				switch e.State {
				case deployevent.StateStarted:
					started[e.Service] = e.Timestamp
				case deployevent.StateSucceeded:
					succeeded[e.Service] = true
				}
			}
			assert.Equal(t, map[string]time.Time{label.Deployments[0].Service: label.Deployments[0].Start, label.Deployments[1].Service: label.Deployments[1].Start}, started)
			assert.Equal(t, map[string]bool{ServicePayment: true, ServiceCheckout: true}, succeeded)

			spans := collectSpans(t, &sc)
			latest := func(d DeployedLabel) func(*span) bool {
				return func(s *span) bool { return s.service == d.Service && !s.end.Before(label.End.Add(-5*time.Minute)) }
			}
			for _, d := range label.Deployments {
				for _, s := range spansWhere(spans, latest(d)) {
					require.Equal(t, d.Version, s.version, "%s runs its new version", d.Service)
				}
			}
			after := between(label.End.Add(-5*time.Minute), label.End)
			paymentOwn := spanErrorRatio(spansWhere(server(spans, ServicePayment), after))
			checkoutOwn := spanErrorRatio(spansWhere(server(spans, ServiceCheckout), after))
			if label.Culprit == ServicePayment {
				assert.Greater(t, paymentOwn, 0.025, "payment fails its charges")
				assert.Greater(t, checkoutOwn, 0.04, "into checkout's own 5xx")
				assert.Greater(t, spanErrorRatio(spansWhere(calls(spans, ServiceCheckout, ServicePayment), after)), 0.04)
			} else {
				assert.Equal(t, ServiceCheckout, label.Culprit)
				assert.Less(t, paymentOwn, 0.025, "payment's rollout is clean")
				assert.Less(t, spanErrorRatio(spansWhere(calls(spans, ServiceCheckout, ServicePayment), after)), 0.03)
				assert.Greater(t, checkoutOwn, 0.025, "checkout fails on its own")
			}
		})
	}
}

func topologyByName(t *testing.T, name string) Scenario {
	t.Helper()
	for _, sc := range Topologies(1) {
		if sc.Name == name {
			return sc
		}
	}
	t.Fatalf("no topology scenario %s", name)
	return Scenario{}
}

func TestClassicLabelCarriesTheDeployment(t *testing.T) {
	sc := testScenario(20)
	l := sc.Label()
	assert.Empty(t, l.Topology)
	assert.Empty(t, l.Culprit)
	assert.Nil(t, l.Harmed)
	require.Len(t, l.Deployments, 1)
	assert.Equal(t, DeployedLabel{Service: "checkout", DeploymentID: l.DeploymentID, Version: "1.5.0", PreviousVersion: "1.4.2", Start: l.DeploymentStart, RolloutEnd: l.RolloutEnd}, l.Deployments[0])
	sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3}
	l = sc.Label()
	assert.Equal(t, "checkout", l.Culprit)
	assert.Nil(t, l.Harmed, "nobody calls it")

	shifted := l
	shifted.Shift(time.Hour)
	assert.Equal(t, l.Deployments[0].Start.Add(time.Hour), shifted.Deployments[0].Start)
	assert.Equal(t, l.RolloutEnd.Add(time.Hour), shifted.Deployments[0].RolloutEnd)
	assert.Equal(t, sc.Label().Deployments, l.Deployments, "shifting a copy leaves the original")
}

// classicFingerprints are the SHA-256 of existing scenarios' telemetry
// (fingerprint), recorded before calls and topologies were added: the
// generator must keep producing them byte for byte.
var classicFingerprints = map[string]string{
	"test":                     "e6833bdec719054b213394f905a52d138ee0ea2835122e9bdb42ad2d85ea7080",
	"error_ratio/rps=1/00":     "c2e99ed6d2648fc9cca6829c3662dabb4078c6c181a57eea794604acccfa1d7a",
	"latency/rps=5/00":         "40f76107fc06f54d275491bfd3e07fd3d787ec6ff3bd6ca166522d9fc9cc4e2d",
	"throughput/rps=5/00":      "2d021e42325dd11ebb1093590c3bcc22ec90c1af720cba0e611b7f5316799a6f",
	"saturation/rps=5/00":      "5378ffe2658b0bd08be685c1645d64804e41016af9171d210ee3ff929aaf1e27",
	"canary_errors/rps=5/00":   "85af0ea9e655db093ae4f86e289e2b6ea5d871ac106246aa298f759f995d3ea0",
	"clean-canary/rps=5/00":    "0513059af769b92381aa723c772712d71bfa6d4f9fd21c341cf4ffe74934aa3c",
	"mixture-latency/rps=5/00": "cbe9f43968de43136170744b4e644ac5afb592d7b1ecbc3105a3f1a9b913975e",
	"error-step/rps=5/00":      "372ffc0d35ad10fbd34ff67a24aae50be5ac2eae98255d60e6b9a59327f04f18",
	"clean-quiet/rps=5/00":     "fa6e7a64eed66b00c580167be6d6947f9d3955ead6e7ef8476d3094c17d23680",
	"error_ratio/rps=20/00":    "4ecbca54dd80708edaf7c421455187a90740359e9bad62e8fd143839fefe6dd2",
	"clean-surge/rps=20/01":    "7f3b94a54c2064274fc7c55e27ff7a4823c4f4adff700344fbd08221213d538e",
}

func TestClassicFingerprintsUnchanged(t *testing.T) {
	digest := func(sc *Scenario) string {
		sum := sha256.Sum256(fingerprint(t, sc))
		return hex.EncodeToString(sum[:])
	}
	sc := testScenario(20)
	sc.WarmUp, sc.Observe = 2*time.Minute, 3*time.Minute
	sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3}
	assert.Equal(t, classicFingerprints["test"], digest(&sc), "TestDeterministic's scenario")
	seen := 1
	for _, sc := range Library(1) {
		if want, ok := classicFingerprints[sc.Name]; ok {
			seen++
			assert.Equal(t, want, digest(&sc), sc.Name)
		}
	}
	assert.Equal(t, len(classicFingerprints), seen)
}
