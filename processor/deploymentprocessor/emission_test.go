// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/kpi"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

// pickScenario returns the first library scenario with the regression kind at rps.
func pickScenario(t *testing.T, kind scenario.Kind, rps float64) scenario.Scenario {
	t.Helper()
	for _, sc := range scenario.Library(1) {
		if l := sc.Label(); l.Kind == kind && l.TrafficRPS == rps {
			return sc
		}
	}
	t.Fatalf("no scenario %s at %g req/s", kind, rps)
	return scenario.Scenario{}
}

type alertRecord struct {
	name, state, service, deploymentID, body string
	attrs                                    map[string]any
}

func alertRecords(sink *consumertest.LogsSink) []alertRecord {
	var out []alertRecord
	for _, l := range sink.AllLogs() {
		for i := 0; i < l.ResourceLogs().Len(); i++ {
			rl := l.ResourceLogs().At(i)
			service, _ := rl.Resource().Attributes().Get(deployevent.AttrServiceName)
			lrs := rl.ScopeLogs().At(0).LogRecords()
			for j := 0; j < lrs.Len(); j++ {
				lr := lrs.At(j)
				if lr.EventName() != deployevent.AlertEventName {
					continue
				}
				a := lr.Attributes().AsRaw()
				id, _ := a[deployevent.AttrDeploymentID].(string)
				out = append(out, alertRecord{name: a[deployevent.AttrAlertName].(string), state: a[deployevent.AttrAlertState].(string),
					service: service.Str(), deploymentID: id, body: lr.Body().Str(), attrs: a})
			}
		}
	}
	return out
}

// gaugeValues lists the values of metric name for service (the service as a
// whole, not its cohorts), in emission order.
func gaugeValues(sink *consumertest.MetricsSink, name, service string) []float64 {
	var out []float64
	for _, md := range sink.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			if v, _ := rm.Resource().Attributes().Get(deployevent.AttrServiceName); v.Str() != service {
				continue
			}
			ms := rm.ScopeMetrics().At(0).Metrics()
			for j := 0; j < ms.Len(); j++ {
				m := ms.At(j)
				if m.Name() != name {
					continue
				}
				var dps pmetric.NumberDataPointSlice
				if m.Type() == pmetric.MetricTypeSum {
					dps = m.Sum().DataPoints()
				} else {
					dps = m.Gauge().DataPoints()
				}
				for k := 0; k < dps.Len(); k++ {
					if c, ok := dps.At(k).Attributes().Get(deployevent.AttrDeploymentCohort); ok && c.Str() != "" {
						continue // the service as a whole
					}
					if dps.At(k).ValueType() == pmetric.NumberDataPointValueTypeInt {
						out = append(out, float64(dps.At(k).IntValue()))
					} else {
						out = append(out, dps.At(k).DoubleValue())
					}
				}
			}
		}
	}
	return out
}

// TestSignalsFromARegression runs a deployment whose new version triples the
// error ratio through the processor in simulated time, emitting every 10 s:
// the derived metrics reach the metrics pipeline (health score falls, the
// indicator band is drawn, the deployment is counted), and the alert signals
// reach the logs pipeline (fire with context and evidence, re-sent, and
// resolved when the deployment is rolled back).
func TestSignalsFromARegression(t *testing.T) {
	sc := pickScenario(t, scenario.KindErrorRatio, 50)
	l := sc.Label()
	f := newFactory()
	pf := f.processorFactory()
	cfg := createDefaultConfig().(*Config)
	set := processortest.NewNopSettings(metadata.Type)
	ctx := context.Background()
	logsSink, metricsSink := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	logs, err := pf.CreateLogs(ctx, set, cfg, logsSink)
	require.NoError(t, err)
	traces, err := pf.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	metrics, err := pf.CreateMetrics(ctx, set, cfg, metricsSink)
	require.NoError(t, err)
	defer func() {
		for _, c := range []component.Component{logs, traces, metrics} {
			assert.NoError(t, c.Shutdown(ctx))
		}
	}()
	p := f.instance(set.ID)
	clock := newTestClock(sc.Start)
	p.now = clock.Now

	var lastEmit time.Time
	emitDue := func(now time.Time) {
		if now.Sub(lastEmit) >= cfg.Signals.Interval {
			lastEmit = now
			p.emitSignals(ctx, now)
		}
	}
	require.NoError(t, sc.Run(func(st scenario.Step) error {
		clock.Set(st.Time)
		// The deployment is rolled back below, not left to succeed.
		st.Logs.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
			lr := rl.ScopeLogs().At(0).LogRecords()
			if lr.Len() == 0 || lr.At(0).EventName() != deployevent.EventName {
				return false
			}
			state, _ := lr.At(0).Attributes().Get(deployevent.AttrDeploymentState)
			return state.Str() == string(deployevent.StateSucceeded)
		})
		require.NoError(t, logs.ConsumeLogs(ctx, st.Logs))
		require.NoError(t, traces.ConsumeTraces(ctx, st.Traces))
		require.NoError(t, metrics.ConsumeMetrics(ctx, st.Metrics))
		p.health.Sweep(st.Time)
		emitDue(st.Time)
		return nil
	}))

	// The alerts: the regression fired with its deployment and evidence.
	var fired *alertRecord
	all := alertRecords(logsSink)
	for i := range all {
		if all[i].state == "firing" && all[i].service == l.Service && all[i].name == alerts.Regression {
			fired = &all[i]
			break
		}
	}
	require.NotNil(t, fired, "the deployment's regression alert fired: %v", all)
	evidence, _ := fired.attrs[deployevent.AttrAlertEvidence].([]any)
	require.NotEmpty(t, evidence)
	assert.Equal(t, "error_ratio", evidence[0].(map[string]any)[deployevent.AttrIndicatorName], "the strongest evidence first")
	assert.NotContains(t, fired.attrs, deployevent.AttrIndicatorName, "about the deployment, not one indicator")
	// One faulty deployment, one alert: no other judgement alert of the service, ever.
	for _, a := range all {
		if a.service == l.Service && alerts.IsJudgement(a.name) {
			assert.Equal(t, fired.attrs[deployevent.AttrAlertFingerprint], a.attrs[deployevent.AttrAlertFingerprint], "%s: %s", a.name, a.body)
		}
	}
	assert.Equal(t, l.DeploymentID, fired.deploymentID)
	assert.Contains(t, fired.body, "error ratio")
	assert.Contains(t, fired.body, "after the rollout began")
	assert.NotEmpty(t, fired.attrs[deployevent.AttrAlertFingerprint])
	assert.Contains(t, []any{"during", "post"}, fired.attrs[deployevent.AttrDeploymentPhase])
	firings := 0
	for _, a := range all {
		if a.attrs[deployevent.AttrAlertFingerprint] == fired.attrs[deployevent.AttrAlertFingerprint] && a.state == "firing" {
			firings++
		}
	}
	assert.Greater(t, firings, 1, "re-sent while firing")

	// The metrics: the health score fell; the band was drawn.
	scores := gaugeValues(metricsSink, "deployment.health.score", l.Service)
	require.NotEmpty(t, scores)
	lowest := 100.0
	for _, s := range scores {
		lowest = min(lowest, s)
	}
	assert.Less(t, lowest, 70.0, "the health score fell below healthy")
	assert.NotEmpty(t, gaugeValues(metricsSink, "deployment.indicator.baseline", l.Service))
	assert.NotEmpty(t, gaugeValues(metricsSink, "deployment.anomaly.score", l.Service))
	assert.NotEmpty(t, gaugeValues(metricsSink, "deployment.active", l.Service))

	// A rollback resolves every alert of the service.
	now := clock.Now().Add(10 * time.Second)
	clock.Set(now)
	ev := deployevent.Event{Service: l.Service, Namespace: l.Namespace, Environment: l.Environment, Version: l.Version,
		PreviousVersion: l.PreviousVersion, ID: l.DeploymentID, State: deployevent.StateRolledBack, Timestamp: now}
	rollback := plog.NewLogs()
	ev.AppendTo(rollback, now)
	require.NoError(t, logs.ConsumeLogs(ctx, rollback))
	p.emitSignals(ctx, now)
	resolved := map[any]bool{}
	for _, a := range alertRecords(logsSink) {
		if a.state == "resolved" {
			resolved[a.attrs[deployevent.AttrAlertFingerprint]] = true
		}
	}
	assert.True(t, resolved[fired.attrs[deployevent.AttrAlertFingerprint]], "the regression alert resolved on rollback")
	assert.Empty(t, p.emitter.alerts.Firing(alerts.Key{Namespace: l.Namespace, Service: l.Service, Environment: l.Environment}))

	// The KPIs: the rolled back deployment is counted, with its detection time.
	values, ok := p.emitter.book.Values(kpi.Key{Namespace: l.Namespace, Service: l.Service, Environment: l.Environment}, now)
	require.True(t, ok)
	assert.Equal(t, [4][3]int64{{}, {}, {1, 0, 0}, {}}, values.Counts, "one deployment, rolled back after an alert")
	p.emitSignals(ctx, now.Add(cfg.Signals.Interval))
	counted := gaugeValues(metricsSink, "deployment.count", l.Service)
	require.NotEmpty(t, counted)
	assert.True(t, values.HasDetectionTime)
	assert.Positive(t, values.DetectionTime)
	assert.Less(t, values.DetectionTime, 180.0, "detected within three minutes of the rollout's start")
}

// TestStuckIsNoJudgement: DeploymentStuck (like DeploymentFailed) states a
// fact; it neither makes the deployment alerted nor gives a detection time.
// Without telemetry the deployment is never judged: it counts as unjudged.
func TestStuckIsNoJudgement(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	ctx := context.Background()
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, 0))
	stuckAt := t0.Add(90 * time.Minute)
	ps.clock.Set(stuckAt)
	ps.proc.tracker.Sweep(stuckAt)
	ps.proc.emitSignals(ctx, stuckAt)
	var stuck bool
	for _, a := range alertRecords(ps.logsSink) {
		stuck = stuck || (a.name == alerts.DeploymentStuck && a.state == "firing" && a.deploymentID == "rollout-1")
	}
	require.True(t, stuck, "DeploymentStuck fired for the running deployment")

	ps.clock.Set(stuckAt.Add(time.Minute))
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateFailed, 91*time.Minute))
	ps.proc.emitSignals(ctx, ps.clock.Now())
	values, ok := ps.proc.emitter.book.Values(kpi.Key(checkoutKey()), ps.clock.Now())
	require.True(t, ok)
	assert.Equal(t, [4][3]int64{{}, {0, 0, 1}, {}, {}}, values.Counts, "failed, unjudged")
	assert.False(t, values.HasDetectionTime)
}

// TestCleanDeploymentCountsAsPassed: a clean rollout at 50 req/s is judged
// while it runs and raises no alert: it counts as succeeded and passed.
func TestCleanDeploymentCountsAsPassed(t *testing.T) {
	sc := pickScenario(t, scenario.KindNone, 50)
	l := sc.Label()
	ps := newPipelines(t, pipelineOptions{})
	ctx := context.Background()
	var lastEmit time.Time
	require.NoError(t, sc.Run(func(st scenario.Step) error {
		ps.clock.Set(st.Time)
		require.NoError(t, ps.logs.ConsumeLogs(ctx, st.Logs))
		require.NoError(t, ps.traces.ConsumeTraces(ctx, st.Traces))
		require.NoError(t, ps.metrics.ConsumeMetrics(ctx, st.Metrics))
		ps.proc.health.Sweep(st.Time)
		if st.Time.Sub(lastEmit) >= 10*time.Second {
			lastEmit = st.Time
			ps.proc.emitSignals(ctx, st.Time)
		}
		return nil
	}))
	for _, a := range alertRecords(ps.logsSink) {
		assert.NotEqual(t, l.Service, a.service, "no alert for the clean deployment: %+v", a)
	}
	values, ok := ps.proc.emitter.book.Values(kpi.Key{Namespace: l.Namespace, Service: l.Service, Environment: l.Environment}, ps.clock.Now())
	require.True(t, ok)
	assert.Equal(t, [4][3]int64{{0, 1, 0}, {}, {}, {}}, values.Counts, "succeeded, passed")
}

func TestHarmfulEvidenceListsOnlyIndicatorsWithEvidence(t *testing.T) {
	snap := &health.Snapshot{
		Health: health.Health{Indicators: []health.Evidence{
			{Indicator: "cpu_utilization", Comparison: health.CompareBeforeAfter, Test: "load_adjusted_z", PValue: 1e-6, Score: 1,
				Observed: 0.63, Expected: 0.42, Value: 0.74, Lower: 0.37, Upper: 0.46},
			{Indicator: "error_ratio", PValue: 1},
		}},
		Cohorts: []health.CohortHealth{{Cohort: deployevent.CohortCanary, Health: health.Health{Indicators: []health.Evidence{
			{Indicator: "latency_p95", Comparison: health.CompareCohorts, Test: "mann_whitney_u", PValue: 0.002, Score: 0.5, Observed: 0.3, Expected: 0.2},
		}}}},
	}
	got := harmfulEvidence(snap)
	assert.Equal(t, "cpu_utilization before_after/load_adjusted_z p=1e-06 score=1.00 observed=0.63 expected=0.42 value=0.74 band=[0.37,0.46]; "+
		"canary.latency_p95 canary_baseline/mann_whitney_u p=0.002 score=0.50 observed=0.3 expected=0.2 value=0 band=[0,0]", got)
}
