// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package indicators

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/detector"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

const tick = 10 * time.Second

// closed records the intervals a window closes, as the health engine would see them.
type closed struct{ intervals []Accumulator }

func (c *closed) CloseInterval(w *Window) {
	a := w.Cur[CohortNone]
	for _, co := range []Cohort{CohortBaseline, CohortCanary} {
		b := w.Cur[co]
		a.Requests += b.Requests
		a.Errors += b.Errors
	}
	// Keep a copy: the window resets its accumulators after this returns.
	if a.Latency != nil {
		a.Latency = a.Latency.Copy()
	}
	a.Custom = append([]CustomAccumulator(nil), a.Custom...)
	c.intervals = append(c.intervals, a)
}

func ns(d time.Duration) int64 { return t0.Add(d).UnixNano() }

func source(cohort Cohort) *Source {
	return &Source{Cohort: cohort, Instance: 42, Identity: 7, Now: ns(time.Hour)}
}

type span struct {
	at      time.Duration // end, since t0
	latency time.Duration
	kind    ptrace.SpanKind
	status  ptrace.StatusCode
	attrs   map[string]any
}

func spansOf(list ...span) ptrace.ScopeSpansSlice {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for _, s := range list {
		sp := ss.Spans().AppendEmpty()
		sp.SetKind(s.kind)
		sp.Status().SetCode(s.status)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(s.at - s.latency)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(s.at)))
		_ = sp.Attributes().FromRaw(s.attrs)
	}
	return td.ResourceSpans().At(0).ScopeSpans()
}

func serverKinds() []ptrace.SpanKind {
	kinds, _ := SpanKinds([]string{"server", "consumer"})
	return kinds
}

func TestSpanKinds(t *testing.T) {
	kinds, err := SpanKinds([]string{"server", "CONSUMER", "client", "producer", "internal"})
	require.NoError(t, err)
	assert.Equal(t, []ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindConsumer, ptrace.SpanKindClient, ptrace.SpanKindProducer, ptrace.SpanKindInternal}, kinds)
	_, err = SpanKinds([]string{"server", "edge"})
	assert.ErrorContains(t, err, `unknown span kind "edge"`)
}

func TestSpansCountRequestsErrorsAndLatency(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	var c closed
	x.AddSpans(w, source(CohortNone), spansOf(
		span{at: 1 * time.Second, latency: 20 * time.Millisecond, kind: ptrace.SpanKindServer},
		span{at: 2 * time.Second, latency: 40 * time.Millisecond, kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError},
		span{at: 3 * time.Second, latency: 60 * time.Millisecond, kind: ptrace.SpanKindServer, attrs: map[string]any{"http.response.status_code": 503}},
		span{at: 3 * time.Second, latency: 60 * time.Millisecond, kind: ptrace.SpanKindServer, attrs: map[string]any{"http.response.status_code": 404}},
		span{at: 4 * time.Second, latency: 80 * time.Millisecond, kind: ptrace.SpanKindConsumer, attrs: map[string]any{"rpc.grpc.status_code": 14}},
		span{at: 4 * time.Second, latency: 80 * time.Millisecond, kind: ptrace.SpanKindServer, attrs: map[string]any{"rpc.grpc.status_code": 5}},
		span{at: 4 * time.Second, latency: 80 * time.Millisecond, kind: ptrace.SpanKindServer, status: ptrace.StatusCodeOk, attrs: map[string]any{"http.response.status_code": 500}},
		span{at: 5 * time.Second, latency: time.Second, kind: ptrace.SpanKindClient, status: ptrace.StatusCodeError}, // not a request of this service
	), &c)
	acc := &w.Cur[CohortNone]
	assert.Equal(t, uint64(7), acc.Requests)
	assert.Equal(t, uint64(3), acc.Errors, "status ERROR, HTTP 503, gRPC UNAVAILABLE; not 404, NOT_FOUND, or a 500 the instrumentation called OK")
	require.NotNil(t, acc.Latency)
	assert.Equal(t, 7.0, acc.Latency.Count())
	assert.InDelta(t, 0.06, acc.Latency.Quantile(0.5), 0.06*0.03)
	assert.Empty(t, c.intervals, "no datum past the interval yet")
	assert.True(t, w.SpanSource())
}

func TestIntervalsCloseOnDataTime(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	var c closed
	add := func(at time.Duration) {
		x.AddSpans(w, source(CohortNone), spansOf(span{at: at, latency: time.Millisecond, kind: ptrace.SpanKindServer}), &c)
	}
	add(12 * time.Second) // opens [10s, 20s), partial: it began with data, not at its start
	assert.Equal(t, ns(10*time.Second), w.Start)
	assert.True(t, w.Partial)
	add(15 * time.Second)
	add(21 * time.Second) // closes [10s, 20s)
	require.Len(t, c.intervals, 1)
	assert.Equal(t, uint64(2), c.intervals[0].Requests)
	assert.False(t, w.Partial)
	add(19 * time.Second) // late: counted in the current interval
	assert.Equal(t, uint64(2), w.Cur[CohortNone].Requests)
	assert.Equal(t, uint64(1), w.Late)

	// A gap closes the current interval and the empty ones up to MaxGap.
	add(55 * time.Second)
	require.Len(t, c.intervals, 4, "[20,30) with data, [30,40) and [40,50) empty")
	assert.Equal(t, uint64(0), c.intervals[2].Requests)
	add(10 * time.Minute) // far ahead: MaxGap empty ones, then a jump
	assert.Len(t, c.intervals, 4+1+MaxGap)
	assert.Equal(t, ns(10*time.Minute), w.Start)
	assert.True(t, w.Partial)
}

func TestCloseStale(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	var c closed
	x.AddSpans(w, source(CohortNone), spansOf(span{at: 12 * time.Second, latency: time.Millisecond, kind: ptrace.SpanKindServer}), &c)
	grace := int64(5 * time.Second)
	assert.False(t, w.CloseStale(ns(24*time.Second), grace, &c), "within the grace period")
	assert.True(t, w.CloseStale(ns(25*time.Second), grace, &c))
	require.Len(t, c.intervals, 1)
	// Without data, empty intervals keep closing while they end within MaxGap
	// intervals of the last datum (12 s): [20 s, 30 s) to [60 s, 70 s); then the window goes idle.
	w.CloseStale(ns(10*time.Minute), grace, &c)
	assert.True(t, w.Idle())
	assert.Len(t, c.intervals, 1+5)
}

func TestFutureAndMissingTimestampsCountNow(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	var c closed
	src := &Source{Now: ns(time.Minute)}
	x.AddSpans(w, src, spansOf(span{at: 30 * time.Minute, latency: time.Millisecond, kind: ptrace.SpanKindServer}), &c)
	assert.Equal(t, ns(time.Minute), w.Start, "a skewed clock does not push the window ahead")
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetKind(ptrace.SpanKindServer)
	x.AddSpans(w, src, td.ResourceSpans().At(0).ScopeSpans(), &c)
	assert.Equal(t, uint64(2), w.Cur[CohortNone].Requests)
	assert.Equal(t, 1.0, w.Cur[CohortNone].Latency.Count(), "no latency without timestamps")
}

func TestCohortsAccumulateApart(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	var c closed
	x.AddSpans(w, source(CohortCanary), spansOf(span{at: time.Second, latency: time.Millisecond, kind: ptrace.SpanKindServer, status: ptrace.StatusCodeError}), &c)
	x.AddSpans(w, source(CohortBaseline), spansOf(span{at: time.Second, latency: time.Millisecond, kind: ptrace.SpanKindServer}), &c)
	assert.Equal(t, uint64(1), w.Cur[CohortCanary].Errors)
	assert.Equal(t, uint64(0), w.Cur[CohortBaseline].Errors)
	assert.Equal(t, CohortCanary, CohortOf(deployevent.CohortCanary))
	assert.Equal(t, deployevent.CohortBaseline, CohortBaseline.Tag())
}

// TestSpansAllocateNothing: in steady state (the key's accumulators exist)
// counting spans allocates nothing per span.
func TestSpansAllocateNothing(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	var c closed
	list := make([]span, 100)
	for i := range list {
		list[i] = span{at: time.Duration(i) * 10 * time.Millisecond, latency: time.Duration(1+i%50) * time.Millisecond, kind: ptrace.SpanKindServer,
			attrs: map[string]any{"http.request.method": "GET", "http.route": "/api", "http.response.status_code": []int{200, 500}[i%2]}}
	}
	scopes := spansOf(list...)
	src := source(CohortCanary)
	x.AddSpans(w, src, scopes, &c)
	allocs := testing.AllocsPerRun(100, func() { x.AddSpans(w, src, scopes, &c) })
	assert.Zero(t, allocs)
}

func BenchmarkAddSpans(b *testing.B) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	var c closed
	list := make([]span, 1000)
	for i := range list {
		list[i] = span{at: time.Duration(i) * time.Millisecond, latency: time.Duration(1+i%50) * time.Millisecond, kind: ptrace.SpanKindServer,
			attrs: map[string]any{"http.request.method": "GET", "http.route": "/api", "http.response.status_code": 200, "url.scheme": "https"}}
	}
	scopes := spansOf(list...)
	src := source(CohortNone)
	b.ReportAllocs()
	for b.Loop() {
		x.AddSpans(w, src, scopes, &c)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(list)), "ns/span")
}

func TestLogs(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	var c closed
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	add := func(sev plog.SeverityNumber, text, event string) {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Second)))
		lr.SetSeverityNumber(sev)
		lr.SetSeverityText(text)
		lr.SetEventName(event)
	}
	add(plog.SeverityNumberInfo, "INFO", "")
	add(plog.SeverityNumberError, "ERROR", "")
	add(plog.SeverityNumberFatal, "", "")
	add(plog.SeverityNumberUnspecified, "error", "")
	add(plog.SeverityNumberUnspecified, "warn", "")
	add(plog.SeverityNumberError, "", deployevent.EventName)
	add(plog.SeverityNumberError, "", deployevent.AlertEventName)
	x.AddLogs(w, source(CohortNone), ld.ResourceLogs().At(0).ScopeLogs(), &c)
	acc := &w.Cur[CohortNone]
	assert.Equal(t, uint64(5), acc.LogRecords, "lifecycle and alert records are not application logs")
	assert.Equal(t, uint64(3), acc.LogErrors)
	assert.True(t, w.LogSource())
}

// histogramMetric builds an http.server.request.duration explicit histogram
// with one point per (status, counts) at ts, started at start.
type hpoint struct {
	status int
	counts []uint64 // per bucket of bounds
}

var bounds = []float64{0.01, 0.1, 1}

func histogramMetrics(name, unit string, temporality pmetric.AggregationTemporality, start, ts time.Duration, points ...hpoint) pmetric.ScopeMetricsSlice {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	m.SetUnit(unit)
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(temporality)
	for _, p := range points {
		dp := h.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(start)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(ts)))
		dp.Attributes().PutInt("http.response.status_code", int64(p.status))
		dp.ExplicitBounds().FromRaw(bounds)
		dp.BucketCounts().FromRaw(p.counts)
		total := uint64(0)
		for _, c := range p.counts {
			total += c
		}
		dp.SetCount(total)
	}
	return md.ResourceMetrics().At(0).ScopeMetrics()
}

func TestCumulativeHistogramIncreasesAndResets(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	st := NewStreams(NewStreamLimit(100))
	var c closed
	src := source(CohortNone)
	cumulative := pmetric.AggregationTemporalityCumulative
	add := func(start, ts time.Duration, points ...hpoint) {
		x.AddMetrics(w, st, src, histogramMetrics(MetricHTTPServerDuration, "s", cumulative, start, ts, points...), &c)
	}
	// A stream first seen an hour after its start only sets its starting values.
	add(-time.Hour, 10*time.Second, hpoint{200, []uint64{100, 100, 0, 0}}, hpoint{500, []uint64{0, 0, 10, 0}})
	assert.Equal(t, uint64(0), w.Cur[CohortNone].Requests)
	// Increases from there: +30 OK, +5 errors.
	add(-time.Hour, 20*time.Second, hpoint{200, []uint64{120, 110, 0, 0}}, hpoint{500, []uint64{0, 0, 15, 0}})
	acc := &w.Cur[CohortNone]
	assert.Equal(t, uint64(35), acc.Requests)
	assert.Equal(t, uint64(5), acc.Errors)
	assert.Equal(t, 35.0, acc.Latency.Count())
	assert.InDelta(t, 3.5, acc.MetricRate, 1e-9, "35 requests over 10 s")
	assert.InDelta(t, 10, acc.InstanceSeconds, 1e-9)
	// A repeated point adds nothing.
	add(-time.Hour, 20*time.Second, hpoint{200, []uint64{120, 110, 0, 0}})
	assert.Equal(t, uint64(35), acc.Requests)
	// A point stamped t covers the time up to t: the one at 30 s closes [10 s, 20 s).
	// The process restarted (new start time): the point counts whole.
	add(25*time.Second, 30*time.Second, hpoint{200, []uint64{4, 0, 0, 0}})
	require.Len(t, c.intervals, 1)
	assert.Equal(t, uint64(35), c.intervals[0].Requests)
	assert.Equal(t, uint64(4), acc.Requests)
	// A count that went down is a reset too.
	add(25*time.Second, 40*time.Second, hpoint{500, []uint64{0, 0, 2, 0}})
	require.Len(t, c.intervals, 2)
	assert.Equal(t, uint64(2), acc.Errors)
	assert.Equal(t, 2, st.Len())
}

func TestFreshStreamCountsWhole(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	st := NewStreams(NewStreamLimit(100))
	var c closed
	// An instance that started 10 s ago: everything it reports is new.
	x.AddMetrics(w, st, source(CohortCanary), histogramMetrics(MetricHTTPServerDuration, "s", pmetric.AggregationTemporalityCumulative,
		0, 10*time.Second, hpoint{200, []uint64{5, 5, 0, 0}}), &c)
	assert.Equal(t, uint64(10), w.Cur[CohortCanary].Requests)
}

func TestDeltaHistogramAndUnits(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	st := NewStreams(NewStreamLimit(100))
	var c closed
	// rpc.server.duration is in milliseconds: 5 values in (10 ms, 100 ms].
	scopes := histogramMetrics(MetricRPCServerDuration, "ms", pmetric.AggregationTemporalityDelta, 0, 10*time.Second,
		hpoint{0, []uint64{0, 0, 0, 0}})
	dp := scopes.At(0).Metrics().At(0).Histogram().DataPoints().At(0)
	dp.Attributes().Clear()
	dp.Attributes().PutInt("rpc.grpc.status_code", 13)
	dp.ExplicitBounds().FromRaw([]float64{10, 100, 1000})
	dp.BucketCounts().FromRaw([]uint64{0, 5, 0, 0})
	dp.SetCount(5)
	x.AddMetrics(w, st, source(CohortNone), scopes, &c)
	acc := &w.Cur[CohortNone]
	assert.Equal(t, uint64(5), acc.Requests)
	assert.Equal(t, uint64(5), acc.Errors, "INTERNAL is the server's fault")
	assert.InDelta(t, math.Sqrt(0.01*0.1), acc.Latency.Quantile(0.5), 0.032*0.03, "in seconds")
	assert.Zero(t, st.Len(), "delta points need no memory")
}

func exponentialMetrics(start, ts time.Duration, scale int32, offset int32, counts []uint64) pmetric.ScopeMetricsSlice {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(MetricHTTPServerDuration)
	m.SetUnit("s")
	h := m.SetEmptyExponentialHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0.Add(start)))
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(ts)))
	dp.SetScale(scale)
	dp.Positive().SetOffset(offset)
	dp.Positive().BucketCounts().FromRaw(counts)
	total := uint64(0)
	for _, c := range counts {
		total += c
	}
	dp.SetCount(total)
	return md.ResourceMetrics().At(0).ScopeMetrics()
}

func TestExponentialHistogramIncreasesAcrossRescale(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	st := NewStreams(NewStreamLimit(100))
	var c closed
	src := source(CohortNone)
	// Scale 1 (base √2), buckets at index -8..-5: about 60 ms to 250 ms.
	x.AddMetrics(w, st, src, exponentialMetrics(-time.Hour, 10*time.Second, 1, -8, []uint64{10, 10, 10, 10}), &c)
	assert.Equal(t, uint64(0), w.Cur[CohortNone].Requests, "first sight of an old stream")
	// The SDK rescaled to 0 (base 2): index -4 holds -8,-7 and index -3 holds -6,-5; +4 values in -3.
	x.AddMetrics(w, st, src, exponentialMetrics(-time.Hour, 20*time.Second, 0, -4, []uint64{20, 24}), &c)
	acc := &w.Cur[CohortNone]
	assert.Equal(t, uint64(4), acc.Requests)
	// Index -3 at scale 0 covers (0.125 s, 0.25 s]: the latency sits at its geometric middle.
	assert.InDelta(t, math.Sqrt(0.125*0.25), acc.Latency.Quantile(0.5), 0.177*0.03)
	// A bucket that went down is a reset: the point counts whole (in the next interval).
	x.AddMetrics(w, st, src, exponentialMetrics(-time.Hour, 25*time.Second, 0, -4, []uint64{1, 1}), &c)
	require.Len(t, c.intervals, 1)
	assert.Equal(t, uint64(4), c.intervals[0].Requests)
	assert.Equal(t, uint64(2), acc.Requests)
}

func TestSpansTakePrecedenceOverHistograms(t *testing.T) {
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	st := NewStreams(NewStreamLimit(100))
	var c closed
	src := source(CohortNone)
	// Histograms count first...
	x.AddMetrics(w, st, src, histogramMetrics(MetricHTTPServerDuration, "s", pmetric.AggregationTemporalityDelta, 0, 2*time.Second,
		hpoint{200, []uint64{5, 0, 0, 0}}), &c)
	assert.Equal(t, uint64(5), w.Cur[CohortNone].Requests)
	// ...until spans of the same requests arrive: then spans alone count.
	x.AddSpans(w, src, spansOf(span{at: 3 * time.Second, latency: time.Millisecond, kind: ptrace.SpanKindServer}), &c)
	assert.Equal(t, uint64(1), w.Cur[CohortNone].Requests)
	x.AddMetrics(w, st, src, histogramMetrics(MetricHTTPServerDuration, "s", pmetric.AggregationTemporalityDelta, 2*time.Second, 4*time.Second,
		hpoint{200, []uint64{5, 0, 0, 0}}), &c)
	assert.Equal(t, uint64(1), w.Cur[CohortNone].Requests)
}

func TestStreamLimitAndSweep(t *testing.T) {
	limit := NewStreamLimit(1)
	x := NewExtractor(serverKinds(), nil, tick)
	w := NewWindow(tick, 0)
	st := NewStreams(limit)
	var c closed
	x.AddMetrics(w, st, source(CohortNone), histogramMetrics(MetricHTTPServerDuration, "s", pmetric.AggregationTemporalityCumulative,
		-time.Hour, 10*time.Second, hpoint{200, []uint64{1, 0, 0, 0}}, hpoint{500, []uint64{1, 0, 0, 0}}), &c)
	assert.Equal(t, int64(1), limit.Len())
	assert.Equal(t, uint64(1), limit.Dropped())
	st.Sweep(ns(time.Minute))
	assert.Zero(t, limit.Len())
}

func TestUserDeclaredIndicators(t *testing.T) {
	defs := []Definition{
		{Name: "cpu", Kind: KindGauge, Metric: "process.cpu.utilization", Direction: detector.HigherIsWorse, Dimension: DimensionSaturation, Weight: 1},
		{Name: "orders", Kind: KindRate, Metric: "orders.completed", Direction: detector.LowerIsWorse, Dimension: DimensionBusiness, Weight: 1,
			Attributes: []AttributeFilter{{Key: "shop", Value: "eu"}}},
		{Name: "failed_orders", Kind: KindRatio, Numerator: "orders.failed", Denominator: "orders.completed", Direction: detector.HigherIsWorse, Dimension: DimensionBusiness, Weight: 1},
	}
	for i := range defs {
		require.NoError(t, defs[i].Validate())
	}
	x := NewExtractor(serverKinds(), defs, tick)
	w := NewWindow(tick, len(defs))
	st := NewStreams(NewStreamLimit(100))
	var c closed
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	cpu := ms.AppendEmpty()
	cpu.SetName("process.cpu.utilization")
	gauge := cpu.SetEmptyGauge()
	for _, v := range []float64{0.2, 0.4} {
		dp := gauge.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(5 * time.Second)))
		dp.SetDoubleValue(v)
	}
	orders := func(name string, shop string, value, ts time.Duration) {
		m := ms.AppendEmpty()
		m.SetName(name)
		sum := m.SetEmptySum()
		sum.SetIsMonotonic(true)
		sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := sum.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(ts)))
		dp.SetIntValue(int64(value))
		dp.Attributes().PutStr("shop", shop)
	}
	orders("orders.completed", "eu", 40, 8*time.Second)
	orders("orders.completed", "us", 1000, 8*time.Second) // filtered out of "orders", counted as failed_orders' denominator
	orders("orders.failed", "eu", 2, 8*time.Second)
	x.AddMetrics(w, st, source(CohortNone), md.ResourceMetrics().At(0).ScopeMetrics(), &c)
	custom := w.Cur[CohortNone].Custom
	assert.InDelta(t, 0.6, custom[0].Sum, 1e-9)
	assert.Equal(t, 2.0, custom[0].Total)
	assert.Equal(t, 2.0, custom[0].Values.Count())
	assert.Equal(t, 40.0, custom[1].Total, "40 orders since the start, 8 s ago: a fresh stream counts whole")
	assert.InDelta(t, 4, custom[1].Sum, 1e-9, "per second, over the longer of the point's span and the interval")
	assert.Equal(t, 2.0, custom[2].Sum)
	assert.Equal(t, 1040.0, custom[2].Total)
}

func TestDefinitionValidate(t *testing.T) {
	ok := Definition{Name: "x", Kind: KindGauge, Metric: "m", Dimension: DimensionBusiness, Weight: 1}
	require.NoError(t, ok.Validate())
	for _, tt := range []struct {
		edit func(*Definition)
		want string
	}{
		{func(d *Definition) { d.Name = "" }, "name: must not be empty"},
		{func(d *Definition) { d.Name = ErrorRatio }, `"error_ratio" is a built-in indicator`},
		{func(d *Definition) { d.Kind = "median" }, `kind: must be gauge, rate or ratio, got "median"`},
		{func(d *Definition) { d.Kind = KindRatio }, "a ratio needs both metrics"},
		{func(d *Definition) { d.Metric = "" }, "metric: a gauge needs a metric name"},
		{func(d *Definition) { d.Dimension = "mood" }, `dimension: unknown dimension "mood"`},
		{func(d *Definition) { d.Weight = 0 }, "weight: must be positive"},
	} {
		d := ok
		tt.edit(&d)
		assert.ErrorContains(t, d.Validate(), tt.want)
	}
}

func TestActiveTable(t *testing.T) {
	var a ActiveTable
	// Two instances: one serves the whole interval, one its second half.
	for i := range 100 {
		a.Add(1, int64(i)*int64(100*time.Millisecond))
		if i >= 50 {
			a.Add(2, int64(i)*int64(100*time.Millisecond))
		}
	}
	assert.InDelta(t, 15, a.Seconds(int64(tick)), 0.5)
	a.Add(0, 0) // unknown instances are not counted
	assert.Equal(t, 2, a.n)
}

func TestInstanceSet(t *testing.T) {
	var s InstanceSet
	assert.Zero(t, s.Count())
	for i := range uint64(5) {
		s.Add(i*1315423911 + 1)
	}
	s.Add(1) // again
	assert.InDelta(t, 5, s.Count(), 0.2)
	var o InstanceSet
	o.Add(99)
	s.Merge(o)
	assert.InDelta(t, 6, s.Count(), 0.3)
}

func TestHashResourceIgnoresDeploymentAttributes(t *testing.T) {
	res := pcommon.NewMap()
	res.PutStr("service.name", "checkout")
	res.PutStr("service.instance.id", "pod-1")
	instance, identity := HashResource(res)
	res.PutStr(deployevent.AttrDeploymentPhase, "during")
	res.PutStr(deployevent.AttrDeploymentCohort, "canary")
	instance2, identity2 := HashResource(res)
	assert.Equal(t, instance, instance2)
	assert.Equal(t, identity, identity2, "the processor's own tags are no part of a stream's identity")
	res.PutStr("service.instance.id", "pod-2")
	instance3, identity3 := HashResource(res)
	assert.NotEqual(t, instance, instance3)
	assert.NotEqual(t, identity, identity3)
}
