// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Batches of the benchmarks: 10 resources × 10 scopes × 100 data.
const (
	benchResources = 10
	benchScopes    = 10
	benchPerScope  = 100
	benchData      = benchResources * benchScopes * benchPerScope
)

// benchServices: checkout is mid-deployment (two versions, cohorts), the
// others are steady.
var benchServices = func() []service {
	out := []service{checkoutV1, checkoutV2, checkoutV1, checkoutV2}
	for i := len(out); i < benchResources; i++ {
		out = append(out, service{name: fmt.Sprintf("svc-%d", i), namespace: "shop", environment: "prod", version: "2.0.0"})
	}
	return out
}()

func putBenchResource(m pcommon.Map, s service, i int) {
	s.putResource(m)
	m.PutStr("host.name", fmt.Sprintf("ip-10-0-0-%d.ec2.internal", i))
	m.PutStr("k8s.pod.name", fmt.Sprintf("%s-7d9f8c6b5-%05d", s.name, i))
	m.PutStr("k8s.namespace.name", "shop")
	m.PutStr("telemetry.sdk.language", "go")
	m.PutStr("telemetry.sdk.name", "opentelemetry")
	m.PutStr("telemetry.sdk.version", "1.47.0")
	m.PutInt("process.pid", int64(1000+i))
}

func putBenchAttrs(m pcommon.Map, k int) {
	m.PutStr("http.request.method", "POST")
	m.PutStr("url.path", "/api/v1/checkout")
	m.PutInt("http.response.status_code", 200)
	m.PutStr("server.address", "checkout.shop.svc.cluster.local")
	m.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
	m.PutInt("net.peer.port", int64(40000+k))
}

func benchTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	for i, s := range benchServices {
		rs := td.ResourceSpans().AppendEmpty()
		putBenchResource(rs.Resource().Attributes(), s, i)
		for j := range benchScopes {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("io.opentelemetry.contrib.%d", j))
			for k := range benchPerScope {
				span := ss.Spans().AppendEmpty()
				span.SetName("POST /api/v1/checkout")
				span.SetTraceID(pcommon.TraceID{byte(i), byte(j), byte(k), 1})
				span.SetSpanID(pcommon.SpanID{byte(i), byte(j), byte(k), 2})
				span.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
				span.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Millisecond)))
				putBenchAttrs(span.Attributes(), k)
			}
		}
	}
	return td
}

func benchMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	for i, s := range benchServices {
		rm := md.ResourceMetrics().AppendEmpty()
		putBenchResource(rm.Resource().Attributes(), s, i)
		for j := range benchScopes {
			sm := rm.ScopeMetrics().AppendEmpty()
			sm.Scope().SetName(fmt.Sprintf("io.opentelemetry.contrib.%d", j))
			// 10 metrics × 10 points = 100 points per scope.
			for m := range 10 {
				metric := sm.Metrics().AppendEmpty()
				metric.SetName(fmt.Sprintf("http.server.request.count.%d", m))
				sum := metric.SetEmptySum()
				sum.SetIsMonotonic(true)
				sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for k := range 10 {
					dp := sum.DataPoints().AppendEmpty()
					dp.SetIntValue(int64(k))
					dp.SetTimestamp(pcommon.NewTimestampFromTime(t0))
					putBenchAttrs(dp.Attributes(), k)
				}
			}
		}
	}
	return md
}

func benchLogs() plog.Logs {
	ld := plog.NewLogs()
	for i, s := range benchServices {
		rl := ld.ResourceLogs().AppendEmpty()
		putBenchResource(rl.Resource().Attributes(), s, i)
		for j := range benchScopes {
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(fmt.Sprintf("io.opentelemetry.contrib.%d", j))
			for k := range benchPerScope {
				lr := sl.LogRecords().AppendEmpty()
				lr.SetTimestamp(pcommon.NewTimestampFromTime(t0))
				lr.Body().SetStr("order placed")
				putBenchAttrs(lr.Attributes(), k)
			}
		}
	}
	return ld
}

// benchProcessor is a processor with checkout mid-deployment.
// benchProcessor is a processor that tags (health off: BenchmarkHealthTraces
// measures the health engine).
func benchProcessor(b *testing.B, level map[string]string) *deploymentProcessor {
	ps := newPipelines(b, pipelineOptions{edit: func(c *Config) {
		c.Tagging.Traces.Level = levelOr(level["traces"], levelResource)
		c.Tagging.Metrics.Level = levelOr(level["metrics"], levelResource)
		c.Tagging.Logs.Level = levelOr(level["logs"], levelResource)
		c.Health.Enabled = false
	}})
	ps.consumeEvents(b, deployEvent("rollout-1", deployevent.StateStarted, 0))
	return ps.proc
}

func levelOr(level, fallback string) string {
	if level == "" {
		return fallback
	}
	return level
}

// Each benchmark tags a batch of 10 000 data in two ways. "steady" re-tags the
// same batch: the attributes exist, so this is the processor's own cost.
// "fresh" strips the written attributes (timer stopped) before each run, so
// every run adds them again as for new data; what that allocates is pdata's
// (one value per attribute added). allocs/op divided by 10 000 is
// allocations per datum.

func BenchmarkTagTraces(b *testing.B) {
	for _, level := range []string{levelResource, levelSpan} {
		for _, fresh := range []bool{false, true} {
			b.Run(benchName(level, fresh), func(b *testing.B) {
				p := benchProcessor(b, map[string]string{"traces": level})
				runBench(b, benchTraces(), p.processTraces, stripTraces, fresh)
			})
		}
	}
}

func BenchmarkTagMetrics(b *testing.B) {
	for _, level := range []string{levelResource, levelDatapoint} {
		for _, fresh := range []bool{false, true} {
			b.Run(benchName(level, fresh), func(b *testing.B) {
				p := benchProcessor(b, map[string]string{"metrics": level})
				runBench(b, benchMetrics(), p.processMetrics, stripMetrics, fresh)
			})
		}
	}
}

func BenchmarkTagLogs(b *testing.B) {
	for _, level := range []string{levelResource, levelRecord} {
		for _, fresh := range []bool{false, true} {
			b.Run(benchName(level, fresh), func(b *testing.B) {
				p := benchProcessor(b, map[string]string{"logs": level})
				runBench(b, benchLogs(), p.processLogs, stripLogs, fresh)
			})
		}
	}
}

func benchName(level string, fresh bool) string {
	if fresh {
		return level + "/fresh"
	}
	return level + "/steady"
}

func runBench[T any](b *testing.B, batch T, process func(context.Context, T) (T, error), strip func(T), fresh bool) {
	ctx := context.Background()
	_, _ = process(ctx, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if fresh {
			b.StopTimer()
			strip(batch)
			b.StartTimer()
		}
		_, _ = process(ctx, batch)
	}
	reportPerDatum(b)
}

func stripTags(m pcommon.Map) {
	m.Remove(deployevent.AttrDeploymentPhase)
	m.Remove(deployevent.AttrDeploymentID)
	m.Remove(deployevent.AttrDeploymentCohort)
}

func stripTraces(td ptrace.Traces) {
	for _, rs := range td.ResourceSpans().All() {
		stripTags(rs.Resource().Attributes())
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				stripTags(span.Attributes())
			}
		}
	}
}

func stripMetrics(md pmetric.Metrics) {
	for _, rm := range md.ResourceMetrics().All() {
		stripTags(rm.Resource().Attributes())
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				for _, dp := range m.Sum().DataPoints().All() {
					stripTags(dp.Attributes())
				}
			}
		}
	}
}

func stripLogs(ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		stripTags(rl.Resource().Attributes())
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				stripTags(lr.Attributes())
			}
		}
	}
}

func reportPerDatum(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchData, "ns/datum")
}

// TestTaggingAllocatesNothingPerDatum is the benchmark's claim as a test:
// re-tagging a batch whose attributes exist allocates nothing at all.
func TestTaggingAllocatesNothingPerDatum(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, 0))
	p := ps.proc
	ctx := context.Background()
	td, md, ld := benchTraces(), benchMetrics(), benchLogs()
	_, _ = p.processTraces(ctx, td)
	_, _ = p.processMetrics(ctx, md)
	_, _ = p.processLogs(ctx, ld)
	allocs := testing.AllocsPerRun(20, func() {
		_, _ = p.processTraces(ctx, td)
		_, _ = p.processMetrics(ctx, md)
		_, _ = p.processLogs(ctx, ld)
	})
	if allocs != 0 {
		t.Fatalf("tagging allocated %v times per batch, want 0", allocs)
	}
}
