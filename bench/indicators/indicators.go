// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package indicators benchmarks the deployment processor's health indicators
// (span extraction into per-service accumulators, with the baseline updates
// and evaluations their intervals bring) against contrib's
// spanmetricsconnector turning the same traces into RED metrics.
package indicators // import "github.com/deploylens/deploylens/bench/indicators"

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/connector/spanmetricsconnector"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/bench/tagging"
	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor"
)

// SpansPerBatch is the size of the batch every contender processes (the
// tagging benchmark's: 10 resources, 5 services in two versions, 10 scopes
// of 100 spans each, every other one a CLIENT call: NewBatch).
const SpansPerBatch = tagging.SpansPerBatch

// step is how far each batch moves in time: every five batches each service
// closes an evaluation interval (10 s), so baseline updates are in the cost.
const step = 2 * time.Second

// Contender is one way of turning spans into indicators.
type Contender struct {
	Name    string
	consume func(context.Context, ptrace.Traces) error
	close   func()
	// still keeps every batch in the same interval: extraction alone, no
	// interval closes, no evaluations.
	still bool
}

// Still returns the contender with every batch stamped in the same interval.
func (c Contender) Still() Contender {
	c.still = true
	c.Name += ", within one interval"
	return c
}

// Close releases what the contender started.
func (c Contender) Close() {
	if c.close != nil {
		c.close()
	}
}

// Run benchmarks the contender on one batch, moved forward in time before
// each iteration (outside the timer) so that data time flows as it would.
func (c Contender) Run(b *testing.B) {
	td := NewBatch()
	// Data time starts two hours ago and moves 2 s a batch: it stays behind
	// the clock (the processor counts data from the future as now).
	base := time.Now().Add(-2 * time.Hour).Truncate(10 * time.Second)
	shift(td, base)
	ctx := context.Background()
	if err := c.consume(ctx, td); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !c.still {
			b.StopTimer()
			shift(td, base.Add(time.Duration(i+1)*step))
			b.StartTimer()
		}
		if err := c.consume(ctx, td); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/SpansPerBatch, "ns/span")
}

// Dependencies is how many services each service of the batch calls.
const Dependencies = 4

// NewBatch is the tagging benchmark's batch with every other span an
// outgoing call (CLIENT, peer.service one of Dependencies services, its
// server.address that service's): what a service's traces look like, so
// that the dependency indicators pay their share.
func NewBatch() ptrace.Traces {
	td := tagging.NewBatch()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 1; k < spans.Len(); k += 2 {
				sp := spans.At(k)
				sp.SetKind(ptrace.SpanKindClient)
				peer := fmt.Sprintf("dependency-%d", (k/2)%Dependencies)
				sp.Attributes().PutStr("peer.service", peer)
				sp.Attributes().PutStr("server.address", peer+".shop.svc")
			}
		}
	}
	return td
}

// shift stamps the batch's spans as ending within the second after start.
func shift(td ptrace.Traces, start time.Time) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				d := sp.EndTimestamp().AsTime().Sub(sp.StartTimestamp().AsTime())
				end := start.Add(time.Duration(k) * time.Second / time.Duration(spans.Len()))
				sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-d)))
				sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
			}
		}
	}
}

// Deployment is our processor with health on (dependency indicators too)
// and tagging off: per resource a tracker lookup, per span an accumulator
// update (the service's for SERVER spans, the dependency's for CLIENT ones); per service and interval
// the detectors' updates and an evaluation. Half the services are deploying
// (cohorts, comparisons).
func Deployment() (Contender, error) { return deployment(true) }

// DeploymentWithoutDependencies is Deployment with dependency indicators
// off: the CLIENT spans are skipped.
func DeploymentWithoutDependencies() (Contender, error) { return deployment(false) }

func deployment(dependencies bool) (Contender, error) {
	factory := deploymentprocessor.NewFactory()
	cfg := factory.CreateDefaultConfig().(*deploymentprocessor.Config)
	cfg.Tagging.Traces.Attributes = []string{}
	cfg.Inference.Enabled = false
	cfg.Health.Dependencies.Enabled = dependencies
	consume, closeFn, err := tagging.StartProcessor(cfg, tagging.DeploymentsStarted(tagging.Resources/4, deployevent.StrategyRolling))
	if err != nil {
		return Contender{}, err
	}
	name := "deployment (health indicators, tagging off)"
	if !dependencies {
		name = "deployment (health indicators, dependencies off)"
	}
	return Contender{Name: name, consume: consume, close: closeFn}, nil
}

// SpanMetrics is contrib's spanmetricsconnector with its default
// configuration (calls and duration histogram by service, span name, kind
// and status), aggregating the same batches.
func SpanMetrics() (Contender, error) {
	factory := spanmetricsconnector.NewFactory()
	cfg := factory.CreateDefaultConfig()
	ctx := context.Background()
	c, err := factory.CreateTracesToMetrics(ctx, connectortest.NewNopSettings(factory.Type()), cfg, consumertest.NewNop())
	if err != nil {
		return Contender{}, err
	}
	if err = c.Start(ctx, componenttest.NewNopHost()); err != nil {
		return Contender{}, err
	}
	return Contender{
		Name:    "spanmetricsconnector (default configuration)",
		consume: c.ConsumeTraces,
		close:   func() { _ = c.Shutdown(ctx) },
	}, nil
}
