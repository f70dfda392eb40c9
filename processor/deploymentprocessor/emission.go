// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.uber.org/zap"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/emit"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/kpi"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/pairs"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

// EmissionConfig (the `signals:` key) configures what leaves the processor as its own telemetry:
// the derived metrics (into the metrics pipeline it is part of) and the alert
// signals (into the logs pipeline it is part of).
type EmissionConfig struct {
	// Interval is how often services in a deployment phase are reported and
	// alerts are evaluated; SteadyInterval how often steady services are.
	Interval       time.Duration `mapstructure:"interval"`
	SteadyInterval time.Duration `mapstructure:"steady_interval"`
	// ChangeFailureWindow is the window of deployment.change_failure.ratio.
	ChangeFailureWindow time.Duration `mapstructure:"change_failure_window"`
	// Metrics enables or disables single derived metrics and resource attributes.
	Metrics metadata.MetricsBuilderConfig `mapstructure:",squash"`
	// Alerts configures the alert signals.
	Alerts AlertsConfig `mapstructure:"alerts"`
}

// AlertsConfig configures the alert signals.
type AlertsConfig struct {
	Enabled bool `mapstructure:"enabled"`
	// ResendInterval re-sends a firing alert while it holds.
	ResendInterval time.Duration `mapstructure:"resend_interval"`
	// ResolvedTTL is how long a resolved alert is remembered, so that a
	// late signal of the same fingerprint is not sent as a new alert.
	ResolvedTTL time.Duration `mapstructure:"resolved_ttl"`
	// PerIndicator adds one alert per indicator beside the one alert of a
	// harmful deployment (off: one faulty deployment pages once).
	PerIndicator bool `mapstructure:"per_indicator"`
	// AnomalyThresholds is the anomaly score at which an indicator alerts
	// when PerIndicator is set, per phase: stricter during and right after a rollout.
	AnomalyThresholds map[string]float64 `mapstructure:"anomaly_thresholds"`
	// Rules are user alert rules.
	Rules []alerts.Rule `mapstructure:"rules"`
}

const (
	defaultSignalsInterval     = 10 * time.Second
	defaultSteadySignals       = time.Minute
	defaultChangeFailureWindow = 30 * 24 * time.Hour
	defaultResendInterval      = time.Minute
	defaultResolvedTTL         = time.Hour
)

func defaultEmissionConfig() EmissionConfig {
	th := map[string]float64{}
	for phase, v := range emit.DefaultThresholds() {
		th[string(phase)] = v
	}
	return EmissionConfig{
		Interval:            defaultSignalsInterval,
		SteadyInterval:      defaultSteadySignals,
		ChangeFailureWindow: defaultChangeFailureWindow,
		Metrics:             metadata.NewDefaultMetricsBuilderConfig(),
		Alerts:              AlertsConfig{Enabled: true, ResendInterval: defaultResendInterval, ResolvedTTL: defaultResolvedTTL, AnomalyThresholds: th},
	}
}

func (c *EmissionConfig) validate() []error {
	var errs []error
	// In a fixed order, so the same configuration always gives the same error.
	for _, kd := range []struct {
		key string
		d   time.Duration
	}{
		{"signals::interval", c.Interval}, {"signals::steady_interval", c.SteadyInterval},
		{"signals::change_failure_window", c.ChangeFailureWindow}, {"signals::alerts::resend_interval", c.Alerts.ResendInterval},
		{"signals::alerts::resolved_ttl", c.Alerts.ResolvedTTL},
	} {
		if kd.d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", kd.key, kd.d))
		}
	}
	for _, phase := range slices.Sorted(maps.Keys(c.Alerts.AnomalyThresholds)) {
		v := c.Alerts.AnomalyThresholds[phase]
		switch deployevent.Phase(phase) {
		case deployevent.PhaseSteady, deployevent.PhasePre, deployevent.PhaseDuring, deployevent.PhasePost:
		default:
			errs = append(errs, fmt.Errorf("signals::alerts::anomaly_thresholds: %q is not a phase (steady, pre, during, post)", phase))
		}
		if v <= 0 || v > 1 {
			errs = append(errs, fmt.Errorf("signals::alerts::anomaly_thresholds::%s: must be in (0, 1], got %g", phase, v))
		}
	}
	if _, err := alerts.NewRules(c.Alerts.Rules); err != nil {
		errs = append(errs, fmt.Errorf("signals::alerts::rules: %w", err))
	}
	return errs
}

// emitter is the processor's emitting side: the KPI book, the alert engine,
// and the pipelines they go to.
type emitter struct {
	cfg        EmissionConfig
	book       *kpi.Book
	alerts     *alerts.Engine
	rules      *alerts.Rules
	thresholds emit.Thresholds
	metrics    *emit.Metrics

	mu          sync.Mutex
	metricsNext consumer.Metrics
	logsNext    consumer.Logs
	// steadySent is when each steady service was last reported: keyed by
	// tracked services only, dropped with them (forget).
	steadySent map[tracker.Key]time.Time
	// resolved are the alerts resolved because their service was forgotten,
	// for the next emission; at most the alerts remembered.
	resolved []alerts.Signal
}

func newEmitter(cfg EmissionConfig, set processor.Settings, maxServices int) (*emitter, error) {
	rules, err := alerts.NewRules(cfg.Alerts.Rules)
	if err != nil {
		return nil, err
	}
	th := emit.Thresholds{}
	for phase, v := range cfg.Alerts.AnomalyThresholds {
		th[deployevent.Phase(phase)] = v
	}
	kcfg := kpi.DefaultConfig()
	kcfg.ChangeFailureWindow, kcfg.MaxServices = cfg.ChangeFailureWindow, maxServices
	return &emitter{
		cfg:        cfg,
		book:       kpi.New(kcfg),
		alerts:     alerts.New(alerts.Config{ResendInterval: cfg.Alerts.ResendInterval, MaxAlerts: 10 * maxServices}),
		rules:      rules,
		thresholds: th,
		metrics:    emit.NewMetrics(set, cfg.Metrics),
		steadySent: map[tracker.Key]time.Time{},
	}, nil
}

// setMetricsNext keeps the first metrics pipeline's next consumer: derived
// metrics go there once, even when the processor is in several.
func (s *emitter) setMetricsNext(next consumer.Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metricsNext == nil {
		s.metricsNext = next
	}
}

// setLogsNext keeps the first logs pipeline's next consumer, for alert signals.
func (s *emitter) setLogsNext(next consumer.Logs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logsNext == nil {
		s.logsNext = next
	}
}

// hooks feed the KPI book from the tracker.
func (s *emitter) started(k tracker.Key, d *tracker.Deployment, now time.Time) {
	s.book.Started(kpi.Key(k), kpiDeployment(d), now)
}

func (s *emitter) ended(k tracker.Key, d *tracker.Deployment) {
	s.book.Ended(kpi.Key(k), kpiDeployment(d), d.EndTime)
}

// forget drops everything the signals keep about a service the tracker
// forgot, and resolves its firing alerts for the next emission; it returns
// how many it resolved.
func (s *emitter) forget(k tracker.Key, now time.Time) int {
	s.book.Forget(kpi.Key(k))
	s.rules.Forget(alerts.Key(k))
	resolved := s.alerts.ResolveService(alerts.Key(k), now, alerts.ReasonStoppedReporting)
	s.mu.Lock()
	delete(s.steadySent, k)
	s.resolved = append(s.resolved, resolved...)
	s.mu.Unlock()
	return len(resolved)
}

// steadyDue reports whether a steady service is due to be reported at now,
// and if so notes that it is.
func (s *emitter) steadyDue(key tracker.Key, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.steadySent[key]) < s.cfg.SteadyInterval {
		return false
	}
	s.steadySent[key] = now
	return true
}

// takeResolved returns the alerts resolved by forget since the last call.
func (s *emitter) takeResolved() []alerts.Signal {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.resolved
	s.resolved = nil
	return out
}

// steadyServices is the number of steady emission times remembered.
func (s *emitter) steadyServices() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.steadySent)
}

func kpiDeployment(d *tracker.Deployment) kpi.Deployment {
	return kpi.Deployment{ID: d.ID, StartTime: d.StartTime, EndTime: d.EndTime, CommitTime: d.CommitTime, Outcome: kpi.Outcome(d.Outcome)}
}

// forget is the one place where a service the tracker no longer tracks is
// forgotten (the tracker's Forgotten hook: idle TTL, LRU eviction, refusal):
// its health state, KPIs, steady emission time and rule pending state; its
// firing alerts are resolved ("service stopped reporting") and go out with
// the next emission.
func (p *deploymentProcessor) forget(k tracker.Key, _ tracker.EvictReason) {
	if p.health != nil {
		p.health.Forget(serviceHealthKey(k))
	}
	if p.edges != nil {
		p.edges.ForgetCaller(serviceHealthKey(k))
	}
	if n := p.emitter.forget(k, p.now()); n > 0 {
		p.telemetry.ProcessorDeploymentAlertsForgotten.Add(context.Background(), int64(n))
	}
}

// emitSignals reports every known service: derived metrics (deploying
// services every Interval, steady ones every SteadyInterval) and alert
// signals. It runs on the processor's loop.
func (p *deploymentProcessor) emitSignals(ctx context.Context, now time.Time) {
	s := p.emitter
	// Every service something is kept for: one the tracker no longer tracks
	// (restored from storage without it, or touched while it was forgotten)
	// is forgotten here.
	keys := map[tracker.Key]struct{}{}
	if p.health != nil {
		p.health.Snapshots(func(snap *health.Snapshot) bool {
			keys[trackerKey(snap.Key)] = struct{}{}
			return true
		})
	}
	s.book.Each(now, func(k kpi.Key, _ kpi.Values) { keys[tracker.Key(k)] = struct{}{} })
	s.alerts.EachService(func(k alerts.Key) { keys[tracker.Key(k)] = struct{}{} })
	s.rules.EachService(func(k alerts.Key) { keys[tracker.Key(k)] = struct{}{} })
	s.mu.Lock()
	for k := range s.steadySent {
		keys[k] = struct{}{}
	}
	s.mu.Unlock()

	var logs plog.Logs
	// The resolves of services forgotten since the last emission go first: a
	// service back since then may fire the same alert again below.
	p.appendAlerts(&logs, s.takeResolved())
	appended := 0
	for key := range keys {
		state, tracked := p.tracker.Service(key, now)
		if !tracked {
			p.forget(key, "")
			continue
		}
		var snap *health.Snapshot
		if p.health != nil {
			snap = p.health.Snapshot(serviceHealthKey(key))
		}
		if snap != nil && snap.Alarm() && p.logger.Core().Enabled(zap.DebugLevel) {
			p.logger.Debug("Deployment judged harmful", zap.String("service", key.Service), zap.String("namespace", key.Namespace),
				zap.String("environment", key.Environment), zap.Time("interval_end", snap.Time), zap.String("phase", string(snap.Phase)),
				zap.String("evidence", harmfulEvidence(snap)))
		}
		if s.cfg.Alerts.Enabled {
			p.appendAlerts(&logs, p.evaluateAlerts(key, state, snap, now))
		}
		edges, edgeServices := p.edgeSnapshots(key)
		// A steady service is reported every steady_interval, and at once
		// while one of its calls looks harmed: in the three tiers, the gate
		// tier learns of a callee's blast radius from this report.
		if state.Phase == deployevent.PhaseSteady && !s.steadyDue(key, now) && !slices.ContainsFunc(edges, edgeHarmed) {
			continue
		}
		values, hasKPI := s.book.Values(kpi.Key(key), now)
		s.metrics.Append(emit.Service{Key: serviceHealthKey(key), Phase: state.Phase, Snapshot: snap, KPI: values, HasKPI: hasKPI,
			Edges: edges, EdgeServices: edgeServices}, now)
		appended++
	}
	s.alerts.Sweep(now, s.cfg.Alerts.ResolvedTTL)

	// And those of the services forgotten in the loop.
	p.appendAlerts(&logs, s.takeResolved())

	s.mu.Lock()
	metricsNext, logsNext := s.metricsNext, s.logsNext
	s.mu.Unlock()
	var errs []error
	if appended > 0 {
		md := s.metrics.Emit()
		if metricsNext != nil && md.DataPointCount() > 0 {
			errs = append(errs, metricsNext.ConsumeMetrics(ctx, md))
		}
	}
	if logsNext != nil && logs != (plog.Logs{}) && logs.LogRecordCount() > 0 {
		errs = append(errs, logsNext.ConsumeLogs(ctx, logs))
	}
	if err := errors.Join(errs...); err != nil {
		p.logger.Warn("Cannot pass derived metrics or alert signals on", zap.Error(err))
	}
}

// evaluateAlerts returns the alert signals of one service at now.
func (p *deploymentProcessor) evaluateAlerts(key tracker.Key, state tracker.ServiceState, snap *health.Snapshot, now time.Time) []alerts.Signal {
	s := p.emitter
	actx := alerts.Context{Key: alerts.Key(key), Phase: string(state.Phase)}
	d := state.Current
	if d != nil {
		actx.DeploymentID, actx.Version, actx.PreviousVersion, actx.Revision = d.ID, d.Version, d.PreviousVersion, d.Revision
		actx.DeploymentStart = d.StartTime
		if d.Outcome == tracker.OutcomeRolledBack {
			// A rollback ends what its deployment caused: resolve, do not re-judge.
			return s.alerts.ResolveService(alerts.Key(key), now, "")
		}
	}
	dep := emit.Deployment{}
	if d != nil {
		dep.Failed = d.Outcome == tracker.OutcomeFailed
		dep.Stuck = d.Stuck && d.Running()
		if dep.Stuck && !d.StartTime.IsZero() {
			dep.Detail = "running for " + now.Sub(d.StartTime).Truncate(time.Minute).String()
		}
	}
	dep.Explained = p.explanation(snap, now)
	conds := emit.Conditions(snap, state.Phase, dep, s.thresholds, s.cfg.Alerts.PerIndicator)
	conds = append(conds, s.rules.Conditions(actx, emit.EvidenceByIndicator(snap), now)...)
	out := s.alerts.Evaluate(actx, conds, now)
	for i := range out {
		if out[i].State == deployevent.AlertFiring && out[i].StartedAt.Equal(now) && actx.DeploymentID != "" && alerts.IsJudgement(out[i].Name) {
			s.book.Alert(kpi.Key(key), actx.DeploymentID, actx.DeploymentStart, now)
		}
	}
	if snap != nil && snap.Health.Verdict == deployevent.VerdictHealthy {
		s.book.Healthy(kpi.Key(key), now)
	}
	if d != nil && d.Running() && snap != nil && snap.Health.Verdict != "" && snap.Health.Verdict != deployevent.VerdictInconclusive {
		s.book.Judged(kpi.Key(key), d.ID, now)
	}
	return out
}

func (p *deploymentProcessor) appendAlerts(logs *plog.Logs, out []alerts.Signal) {
	if len(out) == 0 {
		return
	}
	if *logs == (plog.Logs{}) {
		*logs = plog.NewLogs()
	}
	for i := range out {
		out[i].AppendTo(*logs)
	}
}

// registerSignalsTelemetry reports the size and drops of the KPI book, the
// alert memory, the rules' pending state and the steady report times, all
// bounded by max_services.
func (p *deploymentProcessor) registerSignalsTelemetry() error {
	s := p.emitter
	return errors.Join(
		p.telemetry.RegisterProcessorDeploymentKpiServicesCallback(gauge(func() int64 { return int64(s.book.Len()) })),
		p.telemetry.RegisterProcessorDeploymentKpiEvictedCallback(gauge(func() int64 { return s.book.Evicted() })),
		p.telemetry.RegisterProcessorDeploymentAlertsRememberedCallback(gauge(func() int64 { return int64(s.alerts.Len()) })),
		p.telemetry.RegisterProcessorDeploymentAlertsDroppedCallback(gauge(func() int64 { return s.alerts.Dropped() })),
		p.telemetry.RegisterProcessorDeploymentRulesPendingCallback(gauge(func() int64 { return int64(s.rules.Pending()) })),
		p.telemetry.RegisterProcessorDeploymentSteadyServicesCallback(gauge(func() int64 { return int64(s.steadyServices()) })),
	)
}

// harmfulEvidence lists, for the debug log, every indicator with evidence of
// harm in a snapshot (the service's and each cohort's): which comparison and
// test gave it, its p-value and the compared values.
func harmfulEvidence(snap *health.Snapshot) string {
	var b strings.Builder
	list := func(prefix string, h *health.Health) {
		for i := range h.Indicators {
			ev := &h.Indicators[i]
			if ev.PValue >= 1 {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s%s %s/%s p=%.2g score=%.2f observed=%.4g expected=%.4g value=%.4g band=[%.4g,%.4g]",
				prefix, ev.Indicator, ev.Comparison, ev.Test, ev.PValue, ev.Score, ev.Observed, ev.Expected, ev.Value, ev.Lower, ev.Upper)
		}
	}
	list("", &snap.Health)
	for i := range snap.Cohorts {
		list(string(snap.Cohorts[i].Cohort)+".", &snap.Cohorts[i].Health)
	}
	return b.String()
}

// edgeSnapshots are the last evaluations of a service's calls to its
// dependencies, by dependency name; nil without dependency indicators.
func (p *deploymentProcessor) edgeSnapshots(key tracker.Key) ([]*health.Snapshot, []string) {
	if p.edges == nil {
		return nil, nil
	}
	var out []*health.Snapshot
	p.edges.Outgoing(serviceHealthKey(key), func(snap *health.Snapshot) { out = append(out, snap) })
	slices.SortFunc(out, func(a, b *health.Snapshot) int { return strings.Compare(a.Key.Dependency, b.Key.Dependency) })
	services := make([]string, len(out))
	for i, edge := range out {
		services[i] = p.dependencyService(edge.Key)
	}
	return out, services
}

// dependencyService is the service an edge's dependency is: what span pairs
// taught, else its name when that is a service the tracker knows; "" when
// neither.
func (p *deploymentProcessor) dependencyService(edge health.Key) string {
	if service, ok := p.pairs.Resolve(pairs.Name{Namespace: edge.Namespace, Environment: edge.Environment, Dependency: edge.Dependency}); ok {
		return service
	}
	if p.knownService(edge.Callee()) {
		return edge.Dependency
	}
	return ""
}

// explanation names the dependency's rollout that explains a service's
// harm, "payment 2.3's rollout (deployment d-42)" (the strongest, and how
// many more); empty when none does.
func (p *deploymentProcessor) explanation(snap *health.Snapshot, now time.Time) string {
	if snap == nil || len(snap.Health.ExplainedBy) == 0 {
		return ""
	}
	r := &snap.Health.ExplainedBy[0]
	who := r.Peer.Service
	if state, ok := p.tracker.Service(trackerKey(r.Peer), now); ok && state.Current != nil && state.Current.ID == r.DeploymentID && state.Current.Version != "" {
		who += " " + state.Current.Version
	}
	text := fmt.Sprintf("%s's rollout (deployment %s)", who, r.DeploymentID)
	if more := len(snap.Health.ExplainedBy) - 1; more > 0 {
		text += fmt.Sprintf(" and %d more", more)
	}
	return text
}

// edgeHarmed tells whether an edge's last evaluation looks harmed: a verdict
// other than healthy or inconclusive, evidence past alpha, or an error ratio
// or latency above its expected range.
func edgeHarmed(edge *health.Snapshot) bool {
	switch edge.Health.Verdict {
	case deployevent.VerdictDegraded, deployevent.VerdictUnhealthy:
		return true
	}
	for i := range edge.Health.Indicators {
		ev := &edge.Health.Indicators[i]
		if ev.Judged && ev.Score >= health.AlphaScore {
			return true
		}
		if (ev.Indicator == indicators.ErrorRatio || ev.Indicator == indicators.LatencyP95) && ev.Value > ev.Upper {
			return true
		}
	}
	return false
}
