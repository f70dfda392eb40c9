// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIndicatorValueText(t *testing.T) {
	for _, tc := range []struct {
		indicator string
		value     float64
		want      string
	}{
		{"error_ratio", 0.182, "18.2 %"},
		{"error_ratio", 0.027, "2.7 %"},
		{"error_ratio", 0.008, "0.8 %"},
		{"error_ratio", 0.0081234, "0.81 %"},
		{"error_ratio", 1, "100 %"},
		{"error_ratio", 0, "0 %"},
		{"cpu_saturation_ratio", 0.5, "50 %"},
		{"latency_p95", 0.000121, "0.12 ms"},
		{"latency_p95", 0.213, "213 ms"},
		{"latency_p95", 0.0042, "4.2 ms"},
		{"latency_p95", 0.00005, "50 µs"},
		{"latency_p95", 1.5, "1.5 s"},
		{"latency_p95", 12.34, "12.3 s"},
		{"latency_p95", 0, "0 s"},
		{"latency", 0.25, "250 ms"},
		{"request_rate", 25.5, "25.5 req/s"},
		{"request_rate", 1234.4, "1234 req/s"},
		{"request_rate", 0.25, "0.25 req/s"},
		{"log_error_rate", 0.3, "0.3 errors/s"},
		{"queue_rate", 3.21, "3.2/s"},
		{"saturation", 0.000121, "0.00012"},
		{"saturation", 42.04, "42"},
		{"saturation", 7.25, "7.3"},
		{"saturation", -0.5, "-0.5"},
		{"saturation", -0.0001, "-0.0001"},
		{"saturation", 123456789, "123456789"},
		{"saturation", 1e-9, "0.000000001"},
		{"error_ratio", math.NaN(), "–"},
		{"latency_p95", math.Inf(1), "–"},
	} {
		assert.Equal(t, tc.want, unitOf(tc.indicator).format(tc.value), "%s %v", tc.indicator, tc.value)
	}
}

func TestEvidenceDisplay(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		e    evidence
		want string
	}{
		{"ratio with an upper bound", evidence{Indicator: "error_ratio", Value: p(0.027), Baseline: p(0.008), Lower: p(0), Upper: p(0.022)},
			"error ratio 2.7 % vs baseline 0.8 % (expected ≤ 2.2 %)"},
		{"latency with both bounds", evidence{Indicator: "latency_p95", Value: p(0.41), Baseline: p(0.2), Lower: p(0.15), Upper: p(0.25)},
			"latency p95 410 ms vs baseline 200 ms (expected 150 ms to 250 ms)"},
		{"rate below its lower bound", evidence{Indicator: "request_rate", Value: p(2), Baseline: p(25.5), Lower: p(12)},
			"request rate 2 req/s vs baseline 25.5 req/s (expected ≥ 12 req/s)"},
		{"a plain number keeps a negative lower bound", evidence{Indicator: "balance", Value: p(-9), Lower: p(-5), Upper: p(5)},
			"balance -9 (expected -5 to 5)"},
		{"with the test's scores", evidence{Indicator: "error_ratio", Value: p(0.052), Baseline: p(0.01), AnomalyScore: p(0.97), Confidence: p(0.99), Test: "two_proportion"},
			"error ratio 5.2 % vs baseline 1 %; anomaly score 0.97, confidence 99 % (two_proportion)"},
		{"no numbers", evidence{Indicator: "error_ratio"}, ""},
		{"nothing", evidence{}, ""},
	} {
		assert.Equal(t, tc.want, tc.e.display(), tc.name)
	}
}
