// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package kpi

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var checkout = Key{Namespace: "shop", Service: "checkout", Environment: "production"}

func at(day, hour, minute int) time.Time {
	return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC)
}

// byOutcome sums the counts over judgements: succeeded, failed, rolled_back, cancelled.
func byOutcome(v Values) [len(Outcomes)]int64 {
	var out [len(Outcomes)]int64
	for i := range v.Counts {
		for _, n := range v.Counts[i] {
			out[i] += n
		}
	}
	return out
}

// TestDORAArithmetic walks a service through four deployments and checks
// every KPI against values computed by hand (in the comments).
func TestDORAArithmetic(t *testing.T) {
	b := New(Config{ChangeFailureWindow: 30 * time.Hour})
	b.Started(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0)}, at(1, 10, 0))
	b.Ended(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0), EndTime: at(1, 10, 20), CommitTime: at(1, 9, 0), Outcome: Succeeded}, at(1, 10, 20))

	v, ok := b.Values(checkout, at(1, 11, 0))
	require.True(t, ok)
	assert.Equal(t, [4]int64{1, 0, 0, 0}, byOutcome(v))
	assert.InDelta(t, 1200, v.Duration, 1e-9, "10:00 → 10:20")
	assert.Equal(t, Succeeded, v.DurationOutcome)
	assert.InDelta(t, 4800, v.LeadTime, 1e-9, "commit 09:00 → success 10:20")
	assert.False(t, v.HasInterval, "one deployment has no interval")
	assert.False(t, v.HasDetectionTime)
	assert.False(t, v.HasRecoveryTime)
	assert.InDelta(t, 0, v.ChangeFailureRatio, 1e-9)
	assert.Equal(t, at(1, 10, 0), v.StartTime, "counting began at the first record")

	// B: alert 3 minutes in, rolled back, healthy again at 10:15.
	b.Started(checkout, Deployment{ID: "B", StartTime: at(2, 10, 0)}, at(2, 10, 0))
	b.Alert(checkout, "B", at(2, 10, 0), at(2, 10, 3))
	b.Alert(checkout, "B", at(2, 10, 0), at(2, 10, 4)) // a second alert changes nothing
	b.Ended(checkout, Deployment{ID: "B", StartTime: at(2, 10, 0), EndTime: at(2, 10, 10), Outcome: RolledBack}, at(2, 10, 10))
	v, _ = b.Values(checkout, at(2, 10, 12))
	assert.InDelta(t, 86400, v.Interval, 1e-9, "day 1 10:00 → day 2 10:00")
	assert.InDelta(t, 180, v.DetectionTime, 1e-9, "10:00 → first alert 10:03")
	assert.InDelta(t, 600, v.Duration, 1e-9)
	assert.Equal(t, RolledBack, v.DurationOutcome)
	assert.True(t, v.FailureOpen)
	assert.False(t, v.HasRecoveryTime)
	b.Healthy(checkout, at(2, 10, 15))
	v, _ = b.Values(checkout, at(2, 10, 16))
	assert.InDelta(t, 720, v.RecoveryTime, 1e-9, "first alert 10:03 → healthy 10:15")
	assert.False(t, v.FailureOpen)

	// C fails without an alert; D, a fix, succeeds 2h25m after C's end.
	b.Started(checkout, Deployment{ID: "C", StartTime: at(3, 10, 0)}, at(3, 10, 0))
	b.Ended(checkout, Deployment{ID: "C", StartTime: at(3, 10, 0), EndTime: at(3, 10, 5), Outcome: Failed}, at(3, 10, 5))
	b.Started(checkout, Deployment{ID: "D", StartTime: at(3, 12, 0)}, at(3, 12, 0))
	b.Ended(checkout, Deployment{ID: "D", StartTime: at(3, 12, 0), EndTime: at(3, 12, 30), CommitTime: at(3, 11, 30), Outcome: Succeeded}, at(3, 12, 30))
	v, _ = b.Values(checkout, at(3, 13, 0))
	assert.Equal(t, [4]int64{2, 1, 1, 0}, byOutcome(v), "succeeded, failed, rolled_back, cancelled")
	assert.InDelta(t, 8700, v.RecoveryTime, 1e-9, "failure at 10:05 → fix succeeded 12:30")
	assert.InDelta(t, 3600, v.LeadTime, 1e-9, "commit 11:30 → success 12:30")
	assert.InDelta(t, 7200, v.Interval, 1e-9, "C 10:00 → D 12:00")
	// Window 30h back from day 3 13:00 = day 2 07:00: B (rb), C (failed), D (ok).
	assert.InDelta(t, 2.0/3.0, v.ChangeFailureRatio, 1e-9)
	// From far enough later, only D is in the window.
	v, _ = b.Values(checkout, at(4, 18, 0))
	assert.InDelta(t, 0, v.ChangeFailureRatio, 1e-9)
	assert.True(t, v.HasChangeFailureRatio)
	v, _ = b.Values(checkout, at(6, 0, 0))
	assert.False(t, v.HasChangeFailureRatio, "no deployment in the window")
}

func TestSupersededCountsAsCancelledAndIsNoChangeFailure(t *testing.T) {
	b := New(DefaultConfig())
	b.Ended(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0), EndTime: at(1, 10, 5), Outcome: "superseded"}, at(1, 10, 5))
	b.Ended(checkout, Deployment{ID: "B", StartTime: at(1, 10, 5), EndTime: at(1, 10, 9), Outcome: Succeeded}, at(1, 10, 9))
	v, _ := b.Values(checkout, at(1, 11, 0))
	assert.Equal(t, [4]int64{1, 0, 0, 1}, byOutcome(v))
	assert.InDelta(t, 0, v.ChangeFailureRatio, 1e-9, "the superseded deployment is not in the ratio")
	assert.InDelta(t, 300, v.Interval, 1e-9, "ends stand in for nothing: both starts were known")
}

func TestDeploymentFirstHeardAtItsEnd(t *testing.T) {
	b := New(DefaultConfig())
	b.Ended(checkout, Deployment{ID: "A", EndTime: at(1, 10, 0), Outcome: Succeeded}, at(1, 10, 0))
	b.Ended(checkout, Deployment{ID: "B", EndTime: at(1, 16, 0), Outcome: Succeeded}, at(1, 16, 0))
	v, _ := b.Values(checkout, at(1, 17, 0))
	assert.False(t, v.HasDuration, "no start, no duration")
	assert.InDelta(t, 6*3600, v.Interval, 1e-9, "the ends stand in for the starts")
}

func TestBoundsAndSnapshot(t *testing.T) {
	b := New(Config{MaxServices: 2, MaxOutcomes: 3})
	for i, svc := range []string{"a", "b", "c"} {
		b.Started(Key{Service: svc}, Deployment{ID: svc}, at(1, 10, i))
	}
	assert.Equal(t, 2, b.Len())
	assert.Equal(t, int64(1), b.Evicted())
	_, ok := b.Values(Key{Service: "a"}, at(1, 11, 0))
	assert.False(t, ok, "the least recently updated service was dropped")

	for i := range 5 {
		b.Ended(Key{Service: "c"}, Deployment{ID: string(rune('p' + i)), EndTime: at(1, 12, i), Outcome: []Outcome{Failed, Failed, Succeeded, Succeeded, Succeeded}[i]}, at(1, 12, i))
	}
	v, _ := b.Values(Key{Service: "c"}, at(1, 13, 0))
	assert.InDelta(t, 0, v.ChangeFailureRatio, 1e-9, "only the last 3 outcomes are kept")
	assert.Equal(t, [4]int64{3, 2, 0, 0}, byOutcome(v), "the counts are cumulative all the same")

	data, err := b.Snapshot()
	require.NoError(t, err)
	restored := New(Config{MaxServices: 2, MaxOutcomes: 3})
	require.NoError(t, restored.Restore(data))
	got, ok := restored.Values(Key{Service: "c"}, at(1, 13, 0))
	require.True(t, ok)
	assert.Equal(t, v, got)
	assert.Error(t, restored.Restore([]byte("{")))
}

// TestJudgementOfAFinishedDeployment: each deployment is counted once, at its
// end, with how it was judged while it ran.
func TestJudgementOfAFinishedDeployment(t *testing.T) {
	const (
		judged      = iota // Judged(id) at 10:02
		alert              // Alert(id) at 10:03
		alertOther         // Alert of another deployment at 10:03
		end                // Ended(id) at 10:05
		judgedAfter        // Judged(id) at 10:06, after the end
		alertAfter         // Alert(id) at 10:07, in the post window
	)
	tests := []struct {
		name    string
		steps   []int
		outcome Outcome
		want    Judgement
	}{
		{name: "alerted and rolled back", steps: []int{alert, end}, outcome: RolledBack, want: Alerted},
		{name: "judged and succeeded", steps: []int{judged, end}, outcome: Succeeded, want: Passed},
		{name: "judged, then alerted, failed", steps: []int{judged, alert, end}, outcome: Failed, want: Alerted},
		{name: "alerted but succeeded (a false alarm)", steps: []int{judged, alert, end}, outcome: Succeeded, want: Alerted},
		{name: "neither judged nor alerted", steps: []int{end}, outcome: Succeeded, want: Unjudged},
		{name: "failed unnoticed", steps: []int{judged, end}, outcome: Failed, want: Passed},
		{name: "an alert of another deployment", steps: []int{alertOther, end}, outcome: Failed, want: Unjudged},
		{name: "an alert after the end does not count", steps: []int{judged, end, alertAfter}, outcome: Succeeded, want: Passed},
		{name: "judged only after the end", steps: []int{end, judgedAfter}, outcome: Succeeded, want: Unjudged},
		{name: "superseded while judged", steps: []int{judged, end}, outcome: "superseded", want: Passed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(DefaultConfig())
			b.Started(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0)}, at(1, 10, 0))
			for _, step := range tt.steps {
				switch step {
				case judged:
					b.Judged(checkout, "A", at(1, 10, 2))
				case alert:
					b.Alert(checkout, "A", at(1, 10, 0), at(1, 10, 3))
				case alertOther:
					b.Alert(checkout, "Z", time.Time{}, at(1, 10, 3))
				case end:
					b.Ended(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0), EndTime: at(1, 10, 5), Outcome: tt.outcome}, at(1, 10, 5))
				case judgedAfter:
					b.Judged(checkout, "A", at(1, 10, 6))
				case alertAfter:
					b.Alert(checkout, "A", at(1, 10, 0), at(1, 10, 7))
				}
			}
			v, ok := b.Values(checkout, at(1, 11, 0))
			require.True(t, ok)
			var want [len(Outcomes)][len(Judgements)]int64
			outcome := tt.outcome
			if outcome == "superseded" {
				outcome = Cancelled
			}
			want[slices.Index(Outcomes[:], outcome)][slices.Index(Judgements[:], tt.want)] = 1
			assert.Equal(t, want, v.Counts)
		})
	}
}

// TestJudgementCountsOfAWeek counts ten deployments of one service; the
// comments give the ratios the recording rules compute from these counts.
func TestJudgementCountsOfAWeek(t *testing.T) {
	b := New(DefaultConfig())
	type deployment struct {
		judged, alerted bool
		outcome         Outcome
	}
	week := []deployment{
		{judged: true, outcome: Succeeded},
		{judged: true, outcome: Succeeded},
		{judged: true, outcome: Succeeded},
		{judged: true, alerted: true, outcome: RolledBack},
		{judged: true, alerted: true, outcome: Failed},
		{judged: true, alerted: true, outcome: Succeeded}, // a false alarm
		{judged: true, outcome: Failed},                   // missed
		{outcome: Succeeded},                              // too little traffic to judge
		{outcome: Succeeded},
		{judged: true, outcome: Cancelled},
	}
	for i, d := range week {
		id := fmt.Sprintf("d%d", i)
		start := at(1+i/2, 10+i%2, 0)
		b.Started(checkout, Deployment{ID: id, StartTime: start}, start)
		if d.judged {
			b.Judged(checkout, id, start.Add(time.Minute))
		}
		if d.alerted {
			b.Alert(checkout, id, start, start.Add(90*time.Second))
		}
		b.Ended(checkout, Deployment{ID: id, StartTime: start, EndTime: start.Add(10 * time.Minute), Outcome: d.outcome}, start.Add(10*time.Minute))
	}
	v, _ := b.Values(checkout, at(7, 0, 0))
	assert.Equal(t, [4][3]int64{
		// alerted, passed, unjudged
		{1, 3, 2}, // succeeded
		{1, 1, 0}, // failed
		{1, 0, 0}, // rolled back
		{0, 1, 0}, // cancelled
	}, v.Counts)
	// Precision: alerted and failed or rolled back over alerted (cancelled left out) = 2/3.
	// Recall: failed or rolled back and alerted over failed or rolled back = 2/3.
	// Coverage: alerted or passed over all but cancelled = 7/9.
	assert.InDelta(t, 90, v.DetectionTime, 1e-9, "the last alerted deployment was detected 90 s in")
}

func TestSnapshotKeepsJudgementsOfRunningDeployments(t *testing.T) {
	b := New(DefaultConfig())
	b.Started(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0)}, at(1, 10, 0))
	b.Started(Key{Service: "cart"}, Deployment{ID: "B", StartTime: at(1, 10, 0)}, at(1, 10, 0))
	b.Judged(checkout, "A", at(1, 10, 1))
	b.Alert(Key{Service: "cart"}, "B", at(1, 10, 0), at(1, 10, 2))
	data, err := b.Snapshot()
	require.NoError(t, err)

	restored := New(DefaultConfig())
	require.NoError(t, restored.Restore(data))
	restored.Ended(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0), EndTime: at(1, 10, 5), Outcome: Succeeded}, at(1, 10, 5))
	restored.Ended(Key{Service: "cart"}, Deployment{ID: "B", StartTime: at(1, 10, 0), EndTime: at(1, 10, 5), Outcome: RolledBack}, at(1, 10, 5))
	v, _ := restored.Values(checkout, at(1, 11, 0))
	assert.Equal(t, int64(1), v.Counts[0][1], "succeeded, passed")
	v, _ = restored.Values(Key{Service: "cart"}, at(1, 11, 0))
	assert.Equal(t, int64(1), v.Counts[2][0], "rolled back, alerted")

	assert.ErrorContains(t, restored.Restore([]byte(`{"version": 3, "services": []}`)), "version 3")
}

// TestRestoreVersion1Snapshot: a book saved before judgements were counted
// loads; its counts start again at its last update, the rest is kept.
func TestRestoreVersion1Snapshot(t *testing.T) {
	v1 := `[{"key": {"namespace": "shop", "service": "checkout", "environment": "production"},
	  "service": {"values": {"StartTime": "2026-10-01T00:00:00Z", "Counts": [5, 1, 1, 0],
	      "Duration": 600, "DurationOutcome": "succeeded", "HasDuration": true, "FailureOpen": false},
	    "last_start": "2026-11-01T10:00:00Z", "alerted": ["A"],
	    "starts": [{"id": "A", "time": "2026-11-01T10:00:00Z"}], "last_update": "2026-11-01T10:03:00Z"}}]`
	b := New(DefaultConfig())
	require.NoError(t, b.Restore([]byte(v1)))
	v, ok := b.Values(checkout, at(1, 10, 4))
	require.True(t, ok)
	assert.Equal(t, [4][3]int64{}, v.Counts, "version 1 counts did not say how deployments were judged")
	assert.Equal(t, at(1, 10, 3), v.StartTime, "the counts start again at the last update")
	assert.InDelta(t, 600, v.Duration, 1e-9)
	assert.True(t, v.HasDuration)

	// A running deployment alerted before the upgrade counts as alerted.
	b.Ended(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0), EndTime: at(1, 10, 5), Outcome: Failed}, at(1, 10, 5))
	v, _ = b.Values(checkout, at(1, 10, 6))
	assert.Equal(t, [4][3]int64{{}, {1, 0, 0}, {}, {}}, v.Counts)

	data, err := b.Snapshot()
	require.NoError(t, err)
	assert.Contains(t, string(data), `"version":2`)
}
