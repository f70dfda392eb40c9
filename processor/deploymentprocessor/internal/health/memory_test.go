// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
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
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// memoryIndicators is the default configuration plus a business rate: six
// indicators per key (request rate, error ratio, latency, error log rate,
// CPU utilization, orders per second).
func memoryIndicators(c *Config) {
	c.Indicators = append(DefaultIndicators(), indicators.Definition{
		Name: "orders", Kind: indicators.KindRate, Metric: "orders.completed",
		Direction: detector.LowerIsWorse, Dimension: indicators.DimensionBusiness, Weight: 1,
	})
	c.MaxKeys = 1 << 20
}

// intervalData is one interval of one key's telemetry, shared by all keys
// (the engine copies nothing out of it).
type intervalData struct {
	traces  ptrace.ScopeSpansSlice
	logs    plog.ScopeLogsSlice
	metrics pmetric.ScopeMetricsSlice
}

func makeInterval(rng *rand.Rand, at time.Duration, orders int64) intervalData {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	ld := plog.NewLogs()
	records := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range 100 {
		end := t0.Add(at + time.Duration(i)*100*time.Millisecond)
		latency := 0.05 * math.Exp(0.8*rng.NormFloat64())
		sp := spans.AppendEmpty()
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Duration(latency * float64(time.Second)))))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		if rng.Float64() < 0.01 {
			sp.Status().SetCode(ptrace.StatusCodeError)
			lr := records.AppendEmpty()
			lr.SetTimestamp(pcommon.NewTimestampFromTime(end))
			lr.SetSeverityNumber(plog.SeverityNumberError)
		}
	}
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	cpu := ms.AppendEmpty()
	cpu.SetName("process.cpu.utilization")
	dp := cpu.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(at + 10*time.Second)))
	dp.SetDoubleValue(0.3 + 0.02*rng.NormFloat64())
	o := ms.AppendEmpty()
	o.SetName("orders.completed")
	sum := o.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	odp := sum.DataPoints().AppendEmpty()
	odp.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
	odp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(at + 10*time.Second)))
	odp.SetIntValue(orders)
	return intervalData{
		traces:  td.ResourceSpans().At(0).ScopeSpans(),
		logs:    ld.ResourceLogs().At(0).ScopeLogs(),
		metrics: md.ResourceMetrics().At(0).ScopeMetrics(),
	}
}

// heapPerKey fills an engine with keys in steady state (every indicator
// with data, the comparison windows full) and returns the heap it holds per key.
func heapPerKey(tb testing.TB, keys int) (perKey float64, indicatorCount int) {
	w := newWorld()
	e := newEngine(tb, w, memoryIndicators)
	rng := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // test data
	// 7 minutes: both periods of the recent window hold data.
	const intervals = 42
	data := make([]intervalData, intervals)
	for i := range data {
		data[i] = makeInterval(rng, time.Duration(i)*10*time.Second, int64(i*500))
	}
	keyOf := func(k int) Key {
		return Key{Namespace: "shop", Service: fmt.Sprintf("service-%06d", k), Environment: "prod"}
	}
	for k := range keys {
		w.status[keyOf(k)] = Status{Tracked: true, Phase: deployevent.PhaseSteady}
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for k := range keys {
		s := e.Series(keyOf(k))
		for i := range data {
			src := &indicators.Source{Instance: uint64(k) + 1, Identity: uint64(k) + 1, Now: t0.Add(time.Duration(i+1) * 10 * time.Second).UnixNano()}
			s.Lock()
			s.AddSpans(src, data[i].traces)
			s.AddLogs(src, data[i].logs)
			s.AddMetrics(src, data[i].metrics)
			s.Unlock()
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	require.Equal(tb, keys, e.Len())
	// Every indicator has data and a baseline.
	snap := e.Snapshot(keyOf(0))
	require.NotNil(tb, snap)
	for _, ev := range snap.Health.Indicators {
		require.False(tb, math.IsNaN(ev.Value), ev.Indicator)
	}
	runtime.KeepAlive(e)
	runtime.KeepAlive(data)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(keys), len(e.specs)
}

// TestMemoryPerSeries: a (key, indicator) series, its detector, windows and
// sketches included, holds at most 4 KiB.
func TestMemoryPerSeries(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 1000 keys")
	}
	perKey, n := heapPerKey(t, 1000)
	perSeries := perKey / float64(n)
	t.Logf("%.0f B per key, %.0f B per (key, indicator) series, %d indicators", perKey, perSeries, n)
	assert.LessOrEqual(t, perSeries, 4096.0)
}

// BenchmarkMemory10kKeys reports the heap 10 000 keys × 6 indicators hold
// (the bar: under 250 MiB).
func BenchmarkMemory10kKeys(b *testing.B) {
	for b.Loop() {
		perKey, n := heapPerKey(b, 10_000)
		b.ReportMetric(perKey, "B/key")
		b.ReportMetric(perKey/float64(n), "B/series")
		b.ReportMetric(perKey*10_000/(1<<20), "MiB/10k-keys")
	}
}
