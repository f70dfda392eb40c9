// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStateEvictsLeastRecentlyUpdated(t *testing.T) {
	cfg := createDefaultConfig().(*Config).State
	cfg.MaxServices = 2
	cfg.MaxAlerts = 2
	s := newState(cfg)
	a := serviceKey{Service: "a", Environment: "production"}
	b := serviceKey{Service: "b", Environment: "production"}
	c := serviceKey{Service: "c", Environment: "production"}
	s.view(a, t0)
	s.view(b, t0.Add(time.Second))
	s.view(a, t0.Add(2*time.Second)) // a updated after b
	s.view(c, t0.Add(3*time.Second))
	assert.Contains(t, s.services, a, "an updated view is kept")
	assert.NotContains(t, s.services, b, "the least recently updated view made room")
	assert.Equal(t, int64(1), s.dropped[dropKey{"service", "limit"}])

	for i := range 3 {
		s.rememberResolved(fmt.Sprintf("fp-%d", i), t0.Add(time.Duration(i)*time.Second))
	}
	assert.Len(t, s.resolved, 2)
	assert.NotContains(t, s.resolved, "fp-0")
	assert.Equal(t, int64(1), s.dropped[dropKey{"resolved", "limit"}])

	s.sweep(t0.Add(cfg.AlertTTL + time.Hour))
	assert.Empty(t, s.resolved, "remembered resolves past alert_ttl are dropped")
	assert.Equal(t, int64(2), s.dropped[dropKey{"resolved", "ttl"}])
	assert.Zero(t, s.resolvedOrder.Len(), "the recency order forgets what the map forgets")
	assert.Equal(t, len(s.services), s.serviceOrder.Len())
}

func TestStateIndicatorRefusalCounted(t *testing.T) {
	cfg := createDefaultConfig().(*Config).State
	cfg.MaxIndicators = 1
	s := newState(cfg)
	s.applyIndicator(checkoutKey, "error_rate", 1, t0, false, t0)
	s.applyIndicator(checkoutKey, "latency_p99", 1, t0, false, t0)
	require.Len(t, s.services[checkoutKey].Indicators, 1)
	assert.Equal(t, int64(1), s.dropped[dropKey{"indicator", "limit"}])
}

// BenchmarkViewAtLimit inserts new services into a full state: each insert
// evicts the least recently updated view, so ns/op does not grow with the limit.
func BenchmarkViewAtLimit(b *testing.B) {
	for _, limit := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			cfg := createDefaultConfig().(*Config).State
			cfg.MaxServices = limit
			s := newState(cfg)
			keys := make([]serviceKey, limit+b.N)
			for i := range keys {
				keys[i] = serviceKey{Service: fmt.Sprintf("svc-%d", i), Environment: "production"}
			}
			for i := range limit {
				s.view(keys[i], t0)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s.view(keys[limit+i], t0)
				if len(s.dropped) > 0 {
					clear(s.dropped)
				}
			}
		})
	}
}
