// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// Sketch defaults: 2% relative accuracy on quantiles, and at most 256 bins for positive values,
// which spans a factor of (1.02/0.98)^256 ≈ 28 000 between the smallest and the largest value
// kept apart (0.4 ms under a 10 s timeout); below that the lowest bins merge (slow tails matter,
// fast ones less). Negative values, which latencies do not have, get a quarter of the bins.
// A default sketch holds about 2.3 KiB.
const (
	DefaultSketchAccuracy = 0.02
	DefaultSketchBins     = 256
)

// Sketch is a mergeable, bounded summary of a distribution (latencies), never a list of
// samples: a DDSketch (Masson, Rim & Lee, VLDB 2019) with a cubically interpolated index
// mapping and collapsing-lowest dense stores. The cubic mapping keeps the relative accuracy
// of the logarithmic one with about 1 % more bins, and computes a bin from the float's
// exponent and mantissa instead of a math.Log per value: the sketch is the processor's
// hottest path (every span's latency, every gauge point). Quantiles are within the relative
// accuracy; bins are the ties of the rank tests. Sketches merge only with sketches of the same accuracy.
// A Sketch is not safe for concurrent use.
type Sketch struct {
	dd       *ddsketch.DDSketch
	accuracy float64
	maxBins  int
}

// mappings shares one immutable index mapping per accuracy between all sketches.
var mappings sync.Map // float64 → *mapping.CubicallyInterpolatedMapping

func mappingFor(accuracy float64) (mapping.IndexMapping, error) {
	if m, ok := mappings.Load(accuracy); ok {
		return m.(mapping.IndexMapping), nil
	}
	m, err := mapping.NewCubicallyInterpolatedMapping(accuracy)
	if err != nil {
		return nil, err
	}
	actual, _ := mappings.LoadOrStore(accuracy, m)
	return actual.(mapping.IndexMapping), nil
}

// NewSketch returns an empty sketch with the default accuracy and bound.
func NewSketch() *Sketch {
	s, err := NewSketchWith(DefaultSketchAccuracy, DefaultSketchBins)
	if err != nil {
		panic(err) // the defaults are valid
	}
	return s
}

// NewSketchWith returns an empty sketch with the relative accuracy in (0, 1) and at most
// maxBins bins for positive values, a quarter of that for negative ones.
func NewSketchWith(accuracy float64, maxBins int) (*Sketch, error) {
	m, err := mappingFor(accuracy)
	if err != nil {
		return nil, err
	}
	return newSketch(m, accuracy, maxBins)
}

func newSketch(m mapping.IndexMapping, accuracy float64, maxBins int) (*Sketch, error) {
	if !(accuracy > 0 && accuracy < 1) {
		return nil, fmt.Errorf("stats: sketch accuracy must be in (0, 1), got %v", accuracy)
	}
	if maxBins < 8 || maxBins > 1<<16 {
		return nil, fmt.Errorf("stats: sketch max bins must be in [8, 65536], got %d", maxBins)
	}
	positive := store.NewCollapsingLowestDenseStore(maxBins)
	// Size the positive bins once, at their bound: growing them step by step would leave the
	// slice with up to twice the capacity (append's growth) and garbage behind.
	positive.AddWithCount(0, 1)
	positive.AddWithCount(maxBins, 1)
	positive.Clear()
	dd := ddsketch.NewDDSketch(m, positive, store.NewCollapsingLowestDenseStore(max(maxBins/4, 8)))
	return &Sketch{dd: dd, accuracy: accuracy, maxBins: maxBins}, nil
}

// Accuracy is the relative accuracy of quantiles.
func (s *Sketch) Accuracy() float64 { return s.accuracy }

// MaxBins is the bound on bins of positive values (negative values get a quarter).
func (s *Sketch) MaxBins() int { return s.maxBins }

// Add records one value; NaN and infinities are ignored.
func (s *Sketch) Add(value float64) { s.AddWithCount(value, 1) }

// AddWithCount records value count times (count may be fractional); NaN, infinities and
// non-positive counts are ignored.
func (s *Sketch) AddWithCount(value, count float64) {
	if !(count > 0) || math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	// Values beyond the mapping's range are clamped rather than lost: a latency of 1e300 is "very slow".
	if limit := s.dd.MaxIndexableValue(); value > limit {
		value = limit
	} else if value < -limit {
		value = -limit
	}
	_ = s.dd.AddWithCount(value, count) // cannot fail: the value is finite and within range, the count positive
}

// Merge adds other's values into s; both must have the same accuracy.
func (s *Sketch) Merge(other *Sketch) error {
	if other == nil {
		return nil
	}
	if other.accuracy != s.accuracy {
		return fmt.Errorf("stats: cannot merge sketches of accuracy %v and %v", s.accuracy, other.accuracy)
	}
	return s.dd.MergeWith(other.dd)
}

// Count is the number of values recorded.
func (s *Sketch) Count() float64 { return s.dd.GetCount() }

// Empty tells whether nothing was recorded.
func (s *Sketch) Empty() bool { return s.dd.IsEmpty() }

// Quantile returns the q-quantile (q in [0, 1]), or NaN when the sketch is empty or q is invalid.
func (s *Sketch) Quantile(q float64) float64 {
	v, err := s.dd.GetValueAtQuantile(q)
	if err != nil {
		return math.NaN()
	}
	return v
}

// Reset empties the sketch, keeping its memory.
func (s *Sketch) Reset() { s.dd.Clear() }

// Copy returns an independent copy.
func (s *Sketch) Copy() *Sketch {
	return &Sketch{dd: s.dd.Copy(), accuracy: s.accuracy, maxBins: s.maxBins}
}

// Bin is one bin of a sketch: a representative value and how many values fell in it.
type Bin struct {
	Value float64
	Count float64
}

// AppendBins appends the non-empty bins in increasing order of value to dst and returns it.
// Values that share a bin are indistinguishable: rank tests treat them as ties.
func (s *Sketch) AppendBins(dst []Bin) []Bin {
	start := len(dst)
	m := s.dd.IndexMapping
	s.dd.GetNegativeValueStore().ForEach(func(index int, count float64) bool {
		if count > 0 {
			dst = append(dst, Bin{Value: -m.Value(index), Count: count})
		}
		return false
	})
	// Negative bins come in increasing magnitude: reverse them into increasing value.
	for i, j := start, len(dst)-1; i < j; i, j = i+1, j-1 {
		dst[i], dst[j] = dst[j], dst[i]
	}
	if z := s.dd.GetZeroCount(); z > 0 {
		dst = append(dst, Bin{Value: 0, Count: z})
	}
	s.dd.GetPositiveValueStore().ForEach(func(index int, count float64) bool {
		if count > 0 {
			dst = append(dst, Bin{Value: m.Value(index), Count: count})
		}
		return false
	})
	if !sort.SliceIsSorted(dst[start:], func(i, j int) bool { return dst[start+i].Value < dst[start+j].Value }) {
		// Stores iterate in index order today; keep the promise even if that changes.
		sort.Slice(dst[start:], func(i, j int) bool { return dst[start+i].Value < dst[start+j].Value })
	}
	return dst
}

// Float64s is a read-only list of float64, such as pcommon.Float64Slice or a Float64Slice.
type Float64s interface {
	Len() int
	At(i int) float64
}

// Uint64s is a read-only list of uint64, such as pcommon.UInt64Slice or a Uint64Slice.
type Uint64s interface {
	Len() int
	At(i int) uint64
}

// Float64Slice adapts a []float64 to Float64s.
type Float64Slice []float64

// Len is the number of elements.
func (f Float64Slice) Len() int { return len(f) }

// At returns element i.
func (f Float64Slice) At(i int) float64 { return f[i] }

// Uint64Slice adapts a []uint64 to Uint64s.
type Uint64Slice []uint64

// Len is the number of elements.
func (u Uint64Slice) Len() int { return len(u) }

// At returns element i.
func (u Uint64Slice) At(i int) uint64 { return u[i] }

var errBuckets = errors.New("stats: histogram buckets")

// AddExplicitBuckets adds an OTLP explicit-bounds histogram: counts[i] values in
// (bounds[i-1], bounds[i]], with counts[0] below bounds[0] and the last count above the last
// bound, so len(counts) must be len(bounds)+1 (or 0, an empty histogram). Each bucket's count
// goes to one representative value, the geometric middle of its bounds (the arithmetic one
// when a bound is not positive), so a bucket stays one tie group. The open ends use min and
// max when known (pass NaN when not), else the first bucket is [0, bounds[0]] for a positive
// first bound and the last bucket sits at the last bound.
func (s *Sketch) AddExplicitBuckets(bounds Float64s, counts Uint64s, minValue, maxValue float64) error {
	n := bounds.Len()
	if counts.Len() == 0 {
		return nil
	}
	if counts.Len() != n+1 {
		return fmt.Errorf("%w: %d counts for %d bounds, want %d", errBuckets, counts.Len(), n, n+1)
	}
	for i := 1; i < n; i++ {
		if !(bounds.At(i) > bounds.At(i-1)) {
			return fmt.Errorf("%w: bounds must increase, got %v after %v", errBuckets, bounds.At(i), bounds.At(i-1))
		}
	}
	for i := 0; i <= n; i++ {
		c := counts.At(i)
		if c == 0 {
			continue
		}
		var lower, upper float64
		switch {
		case n == 0: // a single bucket holding everything
			lower, upper = minValue, maxValue
			if math.IsNaN(lower) || math.IsNaN(upper) {
				lower, upper = 0, 0
			}
		case i == 0:
			upper = bounds.At(0)
			lower = minValue
			if math.IsNaN(lower) || lower > upper {
				lower = math.Min(0, upper)
			}
		case i == n:
			lower = bounds.At(n - 1)
			upper = maxValue
			if math.IsNaN(upper) || upper < lower {
				upper = lower
			}
		default:
			lower, upper = bounds.At(i-1), bounds.At(i)
		}
		s.AddWithCount(middle(lower, upper), float64(c))
	}
	return nil
}

// middle is the geometric middle of a positive interval (uniform in relative error, as the
// sketch is), else the arithmetic one.
func middle(lower, upper float64) float64 {
	if lower > 0 && upper > 0 {
		return math.Sqrt(lower * upper)
	}
	return (lower + upper) / 2
}

// ExponentialBuckets is one sign's buckets of an OTLP exponential histogram: Counts[k] values
// in (base^(Offset+k), base^(Offset+k+1)] of magnitude.
type ExponentialBuckets struct {
	Offset int32
	Counts Uint64s
}

// AddExponentialBuckets adds an OTLP exponential histogram of the given scale (base =
// 2^(2^-scale)); each bucket's count goes to its geometric middle, base^(index+1/2), and
// zeroCount to 0. A nil Counts means no bucket of that sign.
func (s *Sketch) AddExponentialBuckets(scale int32, zeroCount uint64, positive, negative ExponentialBuckets) error {
	if scale < -10 || scale > 20 {
		return fmt.Errorf("%w: exponential scale %d outside [-10, 20]", errBuckets, scale)
	}
	if zeroCount > 0 {
		s.AddWithCount(0, float64(zeroCount))
	}
	// log2 of the base: a bucket index i covers magnitudes 2^(i·step) .. 2^((i+1)·step).
	step := math.Ldexp(1, -int(scale))
	for _, side := range [2]struct {
		buckets ExponentialBuckets
		sign    float64
	}{{positive, 1}, {negative, -1}} {
		if side.buckets.Counts == nil {
			continue
		}
		for k := 0; k < side.buckets.Counts.Len(); k++ {
			c := side.buckets.Counts.At(k)
			if c == 0 {
				continue
			}
			index := float64(side.buckets.Offset) + float64(k)
			s.AddWithCount(side.sign*math.Exp2((index+0.5)*step), float64(c))
		}
	}
	return nil
}

// SketchFromExplicitBuckets builds a default sketch from an OTLP explicit-bounds histogram (see AddExplicitBuckets).
func SketchFromExplicitBuckets(bounds Float64s, counts Uint64s, minValue, maxValue float64) (*Sketch, error) {
	s := NewSketch()
	return s, s.AddExplicitBuckets(bounds, counts, minValue, maxValue)
}

// SketchFromExponentialBuckets builds a default sketch from an OTLP exponential histogram (see AddExponentialBuckets).
func SketchFromExponentialBuckets(scale int32, zeroCount uint64, positive, negative ExponentialBuckets) (*Sketch, error) {
	s := NewSketch()
	return s, s.AddExponentialBuckets(scale, zeroCount, positive, negative)
}

// The encodings: version 1 indexed bins by the logarithmic mapping (read and
// re-binned, so that state saved before survives an upgrade), version 2 by the
// cubically interpolated one.
const (
	sketchVersionLogarithmic = 1
	sketchVersion            = 2
)

// MarshalBinary encodes the sketch: a small header with its settings, then DDSketch's own encoding.
func (s *Sketch) MarshalBinary() ([]byte, error) {
	buf := make([]byte, 0, 16+s.maxBins)
	buf = append(buf, sketchVersion)
	buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(s.accuracy))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(s.maxBins))
	s.dd.Encode(&buf, true) // the mapping follows from the accuracy
	return buf, nil
}

// UnmarshalBinary restores a sketch written by MarshalBinary; s is unchanged on error.
func (s *Sketch) UnmarshalBinary(data []byte) error {
	if len(data) < 13 || (data[0] != sketchVersion && data[0] != sketchVersionLogarithmic) {
		return fmt.Errorf("%w: not a sketch", errBadEncoding)
	}
	accuracy := math.Float64frombits(binary.LittleEndian.Uint64(data[1:]))
	maxBins := int(binary.LittleEndian.Uint32(data[9:]))
	out, err := NewSketchWith(accuracy, maxBins)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadEncoding, err)
	}
	if data[0] == sketchVersionLogarithmic {
		if err := out.mergeLogarithmic(data[13:]); err != nil {
			return fmt.Errorf("%w: %w", errBadEncoding, err)
		}
	} else if err := out.dd.DecodeAndMergeWith(data[13:]); err != nil {
		return fmt.Errorf("%w: %w", errBadEncoding, err)
	}
	*s = *out
	return nil
}

// mergeLogarithmic adds a version-1 encoding to s: each of its bins, at the
// bin's representative value, within the accuracy of both mappings.
func (s *Sketch) mergeLogarithmic(data []byte) error {
	m, err := mapping.NewLogarithmicMapping(s.accuracy)
	if err != nil {
		return err
	}
	old, err := newSketch(m, s.accuracy, s.maxBins)
	if err != nil {
		return err
	}
	if err := old.dd.DecodeAndMergeWith(data); err != nil {
		return err
	}
	for _, b := range old.AppendBins(nil) {
		s.AddWithCount(b.Value, b.Count)
	}
	return nil
}
