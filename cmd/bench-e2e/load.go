// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

// The load's shape: each request carries servicesPerBatch services with
// spansPerService spans each, and with it a metrics request of
// pointsPerService points per service; batches cycle over services.
const (
	servicesPerBatch = 50
	spansPerService  = 10
	pointsPerService = 4
	spansPerBatch    = servicesPerBatch * spansPerService
	services         = 200
)

// batchFor builds the traces and metrics of batch number i, stamped now.
func batchFor(i int, now time.Time) scenario.Step {
	st := scenario.Step{Time: now, Traces: ptrace.NewTraces(), Metrics: pmetric.NewMetrics()}
	end := pcommon.NewTimestampFromTime(now)
	start := pcommon.NewTimestampFromTime(now.Add(-20 * time.Millisecond))
	first := (i * servicesPerBatch) % services
	for s := first; s < first+servicesPerBatch; s++ {
		name := fmt.Sprintf("bench-%03d", s%services)
		rs := st.Traces.ResourceSpans().AppendEmpty()
		putResource(rs.Resource().Attributes(), name)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for k := range spansPerService {
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
		for k := range pointsPerService {
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

// deploymentsStarted is a started lifecycle event for every other service,
// so the processor tags "during" on half the load.
func deploymentsStarted(now time.Time) scenario.Step {
	st := scenario.Step{Time: now, Logs: plog.NewLogs()}
	for s := 0; s < services; s += 2 {
		e := deployevent.Event{
			Service: fmt.Sprintf("bench-%03d", s), Environment: "bench", Version: "v2", PreviousVersion: "v1",
			ID: fmt.Sprintf("bench-%03d-v2", s), State: deployevent.StateStarted, Strategy: deployevent.StrategyRolling,
			Source: "generic", Timestamp: now,
		}
		e.AppendTo(st.Logs, now)
	}
	return st
}

// offered is what one load step sent.
type offered struct {
	spans, points int64
	errors        int64
	slots, missed int64 // send slots, and those dropped because every worker was busy: backlog
	elapsed       time.Duration
}

// kept says the generator kept its pace: at most 1 % of the slots missed
// (a scheduling hiccup on a shared machine is not a backlog).
func (o *offered) kept() bool { return o.missed*100 <= o.slots }

// generate sends at rate spans/s for d with workers concurrent requests
// (each waits for the collector's answer); slots no worker can take are missed.
func generate(ctx context.Context, sender *otlpsend.Sender, rate float64, d time.Duration, workers int) offered {
	interval := time.Duration(float64(time.Second) * spansPerBatch / rate)
	slots := make(chan int, workers)
	var out offered
	var wg sync.WaitGroup
	var spans, points, errs atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range slots {
				st := batchFor(i, time.Now())
				p := int64(st.Metrics.DataPointCount())
				if err := sender.Send(ctx, st); err != nil {
					errs.Add(1)
					continue
				}
				spans.Add(spansPerBatch)
				points.Add(p)
			}
		}()
	}
	begin := time.Now()
	n := 0
	for due := begin; time.Since(begin) < d && ctx.Err() == nil; due = due.Add(interval) {
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case slots <- n:
		default:
			out.missed++
		}
		n++
	}
	close(slots)
	wg.Wait()
	out.elapsed = time.Since(begin)
	out.slots = int64(n)
	out.spans, out.points, out.errors = spans.Load(), points.Load(), errs.Load()
	return out
}
