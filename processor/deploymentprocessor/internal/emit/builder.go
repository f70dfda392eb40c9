// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package emit

// A table-driven builder of the derived metrics of metadata.yaml. mdatagen
// generates the MetricsBuilder type for a processor but not its
// constructor, so this builder stands in for it, using what the generated
// package exports: the MetricsBuilderConfig (found by each config field's
// mapstructure tag, the metric or resource attribute name), the attribute
// enums, the ResourceBuilder and ScopeName. Its output is what the
// generated MetricsBuilder would write.

import (
	"fmt"
	"reflect"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/filter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

type metricID int

// The metrics, in metadata.yaml's (alphabetical) order, the order mdatagen emits them in.
const (
	mActive metricID = iota
	mAnomalyScore
	mChangeFailureRatio
	mCount
	mDependencyBaseline
	mDependencyHealthScore
	mDependencyLower
	mDependencyUpper
	mDependencyValue
	mDetectionTime
	mDuration
	mHealthDimensionScore
	mHealthRecommendation
	mHealthScore
	mHealthVerdict
	mImpactServices
	mIndicatorBaseline
	mIndicatorLower
	mIndicatorUpper
	mIndicatorValue
	mInterval
	mLeadTime
	mRecoveryTime
	metricCount
)

// metricDef is one metric of metadata.yaml.
type metricDef struct {
	name, description, unit string
	sum                     bool // a cumulative sum, else a gauge
	monotonic               bool
	intValue                bool
	attributes              []string // the data point attribute names, in metadata.yaml's order
}

const (
	keyPhase  = "deployment.phase"
	keyCohort = "deployment.cohort"
	// keyDependency names what a service calls; keyDependencyService the
	// service it is, when known.
	keyDependency        = "deployment.dependency.name"
	keyDependencyService = "deployment.dependency.service"
)

var (
	phaseCohortIndicator = []string{keyPhase, keyCohort, "indicator.name"}
	dependencyIndicator  = []string{keyDependency, "indicator.name"}
	dependencyService    = []string{keyDependency, keyDependencyService, "indicator.name"}
)

var metricDefs = [metricCount]metricDef{
	mActive: {name: "deployment.active", unit: "{deployment}", intValue: true, attributes: []string{keyPhase},
		description: "1 while the service is in a deployment phase other than steady (one series per phase it is in)."},
	mAnomalyScore: {name: "deployment.anomaly.score", unit: "{score}", attributes: phaseCohortIndicator,
		description: "Anomaly score of an indicator, 0 (normal) to 1 (certainly anomalous)."},
	mChangeFailureRatio: {name: "deployment.change_failure.ratio", unit: "1",
		description: "DORA change failure rate - deployments that failed or were rolled back over those that succeeded, failed or were rolled back (cancelled ones changed nothing), over the configured window."},
	mCount: {name: "deployment.count", unit: "{deployment}", sum: true, monotonic: true, intValue: true,
		attributes:  []string{"deployment.status", "deployment.judgement"},
		description: "Finished deployments, by how they ended and how deploylens judged them while they ran (counted at the end - an alert in the post window after it does not change the judgement); every combination is reported, zeros included."},
	mDependencyBaseline: {name: "deployment.dependency.baseline", unit: "{value}", attributes: dependencyIndicator,
		description: "The baseline of an indicator of the service's calls to one dependency; frozen while the caller or the dependency deploys."},
	mDependencyHealthScore: {name: "deployment.dependency.health.score", unit: "{score}", attributes: []string{keyDependency, keyDependencyService},
		description: "Health score of the service's calls to one dependency, 0 (unhealthy) to 100 (healthy); no point while they are not judged."},
	mDependencyLower: {name: "deployment.dependency.lower", unit: "{value}", attributes: dependencyIndicator,
		description: "Lower edge of the expected range of an indicator of the service's calls to one dependency."},
	mDependencyUpper: {name: "deployment.dependency.upper", unit: "{value}", attributes: dependencyIndicator,
		description: "Upper edge of the expected range of an indicator of the service's calls to one dependency."},
	mDependencyValue: {name: "deployment.dependency.value", unit: "{value}", attributes: dependencyService,
		description: "An indicator of the service's calls to one dependency over the last evaluation interval - request_rate (calls per second), error_ratio (0-1), latency_p95 (seconds) - from its CLIENT and PRODUCER spans."},
	mDetectionTime: {name: "deployment.detection.time", unit: "s",
		description: "Time from a deployment's start to its first alert, for the most recent deployment that alerted."},
	mDuration: {name: "deployment.duration", unit: "s", attributes: []string{"deployment.status"},
		description: "Duration (start to end) of the most recent finished deployment."},
	mHealthDimensionScore: {name: "deployment.health.dimension.score", unit: "{score}",
		attributes:  []string{keyPhase, keyCohort, "health.dimension"},
		description: "Health score of one dimension, 0 (unhealthy) to 100 (healthy)."},
	mHealthRecommendation: {name: "deployment.health.recommendation", unit: "{recommendation}", intValue: true,
		attributes:  []string{keyCohort, "deployment.health.recommendation"},
		description: "What deploylens advises for the deployment, as a state set - one point per recommendation, 1 for the current one and 0 for the others."},
	mHealthScore: {name: "deployment.health.score", unit: "{score}", attributes: []string{keyPhase, keyCohort},
		description: "Health score of the service (per cohort while two versions serve), 0 (unhealthy) to 100 (healthy). A score is a judgement - no point is written while the verdict is inconclusive or the evaluation judged nothing - and it agrees with the verdict (healthy at or above health::healthy_above, unhealthy below health::unhealthy_below), so an unconfirmed dip of one evaluation does not show."},
	mHealthVerdict: {name: "deployment.health.verdict", unit: "{verdict}", intValue: true,
		attributes:  []string{keyCohort, "deployment.health.verdict"},
		description: "The health verdict as a state set (kube-state-metrics' way for enums) - one point per verdict value, 1 for the current one and 0 for the others, so a verdict change starts no new series; written from the first evaluation on, inconclusive included."},
	mImpactServices: {name: "deployment.impact.services", unit: "{service}", intValue: true, attributes: []string{keyPhase},
		description: "While the service deploys, how many of its callers' calls to it regressed since the deployment began (its blast radius, counted against the deployment)."},
	mIndicatorBaseline: {name: "deployment.indicator.baseline", unit: "{value}", attributes: phaseCohortIndicator,
		description: "The baseline (expected value) of an indicator; frozen at deployment start while a deployment is judged."},
	mIndicatorLower: {name: "deployment.indicator.lower", unit: "{value}", attributes: phaseCohortIndicator,
		description: "Lower edge of an indicator's expected range."},
	mIndicatorUpper: {name: "deployment.indicator.upper", unit: "{value}", attributes: phaseCohortIndicator,
		description: "Upper edge of an indicator's expected range."},
	mIndicatorValue: {name: "deployment.indicator.value", unit: "{value}", attributes: phaseCohortIndicator,
		description: "The observed value of an indicator over the last evaluation interval (ratios as 0-1, latencies in seconds, rates per second)."},
	mInterval: {name: "deployment.interval", unit: "s",
		description: "DORA deployment frequency - time between the starts of the two most recent deployments."},
	mLeadTime: {name: "deployment.lead_time", unit: "s",
		description: "DORA lead time for changes - commit time to successful end, for the most recent deployment whose events carried a commit time."},
	mRecoveryTime: {name: "deployment.recovery.time", unit: "s",
		description: "DORA time to restore service - from a failure (failed or rolled back deployment, or first alert) to healthy again, for the most recent recovery."},
}

// metricState is one metric's configuration and the data points recorded
// for the current resource.
type metricState struct {
	def        *metricDef
	enabled    bool
	strategy   string
	attributes []bool // per def.attributes: enabled in the config
	data       pmetric.Metric
	aggregated []int64 // per data point: how many values it aggregates
}

// builder is what mdatagen's MetricsBuilder is for receivers.
type builder struct {
	metrics   [metricCount]metricState
	config    metadata.MetricsBuilderConfig
	startTime pcommon.Timestamp
	version   string
	include   map[string]filter.Filter
	exclude   map[string]filter.Filter
	buffer    pmetric.Metrics
}

func newBuilder(cfg metadata.MetricsBuilderConfig, info component.BuildInfo) *builder {
	b := &builder{config: cfg, startTime: pcommon.NewTimestampFromTime(time.Now()), version: info.Version,
		include: map[string]filter.Filter{}, exclude: map[string]filter.Filter{}, buffer: pmetric.NewMetrics()}
	for id := range b.metrics {
		def := &metricDefs[id]
		m := metricConfig(cfg.Metrics, def.name)
		st := &b.metrics[id]
		st.def, st.enabled, st.strategy = def, m.FieldByName("Enabled").Bool(), m.FieldByName("AggregationStrategy").String()
		enabled := m.FieldByName("EnabledAttributes")
		for _, a := range def.attributes {
			on := false
			for i := 0; i < enabled.Len(); i++ {
				on = on || enabled.Index(i).String() == a
			}
			st.attributes = append(st.attributes, on)
		}
		st.reset()
	}
	ras := reflect.ValueOf(cfg.ResourceAttributes)
	for i := 0; i < ras.NumField(); i++ {
		name := ras.Type().Field(i).Tag.Get("mapstructure")
		ra := ras.Field(i).Interface().(metadata.ResourceAttributeConfig)
		if ra.MetricsInclude != nil {
			b.include[name] = filter.CreateFilter(ra.MetricsInclude)
		}
		if ra.MetricsExclude != nil {
			b.exclude[name] = filter.CreateFilter(ra.MetricsExclude)
		}
	}
	return b
}

// configField is the field of a generated config struct whose mapstructure tag is name.
func configField(v reflect.Value, name string) (reflect.Value, bool) {
	for i := 0; i < v.NumField(); i++ {
		if v.Type().Field(i).Tag.Get("mapstructure") == name {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func metricConfig(cfg metadata.MetricsConfig, name string) reflect.Value {
	v, ok := configField(reflect.ValueOf(cfg), name)
	if !ok {
		panic(fmt.Sprintf("emit: metric %q is not in metadata.MetricsConfig", name))
	}
	return v
}

func (m *metricState) reset() {
	m.data = pmetric.NewMetric()
	m.data.SetName(m.def.name)
	m.data.SetDescription(m.def.description)
	m.data.SetUnit(m.def.unit)
	if m.def.sum {
		m.data.SetEmptySum()
		m.data.Sum().SetIsMonotonic(m.def.monotonic)
		m.data.Sum().SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	} else {
		m.data.SetEmptyGauge()
	}
	m.aggregated = m.aggregated[:0]
}

func (m *metricState) points() pmetric.NumberDataPointSlice {
	if m.def.sum {
		return m.data.Sum().DataPoints()
	}
	return m.data.Gauge().DataPoints()
}

// number is a data point value, read and written as the metric's value type.
type number struct {
	i int64
	d float64
}

func (m *metricState) get(dp pmetric.NumberDataPoint) number {
	if m.def.intValue {
		return number{i: dp.IntValue()}
	}
	return number{d: dp.DoubleValue()}
}

func (m *metricState) set(dp pmetric.NumberDataPoint, v number) {
	if m.def.intValue {
		dp.SetIntValue(v.i)
	} else {
		dp.SetDoubleValue(v.d)
	}
}

func (m *metricState) less(a, b number) bool {
	if m.def.intValue {
		return a.i < b.i
	}
	return a.d < b.d
}

// record adds a data point, aggregating it (by the configured strategy)
// into one of the same attributes and times.
func (m *metricState) record(start, ts pcommon.Timestamp, v number, attrs ...string) {
	if !m.enabled {
		return
	}
	dp := pmetric.NewNumberDataPoint()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	for i, name := range m.def.attributes {
		if m.attributes[i] {
			dp.Attributes().PutStr(name, attrs[i])
		}
	}
	dps := m.points()
	for i := 0; i < dps.Len(); i++ {
		dpi := dps.At(i)
		if !dp.Attributes().Equal(dpi.Attributes()) || dp.StartTimestamp() != dpi.StartTimestamp() || dp.Timestamp() != dpi.Timestamp() {
			continue
		}
		cur := m.get(dpi)
		switch m.strategy {
		case metadata.AggregationStrategySum, metadata.AggregationStrategyAvg:
			m.set(dpi, number{i: cur.i + v.i, d: cur.d + v.d})
			m.aggregated[i]++
			return
		case metadata.AggregationStrategyMin:
			if m.less(v, cur) {
				m.set(dpi, v)
			}
			return
		case metadata.AggregationStrategyMax:
			if m.less(cur, v) {
				m.set(dpi, v)
			}
			return
		}
	}
	m.set(dp, v)
	m.aggregated = append(m.aggregated, 1)
	dp.MoveTo(dps.AppendEmpty())
}

func (m *metricState) emit(out pmetric.MetricSlice) {
	dps := m.points()
	if !m.enabled || dps.Len() == 0 {
		return
	}
	if m.strategy == metadata.AggregationStrategyAvg {
		for i, n := range m.aggregated {
			cur := m.get(dps.At(i))
			m.set(dps.At(i), number{i: cur.i / n, d: cur.d / float64(n)})
		}
	}
	m.data.MoveTo(out.AppendEmpty())
	m.reset()
}

func (b *builder) int(id metricID, ts pcommon.Timestamp, v int64, attrs ...string) {
	b.metrics[id].record(b.startTime, ts, number{i: v}, attrs...)
}

func (b *builder) double(id metricID, ts pcommon.Timestamp, v float64, attrs ...string) {
	b.metrics[id].record(b.startTime, ts, number{d: v}, attrs...)
}

func (b *builder) newResourceBuilder() *metadata.ResourceBuilder {
	return metadata.NewResourceBuilder(b.config.ResourceAttributes)
}

// emitForResource moves the recorded metrics under res, unless the
// resource attribute filters drop them.
func (b *builder) emitForResource(res pcommon.Resource) {
	rm := pmetric.NewResourceMetrics()
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	sm.Scope().SetVersion(b.version)
	for id := range b.metrics {
		b.metrics[id].emit(sm.Metrics())
	}
	res.CopyTo(rm.Resource())
	attrs := rm.Resource().Attributes()
	for name, f := range b.include {
		if v, ok := attrs.Get(name); ok && !f.Matches(v.AsString()) {
			return
		}
	}
	for name, f := range b.exclude {
		if v, ok := attrs.Get(name); ok && f.Matches(v.AsString()) {
			return
		}
	}
	if sm.Metrics().Len() > 0 {
		rm.MoveTo(b.buffer.ResourceMetrics().AppendEmpty())
	}
}

// emit returns the metrics of every resource emitted since the last emit.
func (b *builder) emit() pmetric.Metrics {
	b.emitForResource(pcommon.NewResource())
	out := b.buffer
	b.buffer = pmetric.NewMetrics()
	return out
}
