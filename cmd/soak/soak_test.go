// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/loadtest"
)

func TestAMSinkFiringOfForgottenServices(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	s := newAMSink()
	alert := func(name, service string, endsAt time.Time) postedAlert {
		return postedAlert{Labels: map[string]string{"alertname": name, "service": service}, EndsAt: endsAt}
	}
	s.record([]postedAlert{
		alert("DeploymentFailed", "gone-long-ago", now.Add(time.Minute)),     // firing, forgotten: counts
		alert("DeploymentFailed", "gone-just-now", now.Add(time.Minute)),     // firing, vanished too recently
		alert("DeploymentFailed", "still-here", now.Add(time.Minute)),        // firing, still reporting
		alert("DeploymentUnhealthy", "gone-long-ago", now.Add(-time.Second)), // ended
	})
	// A later post of the same label set replaces the earlier one: resolved.
	s.record([]postedAlert{alert("DeploymentFailed", "gone-resolved", now.Add(time.Minute))})
	s.record([]postedAlert{alert("DeploymentFailed", "gone-resolved", now.Add(-time.Minute))})
	vanished := map[string]time.Time{
		"gone-long-ago": now.Add(-10 * time.Minute),
		"gone-just-now": now.Add(-5 * time.Second),
		"gone-resolved": now.Add(-10 * time.Minute),
	}
	all, forgotten := s.firing(now, vanished, now.Add(-time.Minute))
	assert.Equal(t, 3, all)
	assert.Equal(t, 1, forgotten)
	posts, received, distinct := s.counts()
	assert.Equal(t, []int{3, 6, 5}, []int{posts, received, distinct})
}

func TestGaugeWatch(t *testing.T) {
	c := &soakConfig{maxServices: 10, maxStreams: 50, maxAlerts: 100}
	w := newGaugeWatch(limitsFor(c))
	scrape := func(text string) []loadtest.Series {
		s, err := loadtest.ParseText(strings.NewReader(text))
		require.NoError(t, err)
		return s
	}
	w.observe(scrape(`# TYPE otelcol_processor_deployment_services_tracked gauge
otelcol_processor_deployment_services_tracked 12
# TYPE otelcol_exporter_deployment_state_entries gauge
otelcol_exporter_deployment_state_entries{kind="alert"} 100
# TYPE otelcol_processor_deployment_new_state gauge
otelcol_processor_deployment_new_state 3
# TYPE otelcol_processor_deployment_events_applied_total counter
otelcol_processor_deployment_events_applied_total 99
# TYPE otelcol_process_memory_rss gauge
otelcol_process_memory_rss 1e9
`))
	w.observe(scrape(`# TYPE otelcol_processor_deployment_services_tracked gauge
otelcol_processor_deployment_services_tracked 8
`))
	var out bytes.Buffer
	assert.False(t, w.report(&out), "the peak 12 passed max_services 10")
	assert.Equal(t, `gauge otelcol_exporter_deployment_state_entries{kind="alert"}: final 100 peak 100 limit 100 ok
gauge otelcol_processor_deployment_new_state: final 3 peak 3 limit unknown
gauge otelcol_processor_deployment_services_tracked: final 8 peak 12 limit 10 OVER
`, out.String())

	w = newGaugeWatch(limitsFor(c))
	w.observe(scrape("# TYPE otelcol_processor_deployment_alerts_remembered gauge\notelcol_processor_deployment_alerts_remembered 100\n"))
	out.Reset()
	assert.True(t, w.report(&out), out.String())
}

func TestPopulationChurns(t *testing.T) {
	const size = 20
	p := newPopulation(1, size, 30*time.Second)
	begin := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	last := begin
	for i := range 300 {
		now := begin.Add(time.Duration(i) * time.Second)
		st := p.tick(now, last)
		last = now
		assert.Equal(t, size, st.Traces.ResourceSpans().Len())
		assert.Equal(t, 2*size, st.Traces.SpanCount())
		assert.Equal(t, len(st.Events), st.Logs.LogRecordCount())
	}
	// 300 s of ~30 s lives: many generations of services, every gone one recorded.
	assert.Greater(t, p.distinct(), 5*size)
	assert.Equal(t, p.distinct()-size, len(p.vanished))
	assert.Greater(t, p.deploymentsStarted, p.distinct())
	assert.GreaterOrEqual(t, p.deploymentsStarted, p.deploymentsEnded)
}

func TestSplitKeepsEverything(t *testing.T) {
	p := newPopulation(1, 25, time.Hour)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range p.active {
		s.nextDeploy = now
	}
	p.tick(now, now)
	for _, s := range p.active {
		s.nextDeploy = now
	}
	st := p.tick(now, now)
	events, spans, points := st.Logs.LogRecordCount(), st.Traces.SpanCount(), st.Metrics.DataPointCount()
	require.Equal(t, 25, events)
	parts := split(st, 10)
	require.Len(t, parts, 3)
	gotEvents, gotSpans, gotPoints := 0, 0, 0
	for _, part := range parts {
		assert.LessOrEqual(t, part.Traces.ResourceSpans().Len(), 10)
		gotEvents += part.Logs.LogRecordCount()
		gotSpans += part.Traces.SpanCount()
		gotPoints += part.Metrics.DataPointCount()
	}
	assert.Equal(t, []int{events, spans, points}, []int{gotEvents, gotSpans, gotPoints})
}

func TestMedianRSSIgnoresAGCSpike(t *testing.T) {
	at := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	var samples []rssSample
	for i, v := range []float64{100, 101, 140, 99, 100, 120, 121, 160, 119} {
		samples = append(samples, rssSample{at: at.Add(time.Duration(i) * time.Second), mib: v})
	}
	assert.InDelta(t, 100, medianRSS(samples, at, at.Add(5*time.Second)), 1e-9)
	assert.InDelta(t, 120.5, medianRSS(samples, at.Add(5*time.Second), at.Add(9*time.Second)), 1e-9)
	assert.InDelta(t, 119, medianRSS(samples, at.Add(time.Hour), at.Add(2*time.Hour)), 1e-9, "no sample in the window: the last one")
}
