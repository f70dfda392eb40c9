// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package health judges, per tracked service key, whether its telemetry is
// healthy, and during a deployment whether the deployment hurts. It knows
// nothing of the collector: indicators come from package indicators, the
// deployment state from a StatusFunc, time from the data and from the caller.
//
// Per key and indicator, a streaming anomaly detector (package detector)
// learns a robust baseline, frozen when a deployment starts so that the
// rollout and its post window are judged against the state before it. While a
// deployment runs, the window since its start is also compared with the
// window before it, and the canary cohort with the baseline cohort (Kayenta's
// way) and with the window before: Mann-Whitney U on latency distributions,
// two-proportion (or Fisher's exact) tests on error ratios, Poisson rate tests
// on rates; gauges that follow the load are judged net of it. Holm's method
// keeps the indicators' many tests from inflating false alarms; an evidence
// threshold and consecutive evaluations (hysteresis) keep repeated looks from
// doing so. Indicator scores make dimension scores, a weighted health score
// (0–100), a verdict and a recommendation, kept in a Snapshot per key that
// readers load without locks. MarshalState and RestoreState save and load
// what the engine learned.
package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/detector"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// Config sets the engine up. DefaultConfig gives every field a value.
type Config struct {
	// IntervalActive is the evaluation interval while a deployment is
	// queued, rolls out or is in its post window. It is also the resolution
	// at which baselines learn, in every phase, so that what a baseline
	// learned is on the scale it judges.
	IntervalActive time.Duration
	// IntervalSteady is the evaluation interval of keys without a
	// deployment; a multiple of IntervalActive.
	IntervalSteady time.Duration
	// SpanKinds are the kinds of spans that count as requests.
	SpanKinds []ptrace.SpanKind
	// Weights are the dimensions' weights, indexed like indicators.Dimensions.
	Weights [indicators.NumDimensions]float64
	// Enter is the number of consecutive evaluations a worse verdict needs to
	// be taken; Leave the number a better verdict needs.
	Enter, Leave int
	// MinRequests is the minimum of requests (per interval for the detectors,
	// per group for the comparisons) under which a request indicator is
	// inconclusive.
	MinRequests int
	// Alpha is the family-wise significance level at which evidence of harm
	// starts to count: an indicator whose Holm-adjusted p-value is Alpha has
	// the anomaly score AlphaScore (see AnomalyScore).
	Alpha float64
	// CompareWindow is the length of the windows compared during a
	// deployment: the reference before it, and the most recent data since it
	// (between one and two windows of data, as windows roll).
	CompareWindow time.Duration
	// HealthyAbove and UnhealthyBelow cut the health score into verdicts:
	// healthy at or above HealthyAbove, unhealthy below UnhealthyBelow,
	// degraded between.
	HealthyAbove, UnhealthyBelow float64
	// Indicators are the user-declared indicators.
	Indicators []indicators.Definition
	// MaxKeys bounds the keys judged; IdleTTL forgets keys without data.
	MaxKeys int
	IdleTTL time.Duration
	// Edges makes an engine of edges: its keys have a Dependency, its
	// requests are the calls of SpanKinds (client, producer), and it judges
	// no log records.
	Edges bool
	// MaxDependencies bounds the edges judged per calling service (in an
	// engine of edges; 0: only MaxKeys bounds them).
	MaxDependencies int
	// Relations, in an engine of services, gives the edges each service's
	// judgement reads (nil: none).
	Relations Relations
	// MaxStreams bounds the cumulative metric streams remembered (all keys);
	// StreamTTL forgets streams without a point.
	MaxStreams int
	StreamTTL  time.Duration
	// CloseDelay is how long after an interval's end the sweep closes it when
	// no later data did: room for late data.
	CloseDelay time.Duration
	// Now is the processor's clock; nil means time.Now.
	Now func() time.Time
}

// Defaults.
const (
	DefaultIntervalActive = 10 * time.Second
	DefaultIntervalSteady = 60 * time.Second
	DefaultEnter          = 2
	DefaultLeave          = 3
	DefaultMinRequests    = 20
	DefaultAlpha          = 0.001
	DefaultCompareWindow  = 5 * time.Minute
	DefaultHealthyAbove   = 70
	DefaultUnhealthyBelow = 40
	DefaultMaxKeys        = 10_000
	DefaultIdleTTL        = 24 * time.Hour
	DefaultMaxStreams     = 100_000
	DefaultStreamTTL      = 15 * time.Minute
	DefaultCloseDelay     = 5 * time.Second
	// DefaultMaxDependencies bounds the dependencies judged per service.
	DefaultMaxDependencies = 32
)

// DefaultWeights returns the dimensions' default weights, by dimension; a
// fresh map each call, so no caller can change another's defaults.
func DefaultWeights() map[indicators.Dimension]float64 {
	return map[indicators.Dimension]float64{
		indicators.DimensionErrors:     0.35,
		indicators.DimensionLatency:    0.3,
		indicators.DimensionThroughput: 0.15,
		indicators.DimensionSaturation: 0.1,
		indicators.DimensionBusiness:   0.05,
		indicators.DimensionLogs:       0.05,
		// Calls to dependencies and, while deploying, callers' calls: as
		// heavy as throughput plus saturation, so that strong evidence on
		// one edge alone makes a verdict.
		indicators.DimensionDependencies: 0.25,
	}
}

// DefaultIndicators are the user-declared indicators of the default
// configuration: CPU utilization (semantic conventions) as saturation.
func DefaultIndicators() []indicators.Definition {
	return []indicators.Definition{{
		Name: "cpu_utilization", Kind: indicators.KindGauge, Metric: "process.cpu.utilization",
		Direction: detector.HigherIsWorse, Dimension: indicators.DimensionSaturation, Weight: 1,
	}}
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{
		IntervalActive: DefaultIntervalActive,
		IntervalSteady: DefaultIntervalSteady,
		SpanKinds:      []ptrace.SpanKind{ptrace.SpanKindServer, ptrace.SpanKindConsumer},
		Enter:          DefaultEnter,
		Leave:          DefaultLeave,
		MinRequests:    DefaultMinRequests,
		Alpha:          DefaultAlpha,
		CompareWindow:  DefaultCompareWindow,
		HealthyAbove:   DefaultHealthyAbove,
		UnhealthyBelow: DefaultUnhealthyBelow,
		Indicators:     DefaultIndicators(),
		MaxKeys:        DefaultMaxKeys,
		IdleTTL:        DefaultIdleTTL,
		MaxStreams:     DefaultMaxStreams,
		StreamTTL:      DefaultStreamTTL,
		CloseDelay:     DefaultCloseDelay,
	}
	for d, w := range DefaultWeights() {
		c.Weights[d.Index()] = w
	}
	return c
}

// Validate reports settings that cannot work.
func (c *Config) Validate() error {
	var errs []error
	switch {
	case c.IntervalActive < time.Second:
		errs = append(errs, fmt.Errorf("interval_active must be at least 1s, got %s", c.IntervalActive))
	case c.IntervalSteady < c.IntervalActive || c.IntervalSteady%c.IntervalActive != 0:
		errs = append(errs, fmt.Errorf("interval_steady must be a multiple of interval_active (%s), got %s", c.IntervalActive, c.IntervalSteady))
	}
	if c.Enter < 1 || c.Leave < 1 {
		errs = append(errs, fmt.Errorf("hysteresis must be at least 1 evaluation, got enter %d, leave %d", c.Enter, c.Leave))
	}
	if c.MinRequests < 1 {
		errs = append(errs, fmt.Errorf("min_requests must be positive, got %d", c.MinRequests))
	}
	if !(c.Alpha > 0 && c.Alpha < 1) {
		errs = append(errs, fmt.Errorf("alpha must be in (0, 1), got %v", c.Alpha))
	}
	if c.CompareWindow < c.IntervalActive {
		errs = append(errs, fmt.Errorf("compare_window must be at least interval_active, got %s", c.CompareWindow))
	}
	if !(c.UnhealthyBelow >= 0 && c.UnhealthyBelow <= c.HealthyAbove && c.HealthyAbove <= 100) {
		errs = append(errs, fmt.Errorf("thresholds must satisfy 0 ≤ unhealthy ≤ healthy ≤ 100, got %v and %v", c.UnhealthyBelow, c.HealthyAbove))
	}
	total := 0.0
	for _, w := range c.Weights {
		if w < 0 {
			errs = append(errs, errors.New("weights must not be negative"))
			break
		}
		total += w
	}
	if !(total > 0) {
		errs = append(errs, errors.New("weights: at least one dimension needs a positive weight"))
	}
	if c.MaxKeys < 1 || c.MaxStreams < 0 {
		errs = append(errs, errors.New("max_keys must be positive and max_streams not negative"))
	}
	return errors.Join(errs...)
}
