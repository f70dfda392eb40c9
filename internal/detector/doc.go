// Package detector is the streaming anomaly detector for one gauge-like health indicator
// (a latency quantile, an error ratio, a saturation): New(Config) gives a Detector, and
// Update(ts, value) judges each sample, returning a Result with an anomaly score in [0, 1]
// and its evidence (observed value, baseline, expected range, test, confidence).
//
// It is O(1) per sample, allocates nothing after New, and holds about 1.1 KiB (a Detector
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
// within the memory stops alarming, and a noisy series is not judged by a quiet one's rules
// (a daily event at 5-minute sampling is too rare for that: see README.md).
// The smallest p-value of the three, times three (Bonferroni), makes the score
// -log10(p)/4, capped at 1: AnomalyThreshold (0.4) is p ≈ 0.025. Repeated high scores in a
// refractory period are halved, so that one incident alarms at its onset; RawScore keeps
// the undamped value for "is it still anomalous".
//
// One default configuration serves every series: nothing is tuned per series, and the
// same settings run the Numenta Anomaly Benchmark (cmd/nabrun).
package detector
