package kpi

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var checkout = Key{Namespace: "shop", Service: "checkout", Environment: "production"}

func at(day, hour, minute int) time.Time {
	return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC)
}

// TestDORAArithmetic walks a service through four deployments and checks
// every KPI against values computed by hand (in the comments).
func TestDORAArithmetic(t *testing.T) {
	b := New(Config{ChangeFailureWindow: 30 * time.Hour})
	b.Started(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0)}, at(1, 10, 0))
	b.Ended(checkout, Deployment{ID: "A", StartTime: at(1, 10, 0), EndTime: at(1, 10, 20), CommitTime: at(1, 9, 0), Outcome: Succeeded}, at(1, 10, 20))

	v, ok := b.Values(checkout, at(1, 11, 0))
	require.True(t, ok)
	assert.Equal(t, [4]int64{1, 0, 0, 0}, v.Counts)
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
	assert.Equal(t, [4]int64{2, 1, 1, 0}, v.Counts, "succeeded, failed, rolled_back, cancelled")
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
	assert.Equal(t, [4]int64{1, 0, 0, 1}, v.Counts)
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
	assert.Equal(t, [4]int64{3, 2, 0, 0}, v.Counts, "the counts are cumulative all the same")

	data, err := b.Snapshot()
	require.NoError(t, err)
	restored := New(Config{MaxServices: 2, MaxOutcomes: 3})
	require.NoError(t, restored.Restore(data))
	got, ok := restored.Values(Key{Service: "c"}, at(1, 13, 0))
	require.True(t, ok)
	assert.Equal(t, v, got)
	assert.Error(t, restored.Restore([]byte("{")))
}
