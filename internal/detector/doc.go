// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package detector is the streaming anomaly detector for one gauge-like health indicator
// (a latency quantile, an error ratio, a saturation): New(Config) gives a Detector, and
// Update(ts, value) judges each sample, returning a Result with an anomaly score in [0, 1]
// and its evidence (observed value, baseline, expected range, test, confidence).
//
// It is O(1) per sample, allocates nothing after New, and holds about 1.5 KiB (a Detector
// is one flat value: no slices, no maps), so 10 000 keys × 6 indicators fit in well under
// 100 MiB, sketches aside. Freeze/Unfreeze judge a deployment against the state before it;
// Snapshot/Restore save and load the whole state, settings included.
//
// # How it decides
//
// The baseline (stats.Baseline) predicts each sample: a Huber-clipped EWMA of level and
// spread, with an hourly daily profile where the series has one. Three tests read the
// residual: its robust z-score (spikes, dips, new levels), a short moving average of it
// (shifts and drifts that single samples hide) and its change since the previous sample
// (sudden steps in series that wander smoothly). Each test's statistic is then judged
// against its own history on this series (stats.Tail): a surprise counts by how far it
// goes beyond what this series has done within its memory, so a surprise that recurs often
// within the memory stops alarming, and a noisy series is not judged by a quiet one's rules.
// The smallest p-value of the three, times three (Bonferroni), makes the score
// -log10(p)/4, capped at 1: AnomalyThreshold (0.4) is p ≈ 0.025. A score is damped to a
// quarter, below the threshold, when it repeats a higher score of the refractory period (so
// one incident alarms at its onset) or when the same time of day (the hour and its
// neighbours) reached it on two of the last three days (so a daily routine, too rare per
// sample for the tails, does not alarm every day). RawScore keeps the undamped value for "is
// it anomalous", which the processor uses.
//
// One default configuration serves every series: nothing is tuned per series, and the
// same settings run the Numenta Anomaly Benchmark (cmd/nabrun).
package detector
