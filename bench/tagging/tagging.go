// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package tagging benchmarks the deployment processor's tagging against the
// contrib attributes processor and a hand-written floor, on the same batches.
// It lives in the bench module so contrib stays out of deploylens' own graph.
package tagging // import "github.com/deploylens/deploylens/bench/tagging"

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/processor/attributesprocessor"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor"
)

// Batch shape: 10 resources × 10 scopes × 100 spans.
const (
	Resources      = 10
	ScopesPerRes   = 10
	SpansPerScope  = 100
	SpansPerBatch  = Resources * ScopesPerRes * SpansPerScope
	deployingCount = Resources / 2 // services with a deployment in progress
)

var (
	baseTime   = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	deployment = component.MustNewType("deployment")
)

// NewBatch builds the traces every contender processes: ten services (half of
// them deploying, each resource one of two versions), realistic resource and
// span attributes.
func NewBatch() ptrace.Traces {
	td := ptrace.NewTraces()
	for r := 0; r < Resources; r++ {
		rs := td.ResourceSpans().AppendEmpty()
		res := rs.Resource().Attributes()
		res.PutStr("service.name", fmt.Sprintf("service-%d", r/2))
		res.PutStr("service.namespace", "shop")
		res.PutStr("deployment.environment.name", "production")
		res.PutStr("service.version", []string{"1.4.1", "1.4.2"}[r%2])
		res.PutStr("service.instance.id", fmt.Sprintf("pod-%d-7f9c8d6b5-x2x%d", r, r))
		res.PutStr("host.name", fmt.Sprintf("node-%d.cluster.local", r))
		res.PutStr("k8s.pod.name", fmt.Sprintf("service-%d-7f9c8d6b5-x2x%d", r/2, r))
		res.PutStr("k8s.namespace.name", "shop")
		res.PutStr("telemetry.sdk.language", "go")
		res.PutStr("telemetry.sdk.name", "opentelemetry")
		res.PutStr("telemetry.sdk.version", "1.38.0")
		for s := 0; s < ScopesPerRes; s++ {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName(fmt.Sprintf("go.opentelemetry.io/contrib/instrumentation/scope-%d", s))
			ss.Scope().SetVersion("0.63.0")
			for i := 0; i < SpansPerScope; i++ {
				sp := ss.Spans().AppendEmpty()
				sp.SetName("GET /api/v1/orders/{id}")
				sp.SetKind(ptrace.SpanKindServer)
				sp.SetTraceID(pcommon.TraceID([16]byte{byte(r), byte(s), byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}))
				sp.SetSpanID(pcommon.SpanID([8]byte{byte(r), byte(s), byte(i), 1, 2, 3, 4, 5}))
				start := baseTime.Add(time.Duration(i) * time.Millisecond)
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(5+i%40) * time.Millisecond)))
				a := sp.Attributes()
				a.PutStr("http.request.method", "GET")
				a.PutStr("url.path", fmt.Sprintf("/api/v1/orders/%d", 1000+i))
				a.PutStr("http.route", "/api/v1/orders/{id}")
				a.PutInt("http.response.status_code", []int64{200, 200, 200, 404, 500}[i%5])
				a.PutStr("server.address", "orders.shop.svc")
				a.PutInt("server.port", 8080)
				a.PutStr("network.protocol.version", "1.1")
				a.PutStr("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)")
				if i%5 == 4 {
					sp.Status().SetCode(ptrace.StatusCodeError)
				}
			}
		}
	}
	return td
}

// Contender is one way of tagging: a consumer with setup and teardown.
type Contender struct {
	Name    string
	consume func(context.Context, ptrace.Traces) error
	close   func()
}

// Run benchmarks the contender on one batch, re-tagged each iteration: after
// the first, every contender overwrites attributes that are already there,
// which is the steady state the allocation target is about.
func (c Contender) Run(b *testing.B) {
	td := NewBatch()
	ctx := context.Background()
	if err := c.consume(ctx, td); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := c.consume(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/SpansPerBatch, "ns/datum")
}

// Close releases what the contender started.
func (c Contender) Close() {
	if c.close != nil {
		c.close()
	}
}

// Deployment is our processor writing deployment.phase and deployment.cohort
// at level ("span" for the same work as the others, "resource" = default).
func Deployment(level string) (Contender, error) {
	factory := deploymentprocessor.NewFactory()
	cfg := factory.CreateDefaultConfig().(*deploymentprocessor.Config)
	cfg.Tagging.Traces.Attributes = []string{deployevent.AttrDeploymentPhase, deployevent.AttrDeploymentCohort}
	cfg.Tagging.Traces.Level = level
	cfg.Inference.Enabled = false
	// Tagging alone: the health engine is benchmarked against spanmetrics (package indicators).
	cfg.Health.Enabled = false
	// Half the services are mid-deployment, 1.4.1 → 1.4.2, so both cohorts tag.
	consume, closeFn, err := StartProcessor(cfg, DeploymentsStarted(deployingCount, deployevent.StrategyCanary))
	if err != nil {
		return Contender{}, err
	}
	return Contender{Name: "deployment (phase+cohort, " + level + " level)", consume: consume, close: closeFn}, nil
}

// StartProcessor creates the deployment processor's logs and traces pipelines
// for cfg (one shared instance), starts them and passes events through the
// logs pipeline. It returns the traces pipeline's consumer and what stops both.
func StartProcessor(cfg *deploymentprocessor.Config, events plog.Logs) (func(context.Context, ptrace.Traces) error, func(), error) {
	factory := deploymentprocessor.NewFactory()
	set := processortest.NewNopSettings(deployment)
	ctx := context.Background()
	logs, err := factory.CreateLogs(ctx, set, cfg, consumertest.NewNop())
	if err != nil {
		return nil, nil, err
	}
	traces, err := factory.CreateTraces(ctx, set, cfg, consumertest.NewNop())
	if err != nil {
		return nil, nil, err
	}
	host := componenttest.NewNopHost()
	for _, c := range []component.Component{logs, traces} {
		if err = c.Start(ctx, host); err != nil {
			return nil, nil, err
		}
	}
	closeFn := func() {
		_ = traces.Shutdown(ctx)
		_ = logs.Shutdown(ctx)
	}
	if err = logs.ConsumeLogs(ctx, events); err != nil {
		closeFn()
		return nil, nil, err
	}
	return traces.ConsumeTraces, closeFn, nil
}

// DeploymentsStarted is a started event (1.4.1 → 1.4.2) for each of the
// batch's first n services.
func DeploymentsStarted(n int, strategy deployevent.Strategy) plog.Logs {
	logs := plog.NewLogs()
	for s := 0; s < n; s++ {
		e := deployevent.Event{
			Service: fmt.Sprintf("service-%d", s), Namespace: "shop", Environment: "production",
			Version: "1.4.2", PreviousVersion: "1.4.1", ID: fmt.Sprintf("deploy-%d", s),
			State: deployevent.StateStarted, Strategy: strategy, Source: deployevent.SourceGeneric,
			Timestamp: time.Now(),
		}
		e.AppendTo(logs, time.Now())
	}
	return logs
}

// AttributesProcessor is contrib's attributes processor upserting the two
// attributes on every span.
func AttributesProcessor() (Contender, error) {
	factory := attributesprocessor.NewFactory()
	cfg := factory.CreateDefaultConfig()
	// Configured as YAML would configure it (its action types are contrib-internal).
	conf := confmap.NewFromStringMap(map[string]any{"actions": []any{
		map[string]any{"key": deployevent.AttrDeploymentPhase, "value": "during", "action": "upsert"},
		map[string]any{"key": deployevent.AttrDeploymentCohort, "value": "canary", "action": "upsert"},
	}})
	if err := conf.Unmarshal(cfg); err != nil {
		return Contender{}, err
	}
	ctx := context.Background()
	p, err := factory.CreateTraces(ctx, processortest.NewNopSettings(factory.Type()), cfg, consumertest.NewNop())
	if err != nil {
		return Contender{}, err
	}
	if err = p.Start(ctx, componenttest.NewNopHost()); err != nil {
		return Contender{}, err
	}
	return Contender{
		Name:    "attributesprocessor (upsert 2 attributes per span)",
		consume: p.ConsumeTraces,
		close:   func() { _ = p.Shutdown(ctx) },
	}, nil
}

// Floor is a hand-written loop that only writes the two attributes on every
// span: the least any tagging can cost.
func Floor() Contender {
	next := consumertest.NewNop()
	return Contender{
		Name: "floor (hand loop, 2 attributes per span)",
		consume: func(ctx context.Context, td ptrace.Traces) error {
			rss := td.ResourceSpans()
			for i := 0; i < rss.Len(); i++ {
				sss := rss.At(i).ScopeSpans()
				for j := 0; j < sss.Len(); j++ {
					spans := sss.At(j).Spans()
					for k := 0; k < spans.Len(); k++ {
						a := spans.At(k).Attributes()
						a.PutStr(deployevent.AttrDeploymentPhase, "during")
						a.PutStr(deployevent.AttrDeploymentCohort, "canary")
					}
				}
			}
			return next.ConsumeTraces(ctx, td)
		},
	}
}
