// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"math"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/deploylens/deploylens/internal/deployevent"
)

var testStart = time.Date(2026, time.January, 5, 9, 0, 0, 0, time.UTC)

// testScenario is one service with a single route (so its latency is the
// spec's), a rolling deployment after a 10 minute warm-up, and no diurnal swing.
func testScenario(rps float64) Scenario {
	return Scenario{
		Name:    "test",
		Seed:    42,
		Start:   testStart,
		WarmUp:  10 * time.Minute,
		Observe: 20 * time.Minute,
		Services: []Service{{
			Name: "checkout", Namespace: "shop", Environment: "production", Version: "1.4.2",
			Instances: 3,
			Signals:   SignalsAll,
			Traffic: Traffic{
				RPS:              rps,
				RateNoise:        0.05,
				LatencyP50:       40 * time.Millisecond,
				LatencyP95:       180 * time.Millisecond,
				ErrorRatio:       0.01,
				ErrorNoise:       0.15,
				ClientErrorRatio: 0.02,
				CPUUtilization:   0.35,
				Routes:           []Route{{Method: "GET", Route: "/api/items/{id}", Weight: 1, LatencyFactor: 1}},
			},
		}},
		Deployment: Deployment{
			Service: "checkout", Version: "1.5.0", Strategy: deployevent.StrategyRolling,
			QueuedFor: time.Minute, InstanceInterval: 30 * time.Second,
			Revision: "0123456789abcdef0123456789abcdef01234567", CommitTime: testStart.Add(-time.Hour),
		},
	}
}

// request is one generated request, read back from its span.
type request struct {
	service, version, instance string
	route                      string
	status                     int64
	latency                    float64 // seconds
	end                        time.Time
	isError                    bool
}

// collect runs the scenario and returns its requests (from spans), and the steps' CPU readings.
func collect(t *testing.T, sc *Scenario) (requests []request, cpu []cpuReading) {
	t.Helper()
	require.NoError(t, sc.Run(func(st Step) error {
		for _, rs := range st.Traces.ResourceSpans().All() {
			res := rs.Resource().Attributes()
			service, version, instance := str(res, deployevent.AttrServiceName), str(res, deployevent.AttrServiceVersion), str(res, AttrInstanceID)
			for _, ss := range rs.ScopeSpans().All() {
				for _, span := range ss.Spans().All() {
					code, _ := span.Attributes().Get(AttrHTTPStatusCode)
					requests = append(requests, request{
						service: service, version: version, instance: instance,
						route:   str(span.Attributes(), AttrHTTPRoute),
						status:  code.Int(),
						latency: span.EndTimestamp().AsTime().Sub(span.StartTimestamp().AsTime()).Seconds(),
						end:     span.EndTimestamp().AsTime(),
						isError: span.Status().Code() == 2,
					})
				}
			}
		}
		for _, rm := range st.Metrics.ResourceMetrics().All() {
			res := rm.Resource().Attributes()
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if m.Name() != MetricCPUUtilization {
						continue
					}
					dp := m.Gauge().DataPoints().At(0)
					cpu = append(cpu, cpuReading{version: str(res, deployevent.AttrServiceVersion), at: dp.Timestamp().AsTime(), value: dp.DoubleValue()})
				}
			}
		}
		return nil
	}))
	return requests, cpu
}

type cpuReading struct {
	version string
	at      time.Time
	value   float64
}

func str(m pcommon.Map, k string) string {
	v, _ := m.Get(k)
	return v.AsString()
}

func filter(rs []request, keep func(*request) bool) []request {
	var out []request
	for i := range rs {
		if keep(&rs[i]) {
			out = append(out, rs[i])
		}
	}
	return out
}

func errorRatio(rs []request) float64 {
	errs := 0
	for i := range rs {
		if rs[i].status >= 500 {
			errs++
		}
	}
	return float64(errs) / float64(len(rs))
}

func quantile(rs []request, q float64) float64 {
	lat := make([]float64, len(rs))
	for i := range rs {
		lat[i] = rs[i].latency
	}
	sort.Float64s(lat)
	return lat[int(math.Ceil(q*float64(len(lat))))-1]
}

func meanCPU(cs []cpuReading, keep func(*cpuReading) bool) float64 {
	sum, n := 0.0, 0
	for i := range cs {
		if keep(&cs[i]) {
			sum += cs[i].value
			n++
		}
	}
	return sum / float64(n)
}

// histogramTotal is the final cumulative count of every histogram series, summed.
func histogramTotal(t *testing.T, sc *Scenario) uint64 {
	t.Helper()
	last := map[string]uint64{}
	require.NoError(t, sc.Run(func(st Step) error {
		for _, rm := range st.Metrics.ResourceMetrics().All() {
			instance := str(rm.Resource().Attributes(), AttrInstanceID)
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					if m.Type() != pmetric.MetricTypeHistogram {
						continue
					}
					for _, dp := range m.Histogram().DataPoints().All() {
						key := instance + "|" + str(dp.Attributes(), AttrHTTPRoute) + "|" + str(dp.Attributes(), AttrHTTPStatusCode)
						last[key] = dp.Count()
					}
				}
			}
		}
		return nil
	}))
	var total uint64
	for _, c := range last {
		total += c
	}
	return total
}
