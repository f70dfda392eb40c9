// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/pairs"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

// sweepInterval is how often time-driven transitions (post window ends,
// inferred deployments settle, stuck deployments, idle keys) are applied.
// Tags never wait for it: lookups compute due transitions on the fly.
const sweepInterval = 5 * time.Second

// deploymentProcessor is the state shared by every pipeline of one component ID.
type deploymentProcessor struct {
	id        component.ID
	cfg       *Config
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	tracker   *tracker.Tracker
	// health judges the tracked services' health; nil when disabled.
	health *health.Engine
	// edges judges the services' calls to their dependencies; nil when
	// health or dependency indicators are disabled.
	edges *health.Engine
	// pairs learns what service a dependency name means from span pairs;
	// set with edges.
	pairs *pairs.Table
	// emitter emits the derived metrics and alert signals.
	emitter *emitter
	// now is the clock; tests replace it before the processor is used.
	now func() time.Time

	traces, metrics, logs tagPlan

	// Precomputed metric options, so counting does not build attribute sets.
	originEvent, originInferred      metric.AddOption
	evictedLRU, evictedIdle          metric.AddOption
	ignoredInvalid                   metric.AddOption
	phasePre, phaseDuring, phasePost metric.ObserveOption

	// store, cancel and running belong to Start and Shutdown, which the
	// shared handle runs once each.
	store   *stateStore
	cancel  context.CancelFunc
	running sync.WaitGroup
}

func newDeploymentProcessor(set processor.Settings, cfg *Config) (*deploymentProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	sig, err := newEmitter(cfg.Signals, set, cfg.MaxServices)
	if err != nil {
		return nil, err
	}
	p := &deploymentProcessor{
		emitter:   sig,
		id:        set.ID,
		cfg:       cfg,
		logger:    set.Logger,
		telemetry: tb,
		now:       time.Now,
		traces:    newTagPlan("traces", cfg.Tagging.Traces),
		metrics:   newTagPlan("metrics", cfg.Tagging.Metrics),
		logs:      newTagPlan("logs", cfg.Tagging.Logs),

		originEvent:    addAttr("origin", "event"),
		originInferred: addAttr("origin", "inferred"),
		evictedLRU:     addAttr("reason", string(tracker.EvictLRU)),
		evictedIdle:    addAttr("reason", string(tracker.EvictIdle)),
		ignoredInvalid: addAttr("reason", "invalid"),
		phasePre:       metric.WithAttributeSet(attribute.NewSet(attribute.String("phase", string(deployevent.PhasePre)))),
		phaseDuring:    metric.WithAttributeSet(attribute.NewSet(attribute.String("phase", string(deployevent.PhaseDuring)))),
		phasePost:      metric.WithAttributeSet(attribute.NewSet(attribute.String("phase", string(deployevent.PhasePost)))),
	}
	p.tracker = tracker.New(tracker.Config{
		PostWindow:  cfg.PostWindow,
		MaxDuration: cfg.MaxDuration,
		MaxServices: cfg.MaxServices,
		IdleTTL:     cfg.IdleTTL,
		HistorySize: cfg.HistorySize,
		Inference:   cfg.Inference.Enabled,
		Settle:      cfg.Inference.Settle,
		Now:         func() time.Time { return p.now() },
		Hooks:       p.hooks(),
	})
	if p.health, p.edges, err = newHealthEngines(cfg, p.healthStatus, p.edgeStatus, func() time.Time { return p.now() }); err != nil {
		return nil, err
	}
	if p.edges != nil {
		p.pairs = pairs.New(maxPendingCalls, maxLearnedNames)
	}
	return p, nil
}

func addAttr(key, value string) metric.AddOption {
	return metric.WithAttributeSet(attribute.NewSet(attribute.String(key, value)))
}

// hooks count what happens inside the tracker. They run under its lock.
func (p *deploymentProcessor) hooks() tracker.Hooks {
	ctx := context.Background()
	return tracker.Hooks{
		Started: func(k tracker.Key, d *tracker.Deployment) {
			origin := p.originEvent
			if d.Inferred() {
				origin = p.originInferred
			}
			p.telemetry.ProcessorDeploymentDeploymentsTracked.Add(ctx, 1, origin)
			p.emitter.started(k, d, p.now())
		},
		Stuck: func(*tracker.Deployment) {
			p.telemetry.ProcessorDeploymentDeploymentsStuck.Add(ctx, 1)
		},
		Evicted: func(reason tracker.EvictReason) {
			opt := p.evictedLRU
			if reason == tracker.EvictIdle {
				opt = p.evictedIdle
			}
			p.telemetry.ProcessorDeploymentServicesEvicted.Add(ctx, 1, opt)
		},
		Refused: func() {
			p.telemetry.ProcessorDeploymentServicesRefused.Add(ctx, 1)
		},
		Ended:     p.emitter.ended,
		Forgotten: p.forget,
	}
}

// Start restores the state and starts the background loop, once for all
// the pipelines sharing the instance.
func (p *deploymentProcessor) Start(ctx context.Context, host component.Host) error {
	if p.cfg.Storage != nil {
		store, err := openStateStore(ctx, host, *p.cfg.Storage, p.id, p.logger)
		if err != nil {
			return err
		}
		p.store = store
		p.store.restore(ctx, p.tracker, p.now())
		if p.health != nil {
			p.store.restoreHealth(ctx, healthKey, p.health, p.now())
		}
		if p.edges != nil {
			p.store.restoreHealth(ctx, edgesKey, p.edges, p.now())
		}
		p.store.restoreSignals(ctx, p.emitter)
	}
	err := errors.Join(
		p.telemetry.RegisterProcessorDeploymentServicesTrackedCallback(gauge(func() int64 { return int64(p.tracker.Len()) })),
		p.telemetry.RegisterProcessorDeploymentDeploymentsActiveCallback(func(_ context.Context, o metric.Int64Observer) error {
			s := p.tracker.Stats(p.now())
			o.Observe(int64(s.Pre), p.phasePre)
			o.Observe(int64(s.During), p.phaseDuring)
			o.Observe(int64(s.Post), p.phasePost)
			return nil
		}),
	)
	if p.health != nil {
		err = errors.Join(err, p.registerHealthTelemetry())
	}
	err = errors.Join(err, p.registerSignalsTelemetry())
	if err != nil {
		p.logger.Warn("Cannot register deployment gauges", zap.Error(err))
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.running.Add(1)
	go p.loop(loopCtx)
	return nil
}

// Shutdown stops the loop, saves the state and closes the storage client,
// once the last pipeline sharing the instance is down. Safe without Start.
func (p *deploymentProcessor) Shutdown(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	p.cancel = nil
	p.running.Wait()
	p.telemetry.Shutdown()
	if p.store == nil {
		return nil
	}
	err := p.store.save(ctx, p.tracker, p.now(), true)
	if p.health != nil {
		err = errors.Join(err, p.store.saveHealth(ctx, healthKey, p.health, p.now(), true))
	}
	if p.edges != nil {
		err = errors.Join(err, p.store.saveHealth(ctx, edgesKey, p.edges, p.now(), true))
	}
	err = errors.Join(err, p.store.saveSignals(ctx, p.emitter))
	err = errors.Join(err, p.store.close(ctx))
	p.store = nil
	return err
}

func (p *deploymentProcessor) loop(ctx context.Context) {
	defer p.running.Done()
	sweep := time.NewTicker(sweepInterval)
	defer sweep.Stop()
	emission := time.NewTicker(p.cfg.Signals.Interval)
	defer emission.Stop()
	var flush <-chan time.Time
	if p.store != nil {
		t := time.NewTicker(p.cfg.FlushInterval)
		defer t.Stop()
		flush = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			now := p.now()
			p.tracker.Sweep(now)
			// Edges first: a service's evaluation reads its edges' last one.
			if p.edges != nil {
				p.pairs.Sweep(now.UnixNano(), now.Add(-p.cfg.IdleTTL).UnixNano())
				p.edges.Sweep(now)
			}
			if p.health != nil {
				p.health.Sweep(now)
			}
		case <-emission.C:
			p.emitSignals(ctx, p.now())
		case <-flush:
			if err := p.store.save(ctx, p.tracker, p.now(), false); err != nil {
				p.logger.Warn("Cannot save deployment state", zap.Error(err))
			}
			for key, engine := range map[string]*health.Engine{healthKey: p.health, edgesKey: p.edges} {
				if engine == nil {
					continue
				}
				if err := p.store.saveHealth(ctx, key, engine, p.now(), false); err != nil {
					p.logger.Warn("Cannot save health state", zap.Error(err))
				}
			}
			if err := p.store.saveSignals(ctx, p.emitter); err != nil {
				p.logger.Warn("Cannot save KPI and alert state", zap.Error(err))
			}
		}
	}
}

// gauge reports one value, read when the collector collects its own
// telemetry, as the callback of an asynchronous gauge.
func gauge(value func() int64) metric.Int64Callback {
	return func(_ context.Context, o metric.Int64Observer) error {
		o.Observe(value())
		return nil
	}
}
