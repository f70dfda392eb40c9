// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadatatest"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

func TestOneInstanceAcrossPipelines(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	require.Equal(t, 1, ps.factory.instances.Len(), "three pipelines, one instance")
	ctx := context.Background()

	// Before any event: steady everywhere.
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV1)))
	assert.Equal(t, map[string]string{"deployment.phase": "steady"},
		deploymentAttrs(ps.tracesSink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()))

	// Events arrive in the logs pipeline …
	ps.clock.Set(t0.Add(time.Minute))
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, time.Minute))

	// … and the traces and metrics pipelines see the deployment.
	ps.clock.Set(t0.Add(2 * time.Minute))
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV1, checkoutV2)))
	require.NoError(t, ps.metrics.ConsumeMetrics(ctx, metricsOf(checkoutV1, checkoutV2)))

	rss := ps.tracesSink.AllTraces()[1].ResourceSpans()
	assert.Equal(t, map[string]string{"deployment.phase": "during", "deployment.id": "rollout-1", "deployment.cohort": "baseline"},
		deploymentAttrs(rss.At(0).Resource().Attributes()))
	assert.Equal(t, map[string]string{"deployment.phase": "during", "deployment.id": "rollout-1", "deployment.cohort": "canary"},
		deploymentAttrs(rss.At(1).Resource().Attributes()))

	rms := ps.metricsSink.AllMetrics()[0].ResourceMetrics()
	assert.Equal(t, map[string]string{"deployment.phase": "during", "deployment.cohort": "baseline"},
		deploymentAttrs(rms.At(0).Resource().Attributes()), "no deployment.id on metrics by default")
	assert.Equal(t, map[string]string{"deployment.phase": "during", "deployment.cohort": "canary"},
		deploymentAttrs(rms.At(1).Resource().Attributes()))

	// The end of the deployment, again through the logs pipeline.
	ps.clock.Set(t0.Add(10 * time.Minute))
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateSucceeded, 10*time.Minute))
	require.NoError(t, ps.metrics.ConsumeMetrics(ctx, metricsOf(checkoutV2)))
	assert.Equal(t, map[string]string{"deployment.phase": "post"},
		deploymentAttrs(ps.metricsSink.AllMetrics()[1].ResourceMetrics().At(0).Resource().Attributes()))

	// Application logs in the same pipeline as the events are tagged too.
	require.NoError(t, ps.logs.ConsumeLogs(ctx, logsOf(checkoutV2)))
	logs := ps.logsSink.AllLogs()
	assert.Equal(t, map[string]string{"deployment.phase": "post", "deployment.id": "rollout-1"},
		deploymentAttrs(logs[len(logs)-1].ResourceLogs().At(0).Resource().Attributes()))

	// 30 minutes after the end, back to steady.
	ps.clock.Set(t0.Add(40 * time.Minute))
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV2)))
	assert.Equal(t, map[string]string{"deployment.phase": "steady"},
		deploymentAttrs(ps.tracesSink.AllTraces()[2].ResourceSpans().At(0).Resource().Attributes()))
}

func TestSeparateComponentIDsAreSeparateInstances(t *testing.T) {
	f := newFactory()
	first := newPipelines(t, pipelineOptions{factory: f})
	set := processortest.NewNopSettings(metadata.Type)
	set.ID = component.MustNewIDWithName("deployment", "other")
	second := newPipelines(t, pipelineOptions{factory: f, set: &set})
	require.Equal(t, 2, f.instances.Len())

	first.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, 0))
	require.NoError(t, second.traces.ConsumeTraces(context.Background(), tracesOf(checkoutV2)))
	assert.Equal(t, map[string]string{"deployment.phase": "steady"},
		deploymentAttrs(second.tracesSink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()))
}

func TestSharedLifecycle(t *testing.T) {
	f := newFactory()
	pf := f.processorFactory()
	cfg := createDefaultConfig()
	set := processortest.NewNopSettings(metadata.Type)
	ctx := context.Background()
	host := componenttest.NewNopHost()

	traces, err := pf.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	logs, err := pf.CreateLogs(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	p := f.instance(set.ID)
	require.NotNil(t, p)

	require.NoError(t, traces.Start(ctx, host))
	require.NoError(t, logs.Start(ctx, host))
	assert.NotNil(t, p.cancel, "the background loop runs")

	// The first pipeline to stop leaves the instance running for the other.
	require.NoError(t, traces.Shutdown(ctx))
	require.NoError(t, traces.Shutdown(ctx), "shutdown twice")
	assert.NotNil(t, p.cancel, "still running for the logs pipeline")
	assert.Same(t, p, f.instance(set.ID))

	require.NoError(t, logs.Shutdown(ctx))
	assert.Nil(t, p.cancel, "stopped with the last pipeline")
	assert.Nil(t, f.instance(set.ID), "forgotten once every pipeline is down")

	// A configuration reload creates a fresh instance.
	metrics, err := pf.CreateMetrics(ctx, set, cfg, consumertest.NewNop())
	require.NoError(t, err)
	assert.NotSame(t, p, f.instance(set.ID))
	// Shutdown without Start is safe and releases the instance.
	require.NoError(t, metrics.Shutdown(ctx))
	assert.Zero(t, f.instances.Len())
}

func TestLifecycleRecordsPassUnchanged(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	in := plog.NewLogs()
	started := deployEvent("rollout-1", deployevent.StateStarted, 0)
	started.AppendTo(in, t0)
	// A resource holding both an event and an application record.
	mixed := in.ResourceLogs().AppendEmpty()
	checkoutV2.putResource(mixed.Resource().Attributes())
	sl := mixed.ScopeLogs().AppendEmpty()
	ev := deployEvent("rollout-1", deployevent.StateProgressing, time.Second)
	tmp := plog.NewLogs()
	ev.AppendTo(tmp, t0)
	tmp.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).CopyTo(sl.LogRecords().AppendEmpty())
	sl.LogRecords().AppendEmpty().Body().SetStr("order placed")

	want := plog.NewLogs()
	in.CopyTo(want)
	require.NoError(t, ps.logs.ConsumeLogs(context.Background(), in))
	got := ps.logsSink.AllLogs()[0]

	// The events are applied …
	assert.Equal(t, deployevent.PhaseDuring, ps.proc.tracker.Lookup(checkoutKey(), "", t0).Phase)
	// … and pass on untouched; the application record beside one is tagged.
	want.ResourceLogs().At(1).ScopeLogs().At(0).LogRecords().At(1).Attributes().PutStr("deployment.phase", "during")
	want.ResourceLogs().At(1).ScopeLogs().At(0).LogRecords().At(1).Attributes().PutStr("deployment.id", "rollout-1")
	require.NoError(t, plogtest.CompareLogs(want, got))
}

func TestUntrackedServices(t *testing.T) {
	for _, tt := range []struct {
		name         string
		tagUntracked bool
		want         map[string]string
	}{
		{name: "tagged steady by default", tagUntracked: true, want: map[string]string{"deployment.phase": "steady"}},
		{name: "left alone when asked", tagUntracked: false, want: map[string]string{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := newPipelines(t, pipelineOptions{edit: func(c *Config) {
				c.TagUnknownAsSteady = tt.tagUntracked
				c.Inference.Enabled = false
			}})
			require.NoError(t, ps.traces.ConsumeTraces(context.Background(), tracesOf(cartV7)))
			assert.Equal(t, tt.want, deploymentAttrs(ps.tracesSink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()))
		})
	}
}

func TestDeployedServicesAreSteadyEvenWhenUnknownOnesAreNotTagged(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{edit: func(c *Config) { c.TagUnknownAsSteady = false }})
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateSucceeded, 0))
	ps.clock.Set(t0.Add(time.Hour))
	require.NoError(t, ps.traces.ConsumeTraces(context.Background(), tracesOf(checkoutV2, cartV7)))
	rss := ps.tracesSink.AllTraces()[0].ResourceSpans()
	assert.Equal(t, map[string]string{"deployment.phase": "steady"}, deploymentAttrs(rss.At(0).Resource().Attributes()),
		"checkout had a deployment: its steady phase is known")
	assert.Empty(t, deploymentAttrs(rss.At(1).Resource().Attributes()), "cart never had one")
}

func TestTelemetryWithoutServiceNameIsUntouched(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	td := tracesOf(service{})
	td.ResourceSpans().At(0).Resource().Attributes().Clear()
	require.NoError(t, ps.traces.ConsumeTraces(context.Background(), td))
	assert.Zero(t, ps.tracesSink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes().Len())
}

func TestEnvironmentDefault(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{edit: func(c *Config) { c.EnvironmentDefault = "prod" }})
	ev := deployEvent("rollout-1", deployevent.StateStarted, 0)
	ev.Environment = ""
	ps.consumeEvents(t, ev)

	noEnv := checkoutV2
	noEnv.environment = ""
	staging := checkoutV2
	staging.environment = "staging"
	require.NoError(t, ps.traces.ConsumeTraces(context.Background(), tracesOf(noEnv, checkoutV2, staging)))
	rss := ps.tracesSink.AllTraces()[0].ResourceSpans()
	assert.Equal(t, "during", deploymentAttrs(rss.At(0).Resource().Attributes())["deployment.phase"], "no environment: the default")
	assert.Equal(t, "during", deploymentAttrs(rss.At(1).Resource().Attributes())["deployment.phase"], "the default's own name")
	assert.Equal(t, "steady", deploymentAttrs(rss.At(2).Resource().Attributes())["deployment.phase"], "another environment")
}

func TestServiceVersionFilledWhereMissing(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{edit: func(c *Config) {
		c.Tagging.Traces.Attributes = []string{deployevent.AttrDeploymentPhase, deployevent.AttrServiceVersion}
	}})
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, 0))
	noVersion := checkoutV1
	noVersion.version = ""
	require.NoError(t, ps.traces.ConsumeTraces(context.Background(), tracesOf(noVersion, checkoutV1)))
	rss := ps.tracesSink.AllTraces()[0].ResourceSpans()
	assert.Equal(t, "1.5.0", attrs(rss.At(0).Resource().Attributes())["service.version"], "the deployed version")
	assert.Equal(t, "1.4.0", attrs(rss.At(1).Resource().Attributes())["service.version"], "kept")
}

func TestInferenceThroughPipelines(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	ctx := context.Background()
	require.NoError(t, ps.metrics.ConsumeMetrics(ctx, metricsOf(checkoutV1)))
	ps.clock.Set(t0.Add(time.Minute))
	// A sidecar sees the new version in its own telemetry: no event needed.
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV1, checkoutV2)))
	rss := ps.tracesSink.AllTraces()[0].ResourceSpans()
	got := deploymentAttrs(rss.At(1).Resource().Attributes())
	assert.Equal(t, "during", got["deployment.phase"])
	assert.Equal(t, "canary", got["deployment.cohort"])
	assert.Contains(t, got["deployment.id"], "inferred-")

	// The old version stops; after inference.settle the deployment succeeded.
	ps.clock.Set(t0.Add(3*time.Minute + time.Second))
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV2)))
	got = deploymentAttrs(ps.tracesSink.AllTraces()[1].ResourceSpans().At(0).Resource().Attributes())
	assert.Equal(t, "post", got["deployment.phase"])
	assert.Empty(t, got["deployment.cohort"])
}

func TestSelfTelemetry(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	set.ID = component.NewID(metadata.Type)
	ps := newPipelines(t, pipelineOptions{set: &set})
	ctx := context.Background()

	ps.consumeEvents(t,
		deployEvent("rollout-1", deployevent.StateStarted, 0),
		deployEvent("rollout-1", deployevent.StateStarted, 0), // duplicate
		deployEvent("rollout-1", deployevent.StateQueued, 0),  // out of order
	)
	invalid := plog.NewLogs()
	invalid.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetEventName(deployevent.EventName)
	require.NoError(t, ps.logs.ConsumeLogs(ctx, invalid))
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV1, checkoutV2, cartV7)))
	require.NoError(t, ps.metrics.ConsumeMetrics(ctx, metricsOf(checkoutV1)))

	set1 := func(k, v string) attribute.Set { return attribute.NewSet(attribute.String(k, v)) }
	metadatatest.AssertEqualProcessorDeploymentEventsApplied(t, tel,
		[]metricdata.DataPoint[int64]{{Attributes: set1("state", "started"), Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentEventsIgnored(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: set1("reason", "duplicate"), Value: 1},
		{Attributes: set1("reason", "out_of_order"), Value: 1},
		{Attributes: set1("reason", "invalid"), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentDeploymentsTracked(t, tel,
		[]metricdata.DataPoint[int64]{{Attributes: set1("origin", "event"), Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentDataTagged(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: set1("signal", "traces"), Value: 3},
		{Attributes: set1("signal", "metrics"), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentServicesTracked(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 2}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentDeploymentsActive(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: set1("phase", "pre"), Value: 0},
		{Attributes: set1("phase", "during"), Value: 1},
		{Attributes: set1("phase", "post"), Value: 0},
	}, metricdatatest.IgnoreTimestamp())
}

func TestSelfTelemetryBounds(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	set.ID = component.NewID(metadata.Type)
	ps := newPipelines(t, pipelineOptions{set: &set, edit: func(c *Config) {
		c.MaxServices = 1
		c.IdleTTL = time.Hour
	}})
	ctx := context.Background()

	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, 0))
	// checkout is deploying: cart cannot be tracked, and is tagged steady.
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(cartV7)))
	assert.Equal(t, "steady", deploymentAttrs(ps.tracesSink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes())["deployment.phase"])
	metadatatest.AssertEqualProcessorDeploymentServicesRefused(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())

	ps.clock.Set(t0.Add(2 * time.Hour))
	ps.proc.tracker.Sweep(ps.clock.Now())
	metadatatest.AssertEqualProcessorDeploymentServicesEvicted(t, tel, []metricdata.DataPoint[int64]{
		{Attributes: attribute.NewSet(attribute.String("reason", "idle_ttl")), Value: 1},
	}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentDeploymentsStuck(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}

func checkoutKey() tracker.Key {
	return tracker.Key{Namespace: "shop", Service: "checkout", Environment: "prod"}
}

// TestPipelinesConcurrently is for the race detector: the shared instance is
// used by three pipelines at once.
func TestPipelinesConcurrently(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		for i := range 100 {
			ps.consumeEvents(t, deployEvent(fmt.Sprint("rollout-", i/10), deployevent.StateStarted, time.Duration(i)*time.Second))
		}
	}()
	go func() {
		defer wg.Done()
		for range 100 {
			assert.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV1, checkoutV2, cartV7)))
		}
	}()
	go func() {
		defer wg.Done()
		for range 100 {
			assert.NoError(t, ps.metrics.ConsumeMetrics(ctx, metricsOf(checkoutV1, checkoutV2, cartV7)))
		}
	}()
	wg.Wait()
	assert.Len(t, ps.tracesSink.AllTraces(), 100)
}

// TestSelfTelemetrySignalsState: the KPI book's and the alert memory's sizes
// and drops are reported.
func TestSelfTelemetrySignalsState(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	set := metadatatest.NewSettings(tel)
	set.ID = component.NewID(metadata.Type)
	ps := newPipelines(t, pipelineOptions{set: &set, edit: func(c *Config) { c.MaxServices = 1 }})
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, 0))
	for i, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"} {
		ps.proc.emitter.alerts.Evaluate(alerts.Context{Key: alerts.Key(checkoutKey())},
			[]alerts.Condition{{Name: name, Severity: "warning", Active: true}}, t0.Add(time.Duration(i)*time.Second))
	}
	// Starting the pipelines registered the callbacks; MaxAlerts is 10 × max_services.
	metadatatest.AssertEqualProcessorDeploymentKpiServices(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentKpiEvicted(t, tel, []metricdata.DataPoint[int64]{{Value: 0}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentAlertsRemembered(t, tel, []metricdata.DataPoint[int64]{{Value: 10}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualProcessorDeploymentAlertsDropped(t, tel, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
}
