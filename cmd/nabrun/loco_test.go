// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/detector"
)

func TestGridHasEveryCombination(t *testing.T) {
	points := grid([]knob{{name: "a", values: []float64{1, 2}}, {name: "b", values: []float64{10, 20, 30}}})
	assert.Equal(t, []gridPoint{{1, 10}, {1, 20}, {1, 30}, {2, 10}, {2, 20}, {2, 30}}, points)
}

func TestNormalised(t *testing.T) {
	tests := []struct {
		name string
		cats []categoryScore
		want float64
	}{
		{"null detector", []categoryScore{{Raw: -3, Null: -3, Perfect: 3}}, 0},
		{"perfect detector", []categoryScore{{Raw: 3, Null: -3, Perfect: 3}}, 100},
		{"pooled by raw sums, not averaged", []categoryScore{{Raw: 1, Null: -1, Perfect: 1}, {Raw: -3, Null: -3, Perfect: 3}}, 25},
		{"no windows", []categoryScore{{Raw: -0.5}}, math.NaN()},
	}
	for _, tt := range tests {
		got := normalised(tt.cats...)
		if math.IsNaN(tt.want) {
			assert.True(t, math.IsNaN(got), tt.name)
			continue
		}
		assert.InDelta(t, tt.want, got, 1e-12, tt.name)
	}
}

func TestLeaveOneOutChoosesOnTheOtherCategories(t *testing.T) {
	cat := func(name string, raw float64) categoryScore {
		return categoryScore{Category: name, Raw: raw, Null: -2, Perfect: 2, Windows: 2}
	}
	// Point 0 is best on a and b, point 1 only on c: holding c out must pick point 0.
	scores := [][]categoryScore{
		{cat("a", 2), cat("b", 2), cat("c", -2)},
		{cat("a", 0), cat("b", 0), cat("c", 2)},
	}
	folds := leaveOneOut(scores)
	require.Len(t, folds, 3)
	assert.Equal(t, "c", folds[2].held)
	assert.Equal(t, 0, folds[2].chosen)
	assert.InDelta(t, 100, folds[2].training, 1e-12)
	assert.InDelta(t, 0, normalised(folds[2].heldOut), 1e-12, "the held category is scored at the chosen point")
	// Holding a out, point 0 scores 50 on b and c, point 1 scores 75: point 1.
	assert.Equal(t, 1, folds[0].chosen)
	best, score := bestInSample(scores)
	assert.Equal(t, 0, best)
	assert.InDelta(t, 100*8.0/12, score, 1e-12, "both points score 2 raw: the earlier wins the tie")
}

func TestWriteLOCOPrintsOneRowPerFold(t *testing.T) {
	knobs := []knob{{name: "window", values: []float64{1, 2}}}
	scores := [][]categoryScore{
		{{Category: "a", Raw: 1, Null: -1, Perfect: 1}, {Category: "b", Raw: -0.2, FPRows: 2}},
		{{Category: "a", Raw: 0, Null: -1, Perfect: 1}, {Category: "b", Raw: 0}},
	}
	var out bytes.Buffer
	writeLOCO(&out, knobs, grid(knobs), scores)
	assert.Contains(t, out.String(), "| a | 2 | n/a (no windows) | 50.00 | 0.000 | 0 |")
	assert.Contains(t, out.String(), "| b | 1 | 100.00 | n/a (no windows) | -0.200 | 2 |")
	assert.Contains(t, out.String(), "in-sample best (all four): 1: standard 90.00")
}

func TestWriteThreshold(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, writeThreshold(dir, detector.AnomalyThreshold))
	data, err := os.ReadFile(filepath.Join(dir, "threshold.json"))
	require.NoError(t, err)
	var got struct{ Threshold float64 }
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, detector.AnomalyThreshold, got.Threshold)
}
