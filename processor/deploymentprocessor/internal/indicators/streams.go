// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package indicators // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"

import (
	"math"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/deploylens/deploylens/internal/stats"
)

// FreshStart is how recent a new stream's start must be for its first
// cumulative point to count whole: an instance that just started counted
// everything it reports; a stream first seen long after its start (after a
// collector restart) only sets the values its increases are measured from.
const FreshStart = 5 * time.Minute

// StreamLimit bounds the cumulative streams remembered across all keys.
type StreamLimit struct {
	max     int64
	n       atomic.Int64
	dropped atomic.Uint64
}

// NewStreamLimit returns a limit of max streams.
func NewStreamLimit(maxStreams int) *StreamLimit { return &StreamLimit{max: int64(maxStreams)} }

// Len is the number of streams remembered.
func (l *StreamLimit) Len() int64 { return l.n.Load() }

// Dropped counts the points of new streams refused because the limit was reached.
func (l *StreamLimit) Dropped() uint64 { return l.dropped.Load() }

func (l *StreamLimit) acquire() bool {
	if l.n.Add(1) > l.max {
		l.n.Add(-1)
		l.dropped.Add(1)
		return false
	}
	return true
}

func (l *StreamLimit) release(n int) { l.n.Add(-int64(n)) }

// Streams turns one key's cumulative points into increases: per stream
// (resource, metric, point attributes) it remembers the last point. A reset
// (a new start time, or a value that went down) starts the stream afresh.
// Not safe for concurrent use (it lives under its key's lock).
type Streams struct {
	byID  map[uint64]*stream
	limit *StreamLimit

	// Scratch passed to sketches as pointers, so that nothing allocates.
	boundsView stats.Float64Slice
	countsView stats.Uint64Slice
	posView    stats.Uint64Slice
	negView    stats.Uint64Slice
}

type stream struct {
	start, ts int64 // start time and time of the last point, unix ns
	value     float64
	count     uint64
	buckets   []uint64 // explicit histograms: cumulative bucket counts
	// Exponential histograms.
	scale                int32
	zero                 uint64
	posOffset, negOffset int32
	pos, neg             []uint64
}

// NewStreams returns an empty table bounded by limit (shared by all keys).
func NewStreams(limit *StreamLimit) *Streams {
	return &Streams{byID: map[uint64]*stream{}, limit: limit}
}

// Len is the number of streams remembered.
func (st *Streams) Len() int { return len(st.byID) }

// Sweep forgets streams without a point since before the given time.
func (st *Streams) Sweep(before int64) {
	n := 0
	for id, s := range st.byID {
		if s.ts < before {
			delete(st.byID, id)
			n++
		}
	}
	st.limit.release(n)
}

// Release forgets every stream (the key is dropped).
func (st *Streams) Release() {
	st.limit.release(len(st.byID))
	clear(st.byID)
}

// lookup returns the stream and whether it is new; nil when the limit refuses it.
func (st *Streams) lookup(id uint64) (*stream, bool) {
	if s, ok := st.byID[id]; ok {
		return s, false
	}
	if !st.limit.acquire() {
		return nil, false
	}
	s := &stream{}
	st.byID[id] = s
	return s, true
}

func fresh(start, ts int64) bool { return start > 0 && start <= ts && ts-start <= int64(FreshStart) }

// fate is what a cumulative point counts, by the one rule of every
// cumulative stream (see cumulativeFate).
type fate uint8

const (
	fateDiff  fate = iota // the difference from the remembered point
	fateWhole             // the whole point, since from; remember it
	fateNone              // nothing; remember it (a first point that is not fresh, or changed bounds)
	fateSkip              // nothing; remember nothing (a repeat, or out of order)
)

// cumulativeFate: a stream's first point counts whole only when its start is
// fresh; a point not after the last one counts nothing; a restart (a new
// start, or reset: the value went down) counts whole since the later of its
// start and the last point; any other point counts its difference.
func cumulativeFate(isNew bool, start, ts, lastStart, lastTS int64, reset bool) (fate, int64) {
	switch {
	case isNew && fresh(start, ts):
		return fateWhole, start
	case isNew:
		return fateNone, 0
	case ts <= lastTS:
		return fateSkip, 0
	case start != lastStart || reset:
		return fateWhole, max(start, lastTS)
	}
	return fateDiff, 0
}

// settle carries out a histogram point's fate other than fateDiff: record
// remembers the point, whole counts all of it since from.
func settle(f fate, from int64, record func(), whole func(from int64) (histDelta, bool)) (histDelta, bool) {
	if f == fateSkip {
		return histDelta{}, false
	}
	record()
	if f == fateWhole {
		return whole(from)
	}
	return histDelta{}, false
}

func seconds(from, to int64) float64 {
	if from <= 0 || to <= from {
		return 0
	}
	return float64(to-from) / 1e9
}

// histDelta is a histogram's increase since its previous point; the
// buckets are in the Streams' views.
type histDelta struct {
	count   uint64
	seconds float64
	// Exponential histograms.
	scale                int32
	zero                 uint64
	posOffset, negOffset int32
}

func copyCounts(dst stats.Uint64Slice, src pcommon.UInt64Slice) stats.Uint64Slice {
	dst = dst[:0]
	for i := range src.Len() {
		dst = append(dst, src.At(i))
	}
	return dst
}

func keepCounts(dst []uint64, src pcommon.UInt64Slice) []uint64 {
	dst = dst[:0]
	for i := range src.Len() {
		dst = append(dst, src.At(i))
	}
	return dst
}

// explicitDelta is the increase of an explicit-bounds histogram point.
func (st *Streams) explicitDelta(id uint64, dp pmetric.HistogramDataPoint, cumulative bool, ts int64) (histDelta, bool) {
	start, counts := int64(dp.StartTimestamp()), dp.BucketCounts()
	if !cumulative {
		st.countsView = copyCounts(st.countsView, counts)
		return histDelta{count: dp.Count(), seconds: seconds(start, ts)}, true
	}
	s, isNew := st.lookup(id)
	if s == nil {
		return histDelta{}, false
	}
	whole := func(from int64) (histDelta, bool) {
		st.countsView = copyCounts(st.countsView, counts)
		return histDelta{count: dp.Count(), seconds: seconds(from, ts)}, true
	}
	record := func() {
		s.start, s.ts, s.count = start, ts, dp.Count()
		s.buckets = keepCounts(s.buckets, counts)
	}
	f, from := cumulativeFate(isNew, start, ts, s.start, s.ts, dp.Count() < s.count)
	if f == fateDiff && len(s.buckets) != counts.Len() {
		f = fateNone // the bounds changed: start over from here
	}
	if f != fateDiff {
		return settle(f, from, record, whole)
	}
	st.countsView = st.countsView[:0]
	for i := range counts.Len() {
		c := counts.At(i)
		if c < s.buckets[i] {
			prev := s.ts
			record()
			return whole(max(start, prev))
		}
		st.countsView = append(st.countsView, c-s.buckets[i])
	}
	d := histDelta{count: dp.Count() - s.count, seconds: seconds(s.ts, ts)}
	record()
	return d, true
}

// exponentialDelta is the increase of an exponential histogram point. A
// scale that went down (the SDK rescaled) is matched by merging the
// remembered buckets; a scale that went up is a reset.
func (st *Streams) exponentialDelta(id uint64, dp pmetric.ExponentialHistogramDataPoint, cumulative bool, ts int64) (histDelta, bool) {
	start := int64(dp.StartTimestamp())
	pos, neg := dp.Positive(), dp.Negative()
	whole := func(from int64) (histDelta, bool) {
		st.posView = copyCounts(st.posView, pos.BucketCounts())
		st.negView = copyCounts(st.negView, neg.BucketCounts())
		return histDelta{
			count: dp.Count(), seconds: seconds(from, ts), scale: dp.Scale(), zero: dp.ZeroCount(),
			posOffset: pos.Offset(), negOffset: neg.Offset(),
		}, true
	}
	if !cumulative {
		return whole(start)
	}
	s, isNew := st.lookup(id)
	if s == nil {
		return histDelta{}, false
	}
	record := func() {
		s.start, s.ts, s.count, s.scale, s.zero = start, ts, dp.Count(), dp.Scale(), dp.ZeroCount()
		s.posOffset, s.pos = pos.Offset(), keepCounts(s.pos, pos.BucketCounts())
		s.negOffset, s.neg = neg.Offset(), keepCounts(s.neg, neg.BucketCounts())
	}
	reset := dp.Count() < s.count || dp.Scale() > s.scale || dp.ZeroCount() < s.zero
	if f, from := cumulativeFate(isNew, start, ts, s.start, s.ts, reset); f != fateDiff {
		return settle(f, from, record, whole)
	}
	if by := s.scale - dp.Scale(); by > 0 {
		s.posOffset, s.pos = downscale(s.posOffset, s.pos, by)
		s.negOffset, s.neg = downscale(s.negOffset, s.neg, by)
	}
	var ok bool
	if st.posView, ok = bucketDelta(st.posView, pos.Offset(), pos.BucketCounts(), s.posOffset, s.pos); ok {
		st.negView, ok = bucketDelta(st.negView, neg.Offset(), neg.BucketCounts(), s.negOffset, s.neg)
	}
	if !ok {
		prev := s.ts
		record()
		return whole(max(start, prev))
	}
	d := histDelta{
		count: dp.Count() - s.count, seconds: seconds(s.ts, ts), scale: dp.Scale(), zero: dp.ZeroCount() - s.zero,
		posOffset: pos.Offset(), negOffset: neg.Offset(),
	}
	record()
	return d, true
}

// downscale merges buckets to a scale lower by `by` (rare: it allocates).
func downscale(offset int32, counts []uint64, by int32) (int32, []uint64) {
	if len(counts) == 0 {
		return offset >> by, counts
	}
	first := offset >> by
	last := (offset + int32(len(counts)) - 1) >> by
	out := make([]uint64, last-first+1)
	for i, c := range counts {
		out[((offset+int32(i))>>by)-first] += c
	}
	return first, out
}

// bucketDelta writes the increase of cumulative buckets (newOffset, newCounts)
// over (oldOffset, old) into dst; ok is false if any bucket went down.
func bucketDelta(dst stats.Uint64Slice, newOffset int32, newCounts pcommon.UInt64Slice, oldOffset int32, old []uint64) (stats.Uint64Slice, bool) {
	dst = dst[:0]
	n := newCounts.Len()
	for i := range n {
		c := newCounts.At(i)
		j := int(newOffset) + i - int(oldOffset)
		if j >= 0 && j < len(old) {
			if c < old[j] {
				return dst, false
			}
			c -= old[j]
		}
		dst = append(dst, c)
	}
	// A remembered bucket outside the new range must have been empty.
	for j, c := range old {
		i := int(oldOffset) + j - int(newOffset)
		if c > 0 && (i < 0 || i >= n) {
			return dst, false
		}
	}
	return dst, true
}

// addScaledExponential adds an exponential histogram's increase whose unit
// is not seconds, bucket by bucket at its geometric middle.
func (st *Streams) addScaledExponential(sk *stats.Sketch, d histDelta, unit float64) {
	step := math.Ldexp(1, -int(d.scale))
	if d.zero > 0 {
		sk.AddWithCount(0, float64(d.zero))
	}
	for k, c := range st.posView {
		if c > 0 {
			sk.AddWithCount(unit*math.Exp2((float64(d.posOffset)+float64(k)+0.5)*step), float64(c))
		}
	}
	for k, c := range st.negView {
		if c > 0 {
			sk.AddWithCount(-unit*math.Exp2((float64(d.negOffset)+float64(k)+0.5)*step), float64(c))
		}
	}
}

// sumDelta is the increase of a monotonic sum (or a histogram's count) and
// the seconds it covers; a delta point is its own increase.
func (st *Streams) sumDelta(id uint64, start int64, value float64, cumulative bool, ts int64) (float64, float64, bool) {
	if !cumulative {
		return value, seconds(start, ts), true
	}
	s, isNew := st.lookup(id)
	if s == nil {
		return 0, 0, false
	}
	f, from := cumulativeFate(isNew, start, ts, s.start, s.ts, value < s.value)
	if f == fateSkip {
		return 0, 0, false
	}
	if f != fateDiff {
		s.start, s.ts, s.value = start, ts, value
		if f == fateNone {
			return 0, 0, false
		}
		return value, seconds(from, ts), true
	}
	d, secs := value-s.value, seconds(s.ts, ts)
	s.ts, s.value = ts, value
	return d, secs, true
}
