// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadata"
	"github.com/deploylens/deploylens/internal/deployevent"
)

// Metrics the exporter reads (named by the processor's metadata.yaml).
const (
	metricHealthScore          = deployevent.AttrHealthScore          // deployment.health.score
	metricHealthVerdict        = deployevent.AttrHealthVerdict        // deployment.health.verdict (a state set)
	metricHealthRecommendation = deployevent.AttrHealthRecommendation // deployment.health.recommendation (a state set)
	metricIndicatorValue       = "deployment.indicator.value"
	metricIndicatorBaseline    = "deployment.indicator.baseline"
)

// core is what the logs and metrics exporters of one component ID share:
// the state, the delivery targets and the gate server.
type core struct {
	cfg       *Config
	set       exporter.Settings
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	now       func() time.Time

	router  router
	am      amConverter
	runbook runbook
	// targets in a fixed order: Alertmanagers, then channels by name.
	targets   []*target
	amTargets []*target
	channels  map[string]*target

	// deliverMu serialises "update state, then enqueue", so the queue order
	// of one target follows the order of the signals (a resolve never
	// overtakes its firing). mu guards st; gate reads take only mu.
	deliverMu sync.Mutex
	mu        sync.Mutex
	st        *state

	gate *gateServer
	// raised are the impact alerts the gate tier raised (impactAlerts), by
	// fingerprint; guarded by mu.
	raised map[string]*raisedImpact

	cancel       context.CancelFunc
	loopWG       sync.WaitGroup
	started      []*target
	shutdownOnce sync.Once
	shutdownErr  error
}

func newCore(cfg *Config, set exporter.Settings) (*core, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	c := &core{
		cfg:       cfg,
		set:       set,
		logger:    set.Logger,
		telemetry: tb,
		now:       time.Now,
		router:    newRouter(cfg),
		runbook:   runbook(cfg.RunbookURL),
		channels:  map[string]*target{},
		st:        newState(cfg.State),
	}
	c.am = amConverter{resolveTimeout: cfg.Alertmanager.ResolveTimeout, labels: cfg.Alertmanager.Labels, runbook: c.runbook}

	ctx := context.Background()
	for i, ep := range cfg.Alertmanager.Endpoints {
		t, err := newTarget(ctx, c, "alertmanager_"+strconv.Itoa(i), kindAlertmanager, alertmanagerURL(ep), cfg.Alertmanager.ClientConfig, "")
		if err != nil {
			tb.Shutdown()
			return nil, err
		}
		c.amTargets = append(c.amTargets, t)
		c.targets = append(c.targets, t)
	}
	names := make([]string, 0, len(cfg.Channels))
	for name := range cfg.Channels {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ch := cfg.Channels[name]
		endpoint := ch.Endpoint
		if ch.Type == channelPagerDuty && endpoint == "" {
			endpoint = defaultPagerDutyEndpoint
		}
		t, err := newTarget(ctx, c, name, ch.Type, endpoint, ch.ClientConfig, string(ch.RoutingKey))
		if err != nil {
			tb.Shutdown()
			return nil, err
		}
		c.channels[name] = t
		c.targets = append(c.targets, t)
	}
	if g := cfg.Gate.Get(); g != nil {
		c.gate = newGateServer(c, g)
		c.st.impactUnhealthyBelow = g.ImpactUnhealthyBelow
	}
	err = tb.RegisterExporterDeploymentStateEntriesCallback(func(_ context.Context, o metric.Int64Observer) error {
		c.mu.Lock()
		services, alerts, resolved, indicators, edges := len(c.st.services), len(c.st.alerts), len(c.st.resolved), c.st.indicators, len(c.st.edges)
		c.mu.Unlock()
		o.Observe(int64(services), metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "service"))))
		o.Observe(int64(alerts), metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "alert"))))
		o.Observe(int64(resolved), metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "resolved"))))
		o.Observe(int64(indicators), metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "indicator"))))
		o.Observe(int64(edges), metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "edge"))))
		return nil
	})
	if err != nil {
		tb.Shutdown()
		return nil, err
	}
	return c, nil
}

// tickInterval is how often escalation, re-sends and TTLs are checked.
func (c *core) tickInterval() time.Duration {
	d := c.cfg.Alertmanager.ResendInterval
	for _, r := range c.cfg.Routes {
		if r.EscalateAfter > 0 && r.EscalateAfter < d {
			d = r.EscalateAfter
		}
	}
	return min(max(d/4, time.Second), 10*time.Second)
}

func (c *core) Start(ctx context.Context, host component.Host) error {
	for _, t := range c.targets {
		if err := t.exp.Start(ctx, host); err != nil {
			_ = c.stopTargets(ctx)
			return err
		}
		c.started = append(c.started, t)
	}
	if c.gate != nil {
		if err := c.gate.start(ctx, host); err != nil {
			_ = c.stopTargets(ctx)
			return err
		}
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.loopWG.Add(1)
	go c.loop(loopCtx)
	c.logger.Info("deployment exporter started",
		zap.Int("alertmanagers", len(c.amTargets)), zap.Int("channels", len(c.channels)), zap.Bool("gate", c.gate != nil))
	return nil
}

func (c *core) stopTargets(ctx context.Context) error {
	var errs []error
	for _, t := range c.started {
		errs = append(errs, t.exp.Shutdown(ctx))
	}
	c.started = nil
	return errors.Join(errs...)
}

// Shutdown stops the loop and the gate, then the targets (a persistent queue
// keeps what was not delivered for the next start). The last exporter
// sharing the core calls it; safe without start and twice.
func (c *core) Shutdown(ctx context.Context) error {
	c.shutdownOnce.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		c.loopWG.Wait()
		var errs []error
		if c.gate != nil {
			errs = append(errs, c.gate.shutdown(ctx))
		}
		errs = append(errs, c.stopTargets(ctx))
		c.telemetry.Shutdown()
		c.shutdownErr = errors.Join(errs...)
	})
	return c.shutdownErr
}

func (c *core) loop(ctx context.Context) {
	defer c.loopWG.Done()
	ticker := time.NewTicker(c.tickInterval())
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if err := c.tick(ctx); err != nil {
				c.logger.Warn("could not queue escalations or re-sends", zap.Error(err))
			}
		}
	}
}

// batches collects, per target, the alert records to put on its queue.
type batches map[*target]plog.Logs

func (b batches) add(t *target, single plog.Logs) {
	ld, ok := b[t]
	if !ok {
		ld = plog.NewLogs()
		b[t] = ld
	}
	single.ResourceLogs().At(0).CopyTo(ld.ResourceLogs().AppendEmpty())
}

// singleRecord copies one record, with its resource and scope, into logs of
// its own: what is queued and re-sent is never the caller's data.
func singleRecord(res pcommon.Resource, scope pcommon.InstrumentationScope, lr plog.LogRecord) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	res.CopyTo(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	scope.CopyTo(sl.Scope())
	lr.CopyTo(sl.LogRecords().AppendEmpty())
	return ld
}

// consumeLogs applies lifecycle events and alert signals to the state and
// queues the notifications they cause.
func (c *core) consumeLogs(ctx context.Context, ld plog.Logs) error {
	now := c.now()
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	out := batches{}
	var invalidAlerts, invalidEvents, firing, resolved int64
	c.mu.Lock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				lr := sl.LogRecords().At(k)
				switch {
				case deployevent.IsLifecycle(lr):
					ev, err := deployevent.FromLogRecord(rl.Resource(), lr)
					if err != nil {
						invalidEvents++
						continue
					}
					c.st.applyLifecycle(&ev, now)
				case isAlert(lr):
					a, err := parseAlert(rl.Resource(), lr, now)
					if err != nil {
						invalidAlerts++
						continue
					}
					if a.firing() {
						firing++
					} else {
						resolved++
					}
					c.routeSignal(ctx, &a, singleRecord(rl.Resource(), sl.Scope(), lr), now, out)
				}
			}
		}
	}
	drops := c.st.takeDrops()
	c.mu.Unlock()

	c.recordDrops(ctx, drops)
	if invalidAlerts > 0 || invalidEvents > 0 {
		c.telemetry.ExporterDeploymentRecordsInvalid.Add(ctx, invalidAlerts, metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "alert"))))
		c.telemetry.ExporterDeploymentRecordsInvalid.Add(ctx, invalidEvents, metric.WithAttributeSet(attribute.NewSet(attribute.String("kind", "lifecycle"))))
	}
	if firing > 0 {
		c.telemetry.ExporterDeploymentAlertsReceived.Add(ctx, firing, metric.WithAttributeSet(attribute.NewSet(attribute.String("state", "firing"))))
	}
	if resolved > 0 {
		c.telemetry.ExporterDeploymentAlertsReceived.Add(ctx, resolved, metric.WithAttributeSet(attribute.NewSet(attribute.String("state", "resolved"))))
	}
	return c.enqueue(ctx, out)
}

// routeSignal records a signal and adds its notifications to out. Caller
// holds mu.
//   - Alertmanagers get every signal, firing or resolved.
//   - A firing alert goes to the channels of its route that are due and not
//     yet notified; a resolve goes to every channel notified of it (or, when
//     the exporter did not track it, to those due by its duration), once.
func (c *core) routeSignal(ctx context.Context, a *alertSignal, single plog.Logs, now time.Time, out batches) {
	stored := single
	if a.PreviousSeverity != "" {
		// Re-sends are of the alert as it is now: the change was told once.
		stored = plog.NewLogs()
		single.CopyTo(stored)
		stored.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Remove(deployevent.AttrAlertPreviousSeverity)
	}
	entry, ended, repeated := c.st.applyAlert(a, stored, now)
	if entry != nil {
		entry.Signal.PreviousSeverity = ""
	}
	sent := c.withExplanation(a, single, nil)
	for _, t := range c.amTargets {
		out.add(t, sent)
	}
	if a.firing() {
		entry.LastAMPost = now
		c.notifyDue(ctx, entry, now, func() plog.Logs { return sent }, out)
		return
	}
	if repeated {
		return // the channels already had this resolve
	}
	var names []string
	if ended != nil {
		for name := range ended.notified {
			names = append(names, name)
		}
		sort.Strings(names)
	} else {
		for _, ch := range c.router.due(a, a.EndsAt.Sub(a.StartsAt)) {
			names = append(names, ch.name)
		}
	}
	for _, name := range names {
		if t := c.channels[name]; t != nil {
			out.add(t, single)
		}
	}
}

// notifyDue adds record to the channels entry's alert is due at and that
// were not notified yet; record is called (once) only when one is. Caller
// holds mu.
func (c *core) notifyDue(ctx context.Context, entry *alertEntry, now time.Time, record func() plog.Logs, out batches) {
	var ld plog.Logs
	built := false
	for _, ch := range c.router.due(&entry.Signal, now.Sub(entry.Signal.StartsAt)) {
		if entry.notified[ch.name] {
			continue
		}
		t := c.channels[ch.name]
		if t == nil {
			continue
		}
		entry.notified[ch.name] = true
		if !built {
			ld, built = record(), true
		}
		out.add(t, ld)
		if ch.level > 0 {
			c.telemetry.ExporterDeploymentEscalations.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("target", ch.name))))
		}
	}
}

// tick escalates alerts still firing, re-posts firing alerts to the
// Alertmanagers when no signal did for resend_interval, and applies TTLs.
func (c *core) tick(ctx context.Context) error {
	now := c.now()
	c.deliverMu.Lock()
	defer c.deliverMu.Unlock()
	out := batches{}
	c.mu.Lock()
	c.st.sweep(now)
	if c.raised == nil {
		c.raised = map[string]*raisedImpact{}
	}
	c.impactAlerts(ctx, now, out)
	entries := make([]*alertEntry, 0, len(c.st.alerts))
	for _, e := range c.st.alerts {
		entries = append(entries, e)
	}
	sortAlerts(entries)
	// What explains an alert is told as the state says it now; the callees
	// are resolved once for the whole tick, and only if an alert is sent.
	var callees *calleeResolver
	for _, e := range entries {
		c.notifyDue(ctx, e, now, func() plog.Logs { return c.withExplanation(&e.Signal, e.logs, &callees) }, out)
		if len(c.amTargets) > 0 && now.Sub(e.LastAMPost) >= c.cfg.Alertmanager.ResendInterval {
			resend := plog.NewLogs()
			e.logs.CopyTo(resend)
			resend.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SetTimestamp(pcommon.NewTimestampFromTime(now))
			resend = c.withExplanation(&e.Signal, resend, &callees)
			for _, t := range c.amTargets {
				out.add(t, resend)
			}
			e.LastAMPost = now
		}
	}
	drops := c.st.takeDrops()
	c.mu.Unlock()
	c.recordDrops(ctx, drops)
	return c.enqueue(ctx, out)
}

func (c *core) recordDrops(ctx context.Context, drops map[dropKey]int64) {
	for k, n := range drops {
		c.telemetry.ExporterDeploymentStateDropped.Add(ctx, n, metric.WithAttributeSet(attribute.NewSet(
			attribute.String("kind", k.kind), attribute.String("reason", k.reason))))
	}
}

// enqueue puts each target's batch on its queue. A full or stopped queue
// refuses only that target's share.
func (c *core) enqueue(ctx context.Context, out batches) error {
	var errs []error
	for _, t := range c.targets {
		ld, ok := out[t]
		if !ok {
			continue
		}
		n := int64(ld.LogRecordCount())
		attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("target", t.name)))
		if err := t.exp.ConsumeLogs(ctx, ld); err != nil {
			c.telemetry.ExporterDeploymentNotificationsRefused.Add(ctx, n, attrs)
			errs = append(errs, fmt.Errorf("%s: %w", t.name, err))
			continue
		}
		c.telemetry.ExporterDeploymentNotificationsEnqueued.Add(ctx, n, attrs)
	}
	return errors.Join(errs...)
}

// consumeMetrics updates the state from deployment.health.score, .verdict
// and .recommendation, deployment.indicator.value/.baseline, and the service
// graph's deployment.dependency.* and deployment.impact.services data
// points; nothing else is read.
func (c *core) consumeMetrics(ctx context.Context, md pmetric.Metrics) error {
	now := c.now()
	c.mu.Lock()
	defer func() {
		drops := c.st.takeDrops()
		c.mu.Unlock()
		c.recordDrops(ctx, drops)
	}()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		res := rm.Resource().Attributes()
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				switch m.Name() {
				case metricHealthScore, metricHealthVerdict, metricHealthRecommendation, metricIndicatorValue, metricIndicatorBaseline,
					metricDependencyValue, metricDependencyBaseline, metricDependencyLower, metricDependencyUpper, metricDependencyScore,
					metricImpactServices:
				default:
					continue
				}
				dps := numberPoints(m)
				for p := 0; p < dps.Len(); p++ {
					c.applyPoint(m.Name(), res, dps.At(p), now)
				}
			}
		}
	}
	return nil
}

func numberPoints(m pmetric.Metric) pmetric.NumberDataPointSlice {
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		return m.Gauge().DataPoints()
	case pmetric.MetricTypeSum:
		return m.Sum().DataPoints()
	}
	return pmetric.NewNumberDataPointSlice()
}

func pointValue(dp pmetric.NumberDataPoint) float64 {
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(dp.IntValue())
	}
	return dp.DoubleValue()
}

// applyPoint applies one data point. Caller holds mu.
func (c *core) applyPoint(name string, res pcommon.Map, dp pmetric.NumberDataPoint, now time.Time) {
	attrs := dp.Attributes()
	key := serviceKey{
		Namespace:   first(attrs, res, deployevent.AttrServiceNamespace),
		Service:     first(attrs, res, deployevent.AttrServiceName),
		Environment: first(attrs, res, deployevent.AttrEnvironment),
	}
	if key.Service == "" || dp.Flags().NoRecordedValue() {
		return
	}
	at := now
	if dp.Timestamp() != 0 {
		at = dp.Timestamp().AsTime()
	}
	switch name {
	case metricHealthScore, metricHealthVerdict, metricHealthRecommendation:
		p := healthPoint{
			Key:     key,
			Version: first(attrs, res, deployevent.AttrServiceVersion),
			Cohort:  str(attrs, deployevent.AttrDeploymentCohort),
			At:      at,
		}
		switch name {
		case metricHealthScore:
			p.Field, p.Score, p.Phase = fieldScore, pointValue(dp), str(attrs, deployevent.AttrDeploymentPhase)
		case metricHealthVerdict:
			if pointValue(dp) != 1 {
				return // a state set: only the current value's point says something
			}
			p.Field, p.Verdict = fieldVerdict, deployevent.Verdict(str(attrs, deployevent.AttrHealthVerdict))
		default:
			if pointValue(dp) != 1 {
				return
			}
			p.Field, p.Recommendation = fieldRecommendation, deployevent.Recommendation(str(attrs, deployevent.AttrHealthRecommendation))
		}
		c.st.applyHealth(&p, now)
	case metricIndicatorValue, metricIndicatorBaseline:
		if cohort := str(attrs, deployevent.AttrDeploymentCohort); cohort == string(deployevent.CohortBaseline) {
			return
		}
		ind := str(attrs, deployevent.AttrIndicatorName)
		if ind == "" {
			return
		}
		c.st.applyIndicator(key, ind, pointValue(dp), at, name == metricIndicatorBaseline, now)
	case metricDependencyValue, metricDependencyBaseline, metricDependencyLower, metricDependencyUpper, metricDependencyScore:
		if cohort := str(attrs, deployevent.AttrDeploymentCohort); cohort == string(deployevent.CohortBaseline) {
			return
		}
		p := edgePoint{Key: edgeKey{Caller: key, Dependency: str(attrs, attrDependencyName)}, Value: pointValue(dp), At: at,
			Service: str(attrs, attrDependencyService)}
		if p.Key.Dependency == "" {
			return
		}
		switch name {
		case metricDependencyScore:
			p.Field = edgeScore
		case metricDependencyBaseline:
			p.Field = edgeBaseline
		case metricDependencyLower:
			p.Field = edgeLower
		case metricDependencyUpper:
			p.Field = edgeUpper
		default:
			p.Field = edgeValue
		}
		if p.Field != edgeScore {
			if p.Indicator = edgeIndicator(str(attrs, deployevent.AttrIndicatorName)); p.Indicator < 0 {
				return
			}
		}
		c.st.applyEdge(&p, now)
	case metricImpactServices:
		if cohort := str(attrs, deployevent.AttrDeploymentCohort); cohort == string(deployevent.CohortBaseline) {
			return
		}
		c.st.applyImpact(key, pointValue(dp), at, now)
	}
}
