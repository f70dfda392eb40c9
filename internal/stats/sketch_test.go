// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"testing"

	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lognormalLatencies returns n latencies in seconds around a 50 ms median.
func lognormalLatencies(rng *rand.Rand, n int, median float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = median * math.Exp(0.8*rng.NormFloat64())
	}
	return out
}

func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[int(math.Ceil(q*float64(len(sorted)-1)))]
}

func TestSketchQuantilesWithinAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := lognormalLatencies(rng, 50000, 0.05)
	s := NewSketch()
	for _, v := range values {
		s.Add(v)
	}
	sort.Float64s(values)
	assert.Equal(t, 50000.0, s.Count())
	for _, q := range []float64{0.5, 0.9, 0.95, 0.99, 0.999} {
		want := exactQuantile(values, q)
		assert.InEpsilon(t, want, s.Quantile(q), DefaultSketchAccuracy+1e-9, "q=%v", q)
	}
	assert.True(t, math.IsNaN(NewSketch().Quantile(0.5)), "an empty sketch has no quantile")
	assert.True(t, math.IsNaN(s.Quantile(1.5)))
}

func TestSketchMergeEqualsAddingAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a, b, all := NewSketch(), NewSketch(), NewSketch()
	for _, v := range lognormalLatencies(rng, 3000, 0.02) {
		a.Add(v)
		all.Add(v)
	}
	for _, v := range lognormalLatencies(rng, 2000, 0.2) {
		b.AddWithCount(v, 2)
		all.AddWithCount(v, 2)
	}
	require.NoError(t, a.Merge(b))
	assert.Equal(t, all.Count(), a.Count())
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		assert.Equal(t, all.Quantile(q), a.Quantile(q), "q=%v", q)
	}
	coarse, err := NewSketchWith(0.05, 64)
	require.NoError(t, err)
	assert.Error(t, a.Merge(coarse), "different accuracies do not merge")
	assert.NoError(t, a.Merge(nil))
}

func TestSketchBinsAreSortedAndCountEverything(t *testing.T) {
	s := NewSketch()
	for _, v := range []float64{-3, -0.5, 0, 0, 0.01, 0.2, 7, 7, 100} {
		s.Add(v)
	}
	s.Add(math.NaN())      // ignored
	s.Add(math.Inf(1))     // ignored
	s.AddWithCount(1, -2)  // ignored
	s.AddWithCount(1e6, 0) // ignored
	bins := s.AppendBins(nil)
	total := 0.0
	for i, b := range bins {
		total += b.Count
		if i > 0 {
			assert.Less(t, bins[i-1].Value, b.Value)
		}
	}
	assert.Equal(t, 9.0, total)
	assert.Equal(t, s.Count(), total)
	assert.InEpsilon(t, -3, bins[0].Value, 0.02)
	assert.Equal(t, Bin{Value: 0, Count: 2}, bins[2])
	assert.InEpsilon(t, 7, bins[len(bins)-2].Value, 0.02)
	assert.Equal(t, 2.0, bins[len(bins)-2].Count)
}

func TestSketchIsBounded(t *testing.T) {
	s := NewSketch()
	// Values over 12 decades: more than the bins can hold (about 4.4), so the lowest ones collapse.
	for i := 0; i < 100000; i++ {
		s.Add(math.Pow(10, -6+12*float64(i%1000)/1000))
	}
	bins := s.AppendBins(nil)
	assert.LessOrEqual(t, len(bins), DefaultSketchBins)
	assert.Equal(t, 100000.0, s.Count())
	// The slow tail stays accurate: the p99.9 is within 2% of 10^(-6+12·0.999).
	assert.InEpsilon(t, math.Pow(10, -6+12*0.999), s.Quantile(0.9995), 0.03)
}

// heapPerItem measures the heap that one item built by make holds, on average over n items.
func heapPerItem(n int, make func() any) float64 {
	keep := make()
	items := []any{keep}[:0]
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		items = append(items, make())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(items)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

func TestSketchMemory(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	values := lognormalLatencies(rng, 2000, 0.05)
	// Worst case: values over a range far wider than the bins, arriving from small to large so
	// that the store grows step by step.
	wide := make([]float64, 400)
	for i := range wide {
		wide[i] = math.Pow(10, -4+8*float64(i)/400)
	}
	for name, data := range map[string][]float64{"latencies": values, "eight decades": wide} {
		perSketch := heapPerItem(500, func() any {
			s := NewSketch()
			for _, v := range data {
				s.Add(v)
			}
			return s
		})
		t.Logf("%s: %.0f bytes per sketch", name, perSketch)
		assert.Less(t, perSketch, 2560.0, "%s: a sketch must stay under 2.5 KiB", name)
	}
}

func TestSketchFromExplicitBuckets(t *testing.T) {
	// OTLP explicit bounds 0.005, 0.01, 0.025, 0.05, 0.1 (seconds): 6 buckets.
	bounds := Float64Slice{0.005, 0.01, 0.025, 0.05, 0.1}
	counts := Uint64Slice{10, 20, 30, 25, 10, 5}
	s, err := SketchFromExplicitBuckets(bounds, counts, math.NaN(), math.NaN())
	require.NoError(t, err)
	assert.Equal(t, 100.0, s.Count())
	bins := s.AppendBins(nil)
	require.Len(t, bins, 6, "one bin (one tie group) per bucket")
	want := []float64{0.0025, math.Sqrt(0.005 * 0.01), math.Sqrt(0.01 * 0.025), math.Sqrt(0.025 * 0.05), math.Sqrt(0.05 * 0.1), 0.1}
	for i, b := range bins {
		assert.InEpsilon(t, want[i], b.Value, 0.021, "bucket %d", i)
		assert.Equal(t, float64(counts[i]), b.Count, "bucket %d", i)
	}
	// The median falls in (0.01, 0.025]: 30 of 60 values are at or below it.
	assert.InEpsilon(t, math.Sqrt(0.01*0.025), s.Quantile(0.5), 0.021)

	// Known min and max place the open-ended buckets.
	withRange, err := SketchFromExplicitBuckets(bounds, counts, 0.004, 0.4)
	require.NoError(t, err)
	rangeBins := withRange.AppendBins(nil)
	assert.InEpsilon(t, math.Sqrt(0.004*0.005), rangeBins[0].Value, 0.021)
	assert.InEpsilon(t, math.Sqrt(0.1*0.4), rangeBins[5].Value, 0.021)

	_, err = SketchFromExplicitBuckets(bounds, Uint64Slice{1, 2}, math.NaN(), math.NaN())
	assert.ErrorContains(t, err, "2 counts for 5 bounds")
	_, err = SketchFromExplicitBuckets(Float64Slice{1, 1}, Uint64Slice{1, 2, 3}, math.NaN(), math.NaN())
	assert.ErrorContains(t, err, "bounds must increase")
	empty, err := SketchFromExplicitBuckets(bounds, Uint64Slice{}, math.NaN(), math.NaN())
	require.NoError(t, err)
	assert.True(t, empty.Empty())
}

func TestSketchFromExponentialBuckets(t *testing.T) {
	// Scale 3: base 2^(1/8). Positive bucket index i covers (2^(i/8), 2^((i+1)/8)].
	positive := ExponentialBuckets{Offset: -60, Counts: Uint64Slice{4, 0, 6}}
	negative := ExponentialBuckets{Offset: 0, Counts: Uint64Slice{3}}
	s, err := SketchFromExponentialBuckets(3, 2, positive, negative)
	require.NoError(t, err)
	assert.Equal(t, 15.0, s.Count())
	bins := s.AppendBins(nil)
	require.Len(t, bins, 4)
	assert.InEpsilon(t, -math.Exp2(0.5/8), bins[0].Value, 0.021)
	assert.Equal(t, 3.0, bins[0].Count)
	assert.Equal(t, Bin{Value: 0, Count: 2}, bins[1])
	assert.InEpsilon(t, math.Exp2(-59.5/8), bins[2].Value, 0.021)
	assert.Equal(t, 4.0, bins[2].Count)
	assert.InEpsilon(t, math.Exp2(-57.5/8), bins[3].Value, 0.021)
	assert.Equal(t, 6.0, bins[3].Count)

	_, err = SketchFromExponentialBuckets(21, 0, ExponentialBuckets{}, ExponentialBuckets{})
	assert.Error(t, err)
}

func TestSketchBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	s := NewSketch()
	for _, v := range lognormalLatencies(rng, 5000, 0.05) {
		s.Add(v)
	}
	s.Add(0)
	s.Add(-1)
	data, err := s.MarshalBinary()
	require.NoError(t, err)
	var restored Sketch
	require.NoError(t, restored.UnmarshalBinary(data))
	assert.Equal(t, s.AppendBins(nil), restored.AppendBins(nil))
	assert.Equal(t, s.Accuracy(), restored.Accuracy())
	assert.Equal(t, s.MaxBins(), restored.MaxBins())
	require.NoError(t, restored.Merge(s), "a restored sketch merges with a live one")

	assert.Error(t, restored.UnmarshalBinary(data[:5]))
	assert.Error(t, restored.UnmarshalBinary(append([]byte{9}, data[1:]...)))
}

// State saved before the cubic mapping (encoding version 1, logarithmic
// bins) is read back re-binned: its quantiles stay within the accuracy of
// both mappings.
func TestSketchReadsLogarithmicEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	m, err := mapping.NewLogarithmicMapping(DefaultSketchAccuracy)
	require.NoError(t, err)
	old, err := newSketch(m, DefaultSketchAccuracy, DefaultSketchBins)
	require.NoError(t, err)
	values := lognormalLatencies(rng, 5000, 0.05)
	for _, v := range values {
		old.Add(v)
	}
	old.Add(0)
	old.Add(-0.5)
	data, err := old.MarshalBinary()
	require.NoError(t, err)
	data[0] = sketchVersionLogarithmic

	var restored Sketch
	require.NoError(t, restored.UnmarshalBinary(data))
	assert.InDelta(t, old.Count(), restored.Count(), 1e-9)
	for _, q := range []float64{0.05, 0.25, 0.5, 0.9, 0.99} {
		want := old.Quantile(q)
		assert.InEpsilon(t, want, restored.Quantile(q), 2.1*DefaultSketchAccuracy, "q=%v", q)
	}
	assert.Equal(t, -0.5, math.Round(restored.Quantile(0)*100)/100, "negative values survive")
	next, err := restored.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, byte(sketchVersion), next[0], "written back in the current encoding")
}

func TestMannWhitneyOnSketches(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	build := func(n int, median float64) *Sketch {
		s := NewSketch()
		for _, v := range lognormalLatencies(rng, n, median) {
			s.Add(v)
		}
		return s
	}
	o := TestOptions{Alpha: 0.01, MinSamples: 100, MinEffect: 0.1, Alternative: Greater}

	same := MannWhitney(build(5000, 0.05), build(5000, 0.05), o)
	assert.Equal(t, VerdictPass, same.Verdict, "p=%v", same.PValue)

	// Median 50 ms → 80 ms with σ_log 0.8: P(C > B) ≈ Φ(ln1.6/(0.8√2)) ≈ 0.66, effect ≈ 0.32.
	slower := MannWhitney(build(5000, 0.05), build(2000, 0.08), o)
	assert.Equal(t, VerdictFail, slower.Verdict)
	assert.InDelta(t, 0.32, slower.EffectSize, 0.04)
	assert.InDelta(t, 1.6, slower.Ratio, 0.1)

	// 2% slower at N = 200 000 each: significant, but the effect (≈ 0.014) is within tolerance.
	slight := MannWhitney(build(200000, 0.05), build(200000, 0.051), o)
	assert.Less(t, slight.PValue, o.Alpha)
	assert.Equal(t, VerdictPass, slight.Verdict)

	few := MannWhitney(build(5000, 0.05), build(50, 0.5), o)
	assert.Equal(t, VerdictInconclusive, few.Verdict, "50 candidate values are under min_samples")
}
