// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// The metrics path (health and indicator points into the gate state) is the
// exporter's only per-datum path; in steady state it allocates nothing.
func BenchmarkConsumeHealthMetrics(b *testing.B) {
	cfg := testConfig(nil)
	c, err := newCore(cfg, benchSettings())
	require.NoError(b, err)
	b.Cleanup(func() { require.NoError(b, c.Shutdown(context.Background())) })
	md := healthMetrics(testHealth{
		score: 90, verdict: deployevent.VerdictHealthy, recommendation: deployevent.RecommendNone, phase: deployevent.PhaseDuring, at: t0,
		indicators: map[string][2]float64{"error_rate": {0.01, 0.01}, "latency_p99": {210, 200}},
	})
	ctx := context.Background()
	require.NoError(b, c.consumeMetrics(ctx, md))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_ = c.consumeMetrics(ctx, md)
	}
}

func TestConsumeHealthMetricsAllocatesNothing(t *testing.T) {
	c, err := newCore(testConfig(nil), benchSettings())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Shutdown(context.Background())) })
	c.now = func() time.Time { return t0 }
	md := healthMetrics(testHealth{
		score: 90, verdict: deployevent.VerdictHealthy, recommendation: deployevent.RecommendNone, phase: deployevent.PhaseDuring, at: t0,
		indicators: map[string][2]float64{"error_rate": {0.01, 0.01}},
	})
	for range defaultSparklinePoints + 1 { // fill the rings
		require.NoError(t, c.consumeMetrics(context.Background(), md))
	}
	allocs := testing.AllocsPerRun(100, func() { _ = c.consumeMetrics(context.Background(), md) })
	require.Zero(t, allocs)
}
