// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// The exact labels and annotations Alertmanager gets, over real HTTP.
func TestAlertmanagerPostsExactAlert(t *testing.T) {
	am := newRecorder(t, nil)
	clock := newClock(t0.Add(3 * time.Minute))
	cfg := testConfig(func(cfg *Config) {
		cfg.Alertmanager.Endpoints = []string{am.URL()}
		cfg.RunbookURL = "https://runbooks.example.com/{alertname}?service={service}"
		cfg.Alertmanager.Labels = map[string]string{"cluster": "eu-1"}
	})
	c := startCore(t, cfg, clock, nil)

	alert := criticalAlert()
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(alert)))
	require.Eventually(t, func() bool { return am.count() == 1 }, 5*time.Second, 10*time.Millisecond)

	am.mu.Lock()
	assert.Equal(t, "/api/v2/alerts", am.paths[0])
	assert.Equal(t, "application/json", am.headers[0].Get("Content-Type"))
	am.mu.Unlock()

	wantLabels := map[string]any{
		"alertname":     "DeploymentErrorRateRegression",
		"service":       "checkout",
		"namespace":     "shop",
		"environment":   "production",
		"severity":      "critical",
		"deployment_id": "gh-1234",
		"version":       "1.4.2",
		"indicator":     "error_rate",
		"cluster":       "eu-1",
	}
	wantAnnotations := map[string]any{
		"summary": "checkout 1.4.2 fails 5.2% of requests against 1.0% before the deployment: roll back.",
		"description": "checkout 1.4.2 (previous 1.4.1) in production, namespace shop, phase during, deployment gh-1234. " +
			"error rate 0.052/s vs baseline 0.01/s (expected 0.004/s to 0.016/s); anomaly score 0.97, confidence 99 % (two_proportion). Recommendation: rollback.",
		"recommendation": "rollback",
		"runbook_url":    "https://runbooks.example.com/DeploymentErrorRateRegression?service=checkout",
		"evidence":       "indicator=error_rate value=0.052 baseline=0.01 expected=[0.004, 0.016] anomaly_score=0.97 confidence=0.99 test=two_proportion",
	}
	posted := decodeJSON(t, am.body(0)).([]any)
	require.Len(t, posted, 1)
	firing := posted[0].(map[string]any)
	assert.Equal(t, wantLabels, firing["labels"])
	assert.Equal(t, wantAnnotations, firing["annotations"])
	assert.Equal(t, "2026-11-25T12:03:00.000Z", firing["startsAt"])
	// endsAt = signal time + resolve_timeout (5m): Alertmanager resolves it by
	// itself if deploylens stops re-sending.
	assert.Equal(t, "2026-11-25T12:08:00.000Z", firing["endsAt"])

	clock.Advance(4 * time.Minute)
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(alert.resolved(t0.Add(7*time.Minute)))))
	require.Eventually(t, func() bool { return am.count() == 2 }, 5*time.Second, 10*time.Millisecond)
	resolved := decodeJSON(t, am.body(1)).([]any)[0].(map[string]any)
	assert.Equal(t, wantLabels, resolved["labels"])
	assert.Equal(t, "2026-11-25T12:03:00.000Z", resolved["startsAt"])
	assert.Equal(t, "2026-11-25T12:07:00.000Z", resolved["endsAt"])
}

// An Alertmanager behind a --web.route-prefix keeps its path.
func TestAlertmanagerURL(t *testing.T) {
	assert.Equal(t, "http://am:9093/api/v2/alerts", alertmanagerURL("http://am:9093"))
	assert.Equal(t, "http://am:9093/alertmanager/api/v2/alerts", alertmanagerURL("http://am:9093/alertmanager/"))
}

// Alertmanager down when the alert fires: the alert waits in the sending
// queue and is delivered once it is back.
func TestAlertmanagerDownThenBack(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig(func(cfg *Config) { cfg.Alertmanager.Endpoints = []string{"http://" + addr} })
	c := startCore(t, cfg, newClock(t0.Add(3*time.Minute)), nil)

	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(criticalAlert())))
	time.Sleep(300 * time.Millisecond) // a few refused attempts

	am := newRecorderAt(t, addr, nil)
	require.Eventually(t, func() bool { return am.count() >= 1 }, 10*time.Second, 20*time.Millisecond)
	posted := decodeJSON(t, am.body(0)).([]any)
	assert.Equal(t, "DeploymentErrorRateRegression", posted[0].(map[string]any)["labels"].(map[string]any)["alertname"])
}

// An HA pair: each Alertmanager has its own queue, so one that is down does
// not hold back the other, and gets the alert when it comes back.
func TestAlertmanagerHAPairOneDown(t *testing.T) {
	up := newRecorder(t, nil)
	downAddr := freeAddr(t)
	cfg := testConfig(func(cfg *Config) {
		cfg.Alertmanager.Endpoints = []string{"http://" + downAddr, up.URL()}
	})
	c := startCore(t, cfg, newClock(t0.Add(3*time.Minute)), nil)

	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(criticalAlert())))
	require.Eventually(t, func() bool { return up.count() == 1 }, 5*time.Second, 10*time.Millisecond)

	back := newRecorderAt(t, downAddr, nil)
	require.Eventually(t, func() bool { return back.count() == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.JSONEq(t, string(up.body(0)), string(back.body(0)))
	assert.Equal(t, 1, up.count(), "the healthy Alertmanager got the alert once")
}

// Firing alerts are re-posted when no signal did for resend_interval, with
// endsAt moved on; resolved alerts are not.
func TestAlertmanagerResend(t *testing.T) {
	clock := newClock(t0.Add(3 * time.Minute))
	cfg := testConfig(func(cfg *Config) { cfg.Alertmanager.Endpoints = []string{"http://127.0.0.1:1"} })
	c := newTestCore(t, cfg, clock, nil)
	sinks := captureTargets(c)
	require.NoError(t, c.Start(context.Background(), &testHost{}))
	am := sinks["alertmanager_0"]

	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(criticalAlert())))
	require.Len(t, am.queued(clock.Now()), 1)

	clock.Advance(30 * time.Second)
	require.NoError(t, c.tick(context.Background()))
	assert.Len(t, am.queued(clock.Now()), 1, "not yet: resend_interval is 1m")

	clock.Advance(30 * time.Second)
	require.NoError(t, c.tick(context.Background()))
	queued := am.queued(clock.Now())
	require.Len(t, queued, 2)
	assert.Equal(t, clock.Now(), queued[1].SignalledAt)
	pa := c.am.postable(&queued[1])
	assert.Equal(t, "2026-11-25T12:09:00.000Z", pa.EndsAt.String())

	// A signal from the processor re-posts too, and restarts the interval.
	clock.Advance(30 * time.Second)
	again := criticalAlert()
	again.at = clock.Now()
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(again)))
	clock.Advance(40 * time.Second)
	require.NoError(t, c.tick(context.Background()))
	assert.Len(t, am.queued(clock.Now()), 3)

	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(criticalAlert().resolved(clock.Now()))))
	clock.Advance(5 * time.Minute)
	require.NoError(t, c.tick(context.Background()))
	queued = am.queued(clock.Now())
	require.Len(t, queued, 4)
	assert.Equal(t, "resolved", queued[3].State)
}

func TestClassifyResponse(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		status     int
		retryAfter string
		permanent  bool
		ok         bool
		throttle   time.Duration
	}{
		{status: 200, ok: true},
		{status: 202, ok: true},
		{status: 400, permanent: true},
		{status: 401, permanent: true},
		{status: 404, permanent: true},
		{status: 408},
		{status: 429, retryAfter: "7", throttle: 7 * time.Second},
		{status: 429, retryAfter: "Wed, 25 Nov 2026 12:00:30 GMT", throttle: 30 * time.Second},
		{status: 500},
		{status: 503, retryAfter: "2", throttle: 2 * time.Second},
		{status: 503, retryAfter: "soon"},
	} {
		err := classifyResponse(tt.status, tt.retryAfter, "body", now)
		if tt.ok {
			assert.NoError(t, err, tt.status)
			continue
		}
		require.Error(t, err, tt.status)
		assert.Equal(t, tt.permanent, consumererror.IsPermanent(err), "status %d", tt.status)
		if tt.throttle > 0 {
			assert.Contains(t, err.Error(), "Throttle ("+tt.throttle.String()+")", "status %d", tt.status)
		}
	}
	assert.Equal(t, 30*time.Second, parseRetryAfter("30", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("", now))
	assert.Equal(t, time.Duration(0), parseRetryAfter("Wed, 25 Nov 2026 11:00:00 GMT", now))
}

// Over HTTP: 429 with Retry-After waits that long, 503 is retried, 400 is
// dropped at once.
func TestDeliveryRetries(t *testing.T) {
	for _, tt := range []struct {
		name      string
		respond   func(n int, w http.ResponseWriter)
		wantCalls int
		minGap    time.Duration
	}{
		{
			name: "429_retry_after",
			respond: func(n int, w http.ResponseWriter) {
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				w.WriteHeader(http.StatusOK)
			},
			wantCalls: 2, minGap: time.Second,
		},
		{
			name: "503_then_ok",
			respond: func(n int, w http.ResponseWriter) {
				if n < 3 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
				w.WriteHeader(http.StatusOK)
			},
			wantCalls: 3,
		},
		{
			name: "400_permanent",
			respond: func(_ int, w http.ResponseWriter) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"bad alert"}`))
			},
			wantCalls: 1,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			am := newRecorder(t, tt.respond)
			cfg := testConfig(func(cfg *Config) { cfg.Alertmanager.Endpoints = []string{am.URL()} })
			c := startCore(t, cfg, newClock(t0.Add(3*time.Minute)), nil)
			require.NoError(t, c.consumeLogs(context.Background(), alertLogs(criticalAlert())))
			require.Eventually(t, func() bool { return am.count() == tt.wantCalls }, 10*time.Second, 10*time.Millisecond)
			time.Sleep(300 * time.Millisecond) // no more attempts after the last answer
			assert.Equal(t, tt.wantCalls, am.count())
			if tt.minGap > 0 {
				am.mu.Lock()
				gap := am.times[1].Sub(am.times[0])
				am.mu.Unlock()
				assert.GreaterOrEqual(t, gap, tt.minGap, "Retry-After honoured")
			}
			for i := 1; i < am.count(); i++ {
				assert.JSONEq(t, string(am.body(0)), string(am.body(i)), "a retry sends the same alerts")
			}
		})
	}
}

// A resolve with a reason (the processor forgot the service) carries it to
// Alertmanager as an annotation and to webhooks as a field; other alerts have none.
func TestAlertmanagerReasonAnnotation(t *testing.T) {
	ld := plog.NewLogs()
	alert := criticalAlert().resolved(t0.Add(time.Hour))
	alert.appendTo(ld)
	lr := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	a, err := parseAlert(ld.ResourceLogs().At(0).Resource(), lr, t0)
	require.NoError(t, err)
	c := amConverter{resolveTimeout: 5 * time.Minute}
	assert.NotContains(t, c.postable(&a).Annotations, "reason")

	lr.Attributes().PutStr(deployevent.AttrAlertReason, "service stopped reporting")
	a, err = parseAlert(ld.ResourceLogs().At(0).Resource(), lr, t0)
	require.NoError(t, err)
	assert.Equal(t, "service stopped reporting", c.postable(&a).Annotations["reason"])
	assert.Equal(t, "service stopped reporting", genericPayload("ops", []alertSignal{a}, runbook("")).Alerts[0].Reason, "webhooks carry it too")
}
