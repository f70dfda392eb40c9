// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkBaselineObserve(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	base := NewBaseline(DefaultBaselineConfig())
	for i := range 3000 {
		base.Observe(minute(i), 100+rng.NormFloat64())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		base.Observe(minute(3000+i), 100+float64(i%7))
	}
}

func BenchmarkMannWhitney(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	baseline, candidate := NewSketch(), NewSketch()
	for _, v := range lognormalLatencies(rng, 100000, 0.05) {
		baseline.Add(v)
	}
	for _, v := range lognormalLatencies(rng, 10000, 0.06) {
		candidate.Add(v)
	}
	opts := DefaultTestOptions()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		MannWhitney(baseline, candidate, opts)
	}
}
