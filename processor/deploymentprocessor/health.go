// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

// newHealthEngine builds the health engine of cfg, nil when disabled.
func newHealthEngine(cfg *Config, status health.StatusFunc, now func() time.Time) (*health.Engine, error) {
	if !cfg.Health.Enabled {
		return nil, nil
	}
	hc, err := cfg.Health.engineConfig(cfg)
	if err != nil {
		return nil, err
	}
	hc.Now = now
	return health.New(hc, status)
}

// registerHealthTelemetry reports the health engine's size, refusals and evictions.
func (p *deploymentProcessor) registerHealthTelemetry() error {
	limitServices := metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", "max_services")))
	limitStreams := metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", "max_streams")))
	return errors.Join(
		p.telemetry.RegisterProcessorDeploymentHealthServicesCallback(gauge(func() int64 { return int64(p.health.Len()) })),
		p.telemetry.RegisterProcessorDeploymentHealthStreamsCallback(func(_ context.Context, o metric.Int64Observer) error {
			streams, _ := p.health.Streams()
			o.Observe(streams)
			return nil
		}),
		p.telemetry.RegisterProcessorDeploymentHealthEvaluationsCallback(gauge(func() int64 { return int64(p.health.Evaluations()) })),
		p.telemetry.RegisterProcessorDeploymentHealthEvictedCallback(gauge(func() int64 { return int64(p.health.Evicted()) })),
		p.telemetry.RegisterProcessorDeploymentHealthRefusedCallback(func(_ context.Context, o metric.Int64Observer) error {
			_, dropped := p.health.Streams()
			o.Observe(int64(p.health.Refused()), limitServices)
			o.Observe(int64(dropped), limitStreams)
			return nil
		}),
	)
}

// healthStatus tells the engine a key's deployment state, from the tracker.
func (p *deploymentProcessor) healthStatus(k health.Key) health.Status {
	c, ok := p.tracker.Current(tracker.Key(k), p.now())
	return health.Status{Tracked: ok, Phase: c.Phase, DeploymentID: c.ID, Strategy: c.Strategy}
}

// healthSource looks a tracked key's series up once per resource and reads
// what every datum of the resource shares; nil when health is off or the
// engine is full.
func (p *deploymentProcessor) healthSource(key tracker.Key, tag tracker.Tag, res pcommon.Map, now time.Time, src *indicators.Source) *health.Series {
	if p.health == nil {
		return nil
	}
	s := p.health.Series(health.Key(key))
	if s == nil {
		return nil
	}
	*src = indicators.Source{Cohort: indicators.CohortOf(tag.Cohort), Now: now.UnixNano()}
	src.Instance, src.Identity = indicators.HashResource(res)
	return s
}

func (p *deploymentProcessor) healthSpans(key tracker.Key, tag tracker.Tag, res pcommon.Map, scopes ptrace.ScopeSpansSlice, now time.Time) {
	var src indicators.Source
	if s := p.healthSource(key, tag, res, now, &src); s != nil {
		s.Lock()
		s.AddSpans(&src, scopes)
		s.Unlock()
	}
}

func (p *deploymentProcessor) healthMetrics(key tracker.Key, tag tracker.Tag, res pcommon.Map, scopes pmetric.ScopeMetricsSlice, now time.Time) {
	var src indicators.Source
	if s := p.healthSource(key, tag, res, now, &src); s != nil {
		s.Lock()
		s.AddMetrics(&src, scopes)
		s.Unlock()
	}
}

func (p *deploymentProcessor) healthLogs(key tracker.Key, tag tracker.Tag, res pcommon.Map, scopes plog.ScopeLogsSlice, now time.Time) {
	var src indicators.Source
	if s := p.healthSource(key, tag, res, now, &src); s != nil {
		s.Lock()
		s.AddLogs(&src, scopes)
		s.Unlock()
	}
}

// HealthSnapshot returns the last health snapshot of a service, nil when it
// has none (not tracked, health disabled, or not evaluated yet). For the
// emitters of derived metrics and alerts.
func (p *deploymentProcessor) HealthSnapshot(key tracker.Key) *health.Snapshot {
	if p.health == nil {
		return nil
	}
	return p.health.Snapshot(health.Key(key))
}
