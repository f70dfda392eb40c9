// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package indicators // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"

import (
	"fmt"
	"hash/maphash"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/stats"
)

// Telemetry the built-in indicators read (OpenTelemetry semantic conventions).
const (
	MetricHTTPServerDuration = "http.server.request.duration"
	MetricRPCServerDuration  = "rpc.server.duration"
	MetricRPCServerCall      = "rpc.server.call.duration"

	// The semconv client metrics: a service's calls, per dependency.
	MetricHTTPClientDuration = "http.client.request.duration"
	MetricRPCClientDuration  = "rpc.client.duration"
	MetricRPCClientCall      = "rpc.client.call.duration"
	MetricDBClientDuration   = "db.client.operation.duration"

	attrHTTPStatus       = "http.response.status_code"
	attrHTTPStatusLegacy = "http.status_code"
	attrGRPCStatus       = "rpc.grpc.status_code"
	attrRPCStatus        = "rpc.response.status_code"
	attrErrorType        = "error.type"

	// AttrInstanceID and its fallbacks identify an instance (for cohort rates).
	AttrInstanceID = "service.instance.id"
	attrPodName    = "k8s.pod.name"
	attrHostName   = "host.name"
)

// SpanKinds parses span kind names (server, consumer, client, producer, internal).
func SpanKinds(names []string) ([]ptrace.SpanKind, error) {
	out := make([]ptrace.SpanKind, 0, len(names))
	for _, n := range names {
		switch strings.ToLower(n) {
		case "server":
			out = append(out, ptrace.SpanKindServer)
		case "consumer":
			out = append(out, ptrace.SpanKindConsumer)
		case "client":
			out = append(out, ptrace.SpanKindClient)
		case "producer":
			out = append(out, ptrace.SpanKindProducer)
		case "internal":
			out = append(out, ptrace.SpanKindInternal)
		default:
			return nil, fmt.Errorf("unknown span kind %q, must be one of server, consumer, client, producer, internal", n)
		}
	}
	return out, nil
}

// metricRole says what a metric feeds.
type metricRole uint8

const (
	roleValue metricRole = iota // a gauge's or a rate's metric
	roleNumerator
	roleDenominator
)

type metricUse struct {
	def  int
	role metricRole
}

// filter is an AttributeFilter resolved for allocation-free matching.
type filter struct {
	key   string
	value string
}

// Extractor turns telemetry into accumulator contents. It is immutable after
// NewExtractor and safe for concurrent use; the windows it writes are not.
type Extractor struct {
	kinds   [8]bool
	defs    []Definition
	filters [][]filter
	uses    map[string][]metricUse
	tick    int64
}

// NewExtractor returns an extractor counting spans of the given kinds and the
// user-declared indicators defs, for windows of interval tick.
func NewExtractor(kinds []ptrace.SpanKind, defs []Definition, tick time.Duration) *Extractor {
	x := &Extractor{defs: defs, uses: map[string][]metricUse{}, tick: int64(tick)}
	for _, k := range kinds {
		if int(k) >= 0 && int(k) < len(x.kinds) {
			x.kinds[k] = true
		}
	}
	x.filters = make([][]filter, len(defs))
	for i := range defs {
		d := &defs[i]
		for _, f := range d.Attributes {
			x.filters[i] = append(x.filters[i], filter{key: f.Key, value: f.Value})
		}
		switch d.Kind {
		case KindRatio:
			x.uses[d.Numerator] = append(x.uses[d.Numerator], metricUse{def: i, role: roleNumerator})
			x.uses[d.Denominator] = append(x.uses[d.Denominator], metricUse{def: i, role: roleDenominator})
		default:
			x.uses[d.Metric] = append(x.uses[d.Metric], metricUse{def: i, role: roleValue})
		}
	}
	return x
}

// Definitions returns the user-declared indicators.
func (x *Extractor) Definitions() []Definition { return x.defs }

// Source is what the caller knows of one resource: computed once per
// resource, used for every datum in it.
type Source struct {
	// Cohort of the resource's data.
	Cohort Cohort
	// Instance is the hash of the resource's instance identity (0: unknown).
	Instance uint64
	// Identity is the hash of all the resource's attributes: metric streams
	// are told apart by it.
	Identity uint64
	// Now is the processor's clock (unix ns). Data without a timestamp is
	// counted now, and data stamped more than an interval ahead of it (a
	// skewed clock) counts as now rather than closing intervals early.
	Now int64
}

var hashSeed = maphash.MakeSeed()

// HashResource computes the Instance and Identity hashes of a resource.
func HashResource(res pcommon.Map) (instance, identity uint64) {
	var fallback uint64
	for k, v := range res.All() {
		if written(k) {
			continue
		}
		h := hashAttr(k, v)
		identity += h
		switch k {
		case AttrInstanceID:
			instance = h
		case attrPodName, attrHostName:
			if fallback == 0 {
				fallback = h
			}
		}
	}
	if instance == 0 {
		instance = fallback
	}
	return instance, mix(identity)
}

// written tells the attributes the processor itself writes: they change with
// the phase, so they are no part of a stream's identity.
func written(k string) bool {
	switch k {
	case deployevent.AttrDeploymentPhase, deployevent.AttrDeploymentID, deployevent.AttrDeploymentCohort:
		return true
	}
	return false
}

// hashAttr hashes one attribute; sums of it are independent of attribute order.
func hashAttr(k string, v pcommon.Value) uint64 {
	h := maphash.String(hashSeed, k)
	switch v.Type() {
	case pcommon.ValueTypeStr:
		h ^= mix(maphash.String(hashSeed, v.Str()))
	case pcommon.ValueTypeInt:
		h ^= mix(uint64(v.Int()) + 0x9e3779b97f4a7c15)
	case pcommon.ValueTypeDouble:
		h ^= mix(math.Float64bits(v.Double()) + 0x632be59bd9b4e019)
	case pcommon.ValueTypeBool:
		if v.Bool() {
			h ^= 0x2545f4914f6cdd1d
		}
	default:
		h ^= mix(maphash.String(hashSeed, v.AsString()))
	}
	return mix(h)
}

// mix is the splitmix64 finaliser.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (s *Source) clamp(ts int64, tick int64) int64 {
	if ts <= 0 || ts > s.Now+tick {
		return s.Now
	}
	return ts
}

// AddSpans counts the spans of the configured kinds: one request each, an
// error when it failed, its duration as a latency.
func (x *Extractor) AddSpans(w *Window, src *Source, scopes ptrace.ScopeSpansSlice, c Closer) {
	for i := range scopes.Len() {
		spans := scopes.At(i).Spans()
		for j := range spans.Len() {
			span := spans.At(j)
			if x.Counts(span.Kind()) {
				x.AddSpan(w, src, span, c)
			}
		}
	}
}

// Counts tells whether spans of kind k count as requests.
func (x *Extractor) Counts(k ptrace.SpanKind) bool {
	return int(k) >= 0 && int(k) < len(x.kinds) && x.kinds[k]
}

// AddSpan counts one span, whatever its kind: a request, an error when it
// failed, its duration as a latency.
func (x *Extractor) AddSpan(w *Window, src *Source, span ptrace.Span, c Closer) {
	x.AddSpanOutcome(w, src, span, spanFailed(span), c)
}

// AddSpanOutcome counts one span whose failure the caller read (ReadCall).
func (x *Extractor) AddSpanOutcome(w *Window, src *Source, span ptrace.Span, failed bool, c Closer) {
	start, end := int64(span.StartTimestamp()), int64(span.EndTimestamp())
	ts := src.clamp(end, x.tick)
	w.Place(ts, c)
	w.useSpans(ts)
	acc := &w.Cur[src.Cohort]
	acc.Requests++
	if failed {
		acc.Errors++
	}
	if end > start && start > 0 {
		acc.latency().Add(float64(end-start) / 1e9)
	}
	if acc.Active == nil {
		acc.Active = &ActiveTable{}
	}
	acc.Active.Add(src.Instance, ts)
	w.HasData = true
}

// spanFailed: status ERROR; else, with the status unset, an HTTP 5xx or a
// gRPC code that is the server's fault.
func spanFailed(span ptrace.Span) bool {
	switch span.Status().Code() {
	case ptrace.StatusCodeError:
		return true
	case ptrace.StatusCodeOk:
		return false
	}
	for k, v := range span.Attributes().All() {
		switch k {
		case attrHTTPStatus, attrHTTPStatusLegacy:
			return intValue(v) >= 500
		case attrGRPCStatus, attrRPCStatus:
			return grpcServerError(v)
		}
	}
	return false
}

func intValue(v pcommon.Value) int64 {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int()
	case pcommon.ValueTypeStr:
		n := int64(0)
		s := v.Str()
		if len(s) == 0 || len(s) > 4 {
			return 0
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0
			}
			n = n*10 + int64(s[i]-'0')
		}
		return n
	case pcommon.ValueTypeDouble:
		return int64(v.Double())
	}
	return 0
}

// grpcServerError: the codes that are the server's fault, as semantic
// conventions mark gRPC server spans (UNKNOWN, DEADLINE_EXCEEDED,
// UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS).
func grpcServerError(v pcommon.Value) bool {
	if v.Type() == pcommon.ValueTypeStr {
		switch v.Str() {
		case "UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS":
			return true
		}
	}
	switch intValue(v) {
	case 2, 4, 12, 13, 14, 15:
		return true
	}
	return false
}

// AddLogs counts application log records and those at ERROR or above.
// deployment.lifecycle and deployment.alert records are not application logs.
func (x *Extractor) AddLogs(w *Window, src *Source, scopes plog.ScopeLogsSlice, c Closer) {
	for i := range scopes.Len() {
		records := scopes.At(i).LogRecords()
		for j := range records.Len() {
			lr := records.At(j)
			if name := lr.EventName(); name == deployevent.EventName || name == deployevent.AlertEventName {
				continue
			}
			ts := int64(lr.Timestamp())
			if ts == 0 {
				ts = int64(lr.ObservedTimestamp())
			}
			ts = src.clamp(ts, x.tick)
			w.Place(ts, c)
			if ts > w.LastLog {
				w.LastLog = ts
			}
			acc := &w.Cur[src.Cohort]
			acc.LogRecords++
			if logIsError(lr) {
				acc.LogErrors++
			}
			w.HasData = true
		}
	}
}

func logIsError(lr plog.LogRecord) bool {
	if n := lr.SeverityNumber(); n != plog.SeverityNumberUnspecified {
		return n >= plog.SeverityNumberError
	}
	switch t := lr.SeverityText(); {
	case t == "":
		return false
	case strings.EqualFold(t, "error"), strings.EqualFold(t, "fatal"), strings.EqualFold(t, "critical"),
		strings.EqualFold(t, "crit"), strings.EqualFold(t, "alert"), strings.EqualFold(t, "emerg"), strings.EqualFold(t, "panic"):
		return true
	}
	return false
}

// AddMetrics reads the request-duration histograms and the metrics of the
// user-declared indicators. Cumulative points become increases through
// streams; the first point of a stream that started long ago only sets its
// starting values.
func (x *Extractor) AddMetrics(w *Window, st *Streams, src *Source, scopes pmetric.ScopeMetricsSlice, c Closer) {
	for i := range scopes.Len() {
		metrics := scopes.At(i).Metrics()
		for j := range metrics.Len() {
			m := metrics.At(j)
			name := m.Name()
			switch name {
			case MetricHTTPServerDuration, MetricRPCServerDuration, MetricRPCServerCall:
				x.addRequestHistogram(w, st, src, m, c, nil)
			}
			if uses, ok := x.uses[name]; ok {
				for _, u := range uses {
					x.addCustom(w, st, src, m, u, c)
				}
			}
		}
	}
}

// secondsPerUnit converts a duration metric's unit to seconds.
func secondsPerUnit(m pmetric.Metric) float64 {
	switch m.Unit() {
	case "ms":
		return 1e-3
	case "us", "µs", "μs":
		return 1e-6
	case "ns":
		return 1e-9
	case "s":
		return 1
	}
	if n := m.Name(); n == MetricRPCServerDuration || n == MetricRPCClientDuration {
		return 1e-3 // milliseconds in the semantic conventions that define it
	}
	return 1
}

// ClientMetric tells whether a metric is a semconv client duration
// histogram: calls, whose points name their dependency.
func ClientMetric(name string) bool {
	switch name {
	case MetricHTTPClientDuration, MetricRPCClientDuration, MetricRPCClientCall, MetricDBClientDuration:
		return true
	}
	return false
}

// AddDependencyMetric counts the points of a client duration histogram
// that call dep, as AddMetrics counts request histograms.
func (x *Extractor) AddDependencyMetric(w *Window, st *Streams, src *Source, m pmetric.Metric, dep DependencyName, c Closer) {
	x.addRequestHistogram(w, st, src, m, c, &dep)
}

// addRequestHistogram counts a request histogram's points (only those that
// call only, when set).
func (x *Extractor) addRequestHistogram(w *Window, st *Streams, src *Source, m pmetric.Metric, c Closer, only *DependencyName) {
	scale := secondsPerUnit(m)
	var cov coverage
	stream := requestStream{nameHash: maphash.String(hashSeed, m.Name()), cov: &cov}
	switch m.Type() {
	case pmetric.MetricTypeHistogram:
		h := m.Histogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		for _, dp := range h.DataPoints().All() {
			if only != nil && DependencyOf(dp.Attributes()) != *only {
				continue
			}
			acc, _, ok := x.requestPoint(w, src, c, stream, dp.Timestamp(), dp.Attributes(), func(id uint64, ts int64) (histDelta, bool) {
				return st.explicitDelta(id, dp, cumulative, ts)
			})
			if !ok {
				continue
			}
			st.boundsView = st.boundsView[:0]
			for b := range dp.ExplicitBounds().Len() {
				st.boundsView = append(st.boundsView, dp.ExplicitBounds().At(b)*scale)
			}
			_ = acc.latency().AddExplicitBuckets(&st.boundsView, &st.countsView, math.NaN(), math.NaN())
		}
	case pmetric.MetricTypeExponentialHistogram:
		h := m.ExponentialHistogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		for _, dp := range h.DataPoints().All() {
			if only != nil && DependencyOf(dp.Attributes()) != *only {
				continue
			}
			acc, d, ok := x.requestPoint(w, src, c, stream, dp.Timestamp(), dp.Attributes(), func(id uint64, ts int64) (histDelta, bool) {
				return st.exponentialDelta(id, dp, cumulative, ts)
			})
			if !ok {
				continue
			}
			sk := acc.latency()
			if scale == 1 {
				_ = sk.AddExponentialBuckets(d.scale, d.zero,
					stats.ExponentialBuckets{Offset: d.posOffset, Counts: &st.posView},
					stats.ExponentialBuckets{Offset: d.negOffset, Counts: &st.negView})
			} else {
				st.addScaledExponential(sk, d, scale)
			}
		}
	}
	cov.credit()
}

// requestStream is what the points of one request histogram share: the
// hash of its name (for stream ids) and the coverage they add up.
// (Window, source and closer are passed on their own: in a struct, the
// window's escape would send the source to the heap with it.)
type requestStream struct {
	nameHash uint64
	cov      *coverage
}

// requestPoint places a request histogram point stamped t, unless spans
// report its interval (spans win over metrics) or its delta (from delta, by
// stream id) is unknown: its requests and failures counted, its time
// covered. It returns the interval's accumulator and the delta, and whether
// the delta has buckets to add.
func (x *Extractor) requestPoint(w *Window, src *Source, c Closer, rs requestStream, t pcommon.Timestamp, attrs pcommon.Map,
	delta func(id uint64, ts int64) (histDelta, bool),
) (*Accumulator, histDelta, bool) {
	ts := src.clamp(int64(t), x.tick)
	if w.spansReport(ts) {
		return nil, histDelta{}, false
	}
	d, ok := delta(streamID(src.Identity, rs.nameHash, attrs), ts)
	if !ok {
		return nil, histDelta{}, false
	}
	acc := x.placePoint(w, src, ts, c)
	x.countRequests(acc, src, d.count, d.seconds, requestFailed(attrs))
	rs.cov.add(acc, coveredSeconds(d.seconds, x.tick))
	return acc, d, d.count > 0
}

// coverage is the time a resource's request histograms cover, its
// instance-seconds: points of one export share it (counted once, in the last
// point's interval); the shortest is the export interval (a series first seen
// later covers the time since the instance's start).
type coverage struct {
	seconds float64
	last    *Accumulator
}

func (cv *coverage) add(acc *Accumulator, seconds float64) {
	if cv.last == nil || seconds < cv.seconds {
		cv.seconds = seconds
	}
	cv.last = acc
}

func (cv *coverage) credit() {
	if cv.last != nil {
		cv.last.InstanceSeconds += cv.seconds
	}
}

// coveredSeconds is the time a point covers, an interval when unknown.
func coveredSeconds(seconds float64, tick int64) float64 {
	if seconds > 0 {
		return seconds
	}
	return float64(tick) / 1e9
}

// placePoint places a metric point: a point stamped t describes the time up
// to t, so it belongs to the interval that ends at t.
func (x *Extractor) placePoint(w *Window, src *Source, ts int64, c Closer) *Accumulator {
	w.Place(ts-1, c)
	w.HasData = true
	return &w.Cur[src.Cohort]
}

func (x *Extractor) countRequests(acc *Accumulator, src *Source, count uint64, seconds float64, failed bool) {
	acc.Instances.Add(src.Instance)
	acc.Requests += count
	if failed {
		acc.Errors += count
	}
	acc.MetricRate += float64(count) / math.Max(seconds, float64(x.tick)/1e9)
	acc.MetricPoints++
}

// requestFailed reads a request-duration point's attributes: an HTTP 5xx, a
// gRPC server-fault code, or (without a status) an error.type.
func requestFailed(attrs pcommon.Map) bool {
	errorType := false
	for k, v := range attrs.All() {
		switch k {
		case attrHTTPStatus, attrHTTPStatusLegacy:
			return intValue(v) >= 500
		case attrGRPCStatus, attrRPCStatus:
			return grpcServerError(v)
		case attrErrorType:
			errorType = true
		}
	}
	return errorType
}

func (x *Extractor) matches(def int, attrs pcommon.Map) bool {
	for _, f := range x.filters[def] {
		v, ok := attrs.Get(f.key)
		if !ok {
			return false
		}
		if v.Type() == pcommon.ValueTypeStr {
			if v.Str() != f.value {
				return false
			}
			continue
		}
		if v.AsString() != f.value {
			return false
		}
	}
	return true
}

func (x *Extractor) addCustom(w *Window, st *Streams, src *Source, m pmetric.Metric, u metricUse, c Closer) {
	def := &x.defs[u.def]
	// Every use of a metric keeps its own streams: two indicators may read one metric.
	nameHash := maphash.String(hashSeed, m.Name()) ^ mix(uint64(u.def)<<2|uint64(u.role)+1)
	add := func(acc *Accumulator, value, seconds float64) {
		ca := &acc.Custom[u.def]
		ca.Points++
		switch def.Kind {
		case KindGauge:
			ca.Sum += value
			ca.Total++
			if ca.Values == nil {
				ca.Values = NewGaugeSketch()
			}
			ca.Values.Add(value)
		case KindRate:
			ca.Sum += value / math.Max(seconds, float64(x.tick)/1e9)
			ca.Total += value
		case KindRatio:
			if u.role == roleNumerator {
				ca.Sum += value
			} else {
				ca.Total += value
			}
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge, pmetric.MetricTypeSum:
		var points pmetric.NumberDataPointSlice
		cumulative, gauge := false, true
		if m.Type() == pmetric.MetricTypeSum {
			s := m.Sum()
			points = s.DataPoints()
			// A monotonic sum counts something; other sums are read like gauges.
			gauge = !s.IsMonotonic()
			cumulative = s.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		} else {
			points = m.Gauge().DataPoints()
		}
		if def.Kind == KindRate && gauge {
			return // a rate needs a counter
		}
		for k := range points.Len() {
			dp := points.At(k)
			if !x.matches(u.def, dp.Attributes()) {
				continue
			}
			ts := src.clamp(int64(dp.Timestamp()), x.tick)
			value := numberValue(dp)
			seconds := 0.0
			if !gauge && def.Kind != KindGauge {
				id := streamID(src.Identity, nameHash, dp.Attributes())
				var ok bool
				if value, seconds, ok = st.sumDelta(id, int64(dp.StartTimestamp()), value, cumulative, ts); !ok {
					continue
				}
			}
			add(x.placePoint(w, src, ts, c), value, seconds)
		}
	case pmetric.MetricTypeHistogram:
		if def.Kind == KindGauge {
			return
		}
		h := m.Histogram()
		cumulative := h.AggregationTemporality() == pmetric.AggregationTemporalityCumulative
		points := h.DataPoints()
		for k := range points.Len() {
			dp := points.At(k)
			if !x.matches(u.def, dp.Attributes()) {
				continue
			}
			ts := src.clamp(int64(dp.Timestamp()), x.tick)
			// The histogram's count is what a rate or ratio of it counts.
			id := streamID(src.Identity, nameHash^0x5bd1e995, dp.Attributes())
			value, seconds, ok := st.sumDelta(id, int64(dp.StartTimestamp()), float64(dp.Count()), cumulative, ts)
			if !ok {
				continue
			}
			add(x.placePoint(w, src, ts, c), value, seconds)
		}
	}
}

func numberValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

func streamID(resource, name uint64, attrs pcommon.Map) uint64 {
	var h uint64
	for k, v := range attrs.All() {
		if !written(k) {
			h += hashAttr(k, v)
		}
	}
	return mix(resource ^ mix(name+h))
}
