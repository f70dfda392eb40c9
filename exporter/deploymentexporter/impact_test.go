// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// paymentStart is when payment's rollout d-42 begins in these tests.
var paymentStart = t0.Add(10 * time.Minute)

// paymentLifecycle is a lifecycle event of payment 2.3.0's deployment d-42.
func paymentLifecycle(state deployevent.State, at time.Time) plog.Logs {
	ev := deployevent.Event{
		Service: "payment", Namespace: "shop", Environment: "production", Version: "2.3.0",
		ID: "d-42", State: state, PreviousVersion: "2.2.9", Strategy: deployevent.StrategyRolling,
		Source: deployevent.SourceGeneric, Timestamp: at,
	}
	ld := plog.NewLogs()
	ev.AppendTo(ld, at)
	ld.MarkReadOnly()
	return ld
}

// harmedPaymentEdge is checkout's calls to payment failing 6.1 % against
// 0.4 % (expected ≤ 1.2 %), with the edge score given (NaN: not judged).
func harmedPaymentEdge(score float64) testEdge {
	return testEdge{dependency: "payment", score: score, indicators: map[string][4]float64{
		"request_rate": {25, 24, 18, 30},
		"error_ratio":  {0.061, 0.004, 0, 0.012},
		"latency_p95":  {0.21, 0.2, 0, 0.26},
	}}
}

// cleanPaymentEdge is checkout's calls to payment within their bands.
func cleanPaymentEdge() testEdge {
	return testEdge{dependency: "payment", score: 98, indicators: map[string][4]float64{
		"request_rate": {25, 24, 18, 30},
		"error_ratio":  {0.005, 0.004, 0, 0.012},
		"latency_p95":  {0.21, 0.2, 0, 0.26},
	}}
}

// impactFixture is a gate whose payment rolls out from paymentStart, with
// checkout (steady, on "another gateway") calling it.
func impactFixture(t *testing.T, edit func(*Config)) *gateFixture {
	t.Helper()
	f := newGateFixture(t, edit, nil)
	f.clock.Advance(paymentStart.Sub(t0))
	require.NoError(t, f.c.consumeLogs(context.Background(), paymentLifecycle(deployevent.StateStarted, paymentStart)))
	return f
}

func (f *gateFixture) edges(caller serviceKey, at time.Time, edges ...testEdge) {
	f.t.Helper()
	require.NoError(f.t, f.c.consumeMetrics(context.Background(), dependencyMetrics(caller, at, edges...)))
}

func TestImpactUnhealthyEdgeFailsCalleeGate(t *testing.T) {
	f := impactFixture(t, nil)
	f.clock.Advance(40 * time.Second)
	f.edges(checkoutKey, f.clock.Now(), harmedPaymentEdge(12))

	body := f.verdict("service=payment&environment=production")
	assert.Equal(t, "fail", body["verdict"])
	assert.Equal(t, "rollback", body["recommendation"], "an unhealthy edge (score below 40) asks for a rollback")
	assert.Equal(t, []string{
		"checkout's calls to payment fail 6.1 % vs 0.4 % (edge score 12) since 12:10:40, 40 s after payment's rollout began",
	}, reasons(body))

	status, _ := f.flagger("/v1/gate/rollback", map[string]string{"service": "payment", "environment": "production"})
	assert.Equal(t, http.StatusOK, status, "Flagger is told to roll payment back")

	// The caller itself is not deploying: its calls say nothing against it.
	caller := f.verdict("service=checkout&environment=production")
	assert.NotEqual(t, "fail", caller["verdict"])
	for _, r := range reasons(caller) {
		assert.NotContains(t, r, "calls to payment")
	}
}

func TestImpactBandBreachHoldsCallee(t *testing.T) {
	f := impactFixture(t, nil)
	f.clock.Advance(3 * time.Minute)
	// A steady edge judged against its rolling baseline: the score stays
	// high while the error ratio is far above the band.
	f.edges(checkoutKey, f.clock.Now(), harmedPaymentEdge(81))

	body := f.verdict("service=payment&environment=production")
	assert.Equal(t, "fail", body["verdict"])
	assert.Equal(t, "hold", body["recommendation"], "above the band but not unhealthy: hold, not rollback")
	assert.Equal(t, []string{
		"checkout's calls to payment fail 6.1 % vs 0.4 % (edge score 81) since 12:13:00, 3 min after payment's rollout began",
	}, reasons(body))
	status, _ := f.flagger("/v1/gate/rollback", map[string]string{"service": "payment", "environment": "production"})
	assert.Equal(t, http.StatusPreconditionFailed, status)

	// Not judged (no score) but its baseline known: the band still counts.
	f.clock.Advance(time.Minute)
	f.edges(checkoutKey, f.clock.Now(), harmedPaymentEdge(nan))
	assert.Equal(t, []string{
		"checkout's calls to payment fail 6.1 % vs 0.4 % since 12:13:00, 3 min after payment's rollout began",
	}, reasons(f.verdict("service=payment&environment=production")), "since the first of the harmed evaluations")
}

func TestImpactCleanEdgeAddsNothing(t *testing.T) {
	f := impactFixture(t, nil)
	f.clock.Advance(6 * time.Minute)
	f.edges(checkoutKey, f.clock.Now(), cleanPaymentEdge())
	require.NoError(t, f.c.consumeMetrics(context.Background(), paymentHealth(f.clock.Now(), 97)))

	body := f.verdict("service=payment&environment=production")
	assert.Equal(t, "pass", body["verdict"])
	assert.Equal(t, "none", body["recommendation"])
	assert.Equal(t, []string{"healthy (score 97), observed 6m0s (min_observation 5m0s)"}, reasons(body))

	// A tiny baseline's narrow band: one failed call in a thousand is above
	// the band, but not past the processor's tolerance (0.1 point).
	f.clock.Advance(time.Minute)
	f.edges(checkoutKey, f.clock.Now(), testEdge{dependency: "payment", score: 95, indicators: map[string][4]float64{
		"error_ratio": {0.0012, 0.0004, 0, 0.0009},
	}})
	assert.Equal(t, "pass", f.verdict("service=payment&environment=production")["verdict"])
}

func TestImpactEdgeBeforeDeploymentStartDoesNotCount(t *testing.T) {
	f := impactFixture(t, nil)
	// The caller's latest evaluation is older than payment's rollout: it
	// says nothing about it (a late batch, or a caller that stopped).
	f.edges(checkoutKey, paymentStart.Add(-30*time.Second), harmedPaymentEdge(12))
	body := f.verdict("service=payment&environment=production")
	assert.NotEqual(t, "fail", body["verdict"])
	assert.Equal(t, "none", body["recommendation"])
	for _, r := range reasons(body) {
		assert.NotContains(t, r, "checkout")
	}
	_, graph := getGraph(t, f, "service=payment")
	require.Len(t, graph["edges"], 1)
	assert.Nil(t, graph["edges"].([]any)[0].(map[string]any)["impact_of"])

	// Once the rollout is over and its post window too, nothing counts.
	f.clock.Advance(time.Minute)
	f.edges(checkoutKey, f.clock.Now(), harmedPaymentEdge(12))
	assert.Equal(t, "fail", f.verdict("service=payment&environment=production")["verdict"])
	require.NoError(t, f.c.consumeMetrics(context.Background(), paymentHealthPhase(f.clock.Now(), 97, deployevent.PhaseSteady)))
	assert.NotEqual(t, "fail", f.verdict("service=payment&environment=production")["verdict"], "steady again: not deploying")
}

func TestImpactUnhealthyBelowConfigurable(t *testing.T) {
	f := impactFixture(t, func(cfg *Config) { cfg.Gate.Get().ImpactUnhealthyBelow = 90 })
	f.clock.Advance(time.Minute)
	f.edges(checkoutKey, f.clock.Now(), testEdge{dependency: "payment", score: 85, indicators: map[string][4]float64{
		"request_rate": {12, 24, 18, 30},
	}})
	body := f.verdict("service=payment&environment=production")
	assert.Equal(t, "fail", body["verdict"])
	assert.Equal(t, "rollback", body["recommendation"])
	assert.Equal(t, []string{
		"checkout's calls to payment run at 12 req/s vs 24 req/s (edge score 85) since 12:11:00, 1 min after payment's rollout began",
	}, reasons(body))
}

func TestImpactGraphMarksEdge(t *testing.T) {
	f := impactFixture(t, nil)
	f.clock.Advance(time.Minute)
	f.edges(checkoutKey, f.clock.Now(), harmedPaymentEdge(12))
	f.edges(frontendKey, f.clock.Now(), cleanPaymentEdge())
	_, graph := getGraph(t, f, "")
	byCaller := map[string]any{}
	for _, e := range graph["edges"].([]any) {
		m := e.(map[string]any)
		byCaller[m["caller"].(string)] = m["impact_of"]
	}
	assert.Equal(t, map[string]any{"shop/checkout/production": "d-42", "shop/frontend/production": nil}, byCaller)
}

func TestImpactNotRepeatedWhenAlertNamesTheEdge(t *testing.T) {
	// One collector: the processor saw both ends, and payment's own alert
	// already tells of checkout's calls.
	f := impactFixture(t, nil)
	f.clock.Advance(40 * time.Second)
	f.edges(checkoutKey, f.clock.Now(), harmedPaymentEdge(12))
	a := paymentRegression(f.clock.Now())
	require.NoError(t, f.c.consumeLogs(context.Background(), alertLogs(a)))

	body := f.verdict("service=payment&environment=production")
	assert.Equal(t, "fail", body["verdict"])
	assert.Equal(t, "rollback", body["recommendation"])
	rs := reasons(body)
	require.Len(t, rs, 1, "%q", rs)
	assert.Equal(t, 1, strings.Count(rs[0], "checkout's calls to payment"))
	assert.Contains(t, rs[0], "critical alert DeploymentRegression")

	// Without the edge in its evidence or sentence, the caller line is added.
	other := a
	other.fingerprint, other.body, other.evidences = "fp-pay-2", "payment 2.3.0 in production: error ratio 3% vs baseline 1%", nil
	f2 := impactFixture(t, nil)
	f2.clock.Advance(40 * time.Second)
	f2.edges(checkoutKey, f2.clock.Now(), harmedPaymentEdge(12))
	require.NoError(t, f2.c.consumeLogs(context.Background(), alertLogs(other)))
	rs = reasons(f2.verdict("service=payment&environment=production"))
	require.Len(t, rs, 2, "%q", rs)
	assert.Contains(t, rs[1], "checkout's calls to payment fail 6.1 % vs 0.4 % (edge score 12)")
}

// paymentRegression is payment's DeploymentRegression as the processor
// writes it on one collector, with checkout's calls in its evidence.
func paymentRegression(at time.Time) testAlert {
	return testAlert{
		name: deployevent.AlertRegression, state: "firing", severity: "critical", fingerprint: "fp-pay-1",
		recommendation: "rollback", service: "payment", namespace: "shop", environment: "production", version: "2.3.0",
		deploymentID: "d-42", previousVersion: "2.2.9", phase: "during", startedAt: at, at: at,
		body: "payment 2.3.0 in production: checkout's calls to payment fail 6.1% vs 0.4% since 12:10, 40 s after the rollout began; recommendation: rollback",
		evidences: []map[string]any{{
			"indicator.name": "error_ratio", "indicator.value": 0.061, "indicator.baseline": 0.004,
			"deployment.dependency.caller": "checkout", "deployment.dependency.name": "payment",
		}},
	}
}

// checkoutRegression is checkout's own DeploymentRegression, from its
// gateway, which does not know why.
func checkoutRegression(at time.Time) testAlert {
	return testAlert{
		name: deployevent.AlertRegression, state: "firing", severity: "warning", fingerprint: "fp-co-1",
		recommendation: "investigate", service: "checkout", namespace: "shop", environment: "production", version: "1.4.1",
		phase: "steady", startedAt: at, at: at,
		body:      "checkout 1.4.1 in production: error ratio 4.2% vs baseline 0.9% (expected ≤ 1.6%) since 12:11; recommendation: investigate",
		evidences: []map[string]any{{"indicator.name": "error_ratio", "indicator.value": 0.042, "indicator.baseline": 0.009}},
	}
}

// paymentHealth is one healthy evaluation of payment during its rollout.
func paymentHealth(at time.Time, score float64) pmetric.Metrics {
	return paymentHealthPhase(at, score, deployevent.PhaseDuring)
}

// paymentHealthPhase is one healthy evaluation of payment in phase.
func paymentHealthPhase(at time.Time, score float64, phase deployevent.Phase) pmetric.Metrics {
	md := pmetric.NewMetrics()
	healthMetrics(testHealth{score: score, verdict: deployevent.VerdictHealthy, recommendation: deployevent.RecommendNone, phase: phase, at: at}).CopyTo(md)
	res := md.ResourceMetrics().At(0).Resource().Attributes()
	res.PutStr(deployevent.AttrServiceName, "payment")
	res.PutStr(deployevent.AttrServiceVersion, "2.3.0")
	md.MarkReadOnly()
	return md
}

func TestImpactExplainsCallerAlert(t *testing.T) {
	clock := newClock(paymentStart)
	hook := newRecorder(t, nil)
	cfg := testConfig(func(cfg *Config) {
		cfg.Alertmanager.Endpoints = []string{"http://127.0.0.1:1"}
		cfg.Channels = map[string]ChannelConfig{"audit": {Type: channelWebhook, ClientConfig: clientAt(hook.URL())}}
	})
	c := newTestCore(t, cfg, clock, nil)
	sinks := captureTargets(c)
	require.NoError(t, c.Start(context.Background(), &testHost{}))
	ctx := context.Background()
	require.NoError(t, c.consumeLogs(ctx, paymentLifecycle(deployevent.StateStarted, paymentStart)))
	clock.Advance(time.Minute)
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, clock.Now(), harmedPaymentEdge(81))))
	require.NoError(t, c.consumeLogs(ctx, alertLogs(checkoutRegression(clock.Now()))))

	const explained = "payment 2.3.0's rollout (deployment d-42): checkout's calls to payment fail 6.1 % vs 0.4 %"
	am := sinks["alertmanager_0"].queued(clock.Now())
	require.Len(t, am, 1)
	pa := c.am.postable(&am[0])
	assert.Equal(t, explained, pa.Annotations["explained_by"])
	assert.Equal(t, "checkout 1.4.1 in production: error ratio 4.2% vs baseline 0.9% (expected ≤ 1.6%) since 12:11; recommendation: investigate; explained by "+explained,
		pa.Annotations["summary"])
	assert.True(t, strings.HasSuffix(pa.Annotations["description"], " Explained by "+explained+"."), pa.Annotations["description"])
	require.NoError(t, pa.Validate(nil))

	audit := sinks["audit"].queued(clock.Now())
	require.Len(t, audit, 1)
	raw, err := json.Marshal(genericPayload("audit", audit, ""))
	require.NoError(t, err)
	var payload struct {
		Alerts []map[string]any `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(raw, &payload))
	require.Len(t, payload.Alerts, 1)
	assert.Equal(t, explained, payload.Alerts[0]["explained_by"])
	assert.True(t, strings.HasSuffix(payload.Alerts[0]["summary"].(string), "; explained by "+explained))
	assert.Contains(t, payload.Alerts[0]["description"], "Explained by "+explained)
	pd := pagerDutyEvent("key", &audit[0], "")
	assert.Equal(t, explained, pd.Payload.CustomDetails["explained_by"])

	// The state keeps the alert as the processor wrote it: the page and
	// the gate show its own sentence.
	c.mu.Lock()
	stored := c.st.alerts["fp-co-1"].Signal
	c.mu.Unlock()
	assert.NotContains(t, stored.Summary, "explained by")

	// The exporter's re-send says it again while it holds …
	clock.Advance(time.Minute)
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, clock.Now(), harmedPaymentEdge(81))))
	require.NoError(t, c.tick(ctx))
	am = named(sinks["alertmanager_0"].queued(clock.Now()), deployevent.AlertRegression)
	require.Len(t, am, 2)
	assert.Equal(t, explained, am[1].ExplainedBy)
	// … beside the impact alert the gate tier raises for checkout (its
	// gateway could not: it does not know payment deploys).
	impacts := named(sinks["alertmanager_0"].queued(clock.Now()), deployevent.AlertDependencyImpact)
	require.Len(t, impacts, 1)
	assert.Equal(t, "checkout", impacts[0].Key.Service)
	assert.Equal(t, "firing", impacts[0].State)
	assert.Contains(t, impacts[0].Summary, "checkout in production: calls to payment fail 6.1 % vs 0.4 %, explained by payment 2.3.0's rollout (deployment d-42)")

	// … and not once the calls are clean again, when the impact alert resolves.
	clock.Advance(time.Minute)
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, clock.Now(), cleanPaymentEdge())))
	require.NoError(t, c.tick(ctx))
	am = named(sinks["alertmanager_0"].queued(clock.Now()), deployevent.AlertRegression)
	require.Len(t, am, 3)
	assert.Empty(t, am[2].ExplainedBy)
	assert.NotContains(t, am[2].Summary, "explained by")
	assert.NotContains(t, c.am.postable(&am[2]).Annotations, "explained_by")
	impacts = named(sinks["alertmanager_0"].queued(clock.Now()), deployevent.AlertDependencyImpact)
	require.NotEmpty(t, impacts)
	assert.Equal(t, "resolved", impacts[len(impacts)-1].State)
}

// named keeps the queued alerts of one name.
func named(list []alertSignal, name string) []alertSignal {
	var out []alertSignal
	for _, a := range list {
		if a.Name == name {
			out = append(out, a)
		}
	}
	return out
}

// TestImpactAlertNotRaisedTwice: where the processor raised the caller's
// impact alert itself (one collector), the gate tier raises none.
func TestImpactAlertNotRaisedTwice(t *testing.T) {
	f := impactFixture(t, nil)
	f.clock.Advance(40 * time.Second)
	f.edges(checkoutKey, f.clock.Now(), harmedPaymentEdge(12))
	own := checkoutRegression(f.clock.Now())
	own.name, own.fingerprint = deployevent.AlertDependencyImpact, "fp-co-impact"
	require.NoError(t, f.c.consumeLogs(context.Background(), alertLogs(own)))
	require.NoError(t, f.c.tick(context.Background()))
	f.c.mu.Lock()
	defer f.c.mu.Unlock()
	assert.Empty(t, f.c.raised)
	for fp := range f.c.st.alerts {
		assert.False(t, isGateImpact(fp), fp)
	}
}

func TestImpactExplanationOnlyWhenItApplies(t *testing.T) {
	clock := newClock(paymentStart)
	cfg := testConfig(func(cfg *Config) { cfg.Alertmanager.Endpoints = []string{"http://127.0.0.1:1"} })
	c := newTestCore(t, cfg, clock, nil)
	sinks := captureTargets(c)
	require.NoError(t, c.Start(context.Background(), &testHost{}))
	ctx := context.Background()
	clock.Advance(time.Minute)
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, clock.Now(), harmedPaymentEdge(12))))

	// payment is not deploying: its callers' harm is not its rollout's.
	a := checkoutRegression(clock.Now())
	require.NoError(t, c.consumeLogs(ctx, alertLogs(a)))
	require.NoError(t, c.consumeLogs(ctx, paymentLifecycle(deployevent.StateStarted, clock.Now())))

	// An alert that already says what explains it; another alert name; a resolve.
	explainedAlert := a
	explainedAlert.fingerprint, explainedAlert.at = "fp-co-2", clock.Now()
	explainedAlert.body = "checkout 1.4.1 in production: regression, explained by payment 2.3.0's rollout (deployment d-42): calls to payment fail 6.1% vs 0.4% since 12:11"
	stuck := a
	stuck.name, stuck.fingerprint, stuck.at = "DeploymentStuck", "fp-co-3", clock.Now()
	clock.Advance(10 * time.Second)
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, clock.Now(), harmedPaymentEdge(12))))
	require.NoError(t, c.consumeLogs(ctx, alertLogs(explainedAlert, stuck, a.resolved(clock.Now()))))

	queued := sinks["alertmanager_0"].queued(clock.Now())
	require.Len(t, queued, 4)
	for _, q := range queued {
		assert.Empty(t, q.ExplainedBy, "%s %s", q.Fingerprint, q.State)
		assert.NotContains(t, q.Summary, "; explained by", "%s %s", q.Fingerprint, q.State)
	}
	assert.Equal(t, []string{"fp-co-1", "fp-co-2", "fp-co-3", "fp-co-1"},
		[]string{queued[0].Fingerprint, queued[1].Fingerprint, queued[2].Fingerprint, queued[3].Fingerprint})
	assert.Equal(t, "resolved", queued[3].State)
}

// TestImpactByAddress: checkout names payment only by an address; the
// processor says (deployment.dependency.service) that the address is
// payment: the edge counts against payment's rollout and the graph draws it
// to payment, not to an external node.
func TestImpactByAddress(t *testing.T) {
	f := impactFixture(t, nil)
	f.clock.Advance(40 * time.Second)
	e := harmedPaymentEdge(12)
	e.dependency, e.service = "10.0.4.17:8443", "payment"
	f.edges(checkoutKey, f.clock.Now(), e)
	body := f.verdict("service=payment&environment=production")
	assert.Equal(t, "fail", body["verdict"])
	assert.Contains(t, strings.Join(toStrings(body["reasons"]), "\n"), "checkout's calls to 10.0.4.17:8443 fail")
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
