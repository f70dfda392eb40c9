package deploymentexporter

import (
	"context"
	"io"
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
// 4 minutes in, with health and indicator data, a firing alert, and one
// earlier deployment that finished.
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
		f.health(testHealth{
			score: 80 - float64(i*2), verdict: deployevent.VerdictHealthy,
			indicators: map[string][2]float64{"error_rate": {0.01 + float64(i)*0.01, 0.01}, "latency_p99": {210 + float64(i), 200}},
		})
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
	assert.Equal(t, "fail", d["verdict"], "a critical alert fires for the deployment")
	assert.Equal(t, 240.0, d["duration_seconds"])
	assert.Equal(t, []any{80.0, 78.0, 76.0, 74.0}, d["scores"])
	inds := d["indicators"].([]any)
	require.Len(t, inds, 2)
	assert.Equal(t, "error_rate", inds[0].(map[string]any)["name"])
	assert.Equal(t, []any{0.01, 0.02, 0.03, 0.04}, inds[0].(map[string]any)["values"])
	assert.Equal(t, []any{0.01, 0.01, 0.01, 0.01}, inds[0].(map[string]any)["baselines"])

	recent := body["recent"].([]any)
	require.Len(t, recent, 1)
	r := recent[0].(map[string]any)
	assert.Equal(t, "gh-1200", r["deployment_id"])
	assert.Equal(t, "succeeded", r["outcome"])
	assert.Equal(t, 450.0, r["duration_seconds"])

	alerts := body["alerts"].([]any)
	require.Len(t, alerts, 1)
	assert.Equal(t, "DeploymentErrorRateRegression", alerts[0].(map[string]any)["alertname"])
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
