// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package loadtest

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
)

// The shape of cmd/bench-e2e's load, shared with the processor's
// BenchmarkE2EShape: each request carries ServicesPerBatch services with
// SpansPerService spans each, and with it a metrics request of
// PointsPerService points per service; batches cycle over Services.
const (
	ServicesPerBatch = 50
	SpansPerService  = 10
	PointsPerService = 4
	SpansPerBatch    = ServicesPerBatch * SpansPerService
	Services         = 200
)

// Batch builds the traces and metrics of batch number i, stamped now.
func Batch(i int, now time.Time) scenario.Step {
	st := scenario.Step{Time: now, Traces: ptrace.NewTraces(), Metrics: pmetric.NewMetrics()}
	end := pcommon.NewTimestampFromTime(now)
	start := pcommon.NewTimestampFromTime(now.Add(-20 * time.Millisecond))
	first := (i * ServicesPerBatch) % Services
	for s := first; s < first+ServicesPerBatch; s++ {
		name := fmt.Sprintf("bench-%03d", s%Services)
		rs := st.Traces.ResourceSpans().AppendEmpty()
		putResource(rs.Resource().Attributes(), name)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for k := range SpansPerService {
			span := spans.AppendEmpty()
			span.SetTraceID(pcommon.TraceID{byte(i), byte(i >> 8), byte(i >> 16), byte(s), byte(k), 1})
			span.SetSpanID(pcommon.SpanID{byte(i), byte(i >> 8), byte(s), byte(k), 1})
			span.SetName("GET /items/{id}")
			span.SetKind(ptrace.SpanKindServer)
			span.SetStartTimestamp(start)
			span.SetEndTimestamp(end)
			span.Attributes().PutStr("http.request.method", "GET")
			span.Attributes().PutStr("http.route", "/items/{id}")
			span.Attributes().PutInt("http.response.status_code", 200)
			if k == 0 && i%20 == 0 {
				span.Status().SetCode(ptrace.StatusCodeError)
			}
		}
		rm := st.Metrics.ResourceMetrics().AppendEmpty()
		putResource(rm.Resource().Attributes(), name)
		metrics := rm.ScopeMetrics().AppendEmpty().Metrics()
		for k := range PointsPerService {
			m := metrics.AppendEmpty()
			m.SetName(fmt.Sprintf("app.gauge.%d", k))
			if k == 0 {
				m.SetName("process.cpu.utilization")
			}
			dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetTimestamp(end)
			dp.SetDoubleValue(0.25)
		}
	}
	return st
}

func putResource(attrs pcommon.Map, name string) {
	attrs.PutStr(deployevent.AttrServiceName, name)
	attrs.PutStr(deployevent.AttrEnvironment, "bench")
	attrs.PutStr(deployevent.AttrServiceVersion, "v2")
}

// DeploymentsStarted is a started lifecycle event for every other service,
// so the processor tags "during" on half the load.
func DeploymentsStarted(now time.Time) scenario.Step {
	st := scenario.Step{Time: now, Logs: plog.NewLogs()}
	for s := 0; s < Services; s += 2 {
		e := deployevent.Event{
			Service: fmt.Sprintf("bench-%03d", s), Environment: "bench", Version: "v2", PreviousVersion: "v1",
			ID: fmt.Sprintf("bench-%03d-v2", s), State: deployevent.StateStarted, Strategy: deployevent.StrategyRolling,
			Source: "generic", Timestamp: now,
		}
		e.AppendTo(st.Logs, now)
	}
	return st
}
