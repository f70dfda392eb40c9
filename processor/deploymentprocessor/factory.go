package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

const (
	defaultPostWindow    = 30 * time.Minute
	defaultMaxDuration   = time.Hour
	defaultMaxServices   = 10_000
	defaultIdleTTL       = 24 * time.Hour
	defaultHistorySize   = 10
	defaultSettle        = 2 * time.Minute
	defaultFlushInterval = 10 * time.Second
)

// The processor writes attributes into the data it passes on.
var processorCapabilities = consumer.Capabilities{MutatesData: true}

// factory keeps one processor per component ID: the same `deployment` in a
// traces, a metrics and a logs pipeline is one instance with one state.
type factory struct {
	mu        sync.Mutex
	instances map[component.ID]*deploymentProcessor
}

// NewFactory returns the factory of the deployment processor.
func NewFactory() processor.Factory {
	return newFactory().processorFactory()
}

func newFactory() *factory {
	return &factory{instances: map[component.ID]*deploymentProcessor{}}
}

func (f *factory) processorFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(f.createTraces, metadata.TracesStability),
		processor.WithMetrics(f.createMetrics, metadata.MetricsStability),
		processor.WithLogs(f.createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	return &Config{
		PostWindow:  defaultPostWindow,
		MaxDuration: defaultMaxDuration,
		MaxServices: defaultMaxServices,
		IdleTTL:     defaultIdleTTL,
		HistorySize: defaultHistorySize,
		Inference: InferenceConfig{
			Enabled: true,
			Settle:  defaultSettle,
		},
		TagUnknownAsSteady: true,
		Tagging: TaggingConfig{
			Traces: SignalTagging{
				Attributes: []string{deployevent.AttrDeploymentPhase, deployevent.AttrDeploymentID, deployevent.AttrDeploymentCohort},
				Level:      levelResource,
			},
			// deployment.id is unbounded: on metrics only when asked for.
			Metrics: SignalTagging{
				Attributes: []string{deployevent.AttrDeploymentPhase, deployevent.AttrDeploymentCohort},
				Level:      levelResource,
			},
			Logs: SignalTagging{
				Attributes: []string{deployevent.AttrDeploymentPhase, deployevent.AttrDeploymentID, deployevent.AttrDeploymentCohort},
				Level:      levelResource,
			},
		},
		FlushInterval: defaultFlushInterval,
		Health:        defaultHealthConfig(),
		Signals:       defaultSignalsConfig(),
	}
}

func (f *factory) createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	p, h, err := f.acquire(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, p.processTraces,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(h.start),
		processorhelper.WithShutdown(h.shutdown))
}

func (f *factory) createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	p, h, err := f.acquire(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	p.signals.setMetricsNext(next)
	return processorhelper.NewMetrics(ctx, set, cfg, next, p.processMetrics,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(h.start),
		processorhelper.WithShutdown(h.shutdown))
}

func (f *factory) createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, h, err := f.acquire(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	p.signals.setLogsNext(next)
	return processorhelper.NewLogs(ctx, set, cfg, next, p.processLogs,
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(h.start),
		processorhelper.WithShutdown(h.shutdown))
}

// acquire returns the shared processor of set.ID, creating it for the first
// pipeline, and a handle through which this pipeline starts and stops it.
func (f *factory) acquire(set processor.Settings, cfg *Config) (*deploymentProcessor, *handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.instances[set.ID]
	if !ok {
		var err error
		if p, err = newDeploymentProcessor(set, cfg); err != nil {
			return nil, nil, err
		}
		f.instances[set.ID] = p
	}
	p.users++
	return p, &handle{factory: f, id: set.ID, processor: p}, nil
}

// release forgets p once every pipeline that created it has shut down, so a
// reloaded configuration starts from a fresh instance (restored from storage).
func (f *factory) release(id component.ID, p *deploymentProcessor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.users--
	if p.users == 0 && f.instances[id] == p {
		delete(f.instances, id)
	}
}

// handle is one pipeline's use of a shared processor. Shutdown is safe
// without Start and safe twice.
type handle struct {
	factory   *factory
	id        component.ID
	processor *deploymentProcessor

	mu      sync.Mutex
	started bool
	stopped bool
}

func (h *handle) start(ctx context.Context, host component.Host) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.stopped {
		return nil
	}
	if err := h.processor.start(ctx, host); err != nil {
		return err
	}
	h.started = true
	return nil
}

func (h *handle) shutdown(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil
	}
	h.stopped = true
	var err error
	if h.started {
		err = h.processor.shutdown(ctx)
	}
	h.factory.release(h.id, h.processor)
	return err
}
