// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadata"
	"github.com/deploylens/deploylens/internal/sharedcomponent"
)

const (
	defaultGateEndpoint   = "localhost:8089"
	defaultClientTimeout  = 10 * time.Second
	defaultResolveTimeout = 5 * time.Minute
	defaultResendInterval = time.Minute
	defaultMinObservation = 5 * time.Minute
	// defaultInconclusivePassWindow is 0: with no data to judge, the gate
	// holds (Flagger asks again) rather than waving a rollout through.
	defaultInconclusivePassWindow = 0
	defaultStatusRefreshInterval  = 2 * time.Second
	defaultMaxHealthAge           = 5 * time.Minute
	defaultMaxServices            = 1000
	defaultServiceTTL             = 24 * time.Hour
	defaultMaxAlerts              = 10000
	defaultAlertTTL               = 30 * time.Minute
	defaultHistory                = 10
	defaultMaxIndicators          = 16
	defaultSparklinePoints        = 60
	defaultMaxEdges               = 10000
	defaultEdgeTTL                = 30 * time.Minute
	// defaultImpactUnhealthyBelow is the processor's health::unhealthy_below.
	defaultImpactUnhealthyBelow = 40
	// defaultQueueConsumers is 1 so a resolve never overtakes the firing
	// notification of the same alert on its way to one target.
	defaultQueueConsumers = 1
)

// NewFactory returns the factory of the deployment exporter.
func NewFactory() exporter.Factory {
	return newFactory().exporterFactory()
}

func newFactory() *factory {
	return &factory{}
}

func (f *factory) exporterFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithLogs(f.createLogs, metadata.LogsStability),
		exporter.WithMetrics(f.createMetrics, metadata.MetricsStability),
	)
}

func createDefaultConfig() component.Config {
	amClient := confighttp.NewDefaultClientConfig()
	amClient.Timeout = defaultClientTimeout
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultGateEndpoint
	queue := exporterhelper.NewDefaultQueueConfig()
	queue.NumConsumers = defaultQueueConsumers
	return &Config{
		Alertmanager: AlertmanagerConfig{
			ClientConfig:   amClient,
			ResolveTimeout: defaultResolveTimeout,
			ResendInterval: defaultResendInterval,
		},
		Gate: configoptional.Some(GateConfig{
			ServerConfig:           server,
			MinObservation:         defaultMinObservation,
			Inconclusive:           inconclusiveHold,
			InconclusivePassWindow: defaultInconclusivePassWindow,
			MaxHealthAge:           defaultMaxHealthAge,
			StatusRefreshInterval:  defaultStatusRefreshInterval,
			ImpactUnhealthyBelow:   defaultImpactUnhealthyBelow,
		}),
		State: StateConfig{
			MaxServices:     defaultMaxServices,
			ServiceTTL:      defaultServiceTTL,
			MaxAlerts:       defaultMaxAlerts,
			AlertTTL:        defaultAlertTTL,
			History:         defaultHistory,
			MaxIndicators:   defaultMaxIndicators,
			SparklinePoints: defaultSparklinePoints,
			MaxEdges:        defaultMaxEdges,
			EdgeTTL:         defaultEdgeTTL,
		},
		QueueConfig:   configoptional.Some(queue),
		BackOffConfig: configretry.NewDefaultBackOffConfig(),
	}
}

// factory keeps one core per component ID: the logs and the metrics exporter
// of `deployment` share the gate state, its HTTP server and the delivery
// queues, reference-counted in Start/Shutdown.
type factory struct {
	cores sharedcomponent.Map[*core]
}

// acquire returns this exporter's handle on the shared core of set.ID,
// created for the first exporter.
func (f *factory) acquire(set exporter.Settings, cfg component.Config) (*sharedcomponent.Handle[*core], error) {
	return f.cores.Acquire(set.ID, func() (*core, error) {
		shared := set
		shared.TelemetrySettings = sharedcomponent.TelemetrySettings(set.TelemetrySettings)
		return newCore(cfg.(*Config), shared)
	})
}

// The outer exporters have no queue and no retry: consuming only updates the
// state and puts notifications on the per-target queues, which do.
func outerOptions(h *sharedcomponent.Handle[*core]) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(h.Start),
		exporterhelper.WithShutdown(h.Shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
		exporterhelper.WithQueue(configoptional.None[exporterhelper.QueueBatchConfig]()),
		exporterhelper.WithRetry(configretry.BackOffConfig{Enabled: false}),
	}
}

func (f *factory) createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	h, err := f.acquire(set, cfg)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewLogs(ctx, set, cfg, h.Value().consumeLogs, outerOptions(h)...)
	if err != nil {
		_ = h.Shutdown(ctx)
		return nil, err
	}
	return exp, nil
}

func (f *factory) createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	h, err := f.acquire(set, cfg)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewMetrics(ctx, set, cfg, h.Value().consumeMetrics, outerOptions(h)...)
	if err != nil {
		_ = h.Shutdown(ctx)
		return nil, err
	}
	return exp, nil
}
