// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario // import "github.com/deploylens/deploylens/internal/scenario"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Shift moves every timestamp of the step by d, in place: a replay in wall
// clock time shifts simulated time to now without changing the data's shape.
func (st *Step) Shift(d time.Duration) {
	st.Time = st.Time.Add(d)
	shiftTraces(st.Traces, d)
	shiftMetrics(st.Metrics, d)
	shiftLogs(st.Logs, d)
	for i := range st.Events {
		st.Events[i].Timestamp = st.Events[i].Timestamp.Add(d)
		if !st.Events[i].CommitTime.IsZero() {
			st.Events[i].CommitTime = st.Events[i].CommitTime.Add(d)
		}
	}
}

// Shift moves every time of the label by d, to match shifted steps.
func (l *Label) Shift(d time.Duration) {
	for _, t := range []*time.Time{&l.DeploymentStart, &l.RegressionOnset, &l.RolloutEnd, &l.End} {
		if !t.IsZero() {
			*t = t.Add(d)
		}
	}
	// A copy: a label copied before the shift keeps its own times.
	l.Deployments = append([]DeployedLabel(nil), l.Deployments...)
	for i := range l.Deployments {
		for _, t := range []*time.Time{&l.Deployments[i].Start, &l.Deployments[i].RolloutEnd} {
			if !t.IsZero() {
				*t = t.Add(d)
			}
		}
	}
}

func shiftTimestamp(ts pcommon.Timestamp, d time.Duration) pcommon.Timestamp {
	if ts == 0 {
		return 0
	}
	return pcommon.NewTimestampFromTime(ts.AsTime().Add(d))
}

func shiftTraces(td ptrace.Traces, d time.Duration) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, span := range ss.Spans().All() {
				span.SetStartTimestamp(shiftTimestamp(span.StartTimestamp(), d))
				span.SetEndTimestamp(shiftTimestamp(span.EndTimestamp(), d))
				for _, ev := range span.Events().All() {
					ev.SetTimestamp(shiftTimestamp(ev.Timestamp(), d))
				}
			}
		}
	}
}

func shiftMetrics(md pmetric.Metrics, d time.Duration) {
	type point interface {
		StartTimestamp() pcommon.Timestamp
		SetStartTimestamp(pcommon.Timestamp)
		Timestamp() pcommon.Timestamp
		SetTimestamp(pcommon.Timestamp)
	}
	shift := func(p point) {
		p.SetStartTimestamp(shiftTimestamp(p.StartTimestamp(), d))
		p.SetTimestamp(shiftTimestamp(p.Timestamp(), d))
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					for _, dp := range m.Gauge().DataPoints().All() {
						shift(dp)
					}
				case pmetric.MetricTypeSum:
					for _, dp := range m.Sum().DataPoints().All() {
						shift(dp)
					}
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						shift(dp)
					}
				case pmetric.MetricTypeExponentialHistogram:
					for _, dp := range m.ExponentialHistogram().DataPoints().All() {
						shift(dp)
					}
				case pmetric.MetricTypeSummary:
					for _, dp := range m.Summary().DataPoints().All() {
						shift(dp)
					}
				}
			}
		}
	}
}

func shiftLogs(ld plog.Logs, d time.Duration) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				lr.SetTimestamp(shiftTimestamp(lr.Timestamp(), d))
				lr.SetObservedTimestamp(shiftTimestamp(lr.ObservedTimestamp(), d))
				// A lifecycle record's commit time moves with the rest, so lead times stay as simulated.
				if v, ok := lr.Attributes().Get(deployevent.AttrCommitTime); ok && deployevent.IsLifecycle(lr) {
					if t, err := time.Parse(time.RFC3339Nano, v.Str()); err == nil {
						v.SetStr(t.Add(d).UTC().Format(time.RFC3339Nano))
					}
				}
			}
		}
	}
}
