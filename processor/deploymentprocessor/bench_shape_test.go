// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/deploylens/deploylens/internal/loadtest"
)

// batchEvery paces cmd/bench-e2e's load at its default 10 000 spans/s.
const batchEvery = time.Second * loadtest.SpansPerBatch / 10000

// BenchmarkE2EShape is the default configuration on cmd/bench-e2e's load
// (loadtest.Batch, half the services deploying), in data time: each op is
// one traces and one metrics request, 50 ms after the one before, so
// intervals close and services are evaluated as in the real-time bench.
// Each batch is built fresh with the timer stopped, as the collector decodes
// a fresh one. ns/span is the processor's cost per span of that load, its
// metrics included.
func BenchmarkE2EShape(b *testing.B) {
	ps := newPipelines(b, pipelineOptions{})
	ctx := context.Background()
	at := t0
	_, _ = ps.proc.processLogs(ctx, loadtest.DeploymentsStarted(at).Logs)
	run := func(i int) {
		at = at.Add(batchEvery)
		ps.clock.Set(at)
		st := loadtest.Batch(i, at)
		b.StartTimer()
		_, _ = ps.proc.processTraces(ctx, st.Traces)
		_, _ = ps.proc.processMetrics(ctx, st.Metrics)
		b.StopTimer()
	}
	// A minute of warm-up: every service tracked, baselines learning.
	b.StopTimer()
	for i := range int(time.Minute / batchEvery) {
		run(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		run(i)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/loadtest.SpansPerBatch, "ns/span")
}
