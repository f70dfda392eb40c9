// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

// tagPlan is one signal's tagging configuration, resolved once.
type tagPlan struct {
	phase, id, cohort, version bool
	// perDatum writes on every span, data point or log record instead of the resource.
	perDatum bool
	// signal is the data_tagged attribute, as a slice so that passing it
	// allocates nothing.
	signal []metric.AddOption
}

func newTagPlan(signal string, st SignalTagging) tagPlan {
	pl := tagPlan{
		perDatum: st.Level != levelResource,
		signal:   []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", signal)))},
	}
	for _, attr := range st.Attributes {
		switch attr {
		case deployevent.AttrDeploymentPhase:
			pl.phase = true
		case deployevent.AttrDeploymentID:
			pl.id = true
		case deployevent.AttrDeploymentCohort:
			pl.cohort = true
		case deployevent.AttrServiceVersion:
			pl.version = true
		}
	}
	return pl
}

func (pl *tagPlan) enabled() bool { return pl.phase || pl.id || pl.cohort || pl.version }

// write puts the planned attributes of tag into m and reports whether it
// wrote any. hasVersion says the datum already has a service.version.
func (pl *tagPlan) write(m pcommon.Map, tag tracker.Tag, hasVersion bool) bool {
	wrote := false
	if pl.phase && tag.Phase != "" {
		m.PutStr(deployevent.AttrDeploymentPhase, string(tag.Phase))
		wrote = true
	}
	if pl.id && tag.ID != "" {
		m.PutStr(deployevent.AttrDeploymentID, tag.ID)
		wrote = true
	}
	if pl.cohort && tag.Cohort != "" {
		m.PutStr(deployevent.AttrDeploymentCohort, string(tag.Cohort))
		wrote = true
	}
	if pl.version && !hasVersion && tag.Version != "" {
		if _, ok := m.Get(deployevent.AttrServiceVersion); !ok {
			m.PutStr(deployevent.AttrServiceVersion, tag.Version)
			wrote = true
		}
	}
	return wrote
}

// serviceKey reads the tracker key and the version of the service a resource
// describes; ok is false without a service.name.
func (p *deploymentProcessor) serviceKey(res pcommon.Map) (key tracker.Key, version string, ok bool) {
	key.Service = strAttr(res, deployevent.AttrServiceName)
	if key.Service == "" {
		return key, "", false
	}
	key.Namespace = strAttr(res, deployevent.AttrServiceNamespace)
	key.Environment = strAttr(res, deployevent.AttrEnvironment)
	if key.Environment == "" {
		key.Environment = p.cfg.EnvironmentDefault
	}
	return key, strAttr(res, deployevent.AttrServiceVersion), true
}

// observe records that the resource's service reports its version. All
// resources of a batch are observed before any is tagged, so a batch is
// judged as one instant whatever the order of its resources.
func (p *deploymentProcessor) observe(res pcommon.Map, now time.Time) {
	if key, version, ok := p.serviceKey(res); ok {
		p.tracker.Observe(key, version, now)
	}
}

// resolve finds the tag for the service a resource describes, once per
// resource. ok is false for a resource that names no service; tracked tells
// whether the tracker holds its key.
func (p *deploymentProcessor) resolve(res pcommon.Map, now time.Time) (key tracker.Key, tag tracker.Tag, version string, tracked, ok bool) {
	key, version, ok = p.serviceKey(res)
	if !ok {
		return key, tag, "", false, false
	}
	tag = p.tracker.Lookup(key, version, now)
	tracked = tag.Phase != ""
	if !tag.Known {
		tag.Phase = ""
		if p.cfg.TagUnknownAsSteady {
			tag.Phase = deployevent.PhaseSteady
		}
	}
	return key, tag, version, tracked, true
}

// strAttr reads a string attribute without allocating (other types are rare
// and converted).
func strAttr(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	switch {
	case !ok:
		return ""
	case v.Type() == pcommon.ValueTypeStr:
		return v.Str()
	}
	return v.AsString()
}

func (p *deploymentProcessor) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	pl := &p.traces
	now := p.now()
	var tagged int64
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		p.observe(rss.At(i).Resource().Attributes(), now)
	}
	for i := range rss.Len() {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		key, tag, version, tracked, ok := p.resolve(res, now)
		if !ok {
			continue
		}
		sss := rs.ScopeSpans()
		if tracked {
			p.healthSpans(key, tag, res, sss, now)
		}
		if !pl.enabled() {
			continue
		}
		if !pl.perDatum {
			if pl.write(res, tag, version != "") {
				for j := range sss.Len() {
					tagged += int64(sss.At(j).Spans().Len())
				}
			}
			continue
		}
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				if pl.write(spans.At(k).Attributes(), tag, version != "") {
					tagged++
				}
			}
		}
	}
	if tagged > 0 {
		p.telemetry.ProcessorDeploymentDataTagged.Add(ctx, tagged, pl.signal...)
	}
	return td, nil
}

func (p *deploymentProcessor) processMetrics(ctx context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	pl := &p.metrics
	now := p.now()
	var tagged int64
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		p.observe(rms.At(i).Resource().Attributes(), now)
	}
	for i := range rms.Len() {
		rm := rms.At(i)
		res := rm.Resource().Attributes()
		key, tag, version, tracked, ok := p.resolve(res, now)
		if !ok {
			continue
		}
		if tracked {
			p.healthMetrics(key, tag, res, rm.ScopeMetrics(), now)
		}
		if !pl.enabled() {
			continue
		}
		if !pl.perDatum {
			if pl.write(res, tag, version != "") {
				tagged += int64(dataPointCount(rm))
			}
			continue
		}
		sms := rm.ScopeMetrics()
		for j := range sms.Len() {
			ms := sms.At(j).Metrics()
			for k := range ms.Len() {
				tagged += int64(tagDataPoints(ms.At(k), pl, tag, version != ""))
			}
		}
	}
	if tagged > 0 {
		p.telemetry.ProcessorDeploymentDataTagged.Add(ctx, tagged, pl.signal...)
	}
	return md, nil
}

func dataPointCount(rm pmetric.ResourceMetrics) int {
	n := 0
	sms := rm.ScopeMetrics()
	for j := range sms.Len() {
		ms := sms.At(j).Metrics()
		for k := range ms.Len() {
			switch m := ms.At(k); m.Type() {
			case pmetric.MetricTypeGauge:
				n += m.Gauge().DataPoints().Len()
			case pmetric.MetricTypeSum:
				n += m.Sum().DataPoints().Len()
			case pmetric.MetricTypeHistogram:
				n += m.Histogram().DataPoints().Len()
			case pmetric.MetricTypeExponentialHistogram:
				n += m.ExponentialHistogram().DataPoints().Len()
			case pmetric.MetricTypeSummary:
				n += m.Summary().DataPoints().Len()
			}
		}
	}
	return n
}

// tagDataPoints writes tag on every data point of m and returns how many it tagged.
func tagDataPoints(m pmetric.Metric, pl *tagPlan, tag tracker.Tag, hasVersion bool) int {
	n := 0
	count := func(wrote bool) {
		if wrote {
			n++
		}
	}
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := range dps.Len() {
			count(pl.write(dps.At(i).Attributes(), tag, hasVersion))
		}
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		for i := range dps.Len() {
			count(pl.write(dps.At(i).Attributes(), tag, hasVersion))
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := range dps.Len() {
			count(pl.write(dps.At(i).Attributes(), tag, hasVersion))
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := range dps.Len() {
			count(pl.write(dps.At(i).Attributes(), tag, hasVersion))
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := range dps.Len() {
			count(pl.write(dps.At(i).Attributes(), tag, hasVersion))
		}
	}
	return n
}

// processLogs first applies the batch's deployment.lifecycle records, then
// tags the other records with the state that results. Lifecycle records pass
// on unchanged; a resource that holds any is tagged per record instead.
func (p *deploymentProcessor) processLogs(ctx context.Context, ld plog.Logs) (plog.Logs, error) {
	pl := &p.logs
	rls := ld.ResourceLogs()
	batchHasEvents := false
	for i := range rls.Len() {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				if lr := lrs.At(k); deployevent.IsLifecycle(lr) {
					p.applyEvent(ctx, rl.Resource(), lr)
					batchHasEvents = true
				}
			}
		}
	}

	// The version on a lifecycle record's resource is the one being
	// deployed, not one that reports: such resources are not observed.
	now := p.now()
	for i := range rls.Len() {
		if rl := rls.At(i); !batchHasEvents || !holdsLifecycle(rl) {
			p.observe(rl.Resource().Attributes(), now)
		}
	}
	var tagged int64
	for i := range rls.Len() {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		hasEvents := batchHasEvents && holdsLifecycle(rl)
		key, tag, version, tracked, ok := p.resolve(res, now)
		if !ok {
			continue
		}
		sls := rl.ScopeLogs()
		if tracked {
			p.healthLogs(key, tag, res, sls, now)
		}
		if !pl.enabled() {
			continue
		}
		if !pl.perDatum && !hasEvents {
			if pl.write(res, tag, version != "") {
				for j := range sls.Len() {
					tagged += int64(sls.At(j).LogRecords().Len())
				}
			}
			continue
		}
		for j := range sls.Len() {
			lrs := sls.At(j).LogRecords()
			for k := range lrs.Len() {
				lr := lrs.At(k)
				if deployevent.IsLifecycle(lr) {
					continue
				}
				if pl.write(lr.Attributes(), tag, version != "") {
					tagged++
				}
			}
		}
	}
	if tagged > 0 {
		p.telemetry.ProcessorDeploymentDataTagged.Add(ctx, tagged, pl.signal...)
	}
	return ld, nil
}

func holdsLifecycle(rl plog.ResourceLogs) bool {
	sls := rl.ScopeLogs()
	for j := range sls.Len() {
		lrs := sls.At(j).LogRecords()
		for k := range lrs.Len() {
			if deployevent.IsLifecycle(lrs.At(k)) {
				return true
			}
		}
	}
	return false
}

// applyEvent feeds one lifecycle record to the tracker and counts the result.
func (p *deploymentProcessor) applyEvent(ctx context.Context, res pcommon.Resource, lr plog.LogRecord) {
	ev, err := deployevent.FromLogRecord(res, lr)
	if err != nil {
		p.telemetry.ProcessorDeploymentEventsIgnored.Add(ctx, 1, p.ignoredInvalid)
		p.logger.Debug("Ignoring invalid deployment.lifecycle record", zap.Error(err))
		return
	}
	if ev.Environment == "" {
		ev.Environment = p.cfg.EnvironmentDefault
	}
	applied, reason := p.tracker.Apply(ev)
	if applied {
		p.telemetry.ProcessorDeploymentEventsApplied.Add(ctx, 1, addAttr("state", string(ev.State)))
		return
	}
	p.telemetry.ProcessorDeploymentEventsIgnored.Add(ctx, 1, addAttr("reason", string(reason)))
	p.logger.Debug("Ignoring deployment.lifecycle event",
		zap.String("service.name", ev.Service), zap.String("deployment.id", ev.ID),
		zap.String("deployment.state", string(ev.State)), zap.String("reason", string(reason)))
}
