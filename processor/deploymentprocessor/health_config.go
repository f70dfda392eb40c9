// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/deploylens/deploylens/internal/detector"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// HealthConfig configures the health engine.
type HealthConfig struct {
	// Enabled turns the health engine on.
	Enabled bool `mapstructure:"enabled"`
	// Evaluation sets when keys are judged.
	Evaluation EvaluationConfig `mapstructure:"evaluation"`
	// SpanKinds are the span kinds counted as requests.
	SpanKinds []string `mapstructure:"span_kinds"`
	// MinRequests is the request count under which request indicators are
	// inconclusive: per interval for the baselines, per side for comparisons.
	MinRequests int `mapstructure:"min_requests"`
	// Alpha is the family-wise significance level (Holm) at which evidence of
	// harm starts to count.
	Alpha float64 `mapstructure:"alpha"`
	// CompareWindow is the length of the windows compared during a
	// deployment (before/after and canary/baseline).
	CompareWindow time.Duration `mapstructure:"compare_window"`
	// Weights are the dimensions' weights in the health score.
	Weights WeightsConfig `mapstructure:"weights"`
	// Hysteresis sets how many consecutive evaluations change a verdict.
	Hysteresis HysteresisConfig `mapstructure:"hysteresis"`
	// Thresholds cut the health score into verdicts.
	Thresholds ThresholdsConfig `mapstructure:"thresholds"`
	// MaxStreams bounds the cumulative metric streams remembered.
	MaxStreams int `mapstructure:"max_streams"`
	// Indicators are user-declared indicators from metrics. Setting the list
	// replaces the default one (cpu_utilization).
	Indicators []IndicatorConfig `mapstructure:"indicators"`
	// Dependencies configures the indicators of each service's calls to its
	// dependencies (the edges of the service graph).
	Dependencies DependenciesConfig `mapstructure:"dependencies"`
}

// DependenciesConfig configures dependency indicators: request rate, error
// ratio and latency of a service's outgoing calls per dependency, judged
// like the service's own indicators, in its dependencies dimension; while a
// dependency deploys, the calls to it are its blast radius.
type DependenciesConfig struct {
	// Enabled turns dependency indicators on.
	Enabled bool `mapstructure:"enabled"`
	// SpanKinds are the span kinds counted as outgoing calls.
	SpanKinds []string `mapstructure:"span_kinds"`
	// MaxPerService bounds the dependencies judged per service; calls to
	// more are counted as refused.
	MaxPerService int `mapstructure:"max_per_service"`
	// MaxEdges bounds the (service, dependency) edges judged in all.
	MaxEdges int `mapstructure:"max_edges"`
}

// EvaluationConfig sets the evaluation intervals.
type EvaluationConfig struct {
	// IntervalActive is the interval while a deployment is queued, rolls out
	// or is in its post window; baselines learn at this resolution always.
	IntervalActive time.Duration `mapstructure:"interval_active"`
	// IntervalSteady is the interval of keys without a deployment.
	IntervalSteady time.Duration `mapstructure:"interval_steady"`
	// CloseDelay is how long after its end an interval without later data
	// waits for late data before it is judged.
	CloseDelay time.Duration `mapstructure:"close_delay"`
}

// WeightsConfig are the dimensions' weights.
type WeightsConfig struct {
	Errors     float64 `mapstructure:"errors"`
	Latency    float64 `mapstructure:"latency"`
	Throughput float64 `mapstructure:"throughput"`
	Saturation float64 `mapstructure:"saturation"`
	Business   float64 `mapstructure:"business"`
	Logs       float64 `mapstructure:"logs"`
	// Dependencies weighs the calls between the service and its neighbours.
	Dependencies float64 `mapstructure:"dependencies"`
}

// HysteresisConfig sets how verdicts change.
type HysteresisConfig struct {
	// Enter is the number of consecutive evaluations that make a worse verdict.
	Enter int `mapstructure:"enter"`
	// Leave is the number of consecutive evaluations that make a better one.
	Leave int `mapstructure:"leave"`
}

// ThresholdsConfig cuts the health score (0–100) into verdicts.
type ThresholdsConfig struct {
	// Healthy: a score at or above it is healthy.
	Healthy float64 `mapstructure:"healthy"`
	// Unhealthy: a score below it is unhealthy; between the two, degraded.
	Unhealthy float64 `mapstructure:"unhealthy"`
}

// IndicatorConfig declares an indicator computed from metrics.
type IndicatorConfig struct {
	// Name is the indicator's name (indicator.name).
	Name string `mapstructure:"name"`
	// Kind is gauge, rate or ratio.
	Kind string `mapstructure:"kind"`
	// Metric is the metric of a gauge or a rate.
	Metric string `mapstructure:"metric"`
	// Numerator and Denominator are the metrics of a ratio.
	Numerator   string `mapstructure:"numerator"`
	Denominator string `mapstructure:"denominator"`
	// Attributes keep only data points with these attribute values.
	Attributes map[string]string `mapstructure:"attributes"`
	// Direction is higher_is_worse, lower_is_worse or both.
	Direction string `mapstructure:"direction"`
	// Dimension is errors, latency, throughput, saturation, business or logs.
	Dimension string `mapstructure:"dimension"`
	// Weight is the indicator's weight within its dimension.
	Weight float64 `mapstructure:"weight"`
}

func defaultHealthConfig() HealthConfig {
	d := health.DefaultConfig()
	w := health.DefaultWeights()
	return HealthConfig{
		Enabled: true,
		Evaluation: EvaluationConfig{
			IntervalActive: d.IntervalActive,
			IntervalSteady: d.IntervalSteady,
			CloseDelay:     d.CloseDelay,
		},
		SpanKinds:     []string{"server", "consumer"},
		MinRequests:   d.MinRequests,
		Alpha:         d.Alpha,
		CompareWindow: d.CompareWindow,
		Weights: WeightsConfig{
			Errors: w[indicators.DimensionErrors], Latency: w[indicators.DimensionLatency],
			Throughput: w[indicators.DimensionThroughput], Saturation: w[indicators.DimensionSaturation],
			Business: w[indicators.DimensionBusiness], Logs: w[indicators.DimensionLogs],
			Dependencies: w[indicators.DimensionDependencies],
		},
		Hysteresis: HysteresisConfig{Enter: d.Enter, Leave: d.Leave},
		Thresholds: ThresholdsConfig{Healthy: d.HealthyAbove, Unhealthy: d.UnhealthyBelow},
		MaxStreams: d.MaxStreams,
		Dependencies: DependenciesConfig{
			Enabled:       true,
			SpanKinds:     []string{"client", "producer"},
			MaxPerService: health.DefaultMaxDependencies,
			MaxEdges:      defaultMaxEdges,
		},
		Indicators: []IndicatorConfig{{
			Name: "cpu_utilization", Kind: "gauge", Metric: "process.cpu.utilization",
			Direction: "higher_is_worse", Dimension: "saturation", Weight: 1,
		}},
	}
}

// defaultMaxEdges bounds the edges of the service graph judged.
const defaultMaxEdges = 50_000

// edgeConfig is the configuration of the engine of edges, from the
// services' one: the same judgement of calls instead of requests.
func (hc *HealthConfig) edgeConfig(c health.Config) (health.Config, error) {
	kinds, err := indicators.SpanKinds(hc.Dependencies.SpanKinds)
	if err != nil {
		return c, healthKeyError("dependencies::span_kinds", err)
	}
	if hc.Dependencies.MaxPerService < 1 {
		return c, healthKeyError("dependencies::max_per_service", fmt.Errorf("must be positive, got %d", hc.Dependencies.MaxPerService))
	}
	if hc.Dependencies.MaxEdges < 1 {
		return c, healthKeyError("dependencies::max_edges", fmt.Errorf("must be positive, got %d", hc.Dependencies.MaxEdges))
	}
	c.Edges = true
	c.SpanKinds = kinds
	c.Indicators = nil
	c.MaxDependencies = hc.Dependencies.MaxPerService
	c.MaxKeys = hc.Dependencies.MaxEdges
	return c, nil
}

// engineConfig is the engine's configuration for hc, or every error in it,
// each naming its YAML key.
func (hc *HealthConfig) engineConfig(cfg *Config) (health.Config, error) {
	c, errs := hc.translate(cfg)
	errs = append(errs, hc.invalidSettings(c)...)
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("health: %w", err))
		}
	}
	return c, errors.Join(errs...)
}

// healthKeyError names the YAML key under health: that err is about.
func healthKeyError(key string, err error) error {
	return fmt.Errorf("health::%s: %w", key, err)
}

// dimensionWeight is one dimension's weight as configured.
type dimensionWeight struct {
	dimension indicators.Dimension
	weight    float64
}

// byDimension lists the weights in the engine's dimension order.
func (wc WeightsConfig) byDimension() []dimensionWeight {
	return []dimensionWeight{
		{indicators.DimensionErrors, wc.Errors}, {indicators.DimensionLatency, wc.Latency},
		{indicators.DimensionThroughput, wc.Throughput}, {indicators.DimensionSaturation, wc.Saturation},
		{indicators.DimensionBusiness, wc.Business}, {indicators.DimensionLogs, wc.Logs},
		{indicators.DimensionDependencies, wc.Dependencies},
	}
}

// translate maps the YAML configuration onto the engine's, filling the
// defaults of omitted indicator fields; its errors are the values that cannot
// be parsed (span kinds, indicator directions).
func (hc *HealthConfig) translate(cfg *Config) (health.Config, []error) {
	var errs []error
	c := health.DefaultConfig()
	c.IntervalActive = hc.Evaluation.IntervalActive
	c.IntervalSteady = hc.Evaluation.IntervalSteady
	c.CloseDelay = hc.Evaluation.CloseDelay
	kinds, err := indicators.SpanKinds(hc.SpanKinds)
	if err != nil {
		errs = append(errs, healthKeyError("span_kinds", err))
	}
	c.SpanKinds = kinds
	c.MinRequests = hc.MinRequests
	c.Alpha = hc.Alpha
	c.CompareWindow = hc.CompareWindow
	c.Enter, c.Leave = hc.Hysteresis.Enter, hc.Hysteresis.Leave
	c.HealthyAbove, c.UnhealthyBelow = hc.Thresholds.Healthy, hc.Thresholds.Unhealthy
	c.MaxStreams = hc.MaxStreams
	c.MaxKeys = cfg.MaxServices
	c.IdleTTL = cfg.IdleTTL
	for _, dw := range hc.Weights.byDimension() {
		c.Weights[dw.dimension.Index()] = dw.weight
	}
	c.Indicators = nil
	for i, ic := range hc.Indicators {
		def, err := ic.definition()
		if err != nil {
			errs = append(errs, healthKeyError(fmt.Sprintf("indicators[%d]::direction", i), err))
		}
		c.Indicators = append(c.Indicators, def)
	}
	return c, errs
}

// definition is the engine's indicator for ic: direction higher_is_worse,
// dimension business and weight 1 where omitted.
func (ic IndicatorConfig) definition() (indicators.Definition, error) {
	dir, err := detector.ParseDirection(ic.Direction)
	if ic.Direction == "" {
		dir, err = detector.HigherIsWorse, nil
	}
	def := indicators.Definition{
		Name: ic.Name, Kind: indicators.Kind(ic.Kind), Metric: ic.Metric,
		Numerator: ic.Numerator, Denominator: ic.Denominator,
		Direction: dir, Dimension: indicators.Dimension(ic.Dimension), Weight: ic.Weight,
	}
	if def.Weight == 0 {
		def.Weight = 1
	}
	if def.Dimension == "" {
		def.Dimension = indicators.DimensionBusiness
	}
	for _, k := range slices.Sorted(maps.Keys(ic.Attributes)) {
		def.Attributes = append(def.Attributes, indicators.AttributeFilter{Key: k, Value: ic.Attributes[k]})
	}
	return def, err
}

// invalidSettings checks the settings' ranges, and the indicators as
// translated into c (one per configured indicator, in order).
func (hc *HealthConfig) invalidSettings(c health.Config) []error {
	var errs []error
	add := func(key string, err error) {
		errs = append(errs, healthKeyError(key, err))
	}
	for _, dw := range hc.Weights.byDimension() {
		if dw.weight < 0 {
			add("weights::"+string(dw.dimension), fmt.Errorf("must not be negative, got %v", dw.weight))
		}
	}
	seen := map[string]bool{}
	for i, def := range c.Indicators {
		key := fmt.Sprintf("indicators[%d]", i)
		if err := def.Validate(); err != nil {
			add(key, err)
		} else if seen[def.Name] {
			add(key+"::name", fmt.Errorf("%q is declared twice", def.Name))
		}
		seen[def.Name] = true
	}
	switch {
	case hc.Evaluation.IntervalActive < time.Second:
		add("evaluation::interval_active", fmt.Errorf("must be at least 1s, got %s", hc.Evaluation.IntervalActive))
	case hc.Evaluation.IntervalSteady < hc.Evaluation.IntervalActive || hc.Evaluation.IntervalSteady%hc.Evaluation.IntervalActive != 0:
		add("evaluation::interval_steady", fmt.Errorf("must be a multiple of interval_active (%s), got %s",
			hc.Evaluation.IntervalActive, hc.Evaluation.IntervalSteady))
	}
	if hc.Evaluation.CloseDelay < 0 {
		add("evaluation::close_delay", fmt.Errorf("must not be negative, got %s", hc.Evaluation.CloseDelay))
	}
	if hc.Hysteresis.Enter < 1 {
		add("hysteresis::enter", fmt.Errorf("must be at least 1, got %d", hc.Hysteresis.Enter))
	}
	if hc.Hysteresis.Leave < 1 {
		add("hysteresis::leave", fmt.Errorf("must be at least 1, got %d", hc.Hysteresis.Leave))
	}
	if hc.MinRequests < 1 {
		add("min_requests", fmt.Errorf("must be positive, got %d", hc.MinRequests))
	}
	if !(hc.Alpha > 0 && hc.Alpha < 1) {
		add("alpha", fmt.Errorf("must be in (0, 1), got %v", hc.Alpha))
	}
	if hc.CompareWindow < hc.Evaluation.IntervalActive {
		add("compare_window", fmt.Errorf("must be at least interval_active, got %s", hc.CompareWindow))
	}
	if !(hc.Thresholds.Unhealthy >= 0 && hc.Thresholds.Unhealthy <= hc.Thresholds.Healthy && hc.Thresholds.Healthy <= 100) {
		add("thresholds", fmt.Errorf("must satisfy 0 ≤ unhealthy ≤ healthy ≤ 100, got unhealthy %v, healthy %v",
			hc.Thresholds.Unhealthy, hc.Thresholds.Healthy))
	}
	total := 0.0
	for _, w := range c.Weights {
		total += max(w, 0)
	}
	if !(total > 0) {
		add("weights", errors.New("at least one dimension needs a positive weight"))
	}
	if hc.MaxStreams < 0 {
		add("max_streams", fmt.Errorf("must not be negative, got %d", hc.MaxStreams))
	}
	return errs
}

func (hc *HealthConfig) validate(cfg *Config) error {
	if !hc.Enabled {
		return nil
	}
	c, err := hc.engineConfig(cfg)
	if err == nil && hc.Dependencies.Enabled {
		_, err = hc.edgeConfig(c)
	}
	return err
}
