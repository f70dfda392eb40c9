// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadatatest"
)

// routedConfig: critical checkout alerts in production go to slack, then
// escalate to pagerduty after 10m and to the webhook after 20m; warnings go
// to the webhook.
func routedConfig() *Config {
	return testConfig(func(cfg *Config) {
		cfg.Channels = map[string]ChannelConfig{
			"team-slack": {Type: channelSlack, ClientConfig: clientAt("http://127.0.0.1:1/slack")},
			"oncall":     {Type: channelPagerDuty, RoutingKey: "key"},
			"audit":      {Type: channelWebhook, ClientConfig: clientAt("http://127.0.0.1:1/hook")},
		}
		cfg.Routes = []RouteConfig{
			{Severities: []string{"critical"}, Services: []string{"checkout"}, Environments: []string{"production"}, Channels: []string{"team-slack", "oncall", "audit"}, EscalateAfter: 10 * time.Minute},
			{Severities: []string{"warning"}, Channels: []string{"audit"}},
		}
	})
}

func names(alerts []alertSignal) []string {
	out := []string{}
	for _, a := range alerts {
		out = append(out, a.State+":"+a.Fingerprint)
	}
	return out
}

func TestRoutingAndEscalation(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	clock := newClock(t0.Add(3 * time.Minute))
	c := newTestCore(t, routedConfig(), clock, tt)
	sinks := captureTargets(c)
	require.NoError(t, c.Start(context.Background(), &testHost{}))
	ctx := context.Background()

	critical := criticalAlert() // fires at t0+3m
	require.NoError(t, c.consumeLogs(ctx, alertLogs(critical)))
	assert.Equal(t, []string{"firing:fp-err-1"}, names(sinks["team-slack"].queued(clock.Now())))
	assert.Empty(t, sinks["oncall"].queued(clock.Now()))
	assert.Empty(t, sinks["audit"].queued(clock.Now()))

	// A re-send by the processor does not notify slack again.
	clock.Advance(time.Minute)
	resend := critical
	resend.at = clock.Now()
	require.NoError(t, c.consumeLogs(ctx, alertLogs(resend)))
	assert.Len(t, sinks["team-slack"].queued(clock.Now()), 1)

	// 9m59s after it started: no escalation yet.
	clock.Advance(8*time.Minute + 59*time.Second)
	require.NoError(t, c.tick(ctx))
	assert.Empty(t, sinks["oncall"].queued(clock.Now()))

	// 10m: pagerduty.
	clock.Advance(time.Second)
	require.NoError(t, c.tick(ctx))
	assert.Equal(t, []string{"firing:fp-err-1"}, names(sinks["oncall"].queued(clock.Now())))
	assert.Empty(t, sinks["audit"].queued(clock.Now()))
	require.NoError(t, c.tick(ctx))
	assert.Len(t, sinks["oncall"].queued(clock.Now()), 1, "escalated once")

	// 20m: the webhook.
	clock.Advance(10 * time.Minute)
	require.NoError(t, c.tick(ctx))
	assert.Equal(t, []string{"firing:fp-err-1"}, names(sinks["audit"].queued(clock.Now())))

	// Resolve: every notified channel hears of it.
	require.NoError(t, c.consumeLogs(ctx, alertLogs(critical.resolved(clock.Now()))))
	for _, ch := range []string{"team-slack", "oncall", "audit"} {
		q := sinks[ch].queued(clock.Now())
		require.NotEmpty(t, q, ch)
		assert.Equal(t, "resolved:fp-err-1", names(q)[len(q)-1], ch)
	}

	metadatatest.AssertEqualExporterDeploymentEscalations(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("target", "audit"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("target", "oncall"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestRoutingBySeverityAndService(t *testing.T) {
	clock := newClock(t0.Add(3 * time.Minute))
	c := newTestCore(t, routedConfig(), clock, nil)
	sinks := captureTargets(c)
	require.NoError(t, c.Start(context.Background(), &testHost{}))
	ctx := context.Background()

	warning := criticalAlert()
	warning.severity, warning.fingerprint = "warning", "fp-warn"
	otherService := criticalAlert()
	otherService.service, otherService.fingerprint = "search", "fp-search"
	staging := criticalAlert()
	staging.environment, staging.fingerprint = "staging", "fp-staging"
	require.NoError(t, c.consumeLogs(ctx, alertLogs(warning, otherService, staging)))

	assert.Equal(t, []string{"firing:fp-warn"}, names(sinks["audit"].queued(clock.Now())))
	assert.Empty(t, sinks["team-slack"].queued(clock.Now()), "critical alerts of other services or environments match no route")
	assert.Empty(t, sinks["oncall"].queued(clock.Now()))
}

// A resolve of an alert the exporter never saw firing (e.g. it restarted)
// goes to the channels the alert had reached by its duration.
func TestRoutingResolveOfUntrackedAlert(t *testing.T) {
	clock := newClock(t0.Add(30 * time.Minute))
	c := newTestCore(t, routedConfig(), clock, nil)
	sinks := captureTargets(c)
	require.NoError(t, c.Start(context.Background(), &testHost{}))

	resolved := criticalAlert().resolved(t0.Add(15 * time.Minute)) // fired for 12m
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(resolved)))
	assert.Equal(t, []string{"resolved:fp-err-1"}, names(sinks["team-slack"].queued(clock.Now())))
	assert.Equal(t, []string{"resolved:fp-err-1"}, names(sinks["oncall"].queued(clock.Now())))
	assert.Empty(t, sinks["audit"].queued(clock.Now()))
}

// Without routes every channel gets every alert, at once.
func TestRoutingDefaultAllChannels(t *testing.T) {
	cfg := routedConfig()
	cfg.Routes = nil
	clock := newClock(t0.Add(3 * time.Minute))
	c := newTestCore(t, cfg, clock, nil)
	sinks := captureTargets(c)
	require.NoError(t, c.Start(context.Background(), &testHost{}))
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(criticalAlert())))
	for _, ch := range []string{"team-slack", "oncall", "audit"} {
		assert.Len(t, sinks[ch].queued(clock.Now()), 1, ch)
	}
}

func TestRouterDue(t *testing.T) {
	r := newRouter(routedConfig())
	a := criticalAlert()
	parse := func(a testAlert) alertSignal {
		ld := alertLogs(a)
		rl := ld.ResourceLogs().At(0)
		s, err := parseAlert(rl.Resource(), rl.ScopeLogs().At(0).LogRecords().At(0), t0)
		require.NoError(t, err)
		return s
	}
	sig := parse(a)
	assert.Equal(t, []dueChannel{{"team-slack", 0}}, r.due(&sig, 0))
	assert.Equal(t, []dueChannel{{"team-slack", 0}}, r.due(&sig, -time.Minute), "clock skew counts as not yet firing")
	assert.Equal(t, []dueChannel{{"team-slack", 0}, {"oncall", 1}}, r.due(&sig, 10*time.Minute))
	assert.Equal(t, []dueChannel{{"team-slack", 0}, {"oncall", 1}, {"audit", 2}}, r.due(&sig, 3*time.Hour))
	a.severity = "info"
	sig = parse(a)
	assert.Empty(t, r.due(&sig, time.Hour))
}

// The processor may repeat a resolve: channels get it once, Alertmanager
// (which takes repeats in its stride) every time.
func TestRoutingRepeatedResolve(t *testing.T) {
	clock := newClock(t0.Add(3 * time.Minute))
	cfg := routedConfig()
	cfg.Alertmanager.Endpoints = []string{"http://127.0.0.1:1"}
	c := newTestCore(t, cfg, clock, nil)
	sinks := captureTargets(c)
	require.NoError(t, c.Start(context.Background(), &testHost{}))
	ctx := context.Background()

	require.NoError(t, c.consumeLogs(ctx, alertLogs(criticalAlert())))
	clock.Advance(time.Minute)
	resolved := criticalAlert().resolved(clock.Now())
	require.NoError(t, c.consumeLogs(ctx, alertLogs(resolved)))
	require.NoError(t, c.consumeLogs(ctx, alertLogs(resolved)))
	assert.Equal(t, []string{"firing:fp-err-1", "resolved:fp-err-1"}, names(sinks["team-slack"].queued(clock.Now())))
	assert.Len(t, sinks["alertmanager_0"].queued(clock.Now()), 3)

	// Firing again starts over.
	again := criticalAlert()
	again.at = clock.Now()
	require.NoError(t, c.consumeLogs(ctx, alertLogs(again)))
	require.NoError(t, c.consumeLogs(ctx, alertLogs(resolved)))
	assert.Equal(t, []string{"firing:fp-err-1", "resolved:fp-err-1", "firing:fp-err-1", "resolved:fp-err-1"}, names(sinks["team-slack"].queued(clock.Now())))
}
