// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/kpi"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadatatest"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

func cartKey() tracker.Key {
	return tracker.Key{Namespace: "shop", Service: "cart", Environment: "prod"}
}

// latencyRule is a user rule that holds as soon as latency is above 500 ms.
var latencyRule = alerts.Rule{Name: "CartSlow", Expr: "latency_p95 > 0.5"}

// probe is what the processor keeps about one service, map by map.
func probe(p *deploymentProcessor, k tracker.Key) string {
	_, tracked := p.tracker.Service(k, p.now())
	kpiLen := 0
	if _, ok := p.emitter.book.Values(kpi.Key(k), p.now()); ok {
		kpiLen = 1
	}
	steady := 0
	p.emitter.mu.Lock()
	if _, ok := p.emitter.steadySent[k]; ok {
		steady = 1
	}
	p.emitter.mu.Unlock()
	return fmt.Sprintf("tracked=%d health=%d kpi=%d steadySent=%d firing=%d rules=%d",
		b2i(tracked), b2i(p.health.Has(serviceHealthKey(k))), kpiLen, steady, len(p.emitter.alerts.Firing(alerts.Key(k))), p.emitter.rules.Pending())
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// remember gives a service what a steady, reporting, alerting service has in
// every map: a health series, a steady emission time, a rule pending and a
// firing alert of that rule.
func remember(t *testing.T, p *deploymentProcessor, k tracker.Key, now time.Time) {
	t.Helper()
	judged, due, fired := touch(p, k, now)
	require.True(t, judged)
	require.True(t, due)
	require.Len(t, fired, 1)
	require.Equal(t, deployevent.AlertFiring, fired[0].State)
}

// touch is remember without its checks, for concurrent use.
func touch(p *deploymentProcessor, k tracker.Key, now time.Time) (judged, due bool, fired []alerts.Signal) {
	judged = p.health.Series(serviceHealthKey(k)) != nil
	due = p.emitter.steadyDue(k, now)
	actx := alerts.Context{Key: alerts.Key(k), Phase: string(deployevent.PhaseSteady)}
	conds := p.emitter.rules.Conditions(actx, map[string]alerts.Evidence{"latency_p95": {Indicator: "latency_p95", Observed: 0.9}}, now)
	return judged, due, p.emitter.alerts.Evaluate(actx, conds, now)
}

func forgetPipelines(t *testing.T, edit func(*Config)) (*pipelines, *componenttest.Telemetry) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	set.ID = component.NewID(metadata.Type)
	ps := newPipelines(t, pipelineOptions{set: &set, edit: func(c *Config) {
		c.Signals.Alerts.Rules = []alerts.Rule{latencyRule}
		edit(c)
	}})
	return ps, tel
}

// assertForgotten checks that the service left nothing behind, in the maps
// and in the size gauges (the KPI book keeps kpiOthers other services), and
// that its alert went out resolved with the reason.
func assertForgotten(t *testing.T, ps *pipelines, tel *componenttest.Telemetry, k tracker.Key, kpiOthers int64) {
	t.Helper()
	assert.Equal(t, "tracked=0 health=0 kpi=0 steadySent=0 firing=0 rules=0", probe(ps.proc, k))
	ps.proc.emitSignals(context.Background(), ps.clock.Now())
	var resolved []alertRecord
	for _, r := range alertRecords(ps.logsSink) {
		if r.service == k.Service && r.state == deployevent.AlertResolved {
			resolved = append(resolved, r)
		}
	}
	require.Len(t, resolved, 1, "one resolved alert record for the forgotten service")
	assert.Equal(t, latencyRule.Name, resolved[0].name)
	assert.Equal(t, alerts.ReasonStoppedReporting, resolved[0].attrs[deployevent.AttrAlertReason])
	assert.Contains(t, resolved[0].body, "(service stopped reporting)")

	zero := []metricdata.DataPoint[int64]{{Value: 0}}
	metadatatest.AssertEqualProcessorDeploymentSteadyServices(t, tel, zero, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentRulesPending(t, tel, zero, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentKpiServices(t, tel, []metricdata.DataPoint[int64]{{Value: kpiOthers}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentAlertsForgotten(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentHealthEvicted(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

// TestForgottenIdleServiceLeavesNothing is the probe: a steady
// service that never deployed goes idle; everything kept for it goes with it,
// its firing alert is resolved, and it stays so hours later.
func TestForgottenIdleServiceLeavesNothing(t *testing.T) {
	ps, tel := forgetPipelines(t, func(c *Config) { c.IdleTTL = time.Hour })
	ctx := context.Background()
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(cartV7)))
	remember(t, ps.proc, cartKey(), ps.clock.Now())
	require.Equal(t, "tracked=1 health=1 kpi=0 steadySent=1 firing=1 rules=1", probe(ps.proc, cartKey()))

	ps.clock.Set(t0.Add(2 * time.Hour))
	ps.proc.tracker.Sweep(ps.clock.Now())
	assertForgotten(t, ps, tel, cartKey(), 0)

	for range 3 {
		ps.clock.Set(ps.clock.Now().Add(time.Hour))
		ps.proc.tracker.Sweep(ps.clock.Now())
		ps.proc.health.Sweep(ps.clock.Now())
		ps.proc.emitSignals(ctx, ps.clock.Now())
	}
	assert.Equal(t, "tracked=0 health=0 kpi=0 steadySent=0 firing=0 rules=0", probe(ps.proc, cartKey()))
	assert.Zero(t, ps.proc.emitter.alerts.Len(), "the resolved alert is forgotten after an hour")
}

// TestResolvedAlertsKeptForResolvedTTL: a resolved alert is remembered for
// signals::alerts::resolved_ttl, not a fixed hour.
func TestResolvedAlertsKeptForResolvedTTL(t *testing.T) {
	ps, _ := forgetPipelines(t, func(c *Config) { c.IdleTTL = time.Hour; c.Signals.Alerts.ResolvedTTL = 5 * time.Minute })
	ctx := context.Background()
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(cartV7)))
	remember(t, ps.proc, cartKey(), ps.clock.Now())
	ps.clock.Set(t0.Add(2 * time.Hour))
	ps.proc.tracker.Sweep(ps.clock.Now())
	ps.proc.emitSignals(ctx, ps.clock.Now()) // resolves the alert of the forgotten service
	require.Equal(t, 1, ps.proc.emitter.alerts.Len(), "the resolved alert is remembered")

	ps.clock.Set(ps.clock.Now().Add(4 * time.Minute))
	ps.proc.emitSignals(ctx, ps.clock.Now())
	assert.Equal(t, 1, ps.proc.emitter.alerts.Len(), "still within resolved_ttl")
	ps.clock.Set(ps.clock.Now().Add(2 * time.Minute))
	ps.proc.emitSignals(ctx, ps.clock.Now())
	assert.Zero(t, ps.proc.emitter.alerts.Len(), "forgotten once resolved_ttl has passed")
}

// TestForgottenByLRULeavesNothing: at max_services a new service evicts the
// least recently seen steady one, and with it everything kept for it.
func TestForgottenByLRULeavesNothing(t *testing.T) {
	ps, tel := forgetPipelines(t, func(c *Config) { c.MaxServices = 1 })
	ctx := context.Background()
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(cartV7)))
	remember(t, ps.proc, cartKey(), ps.clock.Now())
	require.Equal(t, "tracked=1 health=1 kpi=0 steadySent=1 firing=1 rules=1", probe(ps.proc, cartKey()))

	ps.clock.Set(t0.Add(time.Minute))
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV1)))
	_, tracked := ps.proc.tracker.Service(checkoutKey(), ps.clock.Now())
	require.True(t, tracked, "checkout took cart's place")
	assertForgotten(t, ps, tel, cartKey(), 0)
}

// TestRefusedServiceLeavesNothing: a service the tracker refuses (every
// tracked service is deploying) keeps nothing elsewhere either, whatever was
// left for it (restored state, a race with its eviction).
func TestRefusedServiceLeavesNothing(t *testing.T) {
	ps, tel := forgetPipelines(t, func(c *Config) { c.MaxServices = 1 })
	ctx := context.Background()
	// Left over for cart (as a restore would leave it) before checkout deploys.
	remember(t, ps.proc, cartKey(), ps.clock.Now())
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, 0))

	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(cartV7)))
	metadatatest.AssertEqualProcessorDeploymentServicesRefused(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	assertForgotten(t, ps, tel, cartKey(), 1)
	_, tracked := ps.proc.tracker.Service(checkoutKey(), ps.clock.Now())
	assert.True(t, tracked, "the deploying service is kept")
}

// TestChurnLeavesNothing is for the race detector too: services come and go
// through a small tracker while signals are emitted; once all are idle,
// nothing is left of any of them.
func TestChurnLeavesNothing(t *testing.T) {
	ps, _ := forgetPipelines(t, func(c *Config) { c.MaxServices, c.IdleTTL = 5, time.Hour })
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				s := service{name: fmt.Sprintf("svc-%d-%d", g, i), namespace: "shop", environment: "prod", version: "1"}
				assert.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(s)))
				k := tracker.Key{Namespace: "shop", Service: s.name, Environment: "prod"}
				touch(ps.proc, k, ps.clock.Now())
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			ps.proc.emitSignals(ctx, ps.clock.Now())
		}
	}()
	wg.Wait()

	ps.clock.Set(t0.Add(2 * time.Hour))
	ps.proc.tracker.Sweep(ps.clock.Now())
	ps.proc.emitSignals(ctx, ps.clock.Now())
	p := ps.proc
	assert.Zero(t, p.tracker.Len())
	assert.Zero(t, p.health.Len())
	assert.Zero(t, p.emitter.book.Len())
	assert.Zero(t, p.emitter.steadyServices())
	assert.Zero(t, p.emitter.rules.Pending())
	firing := 0
	p.emitter.alerts.EachService(func(k alerts.Key) { firing += len(p.emitter.alerts.Firing(k)) })
	assert.Zero(t, firing)
}

// TestEmissionForgetsStateWithoutItsService: state left for a service the
// tracker does not track (restored from storage without it) is forgotten at
// the next emission, its firing alert resolved with the reason.
func TestEmissionForgetsStateWithoutItsService(t *testing.T) {
	ps, tel := forgetPipelines(t, func(*Config) {})
	remember(t, ps.proc, cartKey(), ps.clock.Now())
	require.Equal(t, "tracked=0 health=1 kpi=0 steadySent=1 firing=1 rules=1", probe(ps.proc, cartKey()))
	ps.proc.emitSignals(context.Background(), ps.clock.Now())
	assertForgotten(t, ps, tel, cartKey(), 0)
}
