// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/sharedcomponent"
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
	instances sharedcomponent.Map[*deploymentProcessor]
}

// NewFactory returns the factory of the deployment processor.
func NewFactory() processor.Factory {
	return newFactory().processorFactory()
}

func newFactory() *factory {
	return &factory{}
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
		Signals:       defaultEmissionConfig(),
	}
}

func (f *factory) createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	h, err := f.acquire(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	proc, err := processorhelper.NewTraces(ctx, set, cfg, next, h.Value().processTraces, lifecycle(h)...)
	if err != nil {
		_ = h.Shutdown(ctx)
		return nil, err
	}
	return proc, nil
}

func (f *factory) createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	h, err := f.acquire(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	h.Value().emitter.setMetricsNext(next)
	proc, err := processorhelper.NewMetrics(ctx, set, cfg, next, h.Value().processMetrics, lifecycle(h)...)
	if err != nil {
		_ = h.Shutdown(ctx)
		return nil, err
	}
	return proc, nil
}

func (f *factory) createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	h, err := f.acquire(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	h.Value().emitter.setLogsNext(next)
	proc, err := processorhelper.NewLogs(ctx, set, cfg, next, h.Value().processLogs, lifecycle(h)...)
	if err != nil {
		_ = h.Shutdown(ctx)
		return nil, err
	}
	return proc, nil
}

// acquire returns this pipeline's handle on the shared processor of set.ID,
// created for the first pipeline.
func (f *factory) acquire(set processor.Settings, cfg *Config) (*sharedcomponent.Handle[*deploymentProcessor], error) {
	return f.instances.Acquire(set.ID, func() (*deploymentProcessor, error) {
		shared := set
		shared.TelemetrySettings = sharedcomponent.TelemetrySettings(set.TelemetrySettings)
		return newDeploymentProcessor(shared, cfg)
	})
}

func lifecycle(h *sharedcomponent.Handle[*deploymentProcessor]) []processorhelper.Option {
	return []processorhelper.Option{
		processorhelper.WithCapabilities(processorCapabilities),
		processorhelper.WithStart(h.Start),
		processorhelper.WithShutdown(h.Shutdown),
	}
}
