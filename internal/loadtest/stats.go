// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package loadtest

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"
)

// Percentile returns the q-quantile (0 ≤ q ≤ 1) of the durations by the
// nearest-rank method: the smallest value with at least q of them at or
// below it. It sorts d in place; 0 for none.
func Percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	rank := int(math.Ceil(q * float64(len(d))))
	return d[min(max(rank, 1), len(d))-1]
}

// GrowthPct is how much end grew over start, in percent (negative for a
// shrink); NaN when start is not positive.
func GrowthPct(start, end float64) float64 {
	if !(start > 0) {
		return math.NaN()
	}
	return (end - start) / start * 100
}

// PerMillion is cost per million items: 0 items give NaN.
func PerMillion(cost float64, items int64) float64 {
	if items <= 0 {
		return math.NaN()
	}
	return cost / (float64(items) / 1e6)
}

// ErrBar marks a measurement that worked but missed its bar.
var ErrBar = errors.New("a bar is not met")

// ExitCode reports err on stderr under the command's name and returns the
// exit status: 0 for none, 1 for a missed bar (ErrBar), 2 for a failed measurement.
func ExitCode(command string, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintln(os.Stderr, command+":", err)
	if errors.Is(err, ErrBar) {
		return 1
	}
	return 2
}
