// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package indicators extracts a service's health indicators from its telemetry
// into per-(key, cohort) accumulators of the current evaluation interval:
// request counts, errors and a latency sketch from SERVER/CONSUMER spans or from
// the semconv request-duration histograms, error log records, and the
// user-declared gauges, rates and ratios of metrics. It knows nothing of the
// collector's components; health judges what it accumulates.
//
// Time is the data's own: a datum stamped past the end of the current interval
// closes it (through a Closer) before it is counted. Nothing on the hot path
// allocates once a key's accumulators exist.
package indicators // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"

import (
	"errors"
	"fmt"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/detector"
)

// Names of the built-in indicators, as they appear in `indicator.name`.
const (
	// RequestRate is requests per second (spans, or request-duration histograms).
	RequestRate = "request_rate"
	// ErrorRatio is the share of requests that failed (0–1).
	ErrorRatio = "error_ratio"
	// LatencyP95 is the latency indicator: judged on the whole distribution
	// (Mann-Whitney between windows and cohorts), reported as its 95th
	// percentile, in seconds.
	LatencyP95 = "latency_p95"
	// LogErrorRate is log records with severity ERROR or above, per second.
	LogErrorRate = "log_error_rate"
)

// BuiltIn lists the built-in indicators in their fixed order.
var BuiltIn = []string{RequestRate, ErrorRatio, LatencyP95, LogErrorRate}

// Dimension is a dimension of the health score.
type Dimension string

// The dimensions, in the order they are reported.
const (
	DimensionErrors     Dimension = "errors"
	DimensionLatency    Dimension = "latency"
	DimensionThroughput Dimension = "throughput"
	DimensionSaturation Dimension = "saturation"
	DimensionBusiness   Dimension = "business"
	DimensionLogs       Dimension = "logs"
	// DimensionDependencies is the health of the calls between a service and
	// its neighbours: its own calls to its dependencies (unless a
	// dependency's rollout explains their harm) and, while it deploys, its
	// callers' calls to it (its blast radius).
	DimensionDependencies Dimension = "dependencies"
)

// NumDimensions sizes arrays indexed by a dimension's Index.
const NumDimensions = 7

// Dimensions lists every dimension in report order.
var Dimensions = [NumDimensions]Dimension{DimensionErrors, DimensionLatency, DimensionThroughput, DimensionSaturation, DimensionBusiness, DimensionLogs, DimensionDependencies}

// Index is the position of d in Dimensions, -1 if unknown.
func (d Dimension) Index() int {
	for i, x := range Dimensions {
		if x == d {
			return i
		}
	}
	return -1
}

// Kind is how a user-declared indicator is computed from its metric(s).
type Kind string

// The kinds of user-declared indicators.
const (
	// KindGauge is the mean of the metric's points in the interval (gauges,
	// non-monotonic sums such as a queue depth, utilizations).
	KindGauge Kind = "gauge"
	// KindRate is the metric's increase per second: monotonic sums
	// (cumulative or delta) and histogram counts.
	KindRate Kind = "rate"
	// KindRatio is the increase (or mean) of a numerator metric over that of a
	// denominator metric, e.g. failed orders over orders.
	KindRatio Kind = "ratio"
)

// Cohort says which serving version a datum came from.
type Cohort uint8

// The cohorts: CohortNone is data outside a two-version rollout (or without a version).
const (
	CohortNone Cohort = iota
	CohortBaseline
	CohortCanary
	// NumCohorts sizes arrays indexed by Cohort.
	NumCohorts
)

// CohortOf maps the tracker's cohort tag to a Cohort.
func CohortOf(c deployevent.Cohort) Cohort {
	switch c {
	case deployevent.CohortBaseline:
		return CohortBaseline
	case deployevent.CohortCanary:
		return CohortCanary
	}
	return CohortNone
}

// Tag is the deployment.cohort value of c ("" for CohortNone).
func (c Cohort) Tag() deployevent.Cohort {
	switch c {
	case CohortBaseline:
		return deployevent.CohortBaseline
	case CohortCanary:
		return deployevent.CohortCanary
	}
	return ""
}

// AttributeFilter requires a data point attribute to have a value (compared
// as its string form).
type AttributeFilter struct {
	Key   string
	Value string
}

// Definition is a user-declared indicator.
type Definition struct {
	// Name is the indicator's name in `indicator.name`; unique.
	Name string
	// Kind says how the value is computed.
	Kind Kind
	// Metric is the metric of a gauge or rate.
	Metric string
	// Numerator and Denominator are the metrics of a ratio.
	Numerator, Denominator string
	// Attributes keep only the data points with all of these attribute values.
	Attributes []AttributeFilter
	// Direction says which deviations hurt.
	Direction detector.Direction
	// Dimension is the health dimension the indicator counts in.
	Dimension Dimension
	// Weight is the indicator's weight within its dimension (relative to the
	// dimension's heaviest indicator).
	Weight float64
}

// Validate checks a definition; messages name the field.
func (d *Definition) Validate() error {
	switch {
	case d.Name == "":
		return errors.New("name: must not be empty")
	case d.Kind != KindGauge && d.Kind != KindRate && d.Kind != KindRatio:
		return fmt.Errorf("kind: must be gauge, rate or ratio, got %q", d.Kind)
	case d.Kind == KindRatio && (d.Numerator == "" || d.Denominator == ""):
		return errors.New("numerator, denominator: a ratio needs both metrics")
	case d.Kind != KindRatio && d.Metric == "":
		return fmt.Errorf("metric: a %s needs a metric name", d.Kind)
	case d.Dimension.Index() < 0:
		return fmt.Errorf("dimension: unknown dimension %q", d.Dimension)
	case d.Dimension == DimensionDependencies:
		return errors.New("dimension: dependencies is judged from outgoing calls, not from a metric")
	case !(d.Weight > 0):
		return fmt.Errorf("weight: must be positive, got %v", d.Weight)
	}
	for _, b := range BuiltIn {
		if d.Name == b {
			return fmt.Errorf("name: %q is a built-in indicator", d.Name)
		}
	}
	return nil
}
