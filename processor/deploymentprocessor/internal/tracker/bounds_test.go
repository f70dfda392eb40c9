// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/deployevent"
)

func svc(name string) Key { return Key{Namespace: "shop", Service: name, Environment: "prod"} }

func TestLRUEvictsLeastRecentlySeenIdleKey(t *testing.T) {
	tr, _, n := newTestTracker(func(c *Config) { c.MaxServices = 3 })
	tr.Observe(svc("a"), "v1", t0)
	tr.Observe(svc("b"), "v1", t0.Add(time.Second))
	tr.Observe(svc("c"), "v1", t0.Add(2*time.Second))
	// a reports again (fast path, read lock only): b is now the least recent.
	tr.Observe(svc("a"), "v1", t0.Add(3*time.Second))

	tr.Observe(svc("d"), "v1", t0.Add(4*time.Second))
	assert.Equal(t, 3, tr.Len())
	_, ok := tr.Service(svc("b"), t0)
	assert.False(t, ok, "b evicted")
	for _, k := range []string{"a", "c", "d"} {
		_, ok := tr.Service(svc(k), t0)
		assert.True(t, ok, k)
	}
	assert.Equal(t, 1, n.evicted[EvictLRU])

	// Telemetry without a version also counts as seen.
	tr.Observe(svc("c"), "", t0.Add(5*time.Second))
	tr.Observe(svc("e"), "v1", t0.Add(6*time.Second))
	_, ok = tr.Service(svc("a"), t0)
	assert.False(t, ok, "a evicted, c was seen after it")
	assert.Equal(t, 2, n.evicted[EvictLRU])
}

func TestLRUKeepsKeysInADeployment(t *testing.T) {
	tr, clk, n := newTestTracker(func(c *Config) { c.MaxServices = 2; c.Inference = false })
	for i, name := range []string{"a", "b"} {
		ev := event("d-"+name, deployevent.StateStarted, time.Duration(i)*time.Second, "v2")
		ev.Service = name
		_, _ = tr.Apply(ev)
	}
	clk.now = t0.Add(time.Minute)
	// Both keys are busy: a new service is refused, telemetry and events alike.
	tr.Observe(svc("c"), "v1", clk.now)
	ev := event("d-c", deployevent.StateStarted, time.Minute, "v2")
	ev.Service = "c"
	applied, reason := tr.Apply(ev)
	assert.False(t, applied)
	assert.Equal(t, ReasonRefused, reason)
	assert.Equal(t, 2, n.refused)
	assert.Equal(t, 2, tr.Len())
	assert.Equal(t, deployevent.Phase(""), tr.Lookup(svc("c"), "", clk.now).Phase)

	// a finishes and its post window passes: it becomes evictable.
	ev = event("d-a", deployevent.StateSucceeded, 2*time.Minute, "v2")
	ev.Service = "a"
	_, _ = tr.Apply(ev)
	clk.now = t0.Add(33 * time.Minute)
	tr.Observe(svc("c"), "v1", clk.now)
	_, ok := tr.Service(svc("a"), clk.now)
	assert.False(t, ok, "a evicted")
	_, ok = tr.Service(svc("b"), clk.now)
	assert.True(t, ok, "b still deploying")
	assert.Equal(t, 1, n.evicted[EvictLRU])
}

func TestIdleTTL(t *testing.T) {
	tr, _, n := newTestTracker(func(c *Config) { c.IdleTTL = time.Hour })
	tr.Observe(svc("a"), "v1", t0)
	tr.Observe(svc("b"), "v1", t0)
	tr.Observe(svc("b"), "v1", t0.Add(50*time.Minute))
	tr.Sweep(t0.Add(61 * time.Minute))
	assert.Equal(t, 1, tr.Len())
	_, ok := tr.Service(svc("b"), t0)
	assert.True(t, ok)
	assert.Equal(t, 1, n.evicted[EvictIdle])
}

func TestStats(t *testing.T) {
	tr, _, _ := newTestTracker(nil)
	tr.Observe(svc("steady"), "v1", t0)
	for _, tc := range []struct {
		name  string
		state deployevent.State
	}{{"pre", deployevent.StateQueued}, {"during", deployevent.StateStarted}, {"post", deployevent.StateSucceeded}} {
		ev := event("d-"+tc.name, tc.state, 0, "v2")
		ev.Service = tc.name
		_, _ = tr.Apply(ev)
	}
	assert.Equal(t, Stats{Services: 4, Pre: 1, During: 1, Post: 1}, tr.Stats(t0))
	assert.Equal(t, Stats{Services: 4, Pre: 1, During: 1}, tr.Stats(t0.Add(31*time.Minute)))
}

func TestSnapshotRestoreMidDeployment(t *testing.T) {
	tr, clk, _ := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1")
	clk.now = t0.Add(time.Minute)
	ev := event("gh-7", deployevent.StateStarted, time.Minute, "v2")
	ev.Revision = "abc"
	_, _ = tr.Apply(ev)
	report(tr, 90*time.Second, 5*time.Minute, "v1", "v2")
	tr.Observe(svc("other"), "v9", t0.Add(5*time.Minute))
	savedAt := t0.Add(5 * time.Minute)
	before, _ := tr.Service(checkout, savedAt)

	data, err := json.Marshal(tr.Snapshot(savedAt))
	require.NoError(t, err)
	var snap Snapshot
	require.NoError(t, json.Unmarshal(data, &snap))

	// Ten minutes of downtime.
	restored, _, _ := newTestTracker(nil)
	restartAt := savedAt.Add(10 * time.Minute)
	assert.Equal(t, 2, restored.Restore(snap, restartAt))

	after, ok := restored.Service(checkout, restartAt)
	require.True(t, ok)
	assert.Equal(t, deployevent.PhaseDuring, after.Phase)
	assert.Equal(t, before.Current, after.Current, "id, start time, versions, revision kept")
	assert.Equal(t, t0.Add(time.Minute), after.Current.StartTime)
	assert.Equal(t, "v1", after.StableVersion)
	// The downtime does not count as silence: both versions still serve.
	tag := restored.Lookup(checkout, "v2", restartAt)
	assert.Equal(t, "gh-7", tag.ID)
	assert.Equal(t, deployevent.CohortCanary, tag.Cohort)
	for i, v := range after.Versions {
		assert.Equal(t, before.Versions[i].LastSeen.Add(10*time.Minute), v.LastSeen, v.Version)
	}
	// The restored deployment goes on as if nothing happened.
	restored.cfg.Now = func() time.Time { return restartAt }
	applied, _ := restored.Apply(event("gh-7", deployevent.StateSucceeded, 15*time.Minute, "v2"))
	assert.True(t, applied)
	assert.Equal(t, deployevent.PhasePost, restored.Lookup(checkout, "v2", restartAt).Phase)
}

func TestSnapshotRestoreKeepsPostWindowAndHistory(t *testing.T) {
	tr, clk, _ := newTestTracker(nil)
	_, _ = tr.Apply(event("d1", deployevent.StateStarted, 0, "v2"))
	clk.now = t0.Add(5 * time.Minute)
	_, _ = tr.Apply(event("d1", deployevent.StateSucceeded, 5*time.Minute, "v2"))
	snap := tr.Snapshot(clk.now)

	restored, rclk, _ := newTestTracker(nil)
	restored.Restore(snap, clk.now.Add(time.Minute))
	assert.Equal(t, deployevent.PhasePost, restored.Lookup(checkout, "", clk.now.Add(time.Minute)).Phase)
	// Deployment times are real times: the post window ends on schedule.
	assert.Equal(t, deployevent.PhaseSteady, restored.Lookup(checkout, "", t0.Add(35*time.Minute)).Phase)
	// A late duplicate of the restored deployment is still recognised.
	rclk.now = clk.now.Add(time.Minute)
	_, reason := restored.Apply(event("d1", deployevent.StateSucceeded, 5*time.Minute, "v2"))
	assert.Equal(t, ReasonDuplicate, reason)
	restored.Sweep(t0.Add(40 * time.Minute))
	st, _ := restored.Service(checkout, t0.Add(40*time.Minute))
	require.Len(t, st.History, 1)
	assert.Nil(t, st.Current)
}

func TestRestoreHonoursMaxServices(t *testing.T) {
	tr, _, _ := newTestTracker(nil)
	for i := range 5 {
		tr.Observe(svc(strconv.Itoa(i)), "v1", t0.Add(time.Duration(i)*time.Second))
	}
	small, _, n := newTestTracker(func(c *Config) { c.MaxServices = 2 })
	assert.Equal(t, 2, small.Restore(tr.Snapshot(t0.Add(time.Minute)), t0.Add(time.Minute)))
	for _, k := range []string{"3", "4"} {
		_, ok := small.Service(svc(k), t0)
		assert.True(t, ok, "the most recently seen are kept: %s", k)
	}
	assert.Equal(t, 3, n.evicted[EvictLRU])
}

// TestConcurrentUse is for the race detector: telemetry, events, sweeps,
// snapshots and evictions at once.
func TestConcurrentUse(t *testing.T) {
	tr, _, _ := newTestTracker(func(c *Config) { c.MaxServices = 8 })
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				at := t0.Add(time.Duration(i) * time.Second)
				key := svc(strconv.Itoa((g + i) % 12))
				tr.Observe(key, fmt.Sprint("v", i/100), at)
				_ = tr.Lookup(key, fmt.Sprint("v", i/100), at)
				if i%50 == 0 {
					ev := event(fmt.Sprint("d", g, i), deployevent.StateStarted, time.Duration(i)*time.Second, "v9")
					ev.Service = key.Service
					_, _ = tr.Apply(ev)
				}
				if i%100 == 0 {
					tr.Sweep(at)
					_ = tr.Snapshot(at)
					_ = tr.Stats(at)
				}
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, tr.Len(), 8)
}
