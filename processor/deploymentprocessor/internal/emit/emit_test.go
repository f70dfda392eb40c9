// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package emit

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/kpi"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

var (
	ts      = time.Date(2026, 11, 25, 14, 5, 0, 0, time.UTC)
	counted = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	key     = health.Key{Namespace: "shop", Service: "checkout", Environment: "production"}
)

func unhealthySnapshot() *health.Snapshot {
	return &health.Snapshot{
		Key: key, Phase: deployevent.PhaseDuring, DeploymentID: "deploy-123",
		Health: health.Health{
			Score: 38, Verdict: deployevent.VerdictUnhealthy, Recommendation: deployevent.RecommendRollback,
			Dimensions: []health.DimensionScore{
				{Dimension: indicators.DimensionErrors, Score: 12, Judged: true},
				{Dimension: indicators.DimensionLatency, Score: 97, Judged: true},
				{Dimension: indicators.DimensionSaturation, Judged: false},
			},
			Indicators: []health.Evidence{
				{Indicator: "error_ratio", Value: 0.041, Baseline: 0.009, Lower: 0, Upper: 0.016, Score: 0.97, Confidence: 0.99, Test: "two_proportion_z", Judged: true},
				{Indicator: "latency_p95", Value: 0.18, Baseline: 0.175, Lower: 0.12, Upper: 0.24, Score: 0.1, Judged: true},
				{Indicator: "log_error_rate", Value: math.NaN(), Baseline: math.NaN(), Lower: math.NaN(), Upper: math.NaN(), Judged: false},
			},
		},
		Cohorts: []health.CohortHealth{{Cohort: deployevent.CohortCanary, Health: health.Health{Score: 20, Verdict: deployevent.VerdictUnhealthy, Recommendation: deployevent.RecommendRollback}}},
	}
}

// edgeSnapshot is checkout's calls to payment, judged unhealthy while
// payment deploys.
func edgeSnapshot() *health.Snapshot {
	edge := key
	edge.Dependency = "payment"
	return &health.Snapshot{
		Key: edge, Phase: deployevent.PhaseDuring, DeploymentID: "deploy-9", Subject: edge.Callee(),
		Health: health.Health{
			Score: 12, Verdict: deployevent.VerdictUnhealthy,
			Indicators: []health.Evidence{
				{Indicator: "request_rate", Value: 41, Baseline: 40, Lower: 32, Upper: 48, Judged: true},
				{Indicator: "error_ratio", Value: 0.061, Baseline: 0.004, Lower: 0, Upper: 0.006, Score: 0.95, Judged: true},
				{Indicator: "latency_p95", Value: 0.12, Baseline: math.NaN(), Lower: math.NaN(), Upper: math.NaN(), Judged: false},
			},
		},
	}
}

// points lists the data points of metric name as attribute maps with values.
func points(t *testing.T, md pmetric.Metrics, name string) []map[string]any {
	t.Helper()
	var out []map[string]any
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		ms := rms.At(i).ScopeMetrics().At(0).Metrics()
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
				p := dps.At(k).Attributes().AsRaw()
				if dps.At(k).ValueType() == pmetric.NumberDataPointValueTypeInt {
					p["value"] = float64(dps.At(k).IntValue())
				} else {
					p["value"] = dps.At(k).DoubleValue()
				}
				p["start"] = dps.At(k).StartTimestamp().AsTime()
				out = append(out, p)
			}
		}
	}
	return out
}

func withoutStart(ps []map[string]any) []map[string]any {
	for _, p := range ps {
		delete(p, "start")
	}
	return ps
}

func TestMetrics(t *testing.T) {
	m := NewMetrics(processortest.NewNopSettings(metadata.Type), metadata.NewDefaultMetricsBuilderConfig())
	values := kpi.Values{StartTime: counted, Counts: [4][3]int64{{1, 4, 2}, {1, 0, 0}, {2, 0, 0}, {0, 0, 0}}, Duration: 600, DurationOutcome: kpi.RolledBack, HasDuration: true,
		Interval: 86400, HasInterval: true, ChangeFailureRatio: 0.3, HasChangeFailureRatio: true, DetectionTime: 180, HasDetectionTime: true}
	m.Append(Service{Key: key, Phase: deployevent.PhaseDuring, Snapshot: unhealthySnapshot(), KPI: values, HasKPI: true}, ts)
	m.Append(Service{Key: health.Key{Service: "cart"}, Phase: deployevent.PhaseSteady}, ts)
	md := m.Emit()
	require.Equal(t, 1, md.ResourceMetrics().Len(), "a steady service with no health or KPI yet reports nothing")
	assert.Equal(t, map[string]any{"service.name": "checkout", "service.namespace": "shop", "deployment.environment.name": "production"},
		md.ResourceMetrics().At(0).Resource().Attributes().AsRaw())

	scores := points(t, md, "deployment.health.score")
	require.Len(t, scores, 2, "the service and its canary cohort")
	assert.Equal(t, 38.0, scores[0]["value"])
	assert.Equal(t, map[string]any{"deployment.phase": "during", "deployment.cohort": "", "value": 38.0}, withoutStart(scores)[0],
		"the score's series is the same whatever the verdict")
	assert.Equal(t, "canary", scores[1]["deployment.cohort"])
	assert.Equal(t, map[string]float64{"healthy": 0, "degraded": 0, "unhealthy": 1, "inconclusive": 0},
		stateSet(points(t, md, "deployment.health.verdict"), "deployment.health.verdict", ""))
	assert.Equal(t, map[string]float64{"none": 0, "investigate": 0, "hold": 0, "rollback": 1},
		stateSet(points(t, md, "deployment.health.recommendation"), "deployment.health.recommendation", ""))
	assert.Equal(t, map[string]float64{"healthy": 0, "degraded": 0, "unhealthy": 1, "inconclusive": 0},
		stateSet(points(t, md, "deployment.health.verdict"), "deployment.health.verdict", "canary"))

	dims := points(t, md, "deployment.health.dimension.score")
	assert.Len(t, dims, 2, "unjudged dimensions are not emitted")
	assert.Len(t, points(t, md, "deployment.indicator.value"), 2, "NaN values are not emitted")
	upper := points(t, md, "deployment.indicator.upper")
	assert.Equal(t, "error_ratio", upper[0]["indicator.name"])
	assert.Equal(t, 0.016, upper[0]["value"])
	anomaly := points(t, md, "deployment.anomaly.score")
	assert.Len(t, anomaly, 2, "judged indicators only")

	counts := points(t, md, "deployment.count")
	require.Len(t, counts, 12, "every outcome and judgement, zeros included, so increase() sees the first of each")
	byStatus := map[string]float64{}
	for _, c := range counts {
		byStatus[c["deployment.status"].(string)+"/"+c["deployment.judgement"].(string)] = c["value"].(float64)
		assert.Equal(t, counted, c["start"], "the counter starts when the book began counting")
	}
	assert.Equal(t, map[string]float64{
		"succeeded/alerted": 1, "succeeded/passed": 4, "succeeded/unjudged": 2,
		"failed/alerted": 1, "failed/passed": 0, "failed/unjudged": 0,
		"rolled_back/alerted": 2, "rolled_back/passed": 0, "rolled_back/unjudged": 0,
		"cancelled/alerted": 0, "cancelled/passed": 0, "cancelled/unjudged": 0,
	}, byStatus)
	assert.Equal(t, []map[string]any{{"deployment.status": "rolled_back", "value": 600.0}}, withoutStart(points(t, md, "deployment.duration")))
	assert.Len(t, points(t, md, "deployment.lead_time"), 0, "no lead time known")
	assert.Equal(t, 0.3, points(t, md, "deployment.change_failure.ratio")[0]["value"])
	assert.Equal(t, []map[string]any{{"deployment.phase": "during", "value": 1.0}}, withoutStart(points(t, md, "deployment.active")))

	empty := m.Emit()
	assert.Zero(t, empty.ResourceMetrics().Len(), "an emission empties the builder")
}

func byName(cs []alerts.Condition) map[string]alerts.Condition {
	out := map[string]alerts.Condition{}
	for _, c := range cs {
		out[c.Name+"/"+c.Indicator] = c
	}
	return out
}

func TestConditionsOneAlertPerHarmfulDeployment(t *testing.T) {
	cs := Conditions(unhealthySnapshot(), deployevent.PhaseDuring, Deployment{}, DefaultThresholds(), false)
	require.Len(t, cs, 4, "the regression, a dependency's impact, failed and stuck: no per-indicator alerts by default")
	named := byName(cs)
	reg := named[alerts.Regression+"/"]
	assert.True(t, reg.Active)
	assert.Equal(t, deployevent.SeverityCritical, reg.Severity, "unhealthy with a rollback recommendation")
	assert.Equal(t, deployevent.RecommendRollback, reg.Recommendation)
	assert.Nil(t, reg.Evidence, "no single indicator: the alert is about the deployment")
	require.Len(t, reg.Evidences, 1, "only the indicator with evidence of harm (latency's 0.1 is below alpha's score)")
	assert.Equal(t, "error_ratio", reg.Evidences[0].Indicator)
	assert.Equal(t, "ratio", reg.Evidences[0].Unit)
	assert.InDelta(t, 0.041, reg.Evidences[0].Observed, 1e-12)
	assert.False(t, named[alerts.DeploymentFailed+"/"].Active)
	assert.False(t, named[alerts.DependencyImpact+"/"].Active, "no dependency's rollout explains it")

	// Degraded: the same alert at warning (its severity changes in place).
	snap := unhealthySnapshot()
	snap.Health.Verdict, snap.Health.Recommendation = deployevent.VerdictDegraded, deployevent.RecommendHold
	snap.Cohorts = nil
	reg = byName(Conditions(snap, deployevent.PhaseDuring, Deployment{}, DefaultThresholds(), false))[alerts.Regression+"/"]
	assert.True(t, reg.Active)
	assert.Equal(t, deployevent.SeverityWarning, reg.Severity)
	assert.Equal(t, deployevent.RecommendHold, reg.Recommendation)

	// A canary judged worse while the service as a whole is healthy: the same one alert.
	snap = unhealthySnapshot()
	snap.Health.Verdict, snap.Health.Recommendation = deployevent.VerdictHealthy, deployevent.RecommendNone
	snap.Cohorts[0].Verdict, snap.Cohorts[0].Recommendation = deployevent.VerdictDegraded, deployevent.RecommendHold
	reg = byName(Conditions(snap, deployevent.PhaseDuring, Deployment{}, DefaultThresholds(), false))[alerts.Regression+"/"]
	assert.True(t, reg.Active)
	assert.Equal(t, "in the canary", reg.Detail)
	assert.Equal(t, deployevent.RecommendHold, reg.Recommendation, "the deployment's one recommendation")

	// Healthy, or inconclusive: no alert.
	snap.Cohorts = nil
	assert.False(t, byName(Conditions(snap, deployevent.PhaseDuring, Deployment{}, DefaultThresholds(), false))[alerts.Regression+"/"].Active)
	snap.Health.Verdict = deployevent.VerdictInconclusive
	assert.False(t, byName(Conditions(snap, deployevent.PhaseDuring, Deployment{}, DefaultThresholds(), false))[alerts.Regression+"/"].Active)

	named = byName(Conditions(nil, deployevent.PhasePost, Deployment{Failed: true}, DefaultThresholds(), false))
	assert.True(t, named[alerts.DeploymentFailed+"/"].Active, "a failed deployment alerts even without health data")
	assert.False(t, named[alerts.Regression+"/"].Active)
	assert.Empty(t, EvidenceByIndicator(nil))
	assert.Len(t, EvidenceByIndicator(unhealthySnapshot()), 3)
}

func TestConditionsPerIndicatorOptIn(t *testing.T) {
	cs := byName(Conditions(unhealthySnapshot(), deployevent.PhaseDuring, Deployment{}, DefaultThresholds(), true))
	assert.True(t, cs[alerts.Regression+"/"].Active, "the deployment's alert stays")
	reg := cs[alerts.IndicatorRegression+"/error_ratio"]
	assert.True(t, reg.Active)
	assert.Equal(t, deployevent.SeverityCritical, reg.Severity)
	assert.Equal(t, "ratio", reg.Evidence.Unit)
	assert.False(t, cs[alerts.IndicatorRegression+"/latency_p95"].Active)
	assert.False(t, cs[alerts.IndicatorRegression+"/log_error_rate"].Active, "unjudged: inconclusive, never an alarm")

	// The same anomaly in steady state stays below the steady threshold.
	snap := unhealthySnapshot()
	snap.Health.Indicators[0].Score = 0.9
	cs = byName(Conditions(snap, deployevent.PhaseSteady, Deployment{Stuck: true, Detail: "stuck for 1h12m"}, DefaultThresholds(), true))
	assert.False(t, cs[alerts.IndicatorRegression+"/error_ratio"].Active)
	assert.Equal(t, deployevent.SeverityWarning, cs[alerts.IndicatorRegression+"/error_ratio"].Severity)
	assert.True(t, cs[alerts.DeploymentStuck+"/"].Active)
}

// stateSet reads a state-set gauge of one cohort ("" for the service) as value -> 0/1.
func stateSet(ps []map[string]any, attr, cohort string) map[string]float64 {
	out := map[string]float64{}
	for _, p := range ps {
		if c, _ := p["deployment.cohort"].(string); c == cohort {
			out[p[attr].(string)] = p["value"].(float64)
		}
	}
	return out
}

func TestNoScoreWhileNothingIsJudged(t *testing.T) {
	m := NewMetrics(processortest.NewNopSettings(metadata.Type), metadata.NewDefaultMetricsBuilderConfig())
	learning := &health.Snapshot{Key: key, Phase: deployevent.PhaseSteady, Health: health.Health{
		Score: math.NaN(), CandidateScore: math.NaN(), Verdict: deployevent.VerdictInconclusive, Candidate: deployevent.VerdictInconclusive,
		Recommendation: deployevent.RecommendNone,
	}}
	m.Append(Service{Key: key, Phase: deployevent.PhaseSteady, Snapshot: learning}, ts)
	md := m.Emit()
	assert.Empty(t, points(t, md, "deployment.health.score"), "no score while the baselines learn: 0 would read as dead")
	assert.Equal(t, map[string]float64{"healthy": 0, "degraded": 0, "unhealthy": 0, "inconclusive": 1},
		stateSet(points(t, md, "deployment.health.verdict"), "deployment.health.verdict", ""), "the verdict says so on its own series")
}

// TestConditionsNameTheDependencysDeployment: a service whose calls to a
// deploying dependency regressed has an alert of its own naming that
// deployment, with the calls' evidence; its regression alert (if any) says
// the same.
func TestConditionsNameTheDependencysDeployment(t *testing.T) {
	snap := unhealthySnapshot()
	snap.Health.ExplainedBy = []health.Relation{{Peer: health.Key{Namespace: "shop", Service: "payment", Environment: "production"}, DeploymentID: "pay-9",
		Evidence: health.Evidence{Indicator: "error_ratio", Value: 0.079, Baseline: 0.013, Score: 0.9, Judged: true}}}
	named := byName(Conditions(snap, deployevent.PhaseSteady, Deployment{Explained: "payment 2.3's rollout (deployment pay-9)"}, DefaultThresholds(), false))
	impact := named[alerts.DependencyImpact+"/"]
	require.True(t, impact.Active)
	assert.Equal(t, deployevent.SeverityWarning, impact.Severity)
	assert.Equal(t, deployevent.RecommendInvestigate, impact.Recommendation, "the dependency's deployment answers for it")
	assert.Equal(t, "explained by payment 2.3's rollout (deployment pay-9)", impact.Detail)
	require.Len(t, impact.Evidences, 1)
	assert.Equal(t, "payment", impact.Evidences[0].Callee)
	assert.Contains(t, named[alerts.Regression+"/"].Detail, "explained by payment 2.3's rollout (deployment pay-9)")
	assert.False(t, deployevent.IsJudgement(alerts.DependencyImpact), "not a judgement of the service's own deployment")
}
