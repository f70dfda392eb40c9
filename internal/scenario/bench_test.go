// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"fmt"
	"testing"
)

// BenchmarkScenario generates one library-like scenario (50 simulated minutes)
// per traffic level, with every signal and metrics only.
func BenchmarkScenario(b *testing.B) {
	lib := Library(1)
	for _, rps := range []float64{20, 200} {
		var sc *Scenario
		for i := range lib {
			if l := lib[i].Label(); l.TrafficRPS == rps && l.Kind == KindErrorRatio {
				sc = &lib[i]
				break
			}
		}
		for _, signals := range []Signals{SignalsAll, SignalMetrics | SignalLogs} {
			variant := sc.WithSignals(signals)
			b.Run(fmt.Sprintf("rps=%g/%s", rps, signals), func(b *testing.B) {
				b.ReportAllocs()
				var spans, points int
				for b.Loop() {
					spans, points = 0, 0
					_ = variant.Run(func(st Step) error {
						spans += st.Traces.SpanCount()
						points += st.Metrics.DataPointCount()
						return nil
					})
				}
				b.ReportMetric(float64(spans), "spans/scenario")
				b.ReportMetric(float64(points), "points/scenario")
			})
		}
	}
}

// BenchmarkLibrary generates the whole library once per iteration
// (go test -bench Library -benchtime 1x): the generator's share of a benchmark run.
func BenchmarkLibrary(b *testing.B) {
	for _, mode := range []struct {
		name    string
		signals Signals
	}{{"as-specified", 0}, {"metrics-only", SignalMetrics | SignalLogs}} {
		b.Run(mode.name, func(b *testing.B) {
			var spans, points, logs int
			for b.Loop() {
				spans, points, logs = 0, 0, 0
				for _, sc := range Library(1) {
					if mode.signals != 0 {
						sc = sc.WithSignals(mode.signals)
					}
					_ = sc.Run(func(st Step) error {
						spans += st.Traces.SpanCount()
						points += st.Metrics.DataPointCount()
						logs += st.Logs.LogRecordCount()
						return nil
					})
				}
			}
			b.ReportMetric(float64(spans), "spans")
			b.ReportMetric(float64(points), "points")
			b.ReportMetric(float64(logs), "logs")
		})
	}
}

// BenchmarkTopologies generates every topology scenario once per iteration
// (go test -bench Topologies -benchtime 1x).
func BenchmarkTopologies(b *testing.B) {
	var spans, points int
	for b.Loop() {
		spans, points = 0, 0
		for _, sc := range Topologies(1) {
			_ = sc.Run(func(st Step) error {
				spans += st.Traces.SpanCount()
				points += st.Metrics.DataPointCount()
				return nil
			})
		}
	}
	b.ReportMetric(float64(spans), "spans")
	b.ReportMetric(float64(points), "points")
}
