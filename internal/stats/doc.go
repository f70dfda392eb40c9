// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package stats is the pure-statistics core of deploylens's health engine. It knows
// nothing of the collector: numbers in, judgements out.
//
//   - Sketch: a bounded, mergeable quantile sketch (DDSketch) for latency distributions,
//     built from samples or from OTLP explicit-bounds and exponential histogram buckets.
//   - Baseline: a streaming, outlier-robust, optionally daily-seasonal baseline of a gauge,
//     freezable and serialisable, with an expected range.
//   - Tail: how rare a surprise is in a series' own history, in fixed memory.
//   - Two-sample tests that return a TestResult (statistic, p-value, effect size, verdict):
//     MannWhitney on two sketches (latency), TwoProportions / TwoProportionZ / FisherExact
//     (error ratios), PoissonRates (event rates given exposure).
//
// # Verdicts
//
// A test says VerdictInconclusive below its minimum sample size — never VerdictFail, since
// "too little data" is not "harm". It says VerdictFail only when the difference is both
// significant (p < Alpha) and large enough to matter (effect size past MinEffect in the
// harmful direction): at a large N a tiny shift is significant, and a tolerance keeps it
// from alarming. Otherwise VerdictPass.
//
// # Multiple comparisons
//
// One evaluation of a deployment runs one test per indicator (latency, error ratio, rate,
// saturation, ...). At alpha = 0.05 per test, six independent tests would flag a healthy
// deployment about 26% of the time (1 - 0.95^6). Two controls are offered, to combine:
//
//   - Within one evaluation, adjust the indicators' p-values with Holm's step-down method
//     (the health engine does, in place and without allocating, on its evidence): it
//     controls the family-wise error rate at alpha like Bonferroni but rejects more, and
//     it assumes nothing about dependence between indicators.
//   - Across evaluations (the same deployment is judged every interval), require the
//     verdict to hold for k consecutive evaluations before acting; with a fixed alpha per
//     evaluation, k = 2 or 3 cuts the false alarms of repeated looks, at the cost of k-1
//     intervals of delay.
//
// The streaming detector (package detector) applies the same idea inside one sample:
// it reports the smallest of its three tests' p-values times three (Bonferroni).
package stats
