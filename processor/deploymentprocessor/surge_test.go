// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/scenario"
)

// Clean rollouts that meet a change of load — twice the traffic (a surge)
// or the trough of the day — are not harm: CPU, error logs and the request
// rate move with the load, and the judgement must say so, not page anyone.
// Run through the processor in simulated time as make detect-bench does.
func TestCleanRolloutsUnderLoadChangesDoNotAlarm(t *testing.T) {
	if testing.Short() {
		t.Skip("replays twelve scenarios")
	}
	var picked []scenario.Scenario
	for _, sc := range scenario.Library(1) {
		if (sc.Shape == scenario.ShapeSurge || sc.Shape == scenario.ShapeQuietHour) && len(picked) < 12 {
			picked = append(picked, sc)
		}
	}
	require.Len(t, picked, 12)
	misjudged := 0
	for _, o := range runLibrary(t, picked) {
		if o.alarm.IsZero() && o.lowestScore >= 70 {
			continue
		}
		misjudged++
		why := o.why + " " + o.lowestWhy
		// What load explains (error logs per second, request rate, latency
		// read off folded sketches) is never the evidence.
		for _, explained := range []string{"log_error_rate", "request_rate", "latency_p95"} {
			assert.NotContains(t, why, explained+":", "%s: %s", o.label.Scenario, why)
		}
	}
	// Known: one surge's CPU stays ~16 % above its load-adjusted level after
	// the surge (clean-surge/rps=20/00: degraded in post, score 63, no alarm);
	// a second misjudged rollout is a regression.
	assert.LessOrEqual(t, misjudged, 1, "clean rollouts under load changes alarmed or scored below 70")
}
