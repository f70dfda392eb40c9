// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"fmt"
	"math"
)

// Verdict is the outcome of a two-sample test for a deployment.
type Verdict string

const (
	// VerdictPass: enough data, and no harmful difference that is both significant and large enough.
	VerdictPass Verdict = "pass"
	// VerdictFail: the candidate is significantly worse, by more than the tolerance.
	VerdictFail Verdict = "fail"
	// VerdictInconclusive: below the minimum sample size; never a failure.
	VerdictInconclusive Verdict = "inconclusive"
)

// Alternative says which difference is harm.
type Alternative int

const (
	// Greater: the candidate being larger is harm (latency, error ratio, error rate).
	Greater Alternative = iota
	// Less: the candidate being smaller is harm (throughput, success ratio).
	Less
	// TwoSided: any difference is harm.
	TwoSided
)

// Names of the tests, as they appear in TestResult.Test and in alert evidence.
const (
	TestMannWhitney    = "mann_whitney_u"
	TestTwoProportionZ = "two_proportion_z"
	TestFisherExact    = "fisher_exact"
	TestPoissonRate    = "poisson_conditional_binomial"
)

// TestOptions sets the decision rule of a two-sample test.
type TestOptions struct {
	// Alpha is the significance level (before any Holm adjustment across indicators).
	Alpha float64
	// MinSamples is the minimum sample size per group (values for Mann-Whitney, trials for
	// proportions) or in total (events for Poisson rates); below it the verdict is inconclusive.
	MinSamples float64
	// MinEffect is the tolerance: the smallest effect size, in the harmful direction, that can fail.
	MinEffect float64
	// Alternative says which direction is harm.
	Alternative Alternative
}

// DefaultTestOptions returns alpha 0.05, 20 samples, no tolerance, and Greater as harm.
func DefaultTestOptions() TestOptions {
	return TestOptions{Alpha: 0.05, MinSamples: 20, Alternative: Greater}
}

// Validate reports options that cannot work.
func (o TestOptions) Validate() error {
	switch {
	case !(o.Alpha > 0 && o.Alpha < 1):
		return fmt.Errorf("alpha must be in (0, 1), got %v", o.Alpha)
	case !(o.MinSamples >= 0):
		return fmt.Errorf("min_samples must not be negative, got %v", o.MinSamples)
	case !(o.MinEffect >= 0):
		return fmt.Errorf("min_effect must not be negative, got %v", o.MinEffect)
	case o.Alternative < Greater || o.Alternative > TwoSided:
		return fmt.Errorf("alternative: unknown value %d", int(o.Alternative))
	}
	return nil
}

// TestResult is what a two-sample test (baseline against candidate) found.
type TestResult struct {
	// Test names the test that ran (TestMannWhitney, ...).
	Test string
	// Statistic is the test statistic: U of the candidate for Mann-Whitney, z for the
	// z-test, the candidate's event count for the exact tests.
	Statistic float64
	// Z is the statistic standardised under the null hypothesis (continuity-corrected where the test is).
	Z float64
	// PValue is the p-value for the configured alternative.
	PValue float64
	// EffectSize is signed, positive when the candidate is larger: the rank-biserial
	// correlation for Mann-Whitney, the difference of proportions, the relative rate
	// change (ratio - 1) for Poisson rates.
	EffectSize float64
	// Ratio is candidate over baseline: of medians, of proportions, of rates (NaN when undefined).
	Ratio float64
	// BaselineN and CandidateN are the sample sizes (values, trials, or events).
	BaselineN, CandidateN float64
	// Verdict is the decision.
	Verdict Verdict
}

// decide applies the decision rule: inconclusive below the sample size, fail only when
// significant and past the tolerance in the harmful direction.
func decide(r *TestResult, opts TestOptions, enough bool) {
	switch {
	case !enough:
		r.Verdict = VerdictInconclusive
	case r.PValue < opts.Alpha && harmful(r.EffectSize, opts):
		r.Verdict = VerdictFail
	default:
		r.Verdict = VerdictPass
	}
}

func harmful(effect float64, opts TestOptions) bool {
	switch opts.Alternative {
	case Greater:
		return effect > 0 && effect >= opts.MinEffect
	case Less:
		return effect < 0 && -effect >= opts.MinEffect
	}
	return effect != 0 && math.Abs(effect) >= opts.MinEffect
}

// pFromZ is the normal p-value of z for the alternative (z > 0: candidate larger).
func pFromZ(z float64, alt Alternative) float64 {
	switch alt {
	case Greater:
		return NormalSF(z)
	case Less:
		return NormalCDF(z)
	}
	return math.Min(1, 2*NormalSF(math.Abs(z)))
}

// NormalCDF is P(Z ≤ z) for a standard normal Z.
func NormalCDF(z float64) float64 { return 0.5 * math.Erfc(-z/math.Sqrt2) }

// NormalSF is P(Z > z) for a standard normal Z, accurate far into the upper tail.
func NormalSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }
