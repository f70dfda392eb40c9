// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadatatest"
	"github.com/deploylens/deploylens/internal/deployevent"
)

func TestRing(t *testing.T) {
	r := newRing[int](3)
	assert.Empty(t, r.slice())
	for i := 1; i <= 2; i++ {
		r.push(i)
	}
	assert.Equal(t, []int{1, 2}, r.slice())
	for i := 3; i <= 7; i++ {
		r.push(i)
	}
	assert.Equal(t, []int{5, 6, 7}, r.slice())
	r.reset()
	r.push(9)
	assert.Equal(t, []int{9}, r.slice())
}

func event(id string, state deployevent.State, at time.Time) *deployevent.Event {
	return &deployevent.Event{Service: "checkout", Namespace: "shop", Environment: "production", Version: "v-" + id, ID: id, State: state, Timestamp: at}
}

var checkoutKey = serviceKey{Namespace: "shop", Service: "checkout", Environment: "production"}

func TestStateLifecycle(t *testing.T) {
	s := newState(createDefaultConfig().(*Config).State)
	s.applyLifecycle(event("d1", deployevent.StateStarted, t0.Add(time.Minute)), t0)
	s.applyLifecycle(event("d1", deployevent.StateQueued, t0), t0) // late, earlier event
	v := s.services[checkoutKey]
	require.NotNil(t, v)
	assert.Equal(t, t0, v.Deployment.StartedAt, "a late queued event moves the start back")
	assert.Equal(t, deployevent.StateStarted, v.Deployment.State, "and does not move the state back")

	s.applyLifecycle(event("d1", deployevent.StateSucceeded, t0.Add(10*time.Minute)), t0)
	s.applyLifecycle(event("d1", deployevent.StateProgressing, t0.Add(5*time.Minute)), t0)
	assert.Equal(t, deployevent.StateSucceeded, v.Deployment.State, "never back from an end state")
	assert.Equal(t, "post", v.Phase)

	s.applyLifecycle(event("d2", deployevent.StateStarted, t0.Add(time.Hour)), t0)
	s.applyLifecycle(event("d3", deployevent.StateStarted, t0.Add(2*time.Hour)), t0) // supersedes d2
	s.applyLifecycle(event("d2", deployevent.StateFailed, t0.Add(90*time.Minute)), t0)
	s.applyLifecycle(event("d0", deployevent.StateStarted, t0.Add(-time.Hour)), t0) // older than d3
	assert.Equal(t, "d3", v.Deployment.ID)
	var outcomes []string
	for _, f := range v.History.slice() {
		outcomes = append(outcomes, f.ID+":"+f.Outcome+":"+f.EndedAt.Sub(f.StartedAt).String())
	}
	assert.Equal(t, []string{"d1:succeeded:10m0s", "d2:superseded:1h0m0s"}, outcomes)
}

func TestStateBounds(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	clock := newClock(t0)
	cfg := testConfig(func(cfg *Config) {
		cfg.State.MaxServices = 2
		cfg.State.MaxAlerts = 2
		cfg.State.ServiceTTL = time.Hour
		cfg.State.AlertTTL = 10 * time.Minute
	})
	c := startCore(t, cfg, clock, tt)
	ctx := context.Background()

	for i, svc := range []string{"a", "b", "c"} {
		ev := deployevent.Event{Service: svc, Environment: "production", ID: svc, State: deployevent.StateStarted, Timestamp: t0}
		ld := plog.NewLogs()
		ev.AppendTo(ld, t0)
		clock.Advance(time.Duration(i+1) * time.Second)
		require.NoError(t, c.consumeLogs(ctx, ld))
	}
	assert.Len(t, c.st.services, 2)
	assert.NotContains(t, c.st.services, serviceKey{Service: "a", Environment: "production"}, "the least recently updated view made room")

	for i := range 3 {
		a := criticalAlert()
		a.fingerprint = fmt.Sprintf("fp-%d", i)
		clock.Advance(time.Second)
		require.NoError(t, c.consumeLogs(ctx, alertLogs(a)))
	}
	assert.Len(t, c.st.alerts, 2)
	assert.NotContains(t, c.st.alerts, "fp-0")

	c.st.applyIndicator(serviceKey{Service: "b", Environment: "production"}, "error_ratio", 0.01, t0, false, t0)
	c.st.applyIndicator(serviceKey{Service: "c", Environment: "production"}, "error_ratio", 0.01, t0, false, t0)
	c.st.applyIndicator(serviceKey{Service: "c", Environment: "production"}, "latency_p95", 0.2, t0, false, t0)

	metadatatest.AssertEqualExporterDeploymentStateEntries(t, tt, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("kind", "service"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("kind", "alert"))},
		{Value: 0, Attributes: attribute.NewSet(attribute.String("kind", "resolved"))},
		{Value: 3, Attributes: attribute.NewSet(attribute.String("kind", "indicator"))},
		{Value: 0, Attributes: attribute.NewSet(attribute.String("kind", "edge"))},
	}, metricdatatest.IgnoreTimestamp())

	clock.Advance(11 * time.Minute)
	require.NoError(t, c.tick(ctx))
	assert.Empty(t, c.st.alerts, "firing alerts not signalled within alert_ttl are dropped")
	clock.Advance(time.Hour)
	require.NoError(t, c.tick(ctx))
	assert.Empty(t, c.st.services)

	metadatatest.AssertEqualExporterDeploymentStateDropped(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("kind", "service"), attribute.String("reason", "limit"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("kind", "alert"), attribute.String("reason", "limit"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("kind", "alert"), attribute.String("reason", "ttl"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("kind", "service"), attribute.String("reason", "ttl"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func TestStateIndicatorsBounded(t *testing.T) {
	cfg := createDefaultConfig().(*Config).State
	cfg.MaxIndicators = 2
	cfg.SparklinePoints = 3
	s := newState(cfg)
	for i := range 5 {
		for _, name := range []string{"error_rate", "latency_p99", "saturation"} {
			s.applyIndicator(checkoutKey, name, float64(i), t0.Add(time.Duration(i)*time.Minute), false, t0)
		}
		s.applyIndicator(checkoutKey, "error_rate", 0.5, t0.Add(time.Duration(i)*time.Minute), true, t0)
	}
	v := s.services[checkoutKey]
	assert.Len(t, v.Indicators, 2)
	assert.Equal(t, []float64{2, 3, 4}, values(v.Indicators["error_rate"].Values.slice()))
	assert.Equal(t, []float64{0.5, 0.5, 0.5}, values(v.Indicators["error_rate"].Baselines.slice()))
}

func TestInvalidRecordsCounted(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	c := startCore(t, testConfig(nil), newClock(t0), tt)

	noName := criticalAlert()
	noName.name = ""
	badState := criticalAlert()
	badState.state = "pending"
	noService := criticalAlert()
	noService.service = ""
	ld := alertLogs(noName, badState, noService)
	bad := plog.NewLogs()
	lr := bad.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(deployevent.EventName)
	lr.Attributes().PutStr(deployevent.AttrDeploymentState, "exploded")
	bad.ResourceLogs().At(0).Resource().Attributes().PutStr(deployevent.AttrServiceName, "checkout")
	other := plog.NewLogs()
	other.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("an application log")

	require.NoError(t, c.consumeLogs(context.Background(), ld))
	require.NoError(t, c.consumeLogs(context.Background(), bad))
	require.NoError(t, c.consumeLogs(context.Background(), other))
	assert.Empty(t, c.st.alerts)
	metadatatest.AssertEqualExporterDeploymentRecordsInvalid(t, tt, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: attribute.NewSet(attribute.String("kind", "alert"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("kind", "lifecycle"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// Records that omit optional contract attributes still go out: a derived
// fingerprint, severity from the log severity, recommendation none.
func TestParseAlertDefaults(t *testing.T) {
	a := criticalAlert()
	a.fingerprint, a.severity, a.recommendation, a.startedAt = "", "", "", time.Time{}
	ld := plog.NewLogs()
	a.appendTo(ld)
	rl := ld.ResourceLogs().At(0)
	rl.ScopeLogs().At(0).LogRecords().At(0).SetSeverityNumber(plog.SeverityNumberFatal)
	sig, err := parseAlert(rl.Resource(), rl.ScopeLogs().At(0).LogRecords().At(0), t0)
	require.NoError(t, err)
	assert.Len(t, sig.Fingerprint, 16)
	assert.Equal(t, "critical", sig.Severity, "FATAL maps back to critical")
	assert.Equal(t, deployevent.RecommendNone, sig.Recommendation)
	assert.Equal(t, a.at, sig.StartsAt, "started_at defaults to the record time")
	again, err := parseAlert(rl.Resource(), rl.ScopeLogs().At(0).LogRecords().At(0), t0)
	require.NoError(t, err)
	assert.Equal(t, sig.Fingerprint, again.Fingerprint, "derived fingerprints are stable")
}

func values(tv []timedValue) []float64 {
	out := make([]float64, len(tv))
	for i, v := range tv {
		out[i] = v.Value
	}
	return out
}
