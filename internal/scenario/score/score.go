// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package score scores a detector against the scenario library's labels:
// the figures `make detect-bench` (in simulated time, in process) and
// `make detect-e2e` (in real time, through the built binary) both print, so
// the two report the same things the same way.
package score // import "github.com/deploylens/deploylens/internal/scenario/score"

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/scenario"
)

// Outcome is what a detector said about one scenario's deployment.
type Outcome struct {
	Label scenario.Label
	// Alarm is when the detector first called for action on the deployed
	// service at or after the deployment start; zero when it never did.
	Alarm time.Time
	// Alerts is the largest number of alerts about the deployment that were
	// firing at the same time (Tally.Max).
	Alerts int
}

// Summary holds the benchmark's figures.
type Summary struct {
	// Regressions at or above scenario.LowTrafficRPS, and how many alarmed.
	Regressions, Detected int
	// Clean deployments (all traffic levels), and how many alarmed.
	Clean, FalseAlarms int
	// Clean deployments below scenario.LowTrafficRPS, and how many alarmed.
	LowClean, LowFalseAlarms int
	// Regressions below scenario.LowTrafficRPS, and how many alarmed (not a bar).
	LowRegressions, LowDetected int
	// Delays are the detected regressions' delays from the regression onset, seconds, sorted.
	Delays []float64
	// Faulty counts the regressions (any traffic) that raised an alert; Alerts
	// sums their Outcome.Alerts.
	Faulty, Alerts int
}

// Summarize scores outcomes.
func Summarize(outcomes []Outcome) Summary {
	var s Summary
	for i := range outcomes {
		o := &outcomes[i]
		l := &o.Label
		alarmed := !o.Alarm.IsZero()
		switch {
		case !l.Regressed:
			s.Clean++
			if alarmed {
				s.FalseAlarms++
			}
			if l.LowTraffic() {
				s.LowClean++
				if alarmed {
					s.LowFalseAlarms++
				}
			}
		case l.LowTraffic():
			s.LowRegressions++
			if alarmed {
				s.LowDetected++
			}
		default:
			s.Regressions++
			if alarmed {
				s.Detected++
				s.Delays = append(s.Delays, o.Alarm.Sub(l.RegressionOnset).Seconds())
			}
		}
		if l.Regressed && o.Alerts > 0 {
			s.Faulty++
			s.Alerts += o.Alerts
		}
	}
	sort.Float64s(s.Delays)
	return s
}

// AlertsPerFaulty is the mean of the largest number of simultaneously firing
// alerts over the faulty deployments that alerted at all (one that never
// alerted shows in the detection rate, not here); NaN when none did.
func (s *Summary) AlertsPerFaulty() float64 {
	if s.Faulty == 0 {
		return math.NaN()
	}
	return float64(s.Alerts) / float64(s.Faulty)
}

// Lines are the bar lines, in the order `make detect-bench` prints them.
func (s *Summary) Lines() string {
	var b strings.Builder
	fmt.Fprintf(&b, "detected: %.1f%%\n", Percent(s.Detected, s.Regressions))
	fmt.Fprintf(&b, "false_alarms: %.1f%%\n", Percent(s.FalseAlarms, s.Clean))
	fmt.Fprintf(&b, "delay_median_s: %.0f\n", Quantile(s.Delays, 0.5))
	fmt.Fprintf(&b, "delay_p95_s: %.0f\n", Quantile(s.Delays, 0.95))
	fmt.Fprintf(&b, "low_traffic_false_alarms: %.1f%%\n", Percent(s.LowFalseAlarms, s.LowClean))
	fmt.Fprintf(&b, "alerts_per_faulty_deployment: %.3g\n", s.AlertsPerFaulty())
	return b.String()
}

// Quantile is the nearest-rank quantile of sorted values (NaN when empty).
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

// Percent is 100·n/of, 0 when of is 0.
func Percent(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}
