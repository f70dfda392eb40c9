// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/pairs"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

var paymentV2 = service{name: "payment", namespace: "shop", environment: "prod", version: "2.2.0"}

// paymentStarted is payment 2.2.0 → 2.3.0 starting at at.
func paymentStarted(at time.Time) deployevent.Event {
	return deployevent.Event{Service: "payment", Namespace: "shop", Environment: "prod", Version: "2.3.0",
		PreviousVersion: "2.2.0", ID: "pay-23", State: deployevent.StateStarted, Strategy: deployevent.StrategyRolling,
		Source: deployevent.SourceGeneric, Timestamp: at}
}

// meshInterval sends 10 s ending at end: checkout's SERVER spans, each with
// a CLIENT child calling payment (peer.service) that fails as callsFail,
// and payment's own SERVER spans, failing as paymentFails.
func (ps *pipelines) meshInterval(t *testing.T, rng *rand.Rand, end time.Time, callsFail, paymentFails float64) {
	t.Helper()
	td := ptrace.NewTraces()
	add := func(svc service, instance string, rps float64, fill func(ptrace.SpanSlice, time.Time, time.Duration)) {
		rs := td.ResourceSpans().AppendEmpty()
		svc.putResource(rs.Resource().Attributes())
		rs.Resource().Attributes().PutStr("service.instance.id", instance)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		n := int(rps * 10)
		for i := range n {
			at := end.Add(-10 * time.Second).Add(time.Duration(float64(i)+0.5) * 10 * time.Second / time.Duration(n))
			latency := time.Duration(0.04 * math.Exp(0.5*rng.NormFloat64()) * float64(time.Second))
			fill(spans, at, latency)
		}
	}
	status := func(sp ptrace.Span, failRatio float64) {
		code := int64(200)
		if rng.Float64() < failRatio {
			code = 503
		}
		sp.Attributes().PutInt("http.response.status_code", code)
	}
	add(checkoutV1, "co-a", 30, func(spans ptrace.SpanSlice, at time.Time, latency time.Duration) {
		server := spans.AppendEmpty()
		server.SetKind(ptrace.SpanKindServer)
		server.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-2 * latency)))
		server.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
		server.Attributes().PutInt("http.response.status_code", 200)
		call := spans.AppendEmpty()
		call.SetKind(ptrace.SpanKindClient)
		call.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-latency - time.Millisecond)))
		call.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Millisecond)))
		call.Attributes().PutStr("peer.service", "payment")
		call.Attributes().PutStr("server.address", "payment.shop.svc")
		status(call, callsFail)
	})
	add(paymentV2, "pay-a", 40, func(spans ptrace.SpanSlice, at time.Time, latency time.Duration) {
		sp := spans.AppendEmpty()
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-latency)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
		status(sp, paymentFails)
	})
	ctx := context.Background()
	ps.clock.Set(end)
	require.NoError(t, ps.traces.ConsumeTraces(ctx, td))
	ps.clock.Set(end.Add(5 * time.Second))
	ps.proc.edges.Sweep(ps.clock.Now())
	ps.proc.health.Sweep(ps.clock.Now())
}

// TestDependencyImpactEndToEnd: payment's rollout fails only checkout's
// calls to it. Its deployment's alert names checkout's calls, checkout's
// alert names payment's rollout, and the dependency metrics describe the edge.
func TestDependencyImpactEndToEnd(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	rng := rand.New(rand.NewPCG(5, 8)) //nolint:gosec // test data
	at := t0
	for range 60 {
		at = at.Add(10 * time.Second)
		ps.meshInterval(t, rng, at, 0.004, 0.004)
	}
	ps.clock.Set(at)
	ps.consumeEvents(t, paymentStarted(at))
	for range 12 {
		at = at.Add(10 * time.Second)
		ps.meshInterval(t, rng, at, 0.08, 0.004)
	}
	paymentKey := tracker.Key{Namespace: "shop", Service: "payment", Environment: "prod"}
	snap := ps.proc.HealthSnapshot(paymentKey)
	require.NotNil(t, snap)
	assert.True(t, snap.Alarm(), "%+v", snap.Health)
	require.NotEmpty(t, snap.Health.Impact)
	assert.Equal(t, "checkout", snap.Health.Impact[0].Peer.Service)

	ps.logsSink.Reset()
	ps.metricsSink.Reset()
	ps.proc.emitSignals(context.Background(), at)
	bodies := map[string]string{}
	for _, ld := range ps.logsSink.AllLogs() {
		eachRecord(ld, func(res pcommon.Map, lr plog.LogRecord) {
			if lr.EventName() == deployevent.AlertEventName {
				svc, _ := res.Get(deployevent.AttrServiceName)
				bodies[svc.Str()] = lr.Body().Str()
			}
		})
	}
	assert.Contains(t, bodies["payment"], "payment 2.3.0 in prod: checkout's calls to payment fail")
	assert.Contains(t, bodies["payment"], "after the rollout began")
	assert.Contains(t, bodies["checkout"], "checkout in prod: calls to payment fail")
	assert.Contains(t, bodies["checkout"], "explained by payment 2.3.0's rollout (deployment pay-23)")
	caller := ps.proc.HealthSnapshot(checkoutKey())
	require.NotNil(t, caller)
	require.NotEmpty(t, caller.Health.ExplainedBy)

	found := map[string]float64{}
	for _, md := range ps.metricsSink.AllMetrics() {
		eachPoint(md, func(res pcommon.Map, name string, dp pmetric.NumberDataPoint) {
			svc, _ := res.Get(deployevent.AttrServiceName)
			dep, _ := dp.Attributes().Get("deployment.dependency.name")
			ind, _ := dp.Attributes().Get("indicator.name")
			key := svc.Str() + "|" + name + "|" + dep.Str() + "|" + ind.Str()
			found[key] = dp.DoubleValue() + float64(dp.IntValue())
		})
	}
	assert.Greater(t, found["checkout|deployment.dependency.value|payment|error_ratio"], 0.03)
	assert.InDelta(t, 30, found["checkout|deployment.dependency.value|payment|request_rate"], 3)
	assert.Contains(t, found, "checkout|deployment.dependency.health.score|payment|")
	assert.Equal(t, 1.0, found["payment|deployment.impact.services||"])
}

// TestDependencyNamesAreBounded: a service calling more dependencies than
// max_per_service is refused the rest, counted; its edges go with it.
func TestDependencyNamesAreBounded(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{edit: func(c *Config) { c.Health.Dependencies.MaxPerService = 3 }})
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	checkoutV1.putResource(rs.Resource().Attributes())
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 10 {
		sp := spans.AppendEmpty()
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
		sp.Attributes().PutStr("server.address", "10.0.0."+string(rune('0'+i)))
	}
	db := spans.AppendEmpty()
	db.SetKind(ptrace.SpanKindClient)
	db.Attributes().PutStr("db.system.name", "postgresql")
	db.Attributes().PutStr("db.namespace", "orders")
	_, err := ps.proc.processTraces(context.Background(), td)
	require.NoError(t, err)
	assert.Equal(t, 3, ps.proc.edges.Len())
	assert.Equal(t, uint64(8), ps.proc.edges.DependencyRefused())
	ps.proc.forget(checkoutKey(), tracker.EvictIdle)
	assert.Zero(t, ps.proc.edges.Len())
}

func eachRecord(ld plog.Logs, fn func(pcommon.Map, plog.LogRecord)) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				fn(rl.Resource().Attributes(), lr)
			}
		}
	}
}

func eachPoint(md pmetric.Metrics, fn func(pcommon.Map, string, pmetric.NumberDataPoint)) {
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Type() != pmetric.MetricTypeGauge {
					continue
				}
				for _, dp := range m.Gauge().DataPoints().All() {
					fn(rm.Resource().Attributes(), m.Name(), dp)
				}
			}
		}
	}
}

// TestDependencyFromClientMetrics: http.client.request.duration points
// count on the edge their server.address names (cumulative, as SDKs export
// them), each dependency on its own edge.
func TestDependencyFromClientMetrics(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	var count [2]uint64
	start := pcommon.NewTimestampFromTime(t0)
	for step := 1; step <= 12; step++ {
		end := t0.Add(time.Duration(step) * 10 * time.Second)
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		checkoutV1.putResource(rm.Resource().Attributes())
		rm.Resource().Attributes().PutStr("service.instance.id", "co-a")
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("http.client.request.duration")
		m.SetUnit("s")
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		for i, dep := range []string{"payment", "inventory"} {
			count[i] += uint64(200 * (i + 1))
			dp := h.DataPoints().AppendEmpty()
			dp.SetStartTimestamp(start)
			dp.SetTimestamp(pcommon.NewTimestampFromTime(end))
			dp.Attributes().PutStr("server.address", dep)
			dp.Attributes().PutInt("http.response.status_code", 200)
			dp.SetCount(count[i])
			dp.ExplicitBounds().FromRaw([]float64{0.05, 0.1, 0.5})
			dp.BucketCounts().FromRaw([]uint64{count[i] / 2, count[i] / 2, 0, 0})
		}
		ps.clock.Set(end)
		require.NoError(t, ps.metrics.ConsumeMetrics(context.Background(), md))
		ps.clock.Set(end.Add(5 * time.Second))
		ps.proc.edges.Sweep(ps.clock.Now())
	}
	rates := map[string]float64{}
	ps.proc.edges.Outgoing(health.Key{Namespace: "shop", Service: "checkout", Environment: "prod"}, func(snap *health.Snapshot) {
		for _, ev := range snap.Health.Indicators {
			if ev.Indicator == "request_rate" {
				rates[snap.Key.Dependency] = ev.Value
			}
		}
	})
	assert.InDelta(t, 20, rates["payment"], 0.5)
	assert.InDelta(t, 40, rates["inventory"], 0.5)
}

// TestDependencyBaselinesSurviveRestart: the engine of edges is saved under
// its own key and restored: an edge's baseline judges after a restart.
func TestDependencyBaselinesSurviveRestart(t *testing.T) {
	store := newMemStorage()
	ps := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: hostWith(store)})
	rng := rand.New(rand.NewPCG(9, 2)) //nolint:gosec // test data
	at := t0
	for range 30 {
		at = at.Add(10 * time.Second)
		ps.meshInterval(t, rng, at, 0.004, 0.004)
	}
	ps.shutdown(t)
	require.Equal(t, 1, store.setCountOf(edgesKey))

	restarted := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: hostWith(store)})
	edge := health.Key{Namespace: "shop", Service: "checkout", Environment: "prod", Dependency: "payment"}
	assert.True(t, restarted.proc.edges.Has(edge))
	assert.Equal(t, 1, restarted.proc.edges.Len())
}

// TestSpanPairsTeachTheCallee: checkout names payment only by its address
// ("10.0.4.17:8443", no peer.service); payment's SERVER spans are children
// of checkout's CLIENT spans. The pairs teach that the address is payment:
// payment's rollout, which breaks those calls, answers for them.
func TestSpanPairsTeachTheCallee(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	rng := rand.New(rand.NewPCG(3, 3)) //nolint:gosec // test data
	var ids uint64
	interval := func(end time.Time, callsFail float64) {
		td := ptrace.NewTraces()
		co := td.ResourceSpans().AppendEmpty()
		checkoutV1.putResource(co.Resource().Attributes())
		co.Resource().Attributes().PutStr("service.instance.id", "co-a")
		pay := td.ResourceSpans().AppendEmpty()
		paymentV2.putResource(pay.Resource().Attributes())
		pay.Resource().Attributes().PutStr("service.instance.id", "pay-a")
		coSpans, paySpans := co.ScopeSpans().AppendEmpty().Spans(), pay.ScopeSpans().AppendEmpty().Spans()
		for i := range 300 {
			at := end.Add(-10 * time.Second).Add(time.Duration(i) * 10 * time.Second / 300)
			latency := time.Duration(0.03 * math.Exp(0.4*rng.NormFloat64()) * float64(time.Second))
			ids++
			var id pcommon.SpanID
			binary.BigEndian.PutUint64(id[:], ids)
			own := coSpans.AppendEmpty()
			own.SetKind(ptrace.SpanKindServer)
			own.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-2 * latency)))
			own.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
			own.Attributes().PutInt("http.response.status_code", 200)
			call := coSpans.AppendEmpty()
			call.SetKind(ptrace.SpanKindClient)
			call.SetSpanID(id)
			call.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-latency)))
			call.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
			call.Attributes().PutStr("server.address", "10.0.4.17:8443")
			code := int64(200)
			if rng.Float64() < callsFail {
				code = 503
			}
			call.Attributes().PutInt("http.response.status_code", code)
			server := paySpans.AppendEmpty()
			server.SetKind(ptrace.SpanKindServer)
			server.SetParentSpanID(id)
			server.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-latency + time.Millisecond)))
			server.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Millisecond)))
			server.Attributes().PutInt("http.response.status_code", 200) // payment never sees the failures
		}
		ps.clock.Set(end)
		require.NoError(t, ps.traces.ConsumeTraces(context.Background(), td))
		ps.clock.Set(end.Add(5 * time.Second))
		ps.proc.edges.Sweep(ps.clock.Now())
		ps.proc.health.Sweep(ps.clock.Now())
	}
	at := t0
	for range 60 {
		at = at.Add(10 * time.Second)
		interval(at, 0.004)
	}
	service, ok := ps.proc.pairs.Resolve(pairs.Name{Namespace: "shop", Environment: "prod", Dependency: "10.0.4.17:8443"})
	require.True(t, ok, "the pairs taught the address")
	assert.Equal(t, "payment", service)
	assert.Equal(t, int64(1), ps.proc.pairs.Names())

	ps.clock.Set(at)
	ps.consumeEvents(t, paymentStarted(at))
	for range 12 {
		at = at.Add(10 * time.Second)
		interval(at, 0.08)
	}
	snap := ps.proc.HealthSnapshot(tracker.Key{Namespace: "shop", Service: "payment", Environment: "prod"})
	require.NotNil(t, snap)
	assert.True(t, snap.Alarm(), "%+v", snap.Health)
	require.NotEmpty(t, snap.Health.Impact)
	assert.Equal(t, "checkout", snap.Health.Impact[0].Peer.Service)
	caller := ps.proc.HealthSnapshot(checkoutKey())
	require.NotNil(t, caller)
	require.NotEmpty(t, caller.Health.ExplainedBy)
	assert.Equal(t, "payment", caller.Health.ExplainedBy[0].Peer.Service, "the explanation names the service, not the address")

	// The edge's metrics say which service the address is, for the exporter's graph.
	ps.metricsSink.Reset()
	ps.proc.emitSignals(context.Background(), at)
	services := map[string]string{}
	for _, md := range ps.metricsSink.AllMetrics() {
		eachPoint(md, func(_ pcommon.Map, name string, dp pmetric.NumberDataPoint) {
			if name == "deployment.dependency.value" {
				dep, _ := dp.Attributes().Get("deployment.dependency.name")
				svc, _ := dp.Attributes().Get("deployment.dependency.service")
				services[dep.Str()] = svc.Str()
			}
		})
	}
	assert.Equal(t, map[string]string{"10.0.4.17:8443": "payment"}, services)
}

// TestEdgeHarmedReportsASteadyCallerAtOnce: an edge whose error ratio left
// its expected range makes its (steady) caller's report due at once.
func TestEdgeHarmedReportsASteadyCallerAtOnce(t *testing.T) {
	edge := func(value float64) *health.Snapshot {
		return &health.Snapshot{Health: health.Health{Verdict: deployevent.VerdictHealthy, Indicators: []health.Evidence{
			{Indicator: "error_ratio", Value: value, Baseline: 0.01, Upper: 0.02, Judged: true},
			{Indicator: "latency_p95", Value: math.NaN(), Upper: math.NaN()},
		}}}
	}
	assert.False(t, edgeHarmed(edge(0.015)))
	assert.True(t, edgeHarmed(edge(0.05)))
	unhealthy := edge(0.015)
	unhealthy.Health.Verdict = deployevent.VerdictUnhealthy
	assert.True(t, edgeHarmed(unhealthy))
}
