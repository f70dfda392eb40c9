// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"encoding/binary"
	"math"
)

const (
	// tailBins bins of tailBinWidth cover log1p(s) up to 6 (s ≈ 400); larger s share the last bin.
	tailBins     = 48
	tailBinWidth = 0.125
	// tailKernel is the margin, in log1p units, by which s must pass what history holds to
	// count as new: exceeding the largest past surprise by 20% divides the p-value by e.
	tailKernel = 0.2
	// tailPriorWeight is how many samples the |N(0,1)| prior is worth before data replace it.
	tailPriorWeight = 20
	// TailBinarySize is the size of a Tail's binary form.
	TailBinarySize = 4 * (tailBins + 1)
)

// Tail estimates how rare a non-negative surprise statistic s (such as |z|) is in its own
// recent history, in fixed memory (about 200 bytes): a decayed histogram of log(1+s), read
// as an empirical survival function smoothed by a one-sided exponential kernel:
//
//	P(S ≥ s) ≈ Σ_j w_j · K(x - x_j),  x = log(1+s),  K(d) = 1 for d ≤ 0, exp(-d/0.2) for d > 0.
//
// A surprise that history has seen before, however large, is never called rarer than the
// share of history that reached it, so recurring spikes (a nightly batch, a daily peak)
// stop alarming once they have been seen; a surprise beyond anything seen gets a p-value
// that falls exponentially with how far beyond it is. Working on log(1+s) suits the
// heavy-tailed surprises of real metrics. The histogram starts with the law of |N(0,1)|,
// worth 20 samples, so that a fresh series is judged as if its residuals were normal.
type Tail struct {
	bins  [tailBins]float32
	total float32
}

// kernelGrowth[j] is exp(c_j/τ) for the center c_j of bin j.
var kernelGrowth = func() (g [tailBins]float64) {
	for j := range g {
		g[j] = math.Exp((float64(j) + 0.5) * tailBinWidth / tailKernel)
	}
	return g
}()

// NewTail returns a tail holding the |N(0,1)| prior.
func NewTail() Tail {
	var t Tail
	prev := 0.0
	for i := range t.bins {
		upper := math.Expm1(float64(i+1) * tailBinWidth)
		cdf := math.Erf(upper / math.Sqrt2) // P(|Z| ≤ upper)
		t.bins[i] = float32(tailPriorWeight * (cdf - prev))
		prev = cdf
	}
	t.total = tailPriorWeight
	return t
}

func tailBin(x float64) int {
	if !(x < tailBins*tailBinWidth) {
		return tailBins - 1
	}
	return max(int(x/tailBinWidth), 0)
}

// PValue is the estimated probability, under recent history, of a surprise at least s.
func (t *Tail) PValue(s float64) float64 {
	if !(s > 0) || !(t.total > 0) {
		return 1
	}
	x := math.Log1p(s)
	if math.IsInf(x, 1) {
		return 0
	}
	own := tailBin(x)
	reached := 0.0
	for j := own; j < tailBins; j++ {
		// Samples in s's own bin count as reached: the bin is narrower than the margin.
		reached += float64(t.bins[j])
	}
	// exp(-(x - c_j)/τ) = exp(-x/τ)·exp(c_j/τ): one exponential per call.
	below := 0.0
	for j := range own {
		below += float64(t.bins[j]) * kernelGrowth[j]
	}
	mass := reached + below*math.Exp(-x/tailKernel)
	return math.Min(1, mass/float64(t.total))
}

// Learn adds s to the history; older samples fade with a memory of about window samples.
func (t *Tail) Learn(s float64, window float64) {
	if math.IsNaN(s) || s < 0 {
		return
	}
	keep := float32(1 - 1/window)
	for i := range t.bins {
		t.bins[i] *= keep
	}
	t.total *= keep
	t.bins[tailBin(math.Log1p(s))]++
	t.total++
}

// AppendBinary appends the tail's fixed-size binary form to buf.
func (t *Tail) AppendBinary(buf []byte) []byte {
	for _, c := range t.bins {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(c))
	}
	return binary.LittleEndian.AppendUint32(buf, math.Float32bits(t.total))
}

// DecodeBinary reads a tail written by AppendBinary from the front of data and returns the rest.
func (t *Tail) DecodeBinary(data []byte) ([]byte, error) {
	if len(data) < TailBinarySize {
		return nil, errShortEncoding
	}
	r := reader{buf: data}
	var out Tail
	for i := range out.bins {
		out.bins[i] = r.f32()
		if !(out.bins[i] >= 0) {
			return nil, errBadEncoding
		}
	}
	out.total = r.f32()
	if !(out.total >= 0) {
		return nil, errBadEncoding
	}
	*t = out
	return r.buf, nil
}
