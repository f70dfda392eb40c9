// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"flag"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

// -update rewrites the expected golden files from the current output.
var update = flag.Bool("update", false, "rewrite expected golden files in testdata/golden")

// t0 is the start of every test's timeline.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// testClock is a clock tests move by hand; safe for the background loop.
type testClock struct{ ns atomic.Int64 }

func newTestClock(at time.Time) *testClock {
	c := &testClock{}
	c.Set(at)
	return c
}

func (c *testClock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Set(at time.Time) { c.ns.Store(at.UnixNano()) }

// pipelines is one deployment processor used in a traces, a metrics and a
// logs pipeline, each ending in a sink.
type pipelines struct {
	factory *factory
	proc    *deploymentProcessor
	clock   *testClock

	traces  processor.Traces
	metrics processor.Metrics
	logs    processor.Logs

	tracesSink  *consumertest.TracesSink
	metricsSink *consumertest.MetricsSink
	logsSink    *consumertest.LogsSink
}

type pipelineOptions struct {
	edit func(*Config)
	set  *processor.Settings
	host component.Host
	// factory reuses a factory (a restart uses a new one).
	factory *factory
}

// newPipelines creates and starts the three pipelines at t0; they are shut
// down when the test ends.
func newPipelines(t testing.TB, opts pipelineOptions) *pipelines {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	if opts.edit != nil {
		opts.edit(cfg)
	}
	require.NoError(t, cfg.Validate())
	set := processortest.NewNopSettings(metadata.Type)
	if opts.set != nil {
		set = *opts.set
	}
	host := opts.host
	if host == nil {
		host = componenttest.NewNopHost()
	}
	f := opts.factory
	if f == nil {
		f = newFactory()
	}
	pf := f.processorFactory()
	ps := &pipelines{
		factory:     f,
		clock:       newTestClock(t0),
		tracesSink:  new(consumertest.TracesSink),
		metricsSink: new(consumertest.MetricsSink),
		logsSink:    new(consumertest.LogsSink),
	}
	ctx := context.Background()
	var err error
	ps.traces, err = pf.CreateTraces(ctx, set, cfg, ps.tracesSink)
	require.NoError(t, err)
	ps.metrics, err = pf.CreateMetrics(ctx, set, cfg, ps.metricsSink)
	require.NoError(t, err)
	ps.logs, err = pf.CreateLogs(ctx, set, cfg, ps.logsSink)
	require.NoError(t, err)
	ps.proc = f.instance(set.ID)
	require.NotNil(t, ps.proc)
	ps.proc.now = ps.clock.Now

	for _, c := range []component.Component{ps.logs, ps.traces, ps.metrics} {
		require.NoError(t, c.Start(ctx, host))
	}
	t.Cleanup(func() { ps.shutdown(t) })
	return ps
}

func (ps *pipelines) shutdown(t testing.TB) {
	t.Helper()
	for _, c := range []component.Component{ps.traces, ps.metrics, ps.logs} {
		require.NoError(t, c.Shutdown(context.Background()))
	}
}

func (ps *pipelines) consumeEvents(t testing.TB, events ...deployevent.Event) {
	t.Helper()
	ld := plog.NewLogs()
	for i := range events {
		events[i].AppendTo(ld, ps.clock.Now())
	}
	require.NoError(t, ps.logs.ConsumeLogs(context.Background(), ld))
}

// service is the resource of one service instance in test telemetry.
type service struct {
	name, namespace, environment, version string
}

var (
	checkoutV1 = service{name: "checkout", namespace: "shop", environment: "prod", version: "1.4.0"}
	checkoutV2 = service{name: "checkout", namespace: "shop", environment: "prod", version: "1.5.0"}
	cartV7     = service{name: "cart", namespace: "shop", environment: "prod", version: "7.0.1"}
)

func (s service) putResource(m pcommon.Map) {
	m.PutStr(deployevent.AttrServiceName, s.name)
	if s.namespace != "" {
		m.PutStr(deployevent.AttrServiceNamespace, s.namespace)
	}
	if s.environment != "" {
		m.PutStr(deployevent.AttrEnvironment, s.environment)
	}
	if s.version != "" {
		m.PutStr(deployevent.AttrServiceVersion, s.version)
	}
}

// deployEvent is a lifecycle event of checkout 1.4.0 → 1.5.0 at t0+at.
func deployEvent(id string, state deployevent.State, at time.Duration) deployevent.Event {
	return deployevent.Event{
		Service: "checkout", Namespace: "shop", Environment: "prod",
		Version: "1.5.0", PreviousVersion: "1.4.0",
		ID: id, State: state, Strategy: deployevent.StrategyCanary, Source: deployevent.SourceArgoRollouts,
		Timestamp: t0.Add(at),
	}
}

// tracesOf is one span per service.
func tracesOf(services ...service) ptrace.Traces {
	td := ptrace.NewTraces()
	for _, s := range services {
		rs := td.ResourceSpans().AppendEmpty()
		s.putResource(rs.Resource().Attributes())
		span := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		span.SetName("GET /cart")
	}
	return td
}

// metricsOf is one gauge point per service.
func metricsOf(services ...service) pmetric.Metrics {
	md := pmetric.NewMetrics()
	for _, s := range services {
		rm := md.ResourceMetrics().AppendEmpty()
		s.putResource(rm.Resource().Attributes())
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("queue.depth")
		m.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(3)
	}
	return md
}

// logsOf is one record per service.
func logsOf(services ...service) plog.Logs {
	ld := plog.NewLogs()
	for _, s := range services {
		rl := ld.ResourceLogs().AppendEmpty()
		s.putResource(rl.Resource().Attributes())
		rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("order placed")
	}
	return ld
}

// attrs returns the string attributes of m.
func attrs(m pcommon.Map) map[string]string {
	out := map[string]string{}
	for k, v := range m.All() {
		out[k] = v.AsString()
	}
	return out
}

// deploymentAttrs returns the attributes the processor writes, as found in m.
func deploymentAttrs(m pcommon.Map) map[string]string {
	out := map[string]string{}
	for _, k := range taggable {
		if k == deployevent.AttrServiceVersion {
			continue
		}
		if v, ok := m.Get(k); ok {
			out[k] = v.AsString()
		}
	}
	return out
}

// instance is the shared processor of id, nil when no pipeline holds one.
func (f *factory) instance(id component.ID) *deploymentProcessor {
	p, _ := f.instances.Get(id)
	return p
}
