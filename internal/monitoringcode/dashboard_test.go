// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Grafana's built-in panel types: the dashboard needs no plugin.
var builtinPanelTypes = []string{
	"row", "timeseries", "stat", "table", "gauge", "bargauge", "state-timeline", "status-history",
	"barchart", "text", "heatmap", "piechart", "histogram", "logs",
}

// Grafana's global variables, replaced by durations a Prometheus query accepts.
var grafanaGlobals = map[string]string{
	"__rate_interval": "4m",
	"__interval":      "1m",
	"__interval_ms":   "60000",
	"__range":         "6h",
	"__range_s":       "21600",
	"__range_ms":      "21600000",
}

var grafanaVarRef = regexp.MustCompile(`\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]`)

type dashboard struct {
	raw       map[string]any
	variables map[string]map[string]any
	panels    []map[string]any // every panel, rows and panels inside collapsed rows included
}

func loadDashboard(t testing.TB) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	d := dashboard{variables: map[string]map[string]any{}}
	require.NoError(t, json.Unmarshal(raw, &d.raw), "deployments.json is not JSON")
	templating, _ := d.raw["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	for _, v := range list {
		vm := v.(map[string]any)
		d.variables[vm["name"].(string)] = vm
	}
	var walk func(ps []any)
	walk = func(ps []any) {
		for _, p := range ps {
			pm := p.(map[string]any)
			d.panels = append(d.panels, pm)
			if nested, ok := pm["panels"].([]any); ok {
				walk(nested)
			}
		}
	}
	panels, _ := d.raw["panels"].([]any)
	walk(panels)
	return d
}

// substitute replaces Grafana variables so that the result is PromQL: globals by durations,
// dashboard variables by a placeholder value. It reports variables the dashboard does not define.
func (d dashboard) substitute(expr string) (string, []string) {
	var undefined []string
	out := grafanaVarRef.ReplaceAllStringFunc(expr, func(ref string) string {
		m := grafanaVarRef.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		if v, ok := grafanaGlobals[name]; ok {
			return v
		}
		if _, ok := d.variables[name]; !ok {
			undefined = append(undefined, name)
		}
		return placeholderPrefix + name
	})
	return out, undefined
}

type dashboardQuery struct {
	where, expr string
}

// queries lists every PromQL expression of the dashboard: targets and annotations.
func (d dashboard) queries() []dashboardQuery {
	var out []dashboardQuery
	for _, p := range d.panels {
		targets, _ := p["targets"].([]any)
		for _, tg := range targets {
			tm := tg.(map[string]any)
			out = append(out, dashboardQuery{
				where: fmt.Sprintf("panel %v %q target %v", p["id"], p["title"], tm["refId"]),
				expr:  fmt.Sprint(tm["expr"]),
			})
		}
	}
	annotations, _ := d.raw["annotations"].(map[string]any)
	list, _ := annotations["list"].([]any)
	for _, a := range list {
		am := a.(map[string]any)
		if expr, ok := am["expr"].(string); ok {
			out = append(out, dashboardQuery{where: fmt.Sprintf("annotation %q", am["name"]), expr: expr})
		}
	}
	return out
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*([A-Za-z_][A-Za-z0-9_]*)\)$`)

func TestDashboardIsWellFormed(t *testing.T) {
	d := loadDashboard(t)
	assert.NotEmpty(t, d.raw["uid"])
	assert.NotEmpty(t, d.raw["title"])
	schema, _ := d.raw["schemaVersion"].(float64)
	assert.GreaterOrEqual(t, schema, 39.0, "schemaVersion")

	ds := d.variables["datasource"]
	require.NotNil(t, ds, "a ${datasource} variable")
	assert.Equal(t, "datasource", ds["type"])
	assert.Equal(t, "prometheus", ds["query"])

	type rect struct {
		id         float64
		x, y, w, h int
	}
	var rects []rect
	ids := map[float64]bool{}
	for _, p := range d.panels {
		id, ok := p["id"].(float64)
		require.True(t, ok && id > 0 && id == float64(int(id)), "panel %q: id %v", p["title"], p["id"])
		assert.False(t, ids[id], "panel id %v used twice", id)
		ids[id] = true
		assert.NotEmpty(t, p["title"], "panel %v: title", id)
		assert.Contains(t, builtinPanelTypes, p["type"], "panel %v: type", id)

		gp, ok := p["gridPos"].(map[string]any)
		require.True(t, ok, "panel %v: gridPos", id)
		r := rect{id: id}
		for key, dst := range map[string]*int{"x": &r.x, "y": &r.y, "w": &r.w, "h": &r.h} {
			v, ok := gp[key].(float64)
			require.True(t, ok && v == float64(int(v)), "panel %v: gridPos.%s = %v", id, key, gp[key])
			*dst = int(v)
		}
		assert.True(t, r.x >= 0 && r.y >= 0 && r.w > 0 && r.h > 0 && r.x+r.w <= 24, "panel %v: gridPos %+v", id, r)
		for _, o := range rects {
			overlap := r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h
			assert.False(t, overlap, "panels %v and %v overlap", o.id, id)
		}
		rects = append(rects, r)

		if repeat, ok := p["repeat"].(string); ok {
			assert.Contains(t, d.variables, repeat, "panel %v repeats over an undefined variable", id)
		}
		if p["type"] == "row" {
			continue
		}
		assert.Equal(t, map[string]any{"type": "prometheus", "uid": "${datasource}"}, p["datasource"], "panel %v: datasource", id)
		targets, _ := p["targets"].([]any)
		assert.NotEmpty(t, targets, "panel %v: targets", id)
		refIDs := map[string]bool{}
		var legends []string
		for _, tg := range targets {
			tm := tg.(map[string]any)
			assert.Equal(t, map[string]any{"type": "prometheus", "uid": "${datasource}"}, tm["datasource"], "panel %v: target datasource", id)
			ref, _ := tm["refId"].(string)
			assert.False(t, ref == "" || refIDs[ref], "panel %v: refId %q missing or repeated", id, ref)
			refIDs[ref] = true
			assert.NotEmpty(t, tm["expr"], "panel %v target %s: expr", id, ref)
			if l, ok := tm["legendFormat"].(string); ok {
				legends = append(legends, l)
			}
		}
		// A band filled between two series names series the panel has.
		fc, _ := p["fieldConfig"].(map[string]any)
		overrides, _ := fc["overrides"].([]any)
		for _, o := range overrides {
			om := o.(map[string]any)
			props, _ := om["properties"].([]any)
			for _, pr := range props {
				prm := pr.(map[string]any)
				if prm["id"] == "custom.fillBelowTo" {
					assert.Contains(t, legends, prm["value"], "panel %v: fillBelowTo names no series", id)
					matcher := om["matcher"].(map[string]any)
					assert.Contains(t, legends, matcher["options"], "panel %v: override for no series", id)
				}
			}
		}
	}
	for name, v := range d.variables {
		if name == "datasource" {
			continue
		}
		assert.Equal(t, map[string]any{"type": "prometheus", "uid": "${datasource}"}, v["datasource"], "variable %s: datasource", name)
	}
}

// TestDashboardQueriesUseOnlyEmittedSeries checks every query of the dashboard as the rules are
// checked: processor series, recording rules of rules.yaml and ALERTS, with their labels and values.
func TestDashboardQueriesUseOnlyEmittedSeries(t *testing.T) {
	d := loadDashboard(t)
	checked := checkRules(t, loadRules(t))
	require.Empty(t, checked.problems)
	checker := &exprChecker{catalog: checked.catalog}

	queries := d.queries()
	require.NotEmpty(t, queries)
	for _, q := range queries {
		expr, undefined := d.substitute(q.expr)
		assert.Empty(t, undefined, "%s: undefined variables", q.where)
		_, problems := checker.check(expr)
		assert.Empty(t, problems, "%s: %s", q.where, q.expr)
	}

	for name, v := range d.variables {
		if v["type"] != "query" {
			continue
		}
		query := fmt.Sprint(v["definition"])
		if qm, ok := v["query"].(map[string]any); ok {
			assert.Equal(t, query, qm["query"], "variable %s: definition and query differ", name)
		}
		m := labelValuesQuery.FindStringSubmatch(query)
		if !assert.NotNil(t, m, "variable %s: want label_values(<selector>, <label>), got %s", name, query) {
			continue
		}
		expr, undefined := d.substitute(m[1])
		assert.Empty(t, undefined, "variable %s: undefined variables", name)
		result, problems := checker.check(expr)
		assert.Empty(t, problems, "variable %s: %s", name, query)
		_, ok := result[m[2]]
		assert.True(t, ok, "variable %s: %s has no label %s", name, m[1], m[2])
	}
}

func TestDashboardContent(t *testing.T) {
	d := loadDashboard(t)
	var rows []string
	for _, p := range d.panels {
		if p["type"] == "row" {
			rows = append(rows, fmt.Sprint(p["title"]))
		}
	}
	require.Len(t, rows, 3, "rows: overview, per-service drill-down, DORA")
	assert.Contains(t, rows[0], "Overview")
	assert.Contains(t, rows[1], "$service")
	assert.Contains(t, rows[2], "DORA")
	for _, v := range []string{"environment", "service", "indicator"} {
		assert.Contains(t, d.variables, v)
	}

	checked := checkRules(t, loadRules(t))
	checker := &exprChecker{catalog: checked.catalog}
	used := map[string]bool{}
	for _, q := range d.queries() {
		expr, _ := d.substitute(q.expr)
		for _, name := range metricNames(t, checker, expr) {
			used[name] = true
		}
	}
	for _, name := range []string{
		// overview and drill-down
		"deployment_active", "deployment_health_score", "deployment_health_dimension_score", "deployment_anomaly_score",
		"deployment_indicator_value", "deployment_indicator_baseline", "deployment_indicator_lower", "deployment_indicator_upper",
		// DORA from the recording rules ...
		"service:deployment_frequency_per_day:30d", "service:deployment_lead_time_seconds:median_30d",
		"service:deployment_change_failure_rate:ratio_30d", "service:deployment_recovery_time_seconds:median_30d",
		"service:dora_performance_level:30d",
		// alert accuracy and coverage beside DORA, per service and per environment
		"service:deployment_alert_precision:ratio_30d", "service:deployment_alert_recall:ratio_30d",
		"service:deployment_monitoring_coverage:ratio_30d", "service:deployment_detection_time_seconds:median_30d",
		"environment:deployment_alert_precision:ratio_30d", "environment:deployment_alert_recall:ratio_30d",
		"environment:deployment_monitoring_coverage:ratio_30d",
		// ... and from the processor's raw gauges when the rules are not loaded
		"deployment_interval_seconds", "deployment_lead_time_seconds", "deployment_change_failure_ratio", "deployment_recovery_time_seconds",
	} {
		assert.True(t, used[name], "the dashboard does not use %s", name)
	}
	var unused []string
	for _, name := range checked.catalog.names() {
		if s := checked.catalog[name]; s.otelName != "" && !used[name] {
			unused = append(unused, name)
		}
	}
	assert.Empty(t, unused, "processor metrics the dashboard does not show")
}

func TestDashboardSubstitution(t *testing.T) {
	d := dashboard{variables: map[string]map[string]any{"service": {}}}
	got, undefined := d.substitute(`rate(x{service_name=~"$service", a="${service:regex}"}[$__rate_interval]) / $nope`)
	assert.Equal(t, `rate(x{service_name=~"grafana_var_service", a="grafana_var_service"}[4m]) / grafana_var_nope`, got)
	assert.Equal(t, []string{"nope"}, undefined)
	assert.True(t, slices.Contains(builtinPanelTypes, "timeseries"))
	assert.False(t, strings.Contains(got, "$"))
}
