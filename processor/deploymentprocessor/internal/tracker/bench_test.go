// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// BenchmarkTrackerMemoryPerKey reports the heap held per tracked key (B/key):
// a steady service that reports one version, and a service with a full
// history of finished deployments and one in its post window.
func BenchmarkTrackerMemoryPerKey(b *testing.B) {
	const keys = 10_000
	for _, bc := range []struct {
		name        string
		deployments int
	}{
		{name: "steady", deployments: 0},
		{name: "full_history", deployments: 11},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var perKey float64
			for range b.N {
				perKey = heapPerKey(keys, bc.deployments)
			}
			b.ReportMetric(perKey, "B/key")
		})
	}
}

func heapPerKey(keys, deployments int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	tr := New(Config{
		PostWindow: 30 * time.Minute, MaxDuration: time.Hour, MaxServices: keys,
		IdleTTL: 24 * time.Hour, HistorySize: 10, Inference: true, Settle: 2 * time.Minute,
		Now: func() time.Time { return t0 },
	})
	for i := range keys {
		key := Key{Namespace: "shop", Service: fmt.Sprintf("checkout-service-%05d", i), Environment: "production"}
		tr.Observe(key, "1.42.0", t0)
		for d := range deployments {
			version := fmt.Sprintf("1.42.%d", d+1)
			ev := deployevent.Event{
				Service: key.Service, Namespace: key.Namespace, Environment: key.Environment,
				ID:    deployevent.DeriveID(deployevent.SourceGitHub, key.Service, version),
				State: deployevent.StateStarted, Version: version, Source: deployevent.SourceGitHub,
				Strategy: deployevent.StrategyRolling, Revision: "9f2c1e7a4b3d5c6e8f9a0b1c2d3e4f5a6b7c8d9e",
				Timestamp: t0.Add(time.Duration(d) * time.Minute),
			}
			tr.Apply(ev)
			ev.State = deployevent.StateSucceeded
			tr.Apply(ev)
		}
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tr)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(keys)
}

// BenchmarkObserveLookup is the per-resource cost of the hot path.
func BenchmarkObserveLookup(b *testing.B) {
	tr := New(Config{MaxServices: 100, Inference: true, Settle: 2 * time.Minute, PostWindow: 30 * time.Minute})
	key := Key{Namespace: "shop", Service: "checkout", Environment: "production"}
	tr.Observe(key, "1.42.0", t0)
	tr.Observe(key, "1.43.0", t0)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tr.Observe(key, "1.43.0", t0)
		_ = tr.Lookup(key, "1.43.0", t0)
	}
}

func BenchmarkObserveLookupParallel(b *testing.B) {
	tr := New(Config{MaxServices: 100, Inference: true, Settle: 2 * time.Minute, PostWindow: 30 * time.Minute})
	key := Key{Namespace: "shop", Service: "checkout", Environment: "production"}
	tr.Observe(key, "1.42.0", t0)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Observe(key, "1.42.0", t0)
			_ = tr.Lookup(key, "1.42.0", t0)
		}
	})
}
