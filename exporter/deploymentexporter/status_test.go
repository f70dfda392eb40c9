// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// statusFixture: deployment gh-1234 of checkout started at t0 and is now
// 4 minutes in, with health and indicator data (request_rate only in the
// last minute), a firing alert, and one earlier deployment that finished.
func statusFixture(t *testing.T, refresh time.Duration) *gateFixture {
	t.Helper()
	f := newGateFixture(t, func(cfg *Config) { cfg.Gate.Get().StatusRefreshInterval = refresh }, nil)
	ctx := context.Background()
	earlier := deployevent.Event{Service: "checkout", Namespace: "shop", Environment: "production", Version: "1.4.1", PreviousVersion: "1.4.0", ID: "gh-1200", Timestamp: t0.Add(-2 * time.Hour)}
	for _, st := range []deployevent.State{deployevent.StateStarted, deployevent.StateSucceeded} {
		earlier.State = st
		ld := lifecycleLogsOf(earlier)
		require.NoError(t, f.c.consumeLogs(ctx, ld))
		earlier.Timestamp = earlier.Timestamp.Add(7*time.Minute + 30*time.Second)
	}
	f.deploy()
	for i := range 4 {
		f.clock.Advance(time.Minute)
		inds := map[string][2]float64{"error_ratio": {0.01 + float64(i)*0.01, 0.01}, "latency_p95": {0.21 + float64(i)*0.001, 0.2}}
		if i == 3 {
			inds["request_rate"] = [2]float64{25.5, 24}
		}
		f.health(testHealth{score: 80 - float64(i*2), verdict: deployevent.VerdictHealthy, indicators: inds})
	}
	require.NoError(t, f.c.consumeLogs(ctx, alertLogs(criticalAlert())))
	return f
}

func lifecycleLogsOf(ev deployevent.Event) plog.Logs {
	ld := plog.NewLogs()
	ev.AppendTo(ld, ev.Timestamp)
	return ld
}

func TestStatusJSON(t *testing.T) {
	f := statusFixture(t, time.Second)
	body := getJSON(t, f.base+"/v1/status")

	active := body["active"].([]any)
	require.Len(t, active, 1)
	d := active[0].(map[string]any)
	assert.Equal(t, "shop/checkout/production", d["key"])
	assert.Equal(t, "during", d["phase"])
	assert.Equal(t, "1.4.2", d["version"])
	assert.Equal(t, "1.4.1", d["previous_version"])
	assert.Equal(t, 74.0, d["health_score"])
	assert.Equal(t, "74", d["health_score_text"])
	assert.Equal(t, "fail", d["verdict"], "a critical alert fires for the deployment")
	assert.Equal(t, "rollback", d["recommendation"], "the critical alert recommends rollback")
	assert.Equal(t, 240.0, d["duration_seconds"])
	at := func(m int) string { return t0.Add(time.Duration(m) * time.Minute).UTC().Format(time.RFC3339Nano) }
	assert.Equal(t, []any{
		map[string]any{"at": at(1), "value": 80.0}, map[string]any{"at": at(2), "value": 78.0},
		map[string]any{"at": at(3), "value": 76.0}, map[string]any{"at": at(4), "value": 74.0},
	}, d["scores"], "the score line starts at the first score, a minute after the deployment started")
	inds := d["indicators"].([]any)
	require.Len(t, inds, 3)
	errs := inds[0].(map[string]any)
	assert.Equal(t, "error_ratio", errs["name"])
	assert.Equal(t, "error ratio", errs["label"])
	assert.Equal(t, "4 %", errs["value"])
	assert.Equal(t, "1 %", errs["baseline"])
	pointValues := func(ps any) []any {
		var out []any
		for _, p := range ps.([]any) {
			out = append(out, p.(map[string]any)["value"])
		}
		return out
	}
	assert.Equal(t, []any{0.01, 0.02, 0.03, 0.04}, pointValues(errs["values"]))
	assert.Equal(t, []any{0.01, 0.01, 0.01, 0.01}, pointValues(errs["baselines"]))
	assert.Equal(t, "213 ms", inds[1].(map[string]any)["value"])
	assert.Equal(t, "200 ms", inds[1].(map[string]any)["baseline"])
	rate := inds[2].(map[string]any)
	assert.Equal(t, "25.5 req/s", rate["value"])
	assert.Equal(t, []any{map[string]any{"at": at(4), "value": 25.5}}, rate["values"], "one point: the page draws a dot")

	recent := body["recent"].([]any)
	require.Len(t, recent, 1)
	r := recent[0].(map[string]any)
	assert.Equal(t, "gh-1200", r["deployment_id"])
	assert.Equal(t, "succeeded", r["outcome"])
	assert.Equal(t, 450.0, r["duration_seconds"])

	alerts := body["alerts"].([]any)
	require.Len(t, alerts, 1)
	a := alerts[0].(map[string]any)
	assert.Equal(t, "DeploymentErrorRateRegression", a["alertname"])
	assert.Equal(t, "shop/checkout/production", a["key"])
	assert.Equal(t, "gh-1234", a["deployment_id"])
	assert.Equal(t, "error rate 0.052/s vs baseline 0.01/s (expected 0.004/s to 0.016/s); anomaly score 0.97, confidence 99 % (two_proportion)", a["evidence"])
	assert.NotContains(t, a, "recommendation", "the deployment's recommendation is the one to act on")
}

// While the judgement withholds the score (NaN), the page gets no score and
// no made-up point on the score line.
func TestStatusWithoutScore(t *testing.T) {
	s := newState(StateConfig{MaxServices: 10, MaxAlerts: 10, MaxIndicators: 10, History: 5, SparklinePoints: 10})
	s.applyLifecycle(&deployevent.Event{Service: "checkout", Namespace: "shop", Environment: "production", ID: "gh-1", State: deployevent.StateStarted, Timestamp: t0}, t0)
	v := s.services[checkoutKey]
	v.Health = health{Score: math.NaN(), Verdict: deployevent.VerdictInconclusive, At: t0.Add(time.Minute), ReceivedAt: t0.Add(time.Minute)}
	v.Scores.push(pointAt(t0.Add(time.Minute), math.NaN()))
	v.Scores.push(pointAt(t0.Add(2*time.Minute), 91))
	v.Scores.push(pointAt(t0.Add(3*time.Minute), math.NaN()))
	snap := s.snapshot(t0.Add(3*time.Minute), &GateConfig{MaxHealthAge: time.Hour})
	require.Len(t, snap.Active, 1)
	d := snap.Active[0]
	assert.Nil(t, d.HealthScore)
	assert.Empty(t, d.HealthScoreText)
	assert.Equal(t, "inconclusive", d.HealthVerdict)
	assert.Equal(t, []statusPoint{{At: t0.Add(2 * time.Minute).UTC().Format(time.RFC3339Nano), Value: 91}}, d.Scores)
	_, err := json.Marshal(snap)
	require.NoError(t, err, "the status JSON encodes")
}

// The page is one self-contained document: no external scripts, styles,
// fonts or images, so it works offline.
func TestStatusPageSelfContained(t *testing.T) {
	f := statusFixture(t, 1500*time.Millisecond)
	resp, err := http.Get(f.base + "/")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'")
	html, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	page := string(html)
	assert.Contains(t, page, `data-refresh="1500"`)
	assert.NotRegexp(t, regexp.MustCompile(`(?i)<(script|img|iframe)[^>]+src=|<link[^>]+href=|@import|url\(`), page)
	for _, u := range regexp.MustCompile(`https?://[^\s"'<>)]+`).FindAllString(page, -1) {
		assert.Equal(t, "http://www.w3.org/2000/svg", u, "the only URL is the SVG namespace")
	}
}
