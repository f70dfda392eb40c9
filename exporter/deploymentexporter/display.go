// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"math"
	"strconv"
	"strings"
)

// This file is where the status page's numbers become text: every value the
// page shows comes from here, with the unit its indicator's name implies.
// The page itself formats nothing but durations and clock times.

// unit is what an indicator's value measures, by the naming convention of
// the processor's indicators (see its emit package).
type unit int

const (
	unitPlain    unit = iota // a number without a unit
	unitRatio                // a share, 0–1, shown as a percentage
	unitSeconds              // a duration in seconds, shown as µs, ms or s
	unitPerSec               // a rate per second
	unitRequests             // requests per second
	unitErrors               // error log records per second
)

// unitOf reads an indicator's unit from its name: `request_rate` and
// `log_error_rate` by name, then `*_ratio`, `latency*` and `*_rate`.
func unitOf(indicator string) unit {
	switch {
	case indicator == "request_rate":
		return unitRequests
	case indicator == "log_error_rate":
		return unitErrors
	case strings.HasSuffix(indicator, "_ratio"):
		return unitRatio
	case strings.HasPrefix(indicator, "latency"):
		return unitSeconds
	case strings.HasSuffix(indicator, "_rate"):
		return unitPerSec
	}
	return unitPlain
}

// nonNegative reports whether values of u cannot be below zero, so a lower
// bound at or below zero bounds nothing.
func (u unit) nonNegative() bool { return u != unitPlain }

// format prints v in unit u, e.g. `18.2 %`, `0.12 ms`, `25.5 req/s`.
func (u unit) format(v float64) string {
	if !finiteNum(v) {
		return "–"
	}
	switch u {
	case unitRatio:
		return readable(v*100) + " %"
	case unitSeconds:
		a := math.Abs(v)
		switch {
		case a == 0 || a >= 1:
			return readable(v) + " s"
		case a >= 1e-4:
			return readable(v*1e3) + " ms"
		}
		return readable(v*1e6) + " µs"
	case unitPerSec:
		return readable(v) + "/s"
	case unitRequests:
		return readable(v) + " req/s"
	case unitErrors:
		return readable(v) + " errors/s"
	}
	return readable(v)
}

// readable prints a number with as many digits as a reader needs: whole from
// 100 up, one decimal from 1 up, two significant digits below 1. Never in
// exponent form.
func readable(v float64) string {
	if !finiteNum(v) {
		return "–"
	}
	a := math.Abs(v)
	var r float64
	switch {
	case a >= 100:
		r = math.Round(v)
	case a >= 1:
		r = math.Round(v*10) / 10
	default:
		r, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 2, 64), 64)
	}
	if r == 0 {
		r = 0 // no "-0"
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

func finiteNum(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// indicatorLabel is an indicator's name as words: `error_ratio` → `error ratio`.
func indicatorLabel(name string) string { return strings.ReplaceAll(name, "_", " ") }

// display is the evidence as a sentence, in the indicator's unit, e.g.
// `error ratio 2.7 % vs baseline 0.8 % (expected ≤ 2.2 %)`. Empty when the
// alert gave no numbers.
func (e *evidence) display() string {
	u := unitOf(e.Indicator)
	var parts []string
	if e.Indicator != "" {
		parts = append(parts, indicatorLabel(e.Indicator))
	}
	if e.Value != nil {
		parts = append(parts, u.format(*e.Value))
	}
	if e.Baseline != nil {
		parts = append(parts, "vs baseline "+u.format(*e.Baseline))
	}
	lower := e.Lower
	if lower != nil && u.nonNegative() && *lower <= 0 {
		lower = nil
	}
	switch {
	case lower != nil && e.Upper != nil:
		parts = append(parts, "(expected "+u.format(*lower)+" to "+u.format(*e.Upper)+")")
	case e.Upper != nil:
		parts = append(parts, "(expected ≤ "+u.format(*e.Upper)+")")
	case lower != nil:
		parts = append(parts, "(expected ≥ "+u.format(*lower)+")")
	}
	if e.Value == nil && e.Baseline == nil && e.Lower == nil && e.Upper == nil {
		parts = nil // a name alone says nothing
	}
	var extra []string
	if e.AnomalyScore != nil {
		extra = append(extra, "anomaly score "+readable(*e.AnomalyScore))
	}
	if e.Confidence != nil {
		extra = append(extra, "confidence "+unitRatio.format(*e.Confidence))
	}
	if e.Test != "" && len(extra) > 0 {
		extra[len(extra)-1] += " (" + e.Test + ")"
	}
	s := strings.Join(parts, " ")
	if len(extra) > 0 {
		if s != "" {
			s += "; "
		}
		s += strings.Join(extra, ", ")
	}
	return s
}
