// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package alerts

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
)

var (
	t0  = time.Date(2026, 11, 25, 13, 59, 0, 0, time.UTC)
	ctx = Context{
		Key:          Key{Namespace: "shop", Service: "checkout", Environment: "production"},
		DeploymentID: "deploy-123", Version: "1.4.2", PreviousVersion: "1.4.1", Phase: "during", Revision: "9f2c1e7",
		DeploymentStart: t0,
	}
	errorEvidence = &Evidence{Indicator: "error_ratio", Observed: 0.041, Baseline: 0.009, Lower: 0, Upper: 0.016,
		AnomalyScore: 0.97, Confidence: 0.99, Test: "two_proportion", Unit: "ratio"}
)

func regression(active bool) Condition {
	return Condition{Name: IndicatorRegression, Severity: deployevent.SeverityCritical, Indicator: "error_ratio",
		Recommendation: deployevent.RecommendRollback, Active: active, Evidence: errorEvidence}
}

// TestLifecycle: fire once, stay quiet until the re-send is due, re-send,
// resolve once, stay resolved; the fingerprint never changes.
func TestLifecycle(t *testing.T) {
	e := New(Config{ResendInterval: time.Minute})
	fire := t0.Add(3 * time.Minute)

	got := e.Evaluate(ctx, []Condition{regression(true)}, fire)
	require.Len(t, got, 1)
	first := got[0]
	assert.Equal(t, deployevent.AlertFiring, first.State)
	assert.Equal(t, Fingerprint(ctx, IndicatorRegression, "error_ratio"), first.Fingerprint)
	assert.Equal(t, "checkout 1.4.2 in production: error ratio 4.1% vs baseline 0.9% (expected ≤ 1.6%) since 14:02, 3 min after the rollout began; recommendation: rollback", first.Body)

	assert.Empty(t, e.Evaluate(ctx, []Condition{regression(true)}, fire.Add(10*time.Second)), "deduplicated within the re-send interval")
	resent := e.Evaluate(ctx, []Condition{regression(true)}, fire.Add(time.Minute))
	require.Len(t, resent, 1, "re-sent when due")
	assert.Equal(t, first.Fingerprint, resent[0].Fingerprint)
	assert.Equal(t, first.StartedAt, resent[0].StartedAt, "a re-send keeps its start")
	assert.Equal(t, fire.Add(time.Minute), resent[0].Time)

	resolved := e.Evaluate(ctx, []Condition{regression(false)}, fire.Add(2*time.Minute))
	require.Len(t, resolved, 1)
	assert.Equal(t, deployevent.AlertResolved, resolved[0].State)
	assert.Equal(t, fire.Add(2*time.Minute), resolved[0].EndedAt)
	assert.Equal(t, first.Fingerprint, resolved[0].Fingerprint)
	assert.Empty(t, e.Evaluate(ctx, []Condition{regression(false)}, fire.Add(3*time.Minute)), "resolved once")

	again := e.Evaluate(ctx, []Condition{regression(true)}, fire.Add(4*time.Minute))
	require.Len(t, again, 1, "fires again when the condition returns")
	assert.Equal(t, fire.Add(4*time.Minute), again[0].StartedAt)
}

func TestResolveServiceOnRollback(t *testing.T) {
	e := New(Config{})
	e.Evaluate(ctx, []Condition{regression(true), {Name: Regression, Severity: deployevent.SeverityCritical, Active: true}}, t0)
	other := ctx
	other.Service = "cart"
	e.Evaluate(other, []Condition{{Name: Regression, Severity: deployevent.SeverityWarning, Active: true}}, t0)
	require.Len(t, e.Firing(ctx.Key), 2)

	resolved := e.ResolveService(ctx.Key, t0.Add(time.Minute), "")
	assert.Len(t, resolved, 2)
	for _, s := range resolved {
		assert.Equal(t, deployevent.AlertResolved, s.State)
	}
	assert.Empty(t, e.Firing(ctx.Key))
	assert.Len(t, e.Firing(other.Key), 1, "other services keep their alerts")
}

func TestBounded(t *testing.T) {
	e := New(Config{MaxAlerts: 2})
	for i, name := range []string{"a", "b", "c"} {
		e.Evaluate(ctx, []Condition{{Name: name, Severity: "warning", Active: true}}, t0.Add(time.Duration(i)*time.Second))
	}
	assert.Equal(t, 2, e.Len())
	assert.Equal(t, int64(1), e.Dropped(), "all remembered alerts fire: the third is dropped and counted")

	e.Evaluate(ctx, []Condition{{Name: "a", Active: false}}, t0.Add(time.Minute))
	e.Evaluate(ctx, []Condition{{Name: "c", Severity: "warning", Active: true}}, t0.Add(2*time.Minute))
	assert.Len(t, e.Firing(ctx.Key), 2, "a resolved alert made room")
	e.Sweep(t0.Add(time.Hour), time.Minute)
	assert.Equal(t, 2, e.Len())
}

func TestAppendTo(t *testing.T) {
	e := New(Config{})
	s := e.Evaluate(ctx, []Condition{regression(true)}, t0.Add(3*time.Minute))[0]
	logs := plog.NewLogs()
	s.AppendTo(logs)
	rl := logs.ResourceLogs().At(0)
	assert.Equal(t, map[string]any{"service.name": "checkout", "service.namespace": "shop",
		"deployment.environment.name": "production", "service.version": "1.4.2"}, rl.Resource().Attributes().AsRaw())
	lr := rl.ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, deployevent.AlertEventName, lr.EventName())
	assert.Equal(t, plog.SeverityNumberFatal, lr.SeverityNumber(), "critical with a rollback recommendation")
	assert.Equal(t, s.Body, lr.Body().Str())
	attrs := lr.Attributes().AsRaw()
	for k, v := range map[string]any{
		"alert.name": IndicatorRegression, "alert.state": "firing", "alert.severity": "critical",
		"alert.fingerprint": s.Fingerprint, "alert.recommendation": "rollback", "alert.started_at": "2026-11-25T14:02:00Z",
		"deployment.id": "deploy-123", "deployment.previous_version": "1.4.1", "deployment.phase": "during",
		"vcs.ref.head.revision": "9f2c1e7", "indicator.name": "error_ratio", "indicator.value": 0.041,
		"indicator.baseline": 0.009, "indicator.upper": 0.016, "anomaly.score": 0.97, "anomaly.confidence": 0.99,
		"anomaly.test": "two_proportion",
	} {
		assert.Equal(t, v, attrs[k], k)
	}
	assert.NotContains(t, attrs, "alert.ended_at")

	resolved := e.Evaluate(ctx, []Condition{regression(false)}, t0.Add(5*time.Minute))[0]
	logs = plog.NewLogs()
	resolved.AppendTo(logs)
	lr = logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, "resolved", lr.Attributes().AsRaw()["alert.state"])
	assert.Equal(t, "2026-11-25T14:04:00Z", lr.Attributes().AsRaw()["alert.ended_at"])
	assert.Contains(t, lr.Body().Str(), "resolved: checkout 1.4.2 in production")
}

func TestRules(t *testing.T) {
	rules, err := NewRules([]Rule{
		{Name: "ErrorsDuringRollout", Expr: "error_ratio > 5% for 2m in phase during", Severity: "critical", Recommendation: "rollback"},
		{Name: "SlowAnytime", Indicator: "latency_p95", Op: ">=", Threshold: 0.5},
	})
	require.NoError(t, err)
	e := New(Config{ResendInterval: time.Hour})
	values := func(errRatio float64) map[string]Evidence {
		return map[string]Evidence{"error_ratio": {Indicator: "error_ratio", Observed: errRatio, Unit: "ratio"}}
	}
	eval := func(c Context, v float64, at time.Duration) []Signal {
		return e.Evaluate(c, rules.Conditions(c, values(v), t0.Add(at)), t0.Add(at))
	}
	assert.Empty(t, eval(ctx, 0.06, 0), "must hold for 2m")
	assert.Empty(t, eval(ctx, 0.07, time.Minute))
	fired := eval(ctx, 0.06, 2*time.Minute)
	require.Len(t, fired, 1)
	assert.Equal(t, "ErrorsDuringRollout", fired[0].Name)
	assert.Equal(t, "critical", fired[0].Severity)
	assert.Contains(t, fired[0].Body, "error ratio 6.0%")
	assert.Len(t, eval(ctx, 0.01, 3*time.Minute), 1, "resolves when the value drops")

	steady := ctx
	steady.Phase = "steady"
	assert.Empty(t, eval(steady, 0.5, 10*time.Minute))
	assert.Empty(t, eval(steady, 0.5, 20*time.Minute), "the rule watches the during phase only")
}

func TestRuleValidation(t *testing.T) {
	for _, tt := range []struct {
		rule Rule
		err  string
	}{
		{Rule{Indicator: "x", Op: ">"}, "rule without a name"},
		{Rule{Name: "r"}, `rule "r": indicator is required`},
		{Rule{Name: "r", Indicator: "x", Op: "=="}, `rule "r": op "=="`},
		{Rule{Name: "r", Expr: "x > y"}, `rule "r": expr "x > y": threshold "y" is not a number`},
		{Rule{Name: "r", Expr: "x > 1 for soon"}, `for "soon"`},
		{Rule{Name: "r", Expr: "x > 1 in phase later"}, `phase "later"`},
		{Rule{Name: "r", Expr: "x > 1 whenever"}, `unexpected "whenever"`},
		{Rule{Name: "r", Expr: "x > 1", Severity: "page"}, `severity "page"`},
		{Rule{Name: "r", Expr: "x > 1", Recommendation: "panic"}, `recommendation "panic"`},
	} {
		_, err := NewRules([]Rule{tt.rule})
		require.Error(t, err, tt.err)
		assert.Contains(t, err.Error(), tt.err)
	}
	_, err := NewRules([]Rule{{Name: "r", Expr: "x > 1"}, {Name: "r", Expr: "y > 1"}})
	assert.ErrorContains(t, err, `rule "r": defined twice`)
}

// TestRestart: a firing alert survives a snapshot and restore: it is not
// fired again, keeps its start, and resolves when its condition stops.
func TestRestart(t *testing.T) {
	e := New(Config{ResendInterval: time.Minute})
	withNaN := regression(true)
	withNaN.Evidence = &Evidence{Indicator: "error_ratio", Observed: 0.04, Lower: math.NaN(), Upper: math.NaN(), Unit: "ratio"}
	fired := e.Evaluate(ctx, []Condition{withNaN}, t0)[0]
	data, err := e.Snapshot()
	require.NoError(t, err)

	restarted := New(Config{ResendInterval: time.Minute})
	require.NoError(t, restarted.Restore(data))
	assert.Empty(t, restarted.Evaluate(ctx, []Condition{regression(true)}, t0.Add(10*time.Second)), "not fired again")
	resent := restarted.Evaluate(ctx, []Condition{regression(true)}, t0.Add(time.Minute))
	require.Len(t, resent, 1)
	assert.Equal(t, fired.StartedAt, resent[0].StartedAt)
	assert.Equal(t, fired.Fingerprint, resent[0].Fingerprint)
	resolved := restarted.Evaluate(ctx, []Condition{regression(false)}, t0.Add(2*time.Minute))
	require.Len(t, resolved, 1)
	assert.Equal(t, deployevent.AlertResolved, resolved[0].State)
	assert.Error(t, restarted.Restore([]byte("[")))
}

// deploymentRegression is the one alert of a harmful deployment: every
// indicator's evidence, no indicator of its own.
func deploymentRegression(severity string) Condition {
	latency := Evidence{Indicator: "latency_p95", Observed: 0.31, Baseline: 0.18, Lower: 0.12, Upper: 0.24,
		AnomalyScore: 0.8, Confidence: 0.98, Test: "mann_whitney_u", Unit: "seconds"}
	rate := Evidence{Indicator: "request_rate", Observed: 40, Baseline: 52, Lower: 45, Upper: math.NaN(),
		AnomalyScore: 0.4, Confidence: 0.9, Test: "robust_z", Unit: "rate"}
	return Condition{Name: Regression, Severity: severity, Recommendation: deployevent.RecommendHold, Active: true,
		Evidences: []Evidence{*errorEvidence, latency, rate}}
}

func TestSeverityChangesInPlace(t *testing.T) {
	e := New(Config{ResendInterval: time.Minute})
	fire := t0.Add(time.Minute)
	first := e.Evaluate(ctx, []Condition{deploymentRegression(deployevent.SeverityWarning)}, fire)
	require.Len(t, first, 1)
	assert.Empty(t, first[0].PreviousSeverity)
	assert.Equal(t, "checkout 1.4.2 in production: error ratio 4.1% vs baseline 0.9% (expected ≤ 1.6%), "+
		"latency p95 310 ms vs baseline 180 ms (expected 120 ms–240 ms) and 1 more since 14:00, 1 min after the rollout began; "+
		"recommendation: hold", first[0].Body, "the strongest two in the sentence")

	// Ten seconds later it is critical: sent at once, not at the next re-send, same alert.
	changed := e.Evaluate(ctx, []Condition{deploymentRegression(deployevent.SeverityCritical)}, fire.Add(10*time.Second))
	require.Len(t, changed, 1, "a severity change is sent at once")
	assert.Equal(t, first[0].Fingerprint, changed[0].Fingerprint, "the same alert")
	assert.Equal(t, first[0].StartedAt, changed[0].StartedAt)
	assert.Equal(t, deployevent.SeverityCritical, changed[0].Severity)
	assert.Equal(t, deployevent.SeverityWarning, changed[0].PreviousSeverity, "receivers keyed by severity resolve the old label set")
	assert.Len(t, e.Firing(ctx.Key), 1, "one alert for the deployment")

	resent := e.Evaluate(ctx, []Condition{deploymentRegression(deployevent.SeverityCritical)}, fire.Add(70*time.Second))
	require.Len(t, resent, 1)
	assert.Empty(t, resent[0].PreviousSeverity, "only the signal of the change carries the old severity")
	assert.Empty(t, e.Evaluate(ctx, []Condition{deploymentRegression(deployevent.SeverityCritical)}, fire.Add(80*time.Second)))
}

func TestEvidenceListInTheRecord(t *testing.T) {
	e := New(Config{})
	s := e.Evaluate(ctx, []Condition{deploymentRegression(deployevent.SeverityCritical)}, t0)[0]
	logs := plog.NewLogs()
	s.AppendTo(logs)
	attrs := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
	assert.NotContains(t, attrs, "indicator.name", "not about one indicator: no indicator label downstream")
	list, ok := attrs["alert.evidence"].([]any)
	require.True(t, ok, "alert.evidence is a list")
	require.Len(t, list, 3)
	assert.Equal(t, map[string]any{"indicator.name": "error_ratio", "indicator.value": 0.041, "indicator.baseline": 0.009,
		"indicator.lower": 0.0, "indicator.upper": 0.016, "anomaly.score": 0.97, "anomaly.confidence": 0.99,
		"anomaly.test": "two_proportion"}, list[0])
	assert.NotContains(t, list[2], "indicator.upper", "NaN is left out")
}

// Only deploylens' judgement makes a deployment alerted in the KPI book:
// failed and stuck are facts the tools report.
func TestIsJudgement(t *testing.T) {
	for name, want := range map[string]bool{
		Regression: true, IndicatorRegression: true, "ErrorsDuringRollout": true,
		DeploymentFailed: false, DeploymentStuck: false,
	} {
		assert.Equal(t, want, IsJudgement(name), name)
	}
}
