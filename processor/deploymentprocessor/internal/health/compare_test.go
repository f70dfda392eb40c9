// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/stats"
)

func TestFoldBelow(t *testing.T) {
	bins := func(vs ...float64) []stats.Bin {
		out := make([]stats.Bin, 0, len(vs)/2)
		for i := 0; i < len(vs); i += 2 {
			out = append(out, stats.Bin{Value: vs[i], Count: vs[i+1]})
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		in    []stats.Bin
		floor float64
		want  []stats.Bin
	}{
		{name: "nothing below", in: bins(2, 1, 3, 1), floor: 2, want: bins(2, 1, 3, 1)},
		{name: "onto a bin at the floor", in: bins(1, 2, 1.5, 3, 2, 1, 3, 1), floor: 2, want: bins(2, 6, 3, 1)},
		{name: "into a new bin at the floor", in: bins(1, 2, 1.5, 3, 3, 1), floor: 2, want: bins(2, 5, 3, 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, foldBelow(tt.in, tt.floor))
		})
	}
}

// Two windows of one long-tailed latency, each merged from two sketches as
// the rolling windows are; one sketch spans more than its bins (one request
// hung for an hour) and folded its lowest ones. As they are, Mann-Whitney
// calls the clean window slower; folded at a common floor, not.
func TestFoldAtCommonFloorUndoesASketchFold(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	draw := func() float64 {
		v := math.Exp(math.Log(0.05) + 0.6*r.NormFloat64())
		if r.Float64() < 0.03 {
			v *= 12 * math.Exp(0.8*r.NormFloat64())
		}
		return v
	}
	sketches := make([]*stats.Sketch, 4) // ref older, ref newer, cand older, cand newer
	for i := range sketches {
		sketches[i] = stats.NewSketch()
		for range 10000 {
			sketches[i].Add(draw())
		}
	}
	sketches[3].Add(3600)
	ref, refFloor := appendBins(nil, sketches[0], sketches[1])
	cand, candFloor := appendBins(nil, sketches[2], sketches[3])
	require.Greater(t, candFloor, refFloor, "the fixture folds one sketch's low end")
	opts := stats.TestOptions{Alpha: decideAlpha, MinSamples: 10, MinEffect: tolRankBiserial, Alternative: stats.Greater}
	assert.Equal(t, stats.VerdictFail, stats.MannWhitneyBins(ref, cand, opts).Verdict, "as they are: the fold reads as slower")

	floor := math.Max(refFloor, candFloor)
	assert.NotEqual(t, stats.VerdictFail, stats.MannWhitneyBins(foldBelow(ref, floor), foldBelow(cand, floor), opts).Verdict,
		"the same distribution is not slower")
}
