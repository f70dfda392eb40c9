// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package realtime

import (
	"fmt"
	"strings"

	"github.com/deploylens/deploylens/internal/scenario"
)

// subsetLevels are the traffic levels Subset draws from, in turn: enough
// traffic to judge within the bars, little enough that dozens of services
// replay in real time on a small machine.
var subsetLevels = []float64{50, 20}

// Subset picks perCell scenarios of every library cell (the name before
// "/rps="), alternating over 50 and 20 req/s, plus one at 5 req/s of every
// clean cell (low traffic must stay quiet), interleaved across cells so
// that every wave mixes regressions, clean rollouts and shapes. Services
// are renamed to be unique (Unique).
func Subset(lib []scenario.Scenario, perCell int) []scenario.Scenario {
	var cells []string
	byCell := map[string]map[float64][]scenario.Scenario{}
	for _, sc := range lib {
		cell, _, _ := strings.Cut(sc.Name, "/rps=")
		if byCell[cell] == nil {
			byCell[cell] = map[float64][]scenario.Scenario{}
			cells = append(cells, cell)
		}
		rps := sc.Label().TrafficRPS
		byCell[cell][rps] = append(byCell[cell][rps], sc)
	}
	picked := make([][]scenario.Scenario, len(cells))
	for c, cell := range cells {
		for round := 0; len(picked[c]) < perCell; round++ {
			progress := false
			for _, rps := range subsetLevels {
				if list := byCell[cell][rps]; round < len(list) && len(picked[c]) < perCell {
					picked[c] = append(picked[c], list[round])
					progress = true
				}
			}
			if !progress {
				break
			}
		}
		if low := byCell[cell][5]; len(low) > 0 && !low[0].Label().Regressed {
			picked[c] = append(picked[c], low[0])
		}
	}
	var out []scenario.Scenario
	for k := 0; ; k++ {
		added := false
		for c := range picked {
			if k < len(picked[c]) {
				out = append(out, Unique(picked[c][k], fmt.Sprintf("-%02d", len(out))))
				added = true
			}
		}
		if !added {
			return out
		}
	}
}
