// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/deploylens/deploylens/internal/loadtest"
)

// statePrefixes name our components' self-metrics; every gauge among them
// is a state size.
var statePrefixes = []string{"otelcol_processor_deployment_", "otelcol_exporter_deployment_", "otelcol_receiver_deployment_"}

// gaugeLimit is the bound of the gauges named name whose labels include match.
type gaugeLimit struct {
	name  string
	match map[string]string
	limit float64
}

// limitsFor derives each known state gauge's bound from the soak config.
func limitsFor(c *soakConfig) []gaugeLimit {
	m := float64(c.maxServices)
	return []gaugeLimit{
		{name: "otelcol_processor_deployment_services_tracked", limit: m},
		{name: "otelcol_processor_deployment_deployments_active", limit: m},
		{name: "otelcol_processor_deployment_health_services", limit: m},
		{name: "otelcol_processor_deployment_health_streams", limit: float64(c.maxStreams)},
		{name: "otelcol_processor_deployment_kpi_services", limit: m},
		{name: "otelcol_processor_deployment_alerts_remembered", limit: 10 * m}, // the processor keeps 10 × max_services alerts
		{name: "otelcol_exporter_deployment_state_entries", match: map[string]string{"kind": "service"}, limit: m},
		{name: "otelcol_exporter_deployment_state_entries", match: map[string]string{"kind": "alert"}, limit: float64(c.maxAlerts)},
		{name: "otelcol_exporter_deployment_state_entries", match: map[string]string{"kind": "resolved"}, limit: float64(c.maxAlerts)},
		// The exporter's default state::max_indicators (16) per view.
		{name: "otelcol_exporter_deployment_state_entries", match: map[string]string{"kind": "indicator"}, limit: 16 * m},
		{name: "otelcol_processor_deployment_steady_services", limit: m},
		// The soak configures no user rules: none is pending.
		{name: "otelcol_processor_deployment_rules_pending", limit: 0},
	}
}

// gaugeState is one state gauge series over the run.
type gaugeState struct {
	id          string
	final, peak float64
	limit       float64 // NaN: no known limit
}

// gaugeWatch follows every state gauge series across scrapes.
type gaugeWatch struct {
	limits []gaugeLimit
	series map[string]*gaugeState
}

func newGaugeWatch(limits []gaugeLimit) *gaugeWatch {
	return &gaugeWatch{limits: limits, series: map[string]*gaugeState{}}
}

func isStateGauge(s *loadtest.Series) bool {
	if s.Type != "gauge" {
		return false
	}
	for _, p := range statePrefixes {
		if strings.HasPrefix(s.Name, p) {
			return true
		}
	}
	return false
}

func (w *gaugeWatch) limitOf(s *loadtest.Series) float64 {
	for _, l := range w.limits {
		if l.name != s.Name {
			continue
		}
		ok := true
		for k, v := range l.match {
			if s.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			return l.limit
		}
	}
	return math.NaN()
}

// observe takes one scrape: the latest value of every state gauge, and its peak.
func (w *gaugeWatch) observe(scrape []loadtest.Series) {
	for i := range scrape {
		s := &scrape[i]
		if !isStateGauge(s) {
			continue
		}
		id := s.ID()
		g, ok := w.series[id]
		if !ok {
			g = &gaugeState{id: id, peak: s.Value, limit: w.limitOf(s)}
			w.series[id] = g
		}
		g.final = s.Value
		g.peak = max(g.peak, s.Value)
	}
}

// report prints one line per state gauge, sorted, and whether every known
// one stayed within its limit (final and peak). A limitless one is listed,
// not judged.
func (w *gaugeWatch) report(out io.Writer) (withinLimits bool) {
	ids := make([]string, 0, len(w.series))
	for id := range w.series {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	withinLimits = true
	for _, id := range ids {
		g := w.series[id]
		if math.IsNaN(g.limit) {
			_, _ = fmt.Fprintf(out, "gauge %s: final %g peak %g limit unknown\n", id, g.final, g.peak)
			continue
		}
		verdict := "ok"
		if g.peak > g.limit {
			verdict = "OVER"
			withinLimits = false
		}
		_, _ = fmt.Fprintf(out, "gauge %s: final %g peak %g limit %g %s\n", id, g.final, g.peak, g.limit, verdict)
	}
	return withinLimits
}
