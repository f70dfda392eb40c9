// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/pairs"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

// newHealthEngines builds the health engine of cfg and its engine of edges
// (the service graph), nil when disabled.
func newHealthEngines(cfg *Config, status, edgeStatus health.StatusFunc, now func() time.Time) (services, edges *health.Engine, err error) {
	if !cfg.Health.Enabled {
		return nil, nil, nil
	}
	hc, err := cfg.Health.engineConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	hc.Now = now
	if cfg.Health.Dependencies.Enabled {
		ec, err := cfg.Health.edgeConfig(hc)
		if err != nil {
			return nil, nil, err
		}
		if edges, err = health.New(ec, edgeStatus); err != nil {
			return nil, nil, err
		}
		hc.Relations = edges
	}
	services, err = health.New(hc, status)
	return services, edges, err
}

// registerHealthTelemetry reports the health engine's size, refusals and evictions.
func (p *deploymentProcessor) registerHealthTelemetry() error {
	limitServices := metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", "max_services")))
	limitStreams := metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", "max_streams")))
	limitDependencies := metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", "max_dependencies")))
	limitPendingCalls := metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", "max_pending_calls")))
	limitNames := metric.WithAttributeSet(attribute.NewSet(attribute.String("limit", "max_dependency_names")))
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
			if p.edges != nil {
				o.Observe(int64(p.edges.DependencyRefused()+p.edges.Refused()), limitDependencies)
				calls, names := p.pairs.Dropped()
				o.Observe(int64(calls), limitPendingCalls)
				o.Observe(int64(names), limitNames)
			}
			return nil
		}),
		p.telemetry.RegisterProcessorDeploymentHealthDependencyNamesCallback(gauge(func() int64 {
			if p.pairs == nil {
				return 0
			}
			return p.pairs.Names()
		})),
		p.telemetry.RegisterProcessorDeploymentHealthDependenciesCallback(gauge(func() int64 {
			if p.edges == nil {
				return 0
			}
			return int64(p.edges.Len())
		})),
	)
}

// healthStatus tells the engine a key's deployment state, from the tracker.
func (p *deploymentProcessor) healthStatus(k health.Key) health.Status {
	c, ok := p.tracker.Current(trackerKey(k), p.now())
	return health.Status{Tracked: ok, Phase: c.Phase, DeploymentID: c.ID, Strategy: c.Strategy}
}

// edgeStatus tells the engine of edges an edge's deployment state: while its
// callee deploys (rolls out or is in its post window), the callee's
// deployment — the calls are then its blast radius —, else its caller's.
func (p *deploymentProcessor) edgeStatus(k health.Key) health.Status {
	caller := p.healthStatus(k.Caller())
	caller.Subject = k.Caller()
	if !caller.Tracked {
		return caller
	}
	callee := k.Callee()
	if service, ok := p.pairs.Resolve(pairs.Name{Namespace: k.Namespace, Environment: k.Environment, Dependency: k.Dependency}); ok {
		callee.Service = service // a span pair taught what the name means
	}
	callee, c, ok := p.trackedCallee(callee)
	if ok && (c.Phase == deployevent.PhaseDuring || c.Phase == deployevent.PhasePost) {
		return health.Status{Tracked: true, Phase: c.Phase, DeploymentID: c.ID, Strategy: c.Strategy, Subject: callee}
	}
	return caller
}

// healthSource looks a tracked key's series up once per resource and reads
// what every datum of the resource shares; nil when health is off or the
// engine is full.
func (p *deploymentProcessor) healthSource(key tracker.Key, tag tracker.Tag, res pcommon.Map, now time.Time, src *indicators.Source) *health.Series {
	if p.health == nil {
		return nil
	}
	s := p.health.Series(serviceHealthKey(key))
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
		// Edges first: an interval of the service that this data closes
		// reads its edges' evaluation of the same interval.
		if p.edges != nil {
			p.dependencySpans(key, &src, scopes)
		}
		s.Lock()
		s.AddSpans(&src, scopes)
		s.Unlock()
	}
}

func (p *deploymentProcessor) healthMetrics(key tracker.Key, tag tracker.Tag, res pcommon.Map, scopes pmetric.ScopeMetricsSlice, now time.Time) {
	var src indicators.Source
	if s := p.healthSource(key, tag, res, now, &src); s != nil {
		if p.edges != nil {
			p.dependencyMetrics(key, &src, scopes)
		}
		s.Lock()
		s.AddMetrics(&src, scopes)
		s.Unlock()
	}
}

// dependencyMetrics counts a resource's semconv client duration histograms
// on the edge of each dependency their points name.
func (p *deploymentProcessor) dependencyMetrics(key tracker.Key, src *indicators.Source, scopes pmetric.ScopeMetricsSlice) {
	cache := edgeCache{engine: p.edges, caller: serviceHealthKey(key)}
	for i := range scopes.Len() {
		metrics := scopes.At(i).Metrics()
		for j := range metrics.Len() {
			m := metrics.At(j)
			if !indicators.ClientMetric(m.Name()) {
				continue
			}
			// Each dependency the points name, once: the extractor counts its points.
			var seen [edgeCacheSize]indicators.DependencyName
			n := 0
			eachHistogramPoint(m, func(attrs pcommon.Map) {
				name := indicators.DependencyOf(attrs)
				if name.Empty() || slices.Contains(seen[:n], name) {
					return
				}
				if n < len(seen) {
					seen[n] = name
					n++
				}
				if s := cache.get(name); s != nil {
					cache.lock(s)
					s.AddDependencyMetric(src, m, name)
				}
			})
		}
	}
	cache.lock(nil)
}

// eachHistogramPoint calls fn with the attributes of each point of a histogram.
func eachHistogramPoint(m pmetric.Metric, fn func(pcommon.Map)) {
	switch m.Type() {
	case pmetric.MetricTypeHistogram:
		for _, dp := range m.Histogram().DataPoints().All() {
			fn(dp.Attributes())
		}
	case pmetric.MetricTypeExponentialHistogram:
		for _, dp := range m.ExponentialHistogram().DataPoints().All() {
			fn(dp.Attributes())
		}
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
	return p.health.Snapshot(serviceHealthKey(key))
}

// healthKey is the health engine's key of a tracked service.
func serviceHealthKey(k tracker.Key) health.Key {
	return health.Key{Namespace: k.Namespace, Service: k.Service, Environment: k.Environment}
}

// trackerKey is the tracker's key of a service (an edge's caller).
func trackerKey(k health.Key) tracker.Key {
	return tracker.Key{Namespace: k.Namespace, Service: k.Service, Environment: k.Environment}
}
