// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package detector

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"

	"github.com/deploylens/deploylens/internal/stats"
)

// series is what the processor keeps per (key, indicator): a detector, and for latency a sketch.
type seriesState struct {
	detector *Detector
	sketch   *stats.Sketch
}

// newWarmSeries builds one series and feeds it enough data to reach its steady-state size.
func newWarmSeries(rng *rand.Rand) seriesState {
	s := seriesState{detector: New(DefaultConfig()), sketch: stats.NewSketch()}
	for i := range 300 {
		v := 0.05 * (1 + 0.3*rng.NormFloat64())
		s.detector.Update(epoch.Add(time.Duration(i)*time.Minute), v)
		s.sketch.Add(v)
	}
	for i := range 1000 { // latencies over five decades, to fill the sketch's bins
		s.sketch.Add(1e-4 * float64(1+i*i/10))
	}
	return s
}

// bytesPerSeries measures the heap one warm series holds.
func bytesPerSeries(n int) float64 {
	rng := rand.New(rand.NewPCG(1, 2))
	keep := make([]seriesState, 0, n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		keep = append(keep, newWarmSeries(rng))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	perSeries := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	return perSeries
}

func TestMemoryPerSeries(t *testing.T) {
	// The detector is one flat value: no slices, no maps, nothing that grows.
	assert.Less(t, unsafe.Sizeof(Detector{}), uintptr(1536))
	perSeries := bytesPerSeries(2000)
	t.Logf("detector %d bytes, detector + sketch %.0f bytes per series", unsafe.Sizeof(Detector{}), perSeries)
	// The budget: 10 000 keys × 6 indicators under 250 MiB is about 4.3 KiB per series.
	assert.Less(t, perSeries, 4096.0)
}

func BenchmarkUpdate(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	d := New(DefaultConfig())
	values := make([]float64, 4096)
	for i := range values {
		values[i] = 100 + 5*rng.NormFloat64()
	}
	for i := range 3000 { // steady state: warm, seasonal profile learning
		d.Update(epoch.Add(time.Duration(i)*time.Minute), values[i%len(values)])
	}
	ts := epoch.Add(3000 * time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		d.Update(ts.Add(time.Duration(i)*time.Minute), values[i%len(values)])
	}
}

func BenchmarkSketchAdd(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	s := stats.NewSketch()
	values := make([]float64, 4096)
	for i := range values {
		values[i] = 0.05 * (1 + 0.5*rng.ExpFloat64())
	}
	for _, v := range values {
		s.Add(v)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.Add(values[i%len(values)])
	}
}

func BenchmarkSnapshot(b *testing.B) {
	d := New(DefaultConfig())
	rng := rand.New(rand.NewPCG(1, 1))
	feed(d, gaussian(100, 5), rng, 0, 2000)
	buf := make([]byte, 0, SnapshotSize)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		buf = d.AppendSnapshot(buf[:0])
	}
}

func BenchmarkMemoryPerSeries(b *testing.B) {
	b.ReportMetric(bytesPerSeries(1000), "bytes/series")
	b.ReportMetric(float64(unsafe.Sizeof(Detector{})), "bytes/detector")
}
