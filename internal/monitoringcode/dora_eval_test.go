// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	hourMillis = int64(time.Hour / time.Millisecond)
	doraHours  = 40 * 24
)

// doraSeries is 40 days of hourly processor series for three services of namespace shop in prod:
//   - checkout finishes 18 successful, 3 failed and 3 rolled back deployments a day (2 failures in
//     8); lead time 2h, time to restore 30m;
//   - billing finishes 0.75 successful deployments a day and never fails; lead time 3 days, time
//     to restore 2 days;
//   - ledger finished 5 deployments long ago and none since.
func doraSeries() *memStorage {
	st := newMemStorage()
	series := func(name, service string, more ...string) labels.Labels {
		return labels.FromStrings(append([]string{
			model.MetricNameLabel, name, "service_namespace", "shop", "service_name", service, "deployment_environment_name", "prod",
		}, more...)...)
	}
	linear := func(lbls labels.Labels, start, perHour float64) {
		for h := int64(0); h <= doraHours; h++ {
			st.add(lbls, h*hourMillis, start+perHour*float64(h))
		}
	}
	count := func(service, status string) labels.Labels {
		return series("deployment_count_total", service, "deployment_status", status)
	}
	linear(count("checkout", "succeeded"), 0, 0.75)
	linear(count("checkout", "failed"), 0, 0.125)
	linear(count("checkout", "rolled_back"), 0, 0.125)
	linear(count("checkout", "cancelled"), 0, 0)
	linear(count("billing", "succeeded"), 0, 0.03125)
	linear(count("ledger", "succeeded"), 5, 0)
	linear(series("deployment_lead_time_seconds", "checkout"), 7200, 0)
	linear(series("deployment_recovery_time_seconds", "checkout"), 1800, 0)
	linear(series("deployment_lead_time_seconds", "billing"), 259200, 0)
	linear(series("deployment_recovery_time_seconds", "billing"), 172800, 0)
	return st
}

// evalGroup evaluates one group of rules.yaml once, at at, as Prometheus' rule manager does (each
// rule in order, its result stored in st under the record name with the rule's labels, visible to
// the rules after it), and returns a query of st at at.
func evalGroup(t *testing.T, st *memStorage, group string, at time.Time) func(expr string) promql.Vector {
	t.Helper()
	ctx := context.Background()
	engine := promql.NewEngine(promql.EngineOpts{
		MaxSamples:    10_000_000,
		Timeout:       time.Minute,
		LookbackDelta: 5 * time.Minute,
		Parser:        promqlParser,
	})
	t.Cleanup(func() { require.NoError(t, engine.Close()) })

	query := func(expr string) promql.Vector {
		q, err := engine.NewInstantQuery(ctx, st, nil, expr, at)
		require.NoError(t, err, expr)
		defer q.Close()
		res := q.Exec(ctx)
		require.NoError(t, res.Err, expr)
		vector, err := res.Vector()
		require.NoError(t, err, expr)
		return vector
	}

	var evaluated int
	for _, g := range loadRules(t).Groups {
		if g.Name != group {
			continue
		}
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Record, "group %s holds recording rules only", g.Name)
			for _, s := range query(r.Expr) {
				b := labels.NewBuilder(s.Metric)
				b.Set(model.MetricNameLabel, r.Record)
				for k, v := range r.Labels {
					b.Set(k, v)
				}
				st.add(b.Labels(), at.UnixMilli(), s.F)
			}
			evaluated++
		}
	}
	require.NotZero(t, evaluated, "rules.yaml has no group %s", group)
	return query
}

// evalDORA evaluates the deploylens-dora group at 40 days and returns a reader of recorded series
// by service.
func evalDORA(t *testing.T) func(query string) map[string]float64 {
	t.Helper()
	query := evalGroup(t, doraSeries(), "deploylens-dora", time.UnixMilli(doraHours*hourMillis).UTC())
	return func(expr string) map[string]float64 {
		out := map[string]float64{}
		for _, s := range query(expr) {
			key := s.Metric.Get("service_name")
			if status := s.Metric.Get("deployment_status"); status != "" {
				key += "/" + status
			}
			if metric := s.Metric.Get("dora_metric"); metric != "" {
				key += "/" + metric
			}
			require.NotContains(t, out, key, "%s: two series for %s", expr, key)
			out[key] = s.F
		}
		return out
	}
}

func assertValues(t *testing.T, want, got map[string]float64, what string) {
	t.Helper()
	assert.Len(t, got, len(want), what)
	for k, v := range want {
		if assert.Contains(t, got, k, what) {
			assert.InDelta(t, v, got[k], 1e-9*max(1, math.Abs(v)), "%s: %s", what, k)
		}
	}
}

// TestDORARecordingRules checks the arithmetic of the DORA recording rules on known series.
func TestDORARecordingRules(t *testing.T) {
	recorded := evalDORA(t)

	assertValues(t, map[string]float64{
		"checkout/succeeded": 126, "checkout/failed": 21, "checkout/rolled_back": 21, "checkout/cancelled": 0,
		"billing/succeeded": 5.25, "ledger/succeeded": 0,
	}, recorded("service_status:deployments:increase7d"), "finished in 7d")
	assertValues(t, map[string]float64{
		"checkout/succeeded": 540, "checkout/failed": 90, "checkout/rolled_back": 90, "checkout/cancelled": 0,
		"billing/succeeded": 22.5, "ledger/succeeded": 0,
	}, recorded("service_status:deployments:increase30d"), "finished in 30d")

	// Successful deployments per day; 0 for a service that deployed nothing in the window.
	for _, window := range []string{"7d", "30d"} {
		assertValues(t, map[string]float64{"checkout": 18, "billing": 0.75, "ledger": 0},
			recorded("service:deployment_frequency_per_day:"+window), "frequency "+window)
	}

	// (3 failed + 3 rolled back) / 24 finished a day = 0.25; 0 for billing, which has no failed
	// series at all; none for ledger, which finished nothing in the window.
	for _, window := range []string{"7d", "30d"} {
		assertValues(t, map[string]float64{"checkout": 0.25, "billing": 0},
			recorded("service:deployment_change_failure_rate:ratio_"+window), "change failure rate "+window)
	}

	for _, window := range []string{"7d", "30d"} {
		assertValues(t, map[string]float64{"checkout": 7200, "billing": 259200},
			recorded("service:deployment_lead_time_seconds:median_"+window), "lead time "+window)
		assertValues(t, map[string]float64{"checkout": 1800, "billing": 172800},
			recorded("service:deployment_recovery_time_seconds:median_"+window), "time to restore "+window)
	}

	// 4 elite, 3 high, 2 medium, 1 low.
	assertValues(t, map[string]float64{
		"checkout/deployment_frequency": 4, "checkout/lead_time": 4, "checkout/change_failure_rate": 1, "checkout/time_to_restore": 4,
		"billing/deployment_frequency": 3, "billing/lead_time": 3, "billing/change_failure_rate": 4, "billing/time_to_restore": 2,
		"ledger/deployment_frequency": 1,
	}, recorded("service:dora_level:30d"), "levels")
	assertValues(t, map[string]float64{"checkout": 1, "billing": 2, "ledger": 1},
		recorded("service:dora_performance_level:30d"), "overall level")
}

// TestLeadTimeMedianIsTimeWeighted documents what the comment in rules.yaml says: a gauge of the
// most recent deployment weighs each deployment by how long it stayed the most recent.
func TestLeadTimeMedianIsTimeWeighted(t *testing.T) {
	st := newMemStorage()
	lbls := labels.FromStrings(model.MetricNameLabel, "deployment_lead_time_seconds",
		"service_namespace", "shop", "service_name", "cart", "deployment_environment_name", "prod")
	// Over the last 7 days: one deployment with a 1h lead time stayed the latest for 6 days, then
	// three deployments with 10h lead times came within the last day.
	for h := int64(0); h <= 7*24; h++ {
		v := 3600.0
		if h > 6*24 {
			v = 36000
		}
		st.add(lbls, h*hourMillis, v)
	}
	var expr string
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record == "service:deployment_lead_time_seconds:median_7d" {
				expr = r.Expr
			}
		}
	}
	require.NotEmpty(t, expr)
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, Parser: promqlParser})
	defer func() { require.NoError(t, engine.Close()) }()
	q, err := engine.NewInstantQuery(context.Background(), st, nil, expr, time.UnixMilli(7*24*hourMillis))
	require.NoError(t, err)
	defer q.Close()
	vector, err := q.Exec(context.Background()).Vector()
	require.NoError(t, err)
	require.Len(t, vector, 1)
	// A median per deployment would say 10h; over time the 1h deployment dominates.
	assert.InDelta(t, 3600, vector[0].F, 1e-9)
}
