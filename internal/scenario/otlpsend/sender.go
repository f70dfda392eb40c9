// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package otlpsend replays deployment scenarios against a running collector:
// telemetry over OTLP/gRPC with the collector's own OTLP exporter, and the
// lifecycle events either as generic JSON to the deployment receiver's
// /v1/deployments or as deployment.lifecycle log records over OTLP.
package otlpsend // import "github.com/deploylens/deploylens/internal/scenario/otlpsend"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
)

// Defaults of Config.
const (
	defaultTimeout  = 10 * time.Second
	defaultRetryFor = 30 * time.Second
)

// Config configures a Sender.
type Config struct {
	// Endpoint is the collector's OTLP/gRPC endpoint, host:port (plaintext).
	Endpoint string
	// Headers are sent with every OTLP request.
	Headers map[string]string
	// DeploymentsURL, when set, receives the lifecycle events as generic JSON
	// (e.g. http://localhost:8088/v1/deployments); when empty the events
	// travel as deployment.lifecycle log records over OTLP.
	DeploymentsURL string
	// BearerToken, when set, authenticates to DeploymentsURL.
	BearerToken string
	// Realtime replays at wall-clock pace and moves every timestamp so that
	// the scenario starts when Replay is called. Speed is then ignored.
	Realtime bool
	// Speed is simulated seconds per wall-clock second when not Realtime
	// (60: an hour in a minute); 0 sends as fast as the collector accepts.
	// Timestamps stay simulated: the processor judges on them, not on arrival.
	Speed float64
	// Timeout bounds one export or one POST (default 10s).
	Timeout time.Duration
	// RetryFor is how long a failed export or POST is retried (default 30s),
	// so a replay may start while the collector is still starting.
	RetryFor time.Duration
	// HTTPClient posts the events (default: http.Client with Timeout).
	HTTPClient *http.Client
}

// Sender replays scenario steps to a collector. Create it with New, finish
// with Shutdown.
type Sender struct {
	cfg     Config
	traces  exporter.Traces
	metrics exporter.Metrics
	logs    exporter.Logs
	client  *http.Client
	// Clock and sleep, replaced by tests.
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

// Stats counts what a Replay sent.
type Stats struct {
	Steps      int
	Spans      int
	DataPoints int
	LogRecords int // application logs, and lifecycle records when they go over OTLP
	Events     int
}

// New creates the OTLP exporters and starts them.
func New(ctx context.Context, cfg Config) (*Sender, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("otlpsend: Endpoint is empty")
	}
	if cfg.Speed < 0 {
		return nil, errors.New("otlpsend: Speed must not be negative")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = defaultRetryFor
	}
	s := &Sender{cfg: cfg, client: cfg.HTTPClient, now: time.Now, sleep: sleepContext}
	if s.client == nil {
		s.client = &http.Client{Timeout: cfg.Timeout}
	}

	factory := otlpexporter.NewFactory()
	ecfg := factory.CreateDefaultConfig().(*otlpexporter.Config)
	ecfg.ClientConfig.Endpoint = cfg.Endpoint
	ecfg.ClientConfig.TLS.Insecure = true
	for name, value := range cfg.Headers {
		ecfg.ClientConfig.Headers = append(ecfg.ClientConfig.Headers, configopaque.Pair{Name: name, Value: configopaque.String(value)})
	}
	// No queue: an export returns only once the collector has the data, so
	// a replay's order and pacing are what the collector sees.
	ecfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	ecfg.TimeoutConfig.Timeout = cfg.Timeout
	ecfg.RetryConfig.MaxElapsedTime = cfg.RetryFor
	ecfg.RetryConfig.InitialInterval = min(ecfg.RetryConfig.InitialInterval, cfg.RetryFor/4)
	ecfg.RetryConfig.MaxInterval = min(ecfg.RetryConfig.MaxInterval, cfg.RetryFor)
	if err := ecfg.Validate(); err != nil {
		return nil, fmt.Errorf("otlpsend: %w", err)
	}

	set := exportertest.NewNopSettings(factory.Type())
	var err error
	if s.traces, err = factory.CreateTraces(ctx, set, ecfg); err != nil {
		return nil, fmt.Errorf("otlpsend: traces exporter: %w", err)
	}
	if s.metrics, err = factory.CreateMetrics(ctx, set, ecfg); err != nil {
		return nil, fmt.Errorf("otlpsend: metrics exporter: %w", err)
	}
	if s.logs, err = factory.CreateLogs(ctx, set, ecfg); err != nil {
		return nil, fmt.Errorf("otlpsend: logs exporter: %w", err)
	}
	host := componenttest.NewNopHost()
	for _, c := range []interface {
		Start(context.Context, component.Host) error
	}{s.traces, s.metrics, s.logs} {
		if err := c.Start(ctx, host); err != nil {
			_ = s.Shutdown(ctx)
			return nil, fmt.Errorf("otlpsend: start exporter: %w", err)
		}
	}
	return s, nil
}

// Shutdown stops the exporters; safe to call more than once (the
// exporters themselves are not).
func (s *Sender) Shutdown(ctx context.Context) error {
	var errs []error
	if s.traces != nil {
		errs = append(errs, s.traces.Shutdown(ctx))
		s.traces = nil
	}
	if s.metrics != nil {
		errs = append(errs, s.metrics.Shutdown(ctx))
		s.metrics = nil
	}
	if s.logs != nil {
		errs = append(errs, s.logs.Shutdown(ctx))
		s.logs = nil
	}
	return errors.Join(errs...)
}

// Send sends one step now, as it is, and takes ownership of its data.
// Lifecycle events go first, so they precede the telemetry of their step.
func (s *Sender) Send(ctx context.Context, st scenario.Step) error {
	if s.traces == nil {
		return errors.New("otlpsend: Send after Shutdown")
	}
	logs := st.Logs
	if s.cfg.DeploymentsURL != "" {
		if len(st.Events) > 0 {
			if err := s.postEvents(ctx, st.Events); err != nil {
				return err
			}
		}
		if logs != (plog.Logs{}) {
			removeLifecycle(logs)
		}
	}
	if logs != (plog.Logs{}) && logs.LogRecordCount() > 0 {
		if err := s.logs.ConsumeLogs(ctx, logs); err != nil {
			return fmt.Errorf("otlpsend: logs at %v: %w", st.Time, err)
		}
	}
	// A zero-value signal (a Step built by hand) has nothing to send.
	if st.Metrics != (pmetric.Metrics{}) && st.Metrics.DataPointCount() > 0 {
		if err := s.metrics.ConsumeMetrics(ctx, st.Metrics); err != nil {
			return fmt.Errorf("otlpsend: metrics at %v: %w", st.Time, err)
		}
	}
	if st.Traces != (ptrace.Traces{}) && st.Traces.SpanCount() > 0 {
		if err := s.traces.ConsumeTraces(ctx, st.Traces); err != nil {
			return fmt.Errorf("otlpsend: traces at %v: %w", st.Time, err)
		}
	}
	return nil
}

// Replay generates the scenario and sends every step, paced by Realtime or
// Speed. It returns what it sent, also when it stops on an error or ctx.
func (s *Sender) Replay(ctx context.Context, sc *scenario.Scenario) (Stats, error) {
	var stats Stats
	steps, err := sc.Steps()
	if err != nil {
		return stats, err
	}
	begin := s.now()
	speed := s.cfg.Speed
	var offset time.Duration
	if s.cfg.Realtime {
		speed = 1
		offset = begin.Sub(sc.Start)
	}
	for st := range steps {
		if speed > 0 {
			// A step is due when its window closes, in scaled time.
			due := begin.Add(time.Duration(float64(st.Time.Sub(sc.Start)) / speed))
			if err := s.sleep(ctx, due.Sub(s.now())); err != nil {
				return stats, err
			}
		}
		if offset != 0 {
			st.Shift(offset)
		}
		spans, points, events := st.Traces.SpanCount(), st.Metrics.DataPointCount(), len(st.Events)
		records := st.Logs.LogRecordCount()
		if s.cfg.DeploymentsURL != "" {
			records -= events
		}
		if err := s.Send(ctx, st); err != nil {
			return stats, err
		}
		stats.Steps++
		stats.Spans += spans
		stats.DataPoints += points
		stats.LogRecords += records
		stats.Events += events
	}
	return stats, nil
}

// removeLifecycle drops the deployment.lifecycle records (sent as JSON instead).
func removeLifecycle(logs plog.Logs) {
	logs.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			sl.LogRecords().RemoveIf(deployevent.IsLifecycle)
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
