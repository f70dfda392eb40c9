// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// fingerprint serializes every step, so two runs can be compared byte for byte.
func fingerprint(t *testing.T, sc *Scenario) []byte {
	t.Helper()
	var buf bytes.Buffer
	var tm ptrace.ProtoMarshaler
	var mm pmetric.ProtoMarshaler
	var lm plog.ProtoMarshaler
	require.NoError(t, sc.Run(func(st Step) error {
		for _, b := range [][]byte{mustBytes(tm.MarshalTraces(st.Traces)), mustBytes(mm.MarshalMetrics(st.Metrics)), mustBytes(lm.MarshalLogs(st.Logs))} {
			buf.Write(b)
		}
		buf.WriteString(st.Time.String())
		return nil
	}))
	return buf.Bytes()
}

func mustBytes(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	sc := testScenario(20)
	sc.WarmUp, sc.Observe = 2*time.Minute, 3*time.Minute
	sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3}
	first := fingerprint(t, &sc)
	assert.Equal(t, first, fingerprint(t, &sc), "the same seed must give the same telemetry")

	again := sc
	assert.Equal(t, first, fingerprint(t, &again), "a copy of the scenario must give the same telemetry")

	other := sc
	other.Seed++
	assert.NotEqual(t, first, fingerprint(t, &other), "another seed must give other telemetry")
}

func TestSignalsDoNotChangeTraffic(t *testing.T) {
	// Turning traces off must not change which requests happen: the metrics
	// of a metrics-only run count exactly the spans of a traces run.
	sc := testScenario(30)
	sc.WarmUp, sc.Observe = 5*time.Minute, 5*time.Minute
	withTraces := sc.WithSignals(SignalsAll)
	spans, _ := collect(t, &withTraces)
	metricsOnly := sc.WithSignals(SignalMetrics)
	assert.Equal(t, uint64(len(spans)), histogramTotal(t, &metricsOnly))
	assert.Equal(t, uint64(len(spans)), histogramTotal(t, &withTraces))
	assert.Equal(t, SignalsAll, sc.Services[0].Signals, "WithSignals must not modify the original")
}

func TestTrafficMatchesSpec(t *testing.T) {
	sc := testScenario(100)
	sc.WarmUp, sc.Observe = 60*time.Minute, 5*time.Minute
	sc.Services[0].Traffic.ErrorNoise = 0 // the long-run ratio is then a binomial estimate
	requests, cpu := collect(t, &sc)
	seconds := (sc.WarmUp + sc.Observe).Seconds()

	assert.InEpsilon(t, 100, float64(len(requests))/seconds, 0.05, "request rate")
	assert.InEpsilon(t, 0.01, errorRatio(requests), 0.06, "5xx ratio")
	clientErrors := filter(requests, func(r *request) bool { return r.status >= 400 && r.status < 500 })
	assert.InEpsilon(t, 0.02, float64(len(clientErrors))/float64(len(requests)), 0.06, "4xx ratio")
	for _, r := range clientErrors {
		require.False(t, r.isError, "a 4xx is not an error of a server span")
	}
	for _, r := range filter(requests, func(r *request) bool { return r.status >= 500 }) {
		require.True(t, r.isError, "a 5xx is an error of a server span")
	}
	assert.InEpsilon(t, 0.040, quantile(requests, 0.50), 0.04, "p50 latency")
	assert.InEpsilon(t, 0.180, quantile(requests, 0.95), 0.05, "p95 latency")
	assert.Greater(t, quantile(requests, 0.999), 4*0.180, "the latency tail is long")
	assert.InDelta(t, 0.35, meanCPU(cpu, func(*cpuReading) bool { return true }), 0.02, "CPU utilization")
}

func TestErrorRatioNoise(t *testing.T) {
	// With noise the long-run ratio is still the spec, but minute to minute it
	// varies more than binomial sampling alone would make it.
	perMinuteVariance := func(errorNoise float64) (ratio, variance float64) {
		sc := testScenario(100)
		sc.WarmUp, sc.Observe = 60*time.Minute, 5*time.Minute
		sc.Services[0].Traffic.ErrorNoise = errorNoise
		requests, _ := collect(t, &sc)
		perMinute := map[int64][2]float64{}
		for _, r := range requests {
			c := perMinute[r.end.Unix()/60]
			c[0]++
			if r.status >= 500 {
				c[1]++
			}
			perMinute[r.end.Unix()/60] = c
		}
		mean, sq := 0.0, 0.0
		for _, c := range perMinute {
			mean += c[1] / c[0]
			sq += (c[1] / c[0]) * (c[1] / c[0])
		}
		n := float64(len(perMinute))
		mean /= n
		return errorRatio(requests), sq/n - mean*mean
	}
	ratio, noisy := perMinuteVariance(0.15)
	assert.InEpsilon(t, 0.01, ratio, 0.2)
	_, binomial := perMinuteVariance(0)
	assert.Greater(t, noisy, 1.5*binomial, "error ratio noise adds variance")
}

func TestDiurnalRate(t *testing.T) {
	sc := testScenario(50)
	tr := &sc.Services[0].Traffic
	tr.DiurnalAmplitude, tr.DiurnalPeak, tr.RateNoise = 0.5, 12*time.Hour, 0
	// Deploy at 06:00, the day's quietest hour is 00:00: RPS is exact at the deployment start.
	sc.Start = time.Date(2026, time.January, 5, 5, 0, 0, 0, time.UTC)
	sc.WarmUp, sc.Observe = time.Hour, 7*time.Hour
	requests, _ := collect(t, &sc)
	count := func(from, to time.Time) float64 {
		return float64(len(filter(requests, func(r *request) bool { return !r.end.Before(from) && r.end.Before(to) }))) / to.Sub(from).Seconds()
	}
	deploy := sc.DeploymentStart()
	assert.InEpsilon(t, 50, count(deploy.Add(-10*time.Minute), deploy.Add(10*time.Minute)), 0.05, "rate at the deployment")
	noon := time.Date(2026, time.January, 5, 12, 0, 0, 0, time.UTC)
	// diurnal(06:00) = 1, diurnal(12:00) = 1.5.
	assert.InEpsilon(t, 75, count(noon.Add(-10*time.Minute), noon.Add(10*time.Minute)), 0.05, "rate at the peak")
}

func TestRegressionMagnitudes(t *testing.T) {
	// Each regression is compared with the clean run of the same seed: the
	// noise paths are shared, so the ratio is the regression alone.
	base := testScenario(100)
	base.WarmUp, base.Observe = 5*time.Minute, 20*time.Minute
	clean := base
	cleanRequests, cleanCPU := collect(t, &clean)
	label := clean.Label()
	afterRollout := func(r *request) bool { return !r.end.Before(label.RolloutEnd) }

	run := func(kind Kind, magnitude float64) ([]request, []cpuReading) {
		sc := base
		sc.Regression = &Regression{Kind: kind, Magnitude: magnitude}
		return collect(t, &sc)
	}

	t.Run("error_ratio x3", func(t *testing.T) {
		regressed, _ := run(KindErrorRatio, 3)
		assert.InEpsilon(t, 3, errorRatio(filter(regressed, afterRollout))/errorRatio(filter(cleanRequests, afterRollout)), 0.15)
	})
	t.Run("latency p95 +30%", func(t *testing.T) {
		regressed, _ := run(KindLatency, 1.3)
		assert.InEpsilon(t, 1.3, quantile(filter(regressed, afterRollout), 0.95)/quantile(filter(cleanRequests, afterRollout), 0.95), 0.04)
		before := func(r *request) bool { return r.end.Before(label.DeploymentStart) }
		assert.InEpsilon(t, 1, quantile(filter(regressed, before), 0.95)/quantile(filter(cleanRequests, before), 0.95), 0.04, "no change before the deployment")
	})
	t.Run("throughput -50%", func(t *testing.T) {
		regressed, _ := run(KindThroughput, 0.5)
		assert.InEpsilon(t, 0.5, float64(len(filter(regressed, afterRollout)))/float64(len(filter(cleanRequests, afterRollout))), 0.03)
	})
	t.Run("saturation creeps", func(t *testing.T) {
		_, cpu := run(KindSaturation, 0.4)
		settled := label.RolloutEnd.Add(5 * time.Minute)
		late := func(c *cpuReading) bool { return !c.at.Before(settled) }
		assert.InDelta(t, 0.4, meanCPU(cpu, late)-meanCPU(cleanCPU, late), 0.02)
		// One minute in, the first new instance has crept only a fifth of the way.
		first := func(c *cpuReading) bool {
			return c.version == "1.5.0" && c.at.After(label.DeploymentStart.Add(50*time.Second)) && !c.at.After(label.DeploymentStart.Add(70*time.Second))
		}
		cleanFirst := meanCPU(cleanCPU, first)
		assert.InDelta(t, 0.4/5, meanCPU(cpu, first)-cleanFirst, 0.03)
	})
}

func TestRollingDeployment(t *testing.T) {
	sc := testScenario(50)
	requests, _ := collect(t, &sc)
	label := sc.Label()
	require.Equal(t, label.DeploymentStart.Add(3*30*time.Second), label.RolloutEnd)

	byVersion := func(from, to time.Time) map[string]int {
		out := map[string]int{}
		for _, r := range requests {
			if !r.end.Before(from) && r.end.Before(to) {
				out[r.version]++
			}
		}
		return out
	}
	before := byVersion(sc.Start, label.DeploymentStart)
	assert.Equal(t, map[string]int{"1.4.2": before["1.4.2"]}, before, "only the old version before the deployment")
	first := byVersion(label.DeploymentStart, label.DeploymentStart.Add(30*time.Second))
	assert.InEpsilon(t, 1.0/3, float64(first["1.5.0"])/float64(first["1.5.0"]+first["1.4.2"]), 0.15, "one instance of three is new")
	after := byVersion(label.RolloutEnd, label.End)
	assert.Equal(t, map[string]int{"1.5.0": after["1.5.0"]}, after, "only the new version after the rollout")

	instances := map[string]map[string]bool{}
	for _, r := range requests {
		if instances[r.version] == nil {
			instances[r.version] = map[string]bool{}
		}
		instances[r.version][r.instance] = true
	}
	assert.Len(t, instances["1.4.2"], 3)
	assert.Len(t, instances["1.5.0"], 3)
}

func TestCanaryDeployment(t *testing.T) {
	sc := testScenario(100)
	sc.Deployment.Strategy = deployevent.StrategyCanary
	sc.Deployment.CanaryFraction = 0.2
	sc.Deployment.CanaryDuration = 10 * time.Minute
	requests, _ := collect(t, &sc)
	label := sc.Label()
	promotion := label.DeploymentStart.Add(10 * time.Minute)
	require.Equal(t, promotion.Add(3*30*time.Second), label.RolloutEnd)

	canaryPhase := filter(requests, func(r *request) bool { return !r.end.Before(label.DeploymentStart) && r.end.Before(promotion) })
	canary := filter(canaryPhase, func(r *request) bool { return r.version == "1.5.0" })
	assert.InDelta(t, 0.2, float64(len(canary))/float64(len(canaryPhase)), 0.01, "the canary serves its fraction")
	canaryInstances := map[string]bool{}
	for _, r := range canary {
		canaryInstances[r.instance] = true
	}
	assert.Len(t, canaryInstances, 1, "one canary instance")

	after := filter(requests, func(r *request) bool { return !r.end.Before(label.RolloutEnd) })
	assert.Len(t, filter(after, func(r *request) bool { return r.version != "1.5.0" }), 0, "promoted: only the new version")
	assert.Empty(t, label.Cohort, "a clean deployment has no regressed cohort")
}

func TestCanaryOnlyRegression(t *testing.T) {
	sc := testScenario(100)
	sc.Deployment.Strategy = deployevent.StrategyCanary
	sc.Deployment.CanaryFraction = 0.25
	sc.Deployment.CanaryDuration = time.Hour // never promoted within the scenario
	sc.Regression = &Regression{Kind: KindCanaryErrors, Magnitude: 3}
	requests, _ := collect(t, &sc)
	label := sc.Label()
	assert.Equal(t, deployevent.CohortCanary, label.Cohort)
	assert.True(t, label.RolloutEnd.IsZero(), "the canary is never promoted")
	assert.Equal(t, label.DeploymentStart, label.RegressionOnset)

	during := filter(requests, func(r *request) bool { return !r.end.Before(label.DeploymentStart) })
	canary := filter(during, func(r *request) bool { return r.version == "1.5.0" })
	baseline := filter(during, func(r *request) bool { return r.version == "1.4.2" })
	assert.InEpsilon(t, 3, errorRatio(canary)/errorRatio(baseline), 0.2, "the canary's errors ×3")
	before := filter(requests, func(r *request) bool { return r.end.Before(label.DeploymentStart) })
	assert.InEpsilon(t, 1.5, errorRatio(during)/errorRatio(before), 0.35, "the aggregate moves by the canary's share only")
	for _, svcEvents := range sc.Events() {
		assert.NotEqual(t, deployevent.StateSucceeded, svcEvents.State, "no final event for a canary still in analysis")
	}
}

func TestHistogramIsCumulative(t *testing.T) {
	sc := testScenario(20)
	sc.WarmUp, sc.Observe = 3*time.Minute, 3*time.Minute
	type state struct {
		start, last uint64
		count       uint64
	}
	seen := map[string]*state{}
	exports := 0
	require.NoError(t, sc.Run(func(st Step) error {
		for _, rm := range st.Metrics.ResourceMetrics().All() {
			instance := str(rm.Resource().Attributes(), AttrInstanceID)
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if m.Name() != MetricRequestDuration {
						continue
					}
					exports++
					require.Equal(t, pmetric.AggregationTemporalityCumulative, m.Histogram().AggregationTemporality())
					require.Equal(t, "s", m.Unit())
					for _, dp := range m.Histogram().DataPoints().All() {
						require.Equal(t, DurationBuckets, dp.ExplicitBounds().AsRaw())
						var sum uint64
						for _, c := range dp.BucketCounts().All() {
							sum += c
						}
						require.Equal(t, dp.Count(), sum, "bucket counts add up to the count")
						require.LessOrEqual(t, dp.StartTimestamp(), dp.Timestamp())
						key := instance + str(dp.Attributes(), AttrHTTPRoute) + str(dp.Attributes(), AttrHTTPStatusCode)
						s, ok := seen[key]
						if !ok {
							seen[key] = &state{start: uint64(dp.StartTimestamp()), last: uint64(dp.Timestamp()), count: dp.Count()}
							continue
						}
						require.Equal(t, s.start, uint64(dp.StartTimestamp()), "stable start time")
						require.Greater(t, uint64(dp.Timestamp()), s.last)
						require.GreaterOrEqual(t, dp.Count(), s.count, "cumulative counts never decrease")
						s.last, s.count = uint64(dp.Timestamp()), dp.Count()
					}
				}
			}
		}
		return nil
	}))
	assert.Positive(t, exports)
	assert.NotEmpty(t, seen)
}

func TestMetricIntervalAndTimestamps(t *testing.T) {
	sc := testScenario(5)
	sc.WarmUp, sc.Observe = 2*time.Minute, 2*time.Minute
	sc.MetricInterval = 30 * time.Second
	exportTimes := map[time.Time]bool{}
	require.NoError(t, sc.Run(func(st Step) error {
		windowStart := st.Time.Add(-sc.withDefaults().Step)
		for _, rs := range st.Traces.ResourceSpans().All() {
			for _, span := range rs.ScopeSpans().At(0).Spans().All() {
				end := span.EndTimestamp().AsTime()
				require.False(t, end.Before(windowStart) || !end.Before(st.Time), "span ends within its step")
				require.True(t, span.StartTimestamp().AsTime().Before(end))
			}
		}
		for _, e := range st.Events {
			require.False(t, e.Timestamp.Before(windowStart) || !e.Timestamp.Before(st.Time), "event within its step")
		}
		if st.Metrics.ResourceMetrics().Len() > 0 {
			exportTimes[st.Time] = true
		}
		return nil
	}))
	for at := range exportTimes {
		// Exports happen on the interval, or when an old instance stops (its last flush).
		onInterval := at.Sub(sc.Start)%(30*time.Second) == 0
		onReplacement := false
		for k := range 3 {
			onReplacement = onReplacement || at.Equal(sc.DeploymentStart().Add(time.Duration(k)*30*time.Second))
		}
		assert.True(t, onInterval || onReplacement, "unexpected export at %v", at)
	}
}

func TestErrorLogs(t *testing.T) {
	sc := testScenario(50)
	sc.WarmUp, sc.Observe = 5*time.Minute, 2*time.Minute
	requests, _ := collect(t, &sc)
	errorSpans := map[string]bool{}
	errs := 0
	for _, r := range requests {
		if r.status >= 500 {
			errs++
		}
	}
	logs := 0
	require.NoError(t, sc.Run(func(st Step) error {
		for _, rs := range st.Traces.ResourceSpans().All() {
			for _, span := range rs.ScopeSpans().At(0).Spans().All() {
				if span.Status().Code() == ptrace.StatusCodeError {
					errorSpans[span.SpanID().String()] = true
				}
			}
		}
		for _, rl := range st.Logs.ResourceLogs().All() {
			for _, lr := range rl.ScopeLogs().At(0).LogRecords().All() {
				if deployevent.IsLifecycle(lr) {
					continue
				}
				logs++
				require.Equal(t, plog.SeverityNumberError, lr.SeverityNumber())
				require.True(t, errorSpans[lr.SpanID().String()], "an error log points at its error span")
				require.NotEmpty(t, str(rl.Resource().Attributes(), deployevent.AttrServiceVersion))
			}
		}
		return nil
	}))
	assert.Equal(t, errs, logs, "one ERROR log per 5xx response")
}

func TestResourceAttributes(t *testing.T) {
	sc := testScenario(20)
	sc.WarmUp, sc.Observe = time.Minute, 2*time.Minute
	require.NoError(t, sc.Run(func(st Step) error {
		for _, rs := range st.Traces.ResourceSpans().All() {
			res := rs.Resource().Attributes()
			assert.Equal(t, "checkout", str(res, deployevent.AttrServiceName))
			assert.Equal(t, "shop", str(res, deployevent.AttrServiceNamespace))
			assert.Equal(t, "production", str(res, deployevent.AttrEnvironment))
			assert.Contains(t, []string{"1.4.2", "1.5.0"}, str(res, deployevent.AttrServiceVersion))
			assert.NotEmpty(t, str(res, AttrInstanceID))
		}
		return nil
	}))
}

func TestStopEarly(t *testing.T) {
	sc := testScenario(5)
	steps, err := sc.Steps()
	require.NoError(t, err)
	n := 0
	for range steps {
		n++
		if n == 3 {
			break
		}
	}
	assert.Equal(t, 3, n)

	n = 0
	require.NoError(t, sc.Run(func(Step) error {
		n++
		if n == 2 {
			return ErrStop
		}
		return nil
	}))
	assert.Equal(t, 2, n)
	total := 0
	require.NoError(t, sc.Run(func(Step) error { total++; return nil }))
	assert.Equal(t, int((sc.WarmUp+sc.Observe)/(5*time.Second)), total)
}
