package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadata"
)

const (
	defaultGateEndpoint           = "localhost:8089"
	defaultClientTimeout          = 10 * time.Second
	defaultResolveTimeout         = 5 * time.Minute
	defaultResendInterval         = time.Minute
	defaultMinObservation         = 5 * time.Minute
	defaultInconclusivePassWindow = 2 * time.Minute
	defaultStatusRefreshInterval  = 2 * time.Second
	defaultMaxHealthAge           = 5 * time.Minute
	defaultMaxServices            = 1000
	defaultServiceTTL             = 24 * time.Hour
	defaultMaxAlerts              = 10000
	defaultAlertTTL               = 30 * time.Minute
	defaultHistory                = 10
	defaultMaxIndicators          = 16
	defaultSparklinePoints        = 60
	// defaultQueueConsumers is 1 so a resolve never overtakes the firing
	// notification of the same alert on its way to one target.
	defaultQueueConsumers = 1
)

// NewFactory returns the factory of the deployment exporter.
func NewFactory() exporter.Factory {
	return newFactory().exporterFactory()
}

func newFactory() *factory {
	return &factory{cores: map[component.ID]*sharedCore{}}
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
		}),
		State: StateConfig{
			MaxServices:     defaultMaxServices,
			ServiceTTL:      defaultServiceTTL,
			MaxAlerts:       defaultMaxAlerts,
			AlertTTL:        defaultAlertTTL,
			History:         defaultHistory,
			MaxIndicators:   defaultMaxIndicators,
			SparklinePoints: defaultSparklinePoints,
		},
		QueueConfig:   configoptional.Some(queue),
		BackOffConfig: configretry.NewDefaultBackOffConfig(),
	}
}

// factory keeps one core per component ID: the logs and the metrics exporter
// of `deployment` share the gate state, its HTTP server and the delivery
// queues, reference-counted in Start/Shutdown.
type factory struct {
	mu    sync.Mutex
	cores map[component.ID]*sharedCore
}

type sharedCore struct {
	core    *core
	users   int // exporters created and not yet shut down
	started int // exporters started and not yet shut down
}

func (f *factory) acquire(set exporter.Settings, cfg *Config) (*sharedCore, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sc, ok := f.cores[set.ID]; ok {
		sc.users++
		return sc, nil
	}
	c, err := newCore(cfg, set)
	if err != nil {
		return nil, err
	}
	sc := &sharedCore{core: c, users: 1}
	f.cores[set.ID] = sc
	return sc, nil
}

// handle is one exporter's (logs or metrics) share of a core.
type handle struct {
	f       *factory
	id      component.ID
	sc      *sharedCore
	mu      sync.Mutex
	started bool
	done    bool
}

func (h *handle) start(ctx context.Context, host component.Host) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.done {
		return nil
	}
	if h.sc.started == 0 {
		if err := h.sc.core.start(ctx, host); err != nil {
			return err
		}
	}
	h.sc.started++
	h.started = true
	return nil
}

func (h *handle) shutdown(ctx context.Context) error {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return nil
	}
	h.done = true
	if h.started {
		h.sc.started--
	}
	h.sc.users--
	if h.sc.users > 0 {
		return nil
	}
	delete(h.f.cores, h.id)
	return h.sc.core.shutdown(ctx)
}

func (f *factory) newHandle(set exporter.Settings, cfg component.Config) (*handle, error) {
	sc, err := f.acquire(set, cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return &handle{f: f, id: set.ID, sc: sc}, nil
}

// The outer exporters have no queue and no retry: consuming only updates the
// state and puts notifications on the per-target queues, which do.
func outerOptions(h *handle) []exporterhelper.Option {
	return []exporterhelper.Option{
		exporterhelper.WithStart(h.start),
		exporterhelper.WithShutdown(h.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
		exporterhelper.WithQueue(configoptional.None[exporterhelper.QueueBatchConfig]()),
		exporterhelper.WithRetry(configretry.BackOffConfig{Enabled: false}),
	}
}

func (f *factory) createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	h, err := f.newHandle(set, cfg)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewLogs(ctx, set, cfg, h.sc.core.consumeLogs, outerOptions(h)...)
	if err != nil {
		_ = h.shutdown(ctx)
		return nil, err
	}
	return exp, nil
}

func (f *factory) createMetrics(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Metrics, error) {
	h, err := f.newHandle(set, cfg)
	if err != nil {
		return nil, err
	}
	exp, err := exporterhelper.NewMetrics(ctx, set, cfg, h.sc.core.consumeMetrics, outerOptions(h)...)
	if err != nil {
		_ = h.shutdown(ctx)
		return nil, err
	}
	return exp, nil
}
