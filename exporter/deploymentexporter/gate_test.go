// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadatatest"
	"github.com/deploylens/deploylens/internal/deployevent"
)

// gateFixture is a started core whose gate listens on a free port.
type gateFixture struct {
	t     *testing.T
	c     *core
	clock *fakeClock
	base  string
}

func newGateFixture(t *testing.T, edit func(*Config), tt *componenttest.Telemetry) *gateFixture {
	t.Helper()
	clock := newClock(t0)
	c := startCore(t, testConfig(edit), clock, tt)
	return &gateFixture{t: t, c: c, clock: clock, base: "http://" + c.gate.addr}
}

// deploy feeds the lifecycle events of deployment gh-1234 (started at t0).
func (f *gateFixture) deploy() {
	f.t.Helper()
	require.NoError(f.t, f.c.consumeLogs(context.Background(), lifecycleLogs(deployevent.StateStarted, t0)))
}

func (f *gateFixture) health(h testHealth) {
	f.t.Helper()
	if h.at.IsZero() {
		h.at = f.clock.Now()
	}
	if h.phase == "" {
		h.phase = deployevent.PhaseDuring
	}
	if h.recommendation == "" {
		h.recommendation = deployevent.RecommendNone
	}
	require.NoError(f.t, f.c.consumeMetrics(context.Background(), healthMetrics(h)))
}

func (f *gateFixture) do(method, path string, body []byte) (int, map[string]any) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.base+path, bytes.NewReader(body))
	require.NoError(f.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	var out map[string]any
	if len(raw) > 0 && resp.Header.Get("Content-Type") == "application/json" {
		require.NoError(f.t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out
}

func (f *gateFixture) verdict(query string) map[string]any {
	f.t.Helper()
	status, body := f.do(http.MethodGet, "/v1/verdict?"+query, nil)
	require.Equal(f.t, http.StatusOK, status, "GET /v1/verdict always answers 200")
	return body
}

// flagger posts a Flagger webhook body for podinfo-style canary "checkout".
func (f *gateFixture) flagger(path string, metadata map[string]string) (int, map[string]any) {
	f.t.Helper()
	body, err := json.Marshal(map[string]any{
		"name": "checkout", "namespace": "shop", "phase": "Progressing", "checksum": "85d557f47b", "metadata": metadata,
	})
	require.NoError(f.t, err)
	return f.do(http.MethodPost, path, body)
}

var prodMeta = map[string]string{"environment": "production"}

func reasons(body map[string]any) []string {
	var out []string
	for _, r := range body["reasons"].([]any) {
		out = append(out, r.(string))
	}
	return out
}

func TestGateVerdictPassExactJSON(t *testing.T) {
	f := newGateFixture(t, nil, nil)
	f.deploy()
	f.clock.Advance(6 * time.Minute)
	f.health(testHealth{score: 96.5, verdict: deployevent.VerdictHealthy})

	status, body := f.do(http.MethodGet, "/v1/verdict?service=checkout&environment=production&namespace=shop", nil)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, map[string]any{
		"verdict":          "pass",
		"health_score":     96.5,
		"phase":            "during",
		"deployment_id":    "gh-1234",
		"version":          "1.4.2",
		"reasons":          []any{"healthy (score 96.5), observed 6m0s (min_observation 5m0s)"},
		"previous_version": "1.4.1",
		"service":          "checkout",
		"namespace":        "shop",
		"environment":      "production",
		"deployment_state": "started",
		"health_verdict":   "healthy",
		"recommendation":   "none",
		"started_at":       "2026-11-25T12:00:00Z",
		"observed_seconds": 360.0,
	}, body)

	status, body = f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "advance", body["decision"])
	status, body = f.flagger("/v1/gate/rollback", prodMeta)
	assert.Equal(t, http.StatusPreconditionFailed, status, "no rollback: anything above 202")
	assert.Equal(t, "no_rollback", body["decision"])
}

// passWindow opts into passing inconclusive verdicts early.
func passWindow(d time.Duration) func(*Config) {
	return func(cfg *Config) { cfg.Gate.Get().InconclusivePassWindow = d }
}

// By default no health data never passes the gate, not even just after the start.
func TestGateNoDataHoldsByDefault(t *testing.T) {
	f := newGateFixture(t, nil, nil)
	f.deploy()
	f.clock.Advance(time.Second)
	status, body := f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusPreconditionFailed, status)
	assert.Equal(t, "hold", body["decision"])
	assert.Equal(t, []string{"no health data yet", "inconclusive: hold (gate::inconclusive)"}, reasons(body))
}

// Healthy is not yet a pass before min_observation; with a pass window,
// inconclusive passes the gate during it, then holds.
func TestGateInconclusivePolicy(t *testing.T) {
	f := newGateFixture(t, passWindow(2*time.Minute), nil)
	f.deploy()

	f.clock.Advance(30 * time.Second)
	body := f.verdict("service=checkout&environment=production")
	assert.Equal(t, "inconclusive", body["verdict"])
	assert.Nil(t, body["health_score"])
	assert.Equal(t, []string{"no health data yet"}, reasons(body))
	status, body := f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusOK, status, "inconclusive within the pass window passes")
	assert.Contains(t, reasons(body), "inconclusive within inconclusive_pass_window (2m0s) of the deployment start: pass")

	f.clock.Advance(2 * time.Minute) // 2m30s
	f.health(testHealth{score: 93, verdict: deployevent.VerdictHealthy})
	body = f.verdict("service=checkout&environment=production")
	assert.Equal(t, "inconclusive", body["verdict"])
	assert.Equal(t, []string{"healthy (score 93) but observed only 2m30s of min_observation 5m0s"}, reasons(body))
	status, body = f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusPreconditionFailed, status, "then it holds")
	assert.Equal(t, "hold", body["decision"])

	f.clock.Advance(3 * time.Minute) // 5m30s
	f.health(testHealth{score: 94, verdict: deployevent.VerdictHealthy})
	assert.Equal(t, "pass", f.verdict("service=checkout&environment=production")["verdict"])
	status, _ = f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusOK, status)

	// Health data stops: stale after max_health_age.
	f.clock.Advance(6 * time.Minute)
	body = f.verdict("service=checkout&environment=production")
	assert.Equal(t, "inconclusive", body["verdict"])
	assert.Contains(t, reasons(body)[0], "health data is stale")
}

func TestGateInconclusivePass(t *testing.T) {
	f := newGateFixture(t, func(cfg *Config) { cfg.Gate.Get().Inconclusive = inconclusivePass }, nil)
	f.deploy()
	f.clock.Advance(time.Hour)
	status, body := f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "inconclusive", body["verdict"])
	assert.Contains(t, reasons(body), "inconclusive: pass (gate::inconclusive)")
}

func TestGateFailAndRollback(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	f := newGateFixture(t, passWindow(2*time.Minute), tt)
	f.deploy()
	f.clock.Advance(time.Minute)
	f.health(testHealth{score: 31, verdict: deployevent.VerdictUnhealthy, recommendation: deployevent.RecommendRollback})

	body := f.verdict("service=checkout&environment=production")
	assert.Equal(t, "fail", body["verdict"])
	assert.Equal(t, "rollback", body["recommendation"])
	assert.Equal(t, []string{"health recommendation is rollback (score 31)", "health verdict is unhealthy (score 31)"}, reasons(body))

	status, body := f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusPreconditionFailed, status, "fail holds even within the pass window")
	assert.Equal(t, "hold", body["decision"])
	status, body = f.flagger("/v1/gate/rollback", prodMeta)
	assert.Equal(t, http.StatusOK, status, "200 tells Flagger to roll back")
	assert.Equal(t, "rollback", body["decision"])

	metadatatest.AssertEqualExporterDeploymentGateRequests(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("endpoint", "verdict"), attribute.String("verdict", "fail"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("endpoint", "gate"), attribute.String("verdict", "fail"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("endpoint", "rollback"), attribute.String("verdict", "fail"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// A critical alert of the current deployment fails the verdict; only a
// rollback recommendation makes the rollback hook answer 200.
func TestGateCriticalAlert(t *testing.T) {
	f := newGateFixture(t, nil, nil)
	f.deploy()
	f.clock.Advance(6 * time.Minute)
	f.health(testHealth{score: 90, verdict: deployevent.VerdictHealthy})
	alert := criticalAlert()
	alert.recommendation = "hold"
	require.NoError(t, f.c.consumeLogs(context.Background(), alertLogs(alert)))

	body := f.verdict("service=checkout&environment=production")
	assert.Equal(t, "fail", body["verdict"])
	assert.Equal(t, "hold", body["recommendation"])
	assert.Equal(t, []string{"critical alert DeploymentErrorRateRegression firing since 2026-11-25T12:03:00Z: " + alert.body}, reasons(body))
	status, _ := f.flagger("/v1/gate/rollback", prodMeta)
	assert.Equal(t, http.StatusPreconditionFailed, status)

	// An alert about an earlier deployment does not count.
	old := criticalAlert()
	old.fingerprint, old.deploymentID = "fp-old", "gh-1000"
	require.NoError(t, f.c.consumeLogs(context.Background(), alertLogs(alert.resolved(f.clock.Now()), old)))
	assert.Equal(t, "pass", f.verdict("service=checkout&environment=production")["verdict"])

	// A warning alert recommending rollback fails it and asks for the rollback.
	warn := criticalAlert()
	warn.severity, warn.fingerprint = "warning", "fp-warn"
	require.NoError(t, f.c.consumeLogs(context.Background(), alertLogs(warn)))
	assert.Equal(t, "fail", f.verdict("service=checkout&environment=production")["verdict"])
	status, _ = f.flagger("/v1/gate/rollback", prodMeta)
	assert.Equal(t, http.StatusOK, status)
}

// Recommendation hold holds the gate even within the pass window.
func TestGateHoldRecommendation(t *testing.T) {
	f := newGateFixture(t, passWindow(2*time.Minute), nil)
	f.deploy()
	f.clock.Advance(time.Minute)
	f.health(testHealth{score: 62, verdict: deployevent.VerdictDegraded, recommendation: deployevent.RecommendHold})
	status, body := f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusPreconditionFailed, status)
	assert.Equal(t, "fail", body["verdict"], "a degraded rollout fails, as it raises the deployment's alert")
	assert.Equal(t, []string{"health verdict is degraded (score 62), recommendation hold"}, reasons(body))
	status, body = f.flagger("/v1/gate/rollback", prodMeta)
	assert.Equal(t, http.StatusPreconditionFailed, status, "degraded with a hold recommendation does not roll back by itself")
	assert.Equal(t, "no_rollback", body["decision"])
}

// The canary cohort is judged when it reports; the baseline cohort is not.
func TestGateCanaryCohort(t *testing.T) {
	f := newGateFixture(t, nil, nil)
	f.deploy()
	f.clock.Advance(6 * time.Minute)
	f.health(testHealth{score: 95, verdict: deployevent.VerdictHealthy})
	f.health(testHealth{score: 20, verdict: deployevent.VerdictUnhealthy, cohort: deployevent.CohortBaseline})
	assert.Equal(t, "pass", f.verdict("service=checkout")["verdict"])
	f.health(testHealth{score: 40, verdict: deployevent.VerdictUnhealthy, cohort: deployevent.CohortCanary})
	body := f.verdict("service=checkout")
	assert.Equal(t, "fail", body["verdict"])
	assert.Equal(t, 40.0, body["health_score"])
}

func TestGateUnknownAndAmbiguous(t *testing.T) {
	f := newGateFixture(t, nil, nil)
	body := f.verdict("service=search&environment=production")
	assert.Equal(t, "inconclusive", body["verdict"])
	assert.Equal(t, []string{"deploylens has seen no deployment, health data or alert for service=search environment=production"}, reasons(body))
	status, _ := f.flagger("/v1/gate", map[string]string{"service": "search", "environment": "production"})
	assert.Equal(t, http.StatusPreconditionFailed, status, "an unknown service holds: a typo must not wave rollouts through")

	f.deploy()
	other := deployevent.Event{Service: "checkout", Namespace: "shop-eu", Environment: "production", ID: "gh-1234", State: deployevent.StateStarted, Timestamp: t0}
	ld := plog.NewLogs()
	other.AppendTo(ld, t0)
	require.NoError(t, f.c.consumeLogs(context.Background(), ld))
	body = f.verdict("service=checkout&environment=production")
	assert.Equal(t, []string{"service=checkout environment=production matches 2 services (shop-eu/checkout/production, shop/checkout/production); add namespace and environment"}, reasons(body))
	assert.Equal(t, "gh-1234", f.verdict("service=checkout&environment=production&namespace=shop-eu")["deployment_id"])
}

// Flagger: service from metadata.service else name, environment from
// metadata.environment else namespace.
func TestGateFlaggerBody(t *testing.T) {
	f := newGateFixture(t, nil, nil)
	f.deploy()
	f.clock.Advance(6 * time.Minute)
	f.health(testHealth{score: 95, verdict: deployevent.VerdictHealthy})

	status, body := f.flagger("/v1/gate", prodMeta)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "checkout", body["service"])
	status, body = f.flagger("/v1/gate", map[string]string{"service": "checkout", "environment": "production", "namespace": "shop"})
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "shop", body["namespace"])
	status, body = f.flagger("/v1/gate", nil)
	assert.Equal(t, http.StatusPreconditionFailed, status, "environment defaults to the Flagger namespace (shop), which deploylens has not seen")
	assert.Equal(t, "shop", body["environment"])

	// The example body from Flagger's docs.
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "payloads", "flagger-webhook-gate-progressing.json"))
	if err == nil {
		status, body = f.do(http.MethodPost, "/v1/gate", doc)
		assert.Equal(t, http.StatusPreconditionFailed, status)
		assert.Equal(t, "podinfo", body["service"])
		assert.Equal(t, "test", body["environment"])
	}
}

func TestGateBadRequests(t *testing.T) {
	f := newGateFixture(t, nil, nil)
	status, body := f.do(http.MethodGet, "/v1/verdict?environment=production", nil)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body["error"], "service is required")
	status, body = f.do(http.MethodPost, "/v1/gate", []byte("{not json"))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body["error"], "not a Flagger webhook payload")
	status, _ = f.do(http.MethodPost, "/v1/gate/rollback", []byte(`{"namespace":"x"}`))
	assert.Equal(t, http.StatusBadRequest, status)
	status, _ = f.do(http.MethodGet, "/v1/gate", nil)
	assert.Equal(t, http.StatusMethodNotAllowed, status)
	status, _ = f.do(http.MethodGet, "/nope", nil)
	assert.Equal(t, http.StatusNotFound, status)
}

// tokenAuth is a server authenticator extension that wants one bearer token.
type tokenAuth struct {
	component.StartFunc
	component.ShutdownFunc
}

var errBadToken = errors.New("bad token")

func (tokenAuth) Authenticate(ctx context.Context, sources map[string][]string) (context.Context, error) {
	for _, v := range sources["Authorization"] {
		if v == "Bearer s3cret" {
			return ctx, nil
		}
	}
	return ctx, errBadToken
}

// `auth:` on the gate server works like on any confighttp server.
func TestGateAuth(t *testing.T) {
	authID := component.MustNewID("tokenauth")
	cfg := testConfig(func(cfg *Config) {
		cfg.Gate.Get().Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: authID}})
	})
	c := newTestCore(t, cfg, newClock(t0), nil)
	require.NoError(t, c.Start(context.Background(), &testHost{extensions: map[component.ID]component.Component{authID: tokenAuth{}}}))
	url := "http://" + c.gate.addr + "/v1/verdict?service=checkout"

	resp, err := http.Get(url)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	req, err := http.NewRequest(http.MethodGet, url, http.NoBody)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// A score is a judgement: while the processor judges nothing it writes no
// score, and the gate shows none rather than the last one or a 0.
func TestGateShowsNoScoreWhileNothingIsJudged(t *testing.T) {
	f := newGateFixture(t, nil, nil)
	f.deploy()
	f.clock.Advance(10 * time.Second)
	f.health(testHealth{verdict: deployevent.VerdictInconclusive, score: math.NaN()})
	body := f.verdict("service=checkout&environment=production")
	assert.Equal(t, "inconclusive", body["verdict"])
	assert.Equal(t, "inconclusive", body["health_verdict"])
	assert.Nil(t, body["health_score"], "no score while learning")

	f.clock.Advance(10 * time.Second)
	f.health(testHealth{verdict: deployevent.VerdictHealthy, score: 96})
	body = f.verdict("service=checkout&environment=production")
	assert.Equal(t, 96.0, body["health_score"])

	// The next evaluation judged nothing: the verdict holds, the old score is not shown as current.
	f.clock.Advance(10 * time.Second)
	f.health(testHealth{verdict: deployevent.VerdictHealthy, score: math.NaN()})
	body = f.verdict("service=checkout&environment=production")
	assert.Equal(t, "healthy", body["health_verdict"])
	assert.Nil(t, body["health_score"])
}
