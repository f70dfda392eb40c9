// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The shape of cmd/bench-e2e's load: a request carries 50 services with 10
// spans each, and a metrics request 4 gauge points per service; batches
// cycle over 200 services, 20 batches a second (10 000 spans/s).
const (
	shapeServices   = 200
	shapePerBatch   = 50
	shapeSpans      = 10
	shapePoints     = 4
	shapeBatchEvery = 50 * time.Millisecond
)

func shapeBatch(i int) (ptrace.Traces, pmetric.Metrics) {
	td, md := ptrace.NewTraces(), pmetric.NewMetrics()
	first := (i * shapePerBatch) % shapeServices
	for s := first; s < first+shapePerBatch; s++ {
		svc := service{name: fmt.Sprintf("bench-%03d", s), environment: "bench", version: "v2"}
		rs := td.ResourceSpans().AppendEmpty()
		svc.putResource(rs.Resource().Attributes())
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for k := range shapeSpans {
			sp := spans.AppendEmpty()
			sp.SetName("GET /items/{id}")
			sp.SetKind(ptrace.SpanKindServer)
			sp.Attributes().PutStr("http.request.method", "GET")
			sp.Attributes().PutStr("http.route", "/items/{id}")
			sp.Attributes().PutInt("http.response.status_code", 200)
			if k == 0 && i%20 == 0 {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
		rm := md.ResourceMetrics().AppendEmpty()
		svc.putResource(rm.Resource().Attributes())
		ms := rm.ScopeMetrics().AppendEmpty().Metrics()
		for k := range shapePoints {
			m := ms.AppendEmpty()
			m.SetName(fmt.Sprintf("app.gauge.%d", k))
			if k == 0 {
				m.SetName("process.cpu.utilization")
			}
			m.SetEmptyGauge().DataPoints().AppendEmpty().SetDoubleValue(0.25)
		}
	}
	return td, md
}

// BenchmarkE2EShape is the default configuration on cmd/bench-e2e's load,
// in data time: each op is one traces and one metrics request, 50 ms after
// the one before, so intervals close and services are evaluated as in the
// real-time bench. ns/span is the processor's cost per span of that load,
// its metrics included.
func BenchmarkE2EShape(b *testing.B) {
	ps := newPipelines(b, pipelineOptions{})
	const distinct = shapeServices / shapePerBatch
	var tds [distinct]ptrace.Traces
	var mds [distinct]pmetric.Metrics
	for i := range distinct {
		tds[i], mds[i] = shapeBatch(i)
	}
	stamp := func(i int, at time.Time) {
		end := pcommon.NewTimestampFromTime(at)
		start := pcommon.NewTimestampFromTime(at.Add(-20 * time.Millisecond))
		for _, rs := range tds[i].ResourceSpans().All() {
			for _, sp := range rs.ScopeSpans().At(0).Spans().All() {
				sp.SetStartTimestamp(start)
				sp.SetEndTimestamp(end)
			}
		}
		for _, rm := range mds[i].ResourceMetrics().All() {
			for _, m := range rm.ScopeMetrics().At(0).Metrics().All() {
				m.Gauge().DataPoints().At(0).SetTimestamp(end)
			}
		}
	}
	ctx := context.Background()
	at := t0
	run := func(i int) {
		at = at.Add(shapeBatchEvery)
		stamp(i%distinct, at)
		ps.clock.Set(at)
		_, _ = ps.proc.processTraces(ctx, tds[i%distinct])
		_, _ = ps.proc.processMetrics(ctx, mds[i%distinct])
	}
	// A minute of warm-up: every service tracked, baselines learning.
	for i := range int(time.Minute / shapeBatchEvery) {
		run(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		run(i)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(shapePerBatch*shapeSpans), "ns/span")
}
