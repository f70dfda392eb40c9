// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import "math"

// TwoProportions compares error ratios, candidateEvents/candidateTrials against
// baselineEvents/baselineTrials, with the test that suits the counts: the two-proportion
// z-test when every expected cell of the 2×2 table is at least 5 (Cochran's rule), else
// Fisher's exact test. MinSamples applies to the trials of each group.
func TwoProportions(baselineEvents, baselineTrials, candidateEvents, candidateTrials uint64, opts TestOptions) TestResult {
	n1, n2 := float64(baselineTrials), float64(candidateTrials)
	events := float64(baselineEvents + candidateEvents)
	n := n1 + n2
	if n > 0 {
		share := events / n
		smallest := math.Min(math.Min(n1*share, n2*share), math.Min(n1*(1-share), n2*(1-share)))
		if smallest < 5 && fisherSupport(baselineTrials, candidateTrials, baselineEvents+candidateEvents) <= maxFisherSupport {
			return FisherExact(baselineEvents, baselineTrials, candidateEvents, candidateTrials, opts)
		}
	}
	return TwoProportionZ(baselineEvents, baselineTrials, candidateEvents, candidateTrials, opts)
}

// TwoProportionZ is the two-proportion z-test with the pooled variance, without continuity
// correction: z = (p2 - p1) / sqrt(p(1-p)(1/n1 + 1/n2)), p the pooled proportion (as R's
// prop.test(correct = FALSE), whose X-squared is z²). EffectSize is p2 - p1.
func TwoProportionZ(baselineEvents, baselineTrials, candidateEvents, candidateTrials uint64, opts TestOptions) TestResult {
	r := proportionResult(TestTwoProportionZ, baselineEvents, baselineTrials, candidateEvents, candidateTrials)
	enough := r.BaselineN >= opts.MinSamples && r.CandidateN >= opts.MinSamples
	if !valid(baselineEvents, baselineTrials, candidateEvents, candidateTrials) {
		decide(&r, opts, false)
		return r
	}
	n1, n2 := r.BaselineN, r.CandidateN
	pooled := float64(baselineEvents+candidateEvents) / (n1 + n2)
	se := math.Sqrt(pooled * (1 - pooled) * (1/n1 + 1/n2))
	if se > 0 {
		r.Z = r.EffectSize / se
		r.PValue = pFromZ(r.Z, opts.Alternative)
	}
	r.Statistic = r.Z
	decide(&r, opts, enough)
	return r
}

// FisherExact is Fisher's exact test on the 2×2 table of events and non-events: given the
// total events, the candidate's events follow a hypergeometric law. One-sided p-values sum
// that law's tail; the two-sided one sums every table no more likely than the observed one
// (as R's fisher.test and scipy.stats.fisher_exact). Statistic is the candidate's events.
func FisherExact(baselineEvents, baselineTrials, candidateEvents, candidateTrials uint64, opts TestOptions) TestResult {
	r := proportionResult(TestFisherExact, baselineEvents, baselineTrials, candidateEvents, candidateTrials)
	r.Statistic = float64(candidateEvents)
	enough := r.BaselineN >= opts.MinSamples && r.CandidateN >= opts.MinSamples
	if !valid(baselineEvents, baselineTrials, candidateEvents, candidateTrials) {
		decide(&r, opts, false)
		return r
	}
	total := baselineEvents + candidateEvents
	lo := uint64(0)
	if total > baselineTrials {
		lo = total - baselineTrials
	}
	hi := min(total, candidateTrials)
	logPMF := func(k uint64) float64 {
		return logChoose(candidateTrials, k) + logChoose(baselineTrials, total-k) - logChoose(baselineTrials+candidateTrials, total)
	}
	observed := logPMF(candidateEvents)
	var upper, lower, twoSided float64
	for k := lo; k <= hi; k++ {
		lp := logPMF(k)
		p := math.Exp(lp)
		if k >= candidateEvents {
			upper += p
		}
		if k <= candidateEvents {
			lower += p
		}
		// Relative tolerance as in R, so that tables equally likely up to rounding count.
		if lp <= observed+1e-7 {
			twoSided += p
		}
	}
	switch opts.Alternative {
	case Greater:
		r.PValue = math.Min(1, upper)
	case Less:
		r.PValue = math.Min(1, lower)
	default:
		r.PValue = math.Min(1, twoSided)
	}
	mean := float64(candidateTrials) * float64(total) / float64(baselineTrials+candidateTrials)
	if v := hypergeometricVariance(baselineTrials, candidateTrials, total); v > 0 {
		r.Z = (float64(candidateEvents) - mean) / math.Sqrt(v)
	}
	decide(&r, opts, enough)
	return r
}

// maxFisherSupport bounds the exact test's work; beyond it the z-test is accurate anyway.
const maxFisherSupport = 100000

func fisherSupport(n1, n2, events uint64) uint64 {
	lo := uint64(0)
	if events > n1 {
		lo = events - n1
	}
	hi := min(events, n2)
	if hi < lo {
		return 0
	}
	return hi - lo + 1
}

func hypergeometricVariance(n1, n2, events uint64) float64 {
	N, K, n := float64(n1+n2), float64(events), float64(n2)
	if N < 2 {
		return 0
	}
	return n * K / N * (N - K) / N * (N - n) / (N - 1)
}

func valid(e1, n1, e2, n2 uint64) bool { return n1 > 0 && n2 > 0 && e1 <= n1 && e2 <= n2 }

func proportionResult(test string, e1, n1, e2, n2 uint64) TestResult {
	r := TestResult{Test: test, PValue: 1, Ratio: math.NaN(), BaselineN: float64(n1), CandidateN: float64(n2)}
	if n1 > 0 && n2 > 0 {
		p1, p2 := float64(e1)/float64(n1), float64(e2)/float64(n2)
		r.EffectSize = p2 - p1
		if p1 > 0 {
			r.Ratio = p2 / p1
		}
	}
	return r
}

// PoissonRates compares event rates, candidateEvents per candidateExposure against
// baselineEvents per baselineExposure (exposure in any unit: seconds, requests), by the
// conditional binomial test (Przyborowski & Wilenski 1940): given the total n events, the
// candidate's count is Binomial(n, π0) under equal rates, π0 = its share of the exposure.
// The p-value is exact (regularised incomplete beta), for any n; two-sided doubles the
// smaller tail. EffectSize is the rate ratio minus 1; MinSamples applies to the total events.
func PoissonRates(baselineEvents uint64, baselineExposure float64, candidateEvents uint64, candidateExposure float64, opts TestOptions) TestResult {
	total := baselineEvents + candidateEvents
	r := TestResult{Test: TestPoissonRate, PValue: 1, Ratio: math.NaN(), Statistic: float64(candidateEvents),
		BaselineN: float64(baselineEvents), CandidateN: float64(candidateEvents)}
	if !(baselineExposure > 0) || !(candidateExposure > 0) || math.IsInf(baselineExposure+candidateExposure, 0) {
		decide(&r, opts, false)
		return r
	}
	share := candidateExposure / (baselineExposure + candidateExposure)
	rate1, rate2 := float64(baselineEvents)/baselineExposure, float64(candidateEvents)/candidateExposure
	if rate1 > 0 {
		r.Ratio = rate2 / rate1
		r.EffectSize = r.Ratio - 1
	} else if rate2 > 0 {
		r.EffectSize = math.Inf(1) // events where there were none
	}
	enough := float64(total) >= opts.MinSamples
	if total == 0 {
		decide(&r, opts, enough)
		return r
	}
	n, k := float64(total), float64(candidateEvents)
	upper := BinomialSF(candidateEvents, total, share) // P(X ≥ k)
	lower := 1.0                                       // P(X ≤ k)
	if candidateEvents < total {
		lower = 1 - BinomialSF(candidateEvents+1, total, share)
	}
	switch opts.Alternative {
	case Greater:
		r.PValue = upper
	case Less:
		r.PValue = lower
	default:
		r.PValue = math.Min(1, 2*math.Min(upper, lower))
	}
	r.Z = (k - n*share) / math.Sqrt(n*share*(1-share))
	decide(&r, opts, enough)
	return r
}

// BinomialSF is P(X ≥ k) for X ~ Binomial(n, p), exact for any n: I_p(k, n-k+1).
func BinomialSF(k, n uint64, p float64) float64 {
	switch {
	case k == 0:
		return 1
	case k > n:
		return 0
	case p <= 0:
		return 0
	case p >= 1:
		return 1
	}
	return RegularizedIncompleteBeta(float64(k), float64(n-k+1), p)
}

// logChoose is log C(n, k).
func logChoose(n, k uint64) float64 {
	a, _ := math.Lgamma(float64(n) + 1)
	b, _ := math.Lgamma(float64(k) + 1)
	c, _ := math.Lgamma(float64(n-k) + 1)
	return a - b - c
}

// RegularizedIncompleteBeta is I_x(a, b) for a, b > 0 and x in [0, 1], by the continued
// fraction of the incomplete beta function (Abramowitz & Stegun 26.5.8) evaluated with
// the modified Lentz method, on the side where it converges fast.
func RegularizedIncompleteBeta(a, b, x float64) float64 {
	switch {
	case x <= 0:
		return 0
	case x >= 1:
		return 1
	}
	if x > (a+1)/(a+b+2) {
		return 1 - RegularizedIncompleteBeta(b, a, 1-x)
	}
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	front := math.Exp(lab-la-lb+a*math.Log(x)+b*math.Log1p(-x)) / a
	return front * betaFraction(a, b, x)
}

// betaFraction evaluates 1/(1+ d1/(1+ d2/(1+ ...))) with d_{2m+1} = -(a+m)(a+b+m)x/((a+2m)(a+2m+1))
// and d_{2m} = m(b-m)x/((a+2m-1)(a+2m)), by the modified Lentz method.
func betaFraction(a, b, x float64) float64 {
	const eps = 1e-15
	c, d := 1.0, nonZero(1-(a+b)*x/(a+1))
	d = 1 / d
	h := d
	for m := 1.0; m < 10000; m++ {
		even := m * (b - m) * x / ((a + 2*m - 1) * (a + 2*m))
		c, d = lentzStep(even, c, d)
		h *= d * c
		odd := -(a + m) * (a + b + m) * x / ((a + 2*m) * (a + 2*m + 1))
		c, d = lentzStep(odd, c, d)
		delta := d * c
		h *= delta
		if math.Abs(delta-1) < eps {
			break
		}
	}
	return h
}

// lentzStep takes one term num of the continued fraction into Lentz's c
// and d (d returned inverted, as the method uses it).
func lentzStep(num, c, d float64) (float64, float64) {
	return nonZero(1 + num/c), 1 / nonZero(1+num*d)
}

// nonZero keeps Lentz's denominators off zero.
func nonZero(v float64) float64 {
	const tiny = 1e-300
	if math.Abs(v) < tiny {
		return tiny
	}
	return v
}
