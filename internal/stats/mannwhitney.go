// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import "math"

// MannWhitney compares the candidate's distribution with the baseline's from their sketches'
// bins (see MannWhitneyBins). Both sketches should share one accuracy, so that their bins line
// up; values in one bin are ties.
func MannWhitney(baseline, candidate *Sketch, opts TestOptions) TestResult {
	return MannWhitneyBins(baseline.AppendBins(nil), candidate.AppendBins(nil), opts)
}

// MannWhitneyBins is the Mann-Whitney U test (Wilcoxon rank-sum) on binned samples, each
// sorted by increasing value; equal values in the two lists are ties. It uses the normal
// approximation with the tie correction of the variance and a continuity correction of 0.5
// (as scipy.stats.mannwhitneyu(method="asymptotic") and R's wilcox.test(exact=FALSE, correct=TRUE)).
//
// Statistic is U of the candidate: the number of (candidate, baseline) pairs where the
// candidate is larger, ties counting one half. EffectSize is the rank-biserial correlation
// 2·U/(n1·n2) - 1 in [-1, 1]: the probability of superiority P(C > B) + P(C = B)/2, centred.
// It does not grow with N, so MinEffect (e.g. 0.1, a 55% chance that a candidate request is
// slower) keeps a tiny but significant shift at a large N from failing. Ratio is the ratio
// of the medians.
func MannWhitneyBins(baseline, candidate []Bin, opts TestOptions) TestResult {
	r := TestResult{Test: TestMannWhitney, PValue: 1, Ratio: math.NaN()}
	var n1, n2 float64
	for _, b := range baseline {
		n1 += b.Count
	}
	for _, b := range candidate {
		n2 += b.Count
	}
	r.BaselineN, r.CandidateN = n1, n2
	if n1 <= 0 || n2 <= 0 {
		decide(&r, opts, false)
		return r
	}

	// Walk both lists in value order; each distinct value is a tie group of average rank.
	var rankSumCandidate, tieTerm, below float64
	i, j := 0, 0
	for i < len(baseline) || j < len(candidate) {
		var value float64
		switch {
		case j >= len(candidate):
			value = baseline[i].Value
		case i >= len(baseline):
			value = candidate[j].Value
		default:
			value = math.Min(baseline[i].Value, candidate[j].Value)
		}
		var fromBaseline, fromCandidate float64
		for i < len(baseline) && baseline[i].Value == value {
			fromBaseline += baseline[i].Count
			i++
		}
		for j < len(candidate) && candidate[j].Value == value {
			fromCandidate += candidate[j].Count
			j++
		}
		ties := fromBaseline + fromCandidate
		averageRank := below + (ties+1)/2
		rankSumCandidate += fromCandidate * averageRank
		tieTerm += ties*ties*ties - ties
		below += ties
	}

	n := n1 + n2
	u := rankSumCandidate - n2*(n2+1)/2
	mean := n1 * n2 / 2
	variance := n1 * n2 / 12 * ((n + 1) - tieTerm/(n*(n-1)))
	r.Statistic = u
	r.EffectSize = 2*u/(n1*n2) - 1
	r.Ratio = medianOfBins(candidate, n2) / medianOfBins(baseline, n1)

	if variance <= 0 {
		// Every value is one tie: the samples cannot differ.
		decide(&r, opts, n1 >= opts.MinSamples && n2 >= opts.MinSamples)
		return r
	}
	sd := math.Sqrt(variance)
	switch opts.Alternative {
	case Greater:
		r.Z = (u - mean - 0.5) / sd
		r.PValue = NormalSF(r.Z)
	case Less:
		r.Z = (u - mean + 0.5) / sd
		r.PValue = NormalCDF(r.Z)
	default:
		r.Z = math.Copysign(math.Max(math.Abs(u-mean)-0.5, 0), u-mean) / sd
		r.PValue = math.Min(1, 2*NormalSF(math.Abs(r.Z)))
	}
	decide(&r, opts, n1 >= opts.MinSamples && n2 >= opts.MinSamples)
	return r
}

// medianOfBins is the value of the bin that holds the middle rank.
func medianOfBins(bins []Bin, n float64) float64 {
	half, seen := n/2, 0.0
	for _, b := range bins {
		seen += b.Count
		if seen >= half {
			return b.Value
		}
	}
	return math.NaN()
}
