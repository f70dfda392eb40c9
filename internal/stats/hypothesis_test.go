// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// binsOf turns raw samples into unit bins sorted by value (equal values are ties).
func binsOf(values ...float64) []Bin {
	sorted := append([]float64(nil), values...)
	for i := 1; i < len(sorted); i++ {
		for j := i; j > 0 && sorted[j] < sorted[j-1]; j-- {
			sorted[j], sorted[j-1] = sorted[j-1], sorted[j]
		}
	}
	var bins []Bin
	for _, v := range sorted {
		if n := len(bins); n > 0 && bins[n-1].Value == v {
			bins[n-1].Count++
			continue
		}
		bins = append(bins, Bin{Value: v, Count: 1})
	}
	return bins
}

func opts(alt Alternative) TestOptions {
	return TestOptions{Alpha: 0.05, MinSamples: 3, Alternative: alt}
}

func TestMannWhitneyReferenceValues(t *testing.T) {
	// Hollander & Wolfe (1973), p. 69f., the example of R's ?wilcox.test: permeability
	// constants at term (x, the candidate) and at 12-26 weeks (y, the baseline).
	// wilcox.test(x, y, alternative = "greater") gives W = 35; with exact = FALSE (normal
	// approximation, continuity correction) R and scipy.stats.mannwhitneyu(x, y,
	// method="asymptotic") give p = 0.12231180256349167 (greater), 0.9007753482039937 (less),
	// 0.24462360512698333 (two-sided).
	x := binsOf(0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46)
	y := binsOf(1.15, 0.88, 0.90, 0.74, 1.21)

	// Hand-checkable: {4,5,6} against {1,2,3}: U = 9, mean 4.5, variance 3·3·7/12 = 5.25,
	// z = (9 - 4.5 - 0.5)/√5.25 = 1.7457, p = 0.04042779918502612 (scipy agrees).
	// With ties: candidate {2,3,3,4,4,5,5,6} against baseline {1,2,2,3,3,3,4}: U = 45,
	// scipy p = 0.02494221848996294 (greater), 0.04988443697992588 (two-sided), 0.98122802559914 (less).
	tieBase := binsOf(1, 2, 2, 3, 3, 3, 4)
	tieCand := binsOf(2, 3, 3, 4, 4, 5, 5, 6)

	tests := []struct {
		name           string
		baseline, cand []Bin
		alt            Alternative
		wantU, wantP   float64
	}{
		{"hollander-wolfe greater", y, x, Greater, 35, 0.12231180256349167},
		{"hollander-wolfe less", y, x, Less, 35, 0.9007753482039937},
		{"hollander-wolfe two-sided", y, x, TwoSided, 35, 0.24462360512698333},
		{"disjoint", binsOf(1, 2, 3), binsOf(4, 5, 6), Greater, 9, 0.04042779918502612},
		{"ties greater", tieBase, tieCand, Greater, 45, 0.02494221848996294},
		{"ties two-sided", tieBase, tieCand, TwoSided, 45, 0.04988443697992588},
		{"ties less", tieBase, tieCand, Less, 45, 0.98122802559914},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := MannWhitneyBins(tt.baseline, tt.cand, opts(tt.alt))
			assert.Equal(t, TestMannWhitney, r.Test)
			assert.InDelta(t, tt.wantU, r.Statistic, 1e-9)
			assert.InDelta(t, tt.wantP, r.PValue, 1e-12)
			assert.InDelta(t, 2*tt.wantU/(r.BaselineN*r.CandidateN)-1, r.EffectSize, 1e-12)
		})
	}
}

func TestMannWhitneyVerdicts(t *testing.T) {
	tests := []struct {
		name        string
		baseline    []Bin
		candidate   []Bin
		opts        TestOptions
		wantVerdict Verdict
	}{
		{
			name:        "too few samples is inconclusive even when every value is larger",
			baseline:    binsOf(1, 2, 3),
			candidate:   binsOf(10, 20, 30),
			opts:        TestOptions{Alpha: 0.05, MinSamples: 20, Alternative: Greater},
			wantVerdict: VerdictInconclusive,
		},
		{
			name:        "empty candidate is inconclusive",
			baseline:    binsOf(1, 2, 3),
			opts:        opts(Greater),
			wantVerdict: VerdictInconclusive,
		},
		{
			// 1e6 values each, the candidate's distribution shifted by one bin in ten:
			// p is tiny but the rank-biserial effect is about 0.02, under a 0.1 tolerance.
			name:        "tiny significant shift at large N passes within tolerance",
			baseline:    []Bin{{1, 1e6}, {2, 1e6}, {3, 1e6}, {4, 1e6}, {5, 1e6}, {6, 1e6}, {7, 1e6}, {8, 1e6}, {9, 1e6}, {10, 1e6}},
			candidate:   []Bin{{1, 0.9e6}, {2, 1e6}, {3, 1e6}, {4, 1e6}, {5, 1e6}, {6, 1e6}, {7, 1e6}, {8, 1e6}, {9, 1e6}, {10, 1.1e6}},
			opts:        TestOptions{Alpha: 0.05, MinSamples: 20, MinEffect: 0.1, Alternative: Greater},
			wantVerdict: VerdictPass,
		},
		{
			name:        "large shift fails",
			baseline:    binsOf(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
			candidate:   binsOf(8, 9, 10, 11, 12, 13, 14, 15, 16, 17),
			opts:        TestOptions{Alpha: 0.05, MinSamples: 5, MinEffect: 0.1, Alternative: Greater},
			wantVerdict: VerdictFail,
		},
		{
			name:        "an improvement is no failure",
			baseline:    binsOf(8, 9, 10, 11, 12, 13, 14, 15, 16, 17),
			candidate:   binsOf(1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
			opts:        TestOptions{Alpha: 0.05, MinSamples: 5, Alternative: Greater},
			wantVerdict: VerdictPass,
		},
		{
			name:        "all values tied passes",
			baseline:    []Bin{{5, 100}},
			candidate:   []Bin{{5, 100}},
			opts:        opts(Greater),
			wantVerdict: VerdictPass,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := MannWhitneyBins(tt.baseline, tt.candidate, tt.opts)
			assert.Equal(t, tt.wantVerdict, r.Verdict, "p=%v effect=%v", r.PValue, r.EffectSize)
		})
	}
	large := MannWhitneyBins(tests[2].baseline, tests[2].candidate, tests[2].opts)
	assert.Less(t, large.PValue, 1e-100, "the tiny shift is significant")
	assert.InDelta(t, 0.02, large.EffectSize, 0.01)
}

func TestTwoProportionReferenceValues(t *testing.T) {
	// 45/1000 errors before, 70/1000 after: z = 2.401322051585971, one-sided p =
	// 0.008167976129208991, two-sided 0.016335952258417982; R's prop.test(c(70, 45),
	// c(1000, 1000), correct = FALSE) gives X-squared = 5.7663 = z², p-value = 0.01634.
	tests := []struct {
		name  string
		alt   Alternative
		wantP float64
	}{
		{"greater", Greater, 0.008167976129208991},
		{"two-sided", TwoSided, 0.016335952258417982},
		{"less", Less, 1 - 0.008167976129208991},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := TwoProportionZ(45, 1000, 70, 1000, opts(tt.alt))
			assert.Equal(t, TestTwoProportionZ, r.Test)
			assert.InDelta(t, 2.401322051585971, r.Statistic, 1e-12)
			assert.InDelta(t, tt.wantP, r.PValue, 1e-12)
			assert.InDelta(t, 0.025, r.EffectSize, 1e-15)
			assert.InDelta(t, 70.0/45, r.Ratio, 1e-12)
		})
	}
	// The same counts through TwoProportions use the z-test: every expected cell is ≥ 5.
	assert.Equal(t, TestTwoProportionZ, TwoProportions(45, 1000, 70, 1000, opts(Greater)).Test)
}

func TestFisherExactReferenceValues(t *testing.T) {
	// Fisher's lady tasting tea (The Design of Experiments, 1935), R's ?fisher.test
	// "TeaTasting": 3 of 4 right against 1 of 4: one-sided p = 17/70 = 0.2429,
	// two-sided p = 34/70 = 0.4857.
	// 7 of 20 against 2 of 30: scipy.stats.fisher_exact([[7, 13], [2, 28]]) gives
	// 0.015034626539908046 (greater), 0.020745074994401168 (two-sided), 0.9984246001001743 (less).
	tests := []struct {
		name                   string
		e1, n1, e2, n2         uint64
		alt                    Alternative
		wantP                  float64
		wantVerdict            Verdict
		minSamples, toleration float64
	}{
		{"tea greater", 1, 4, 3, 4, Greater, 17.0 / 70, VerdictPass, 3, 0},
		{"tea two-sided", 1, 4, 3, 4, TwoSided, 34.0 / 70, VerdictPass, 3, 0},
		{"7/20 vs 2/30 greater", 2, 30, 7, 20, Greater, 0.015034626539908046, VerdictFail, 20, 0},
		{"7/20 vs 2/30 two-sided", 2, 30, 7, 20, TwoSided, 0.020745074994401168, VerdictFail, 20, 0},
		{"7/20 vs 2/30 less", 2, 30, 7, 20, Less, 0.9984246001001743, VerdictPass, 20, 0},
		{"7/20 vs 2/30 within a 0.5 tolerance", 2, 30, 7, 20, Greater, 0.015034626539908046, VerdictPass, 20, 0.5},
		{"7/20 vs 2/30 below 25 trials", 2, 30, 7, 20, Greater, 0.015034626539908046, VerdictInconclusive, 25, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := TestOptions{Alpha: 0.05, MinSamples: tt.minSamples, MinEffect: tt.toleration, Alternative: tt.alt}
			r := FisherExact(tt.e1, tt.n1, tt.e2, tt.n2, o)
			assert.Equal(t, TestFisherExact, r.Test)
			assert.InDelta(t, tt.wantP, r.PValue, 1e-12)
			assert.Equal(t, tt.wantVerdict, r.Verdict)
			// Small counts send TwoProportions to the exact test.
			assert.Equal(t, r, TwoProportions(tt.e1, tt.n1, tt.e2, tt.n2, o))
		})
	}
}

func TestPoissonRatesReferenceValues(t *testing.T) {
	// Conditional binomial test; references from scipy.stats.binomtest(k, n, p).pvalue:
	// 25 events against 10 in equal time: binomtest(25, 35, 0.5) = 0.008336923900060357
	// (greater), 0.9970059397164732 (less). 20 events in 300 s against 120 in 3600 s:
	// binomtest(20, 140, 300/3900, alternative="greater") = 0.00540327106864167.
	tests := []struct {
		name        string
		e1          uint64
		t1          float64
		e2          uint64
		t2          float64
		alt         Alternative
		wantP       float64
		wantRatio   float64
		wantVerdict Verdict
	}{
		{"equal exposure greater", 10, 100, 25, 100, Greater, 0.008336923900060357, 2.5, VerdictFail},
		{"equal exposure less", 10, 100, 25, 100, Less, 0.9970059397164732, 2.5, VerdictPass},
		{"equal exposure two-sided", 10, 100, 25, 100, TwoSided, 2 * 0.008336923900060357, 2.5, VerdictFail},
		{"unequal exposure", 120, 3600, 20, 300, Greater, 0.00540327106864167, 2, VerdictFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := PoissonRates(tt.e1, tt.t1, tt.e2, tt.t2, TestOptions{Alpha: 0.05, MinSamples: 10, Alternative: tt.alt})
			assert.Equal(t, TestPoissonRate, r.Test)
			assert.InDelta(t, tt.wantP, r.PValue, 1e-12)
			assert.InDelta(t, tt.wantRatio, r.Ratio, 1e-12)
			assert.InDelta(t, tt.wantRatio-1, r.EffectSize, 1e-12)
			assert.Equal(t, tt.wantVerdict, r.Verdict)
		})
	}

	few := PoissonRates(0, 3600, 3, 60, TestOptions{Alpha: 0.05, MinSamples: 5, Alternative: Greater})
	assert.Equal(t, VerdictInconclusive, few.Verdict, "3 events in all are too few to judge")
	assert.True(t, math.IsInf(few.EffectSize, 1))
	none := PoissonRates(0, 3600, 0, 60, DefaultTestOptions())
	assert.Equal(t, VerdictInconclusive, none.Verdict)
	assert.Equal(t, 1.0, none.PValue)
}

func TestBinomialAndIncompleteBeta(t *testing.T) {
	// P(X ≥ 9) for X ~ Binomial(10, 1/2) = (C(10,9) + C(10,10))/2^10 = 11/1024.
	assert.InDelta(t, 11.0/1024, BinomialSF(9, 10, 0.5), 1e-15)
	assert.Equal(t, 1.0, BinomialSF(0, 10, 0.3))
	assert.Equal(t, 0.0, BinomialSF(11, 10, 0.3))
	// scipy.special.betainc(2.5, 3.5, 0.3) and betainc(1000, 1200, 0.45).
	assert.InDelta(t, 0.2967529892956661, RegularizedIncompleteBeta(2.5, 3.5, 0.3), 1e-13)
	assert.InDelta(t, 0.33466234267116446, RegularizedIncompleteBeta(1000, 1200, 0.45), 1e-11)
	// The exact test works at counts where summing terms would not: 10 500 against 10 000
	// events in equal time is a 3.5-sigma excess.
	r := PoissonRates(10000, 1, 10500, 1, DefaultTestOptions())
	assert.InDelta(t, NormalSF(r.Z), r.PValue, 0.2*r.PValue)
	assert.Less(t, r.PValue, 1e-3)
}

func TestNormal(t *testing.T) {
	assert.InDelta(t, 0.5, NormalCDF(0), 1e-15)
	assert.InDelta(t, 0.975002104851780, NormalCDF(1.96), 1e-12)
	assert.InDelta(t, 2.866515718791939e-7, NormalSF(5), 1e-20) // far tail, no cancellation
}

func TestTestOptionsValidate(t *testing.T) {
	require.NoError(t, DefaultTestOptions().Validate())
	bad := []TestOptions{
		{Alpha: 0, MinSamples: 1},
		{Alpha: 1, MinSamples: 1},
		{Alpha: 0.05, MinSamples: -1},
		{Alpha: 0.05, MinEffect: -0.1},
		{Alpha: 0.05, Alternative: Alternative(7)},
	}
	for _, o := range bad {
		assert.Error(t, o.Validate(), "%+v", o)
	}
}
