// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// t0 is the start of every test's timeline.
var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

var checkout = Key{Namespace: "shop", Service: "checkout", Environment: "prod"}

// clock is a test clock that only moves when told.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// counters counts what the hooks report.
type counters struct {
	started, ended, stuck, refused int
	evicted                        map[EvictReason]int
}

func newTestTracker(edit func(*Config)) (*Tracker, *clock, *counters) {
	c := &clock{now: t0}
	n := &counters{evicted: map[EvictReason]int{}}
	cfg := Config{
		PostWindow:  30 * time.Minute,
		MaxDuration: time.Hour,
		MaxServices: 100,
		IdleTTL:     24 * time.Hour,
		HistorySize: 10,
		Inference:   true,
		Settle:      2 * time.Minute,
		Now:         c.Now,
		Hooks: Hooks{
			Started: func(Key, *Deployment) { n.started++ },
			Ended:   func(Key, *Deployment) { n.ended++ },
			Stuck:   func(*Deployment) { n.stuck++ },
			Evicted: func(r EvictReason) { n.evicted[r]++ },
			Refused: func() { n.refused++ },
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	return New(cfg), c, n
}

// event builds a lifecycle event of checkout at t0+at.
func event(id string, state deployevent.State, at time.Duration, version string) deployevent.Event {
	return deployevent.Event{
		Service: checkout.Service, Namespace: checkout.Namespace, Environment: checkout.Environment,
		ID: id, State: state, Version: version, Source: deployevent.SourceGitHub,
		Timestamp: t0.Add(at),
	}
}

func TestStateMachine(t *testing.T) {
	const (
		queued      = deployevent.StateQueued
		started     = deployevent.StateStarted
		progressing = deployevent.StateProgressing
		succeeded   = deployevent.StateSucceeded
		failed      = deployevent.StateFailed
		rolledBack  = deployevent.StateRolledBack
		cancelled   = deployevent.StateCancelled
	)
	type step struct {
		// clock is when the step happens (t0+clock); the event carries its own time.
		clock time.Duration
		event deployevent.Event
		// sweep runs Sweep instead of applying an event.
		sweep       bool
		wantApplied bool
		wantReason  Reason
		// wantPhase and wantID are checked with Lookup after the step.
		wantPhase deployevent.Phase
		wantID    string
	}
	tests := []struct {
		name  string
		steps []step
		// checked at the end with Service(), at the last step's clock
		wantOutcomes []Outcome
		wantStable   string
		wantStuck    bool
	}{
		{
			name: "queued, started, progressing, succeeded, then the post window ends",
			steps: []step{
				{clock: 0, event: event("d1", queued, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhasePre, wantID: "d1"},
				{clock: time.Minute, event: event("d1", started, time.Minute, "v2"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: 2 * time.Minute, event: event("d1", progressing, 2*time.Minute, "v2"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: 10 * time.Minute, event: event("d1", succeeded, 10*time.Minute, "v2"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhasePost, wantID: "d1"},
				{clock: 39 * time.Minute, sweep: true, wantPhase: deployevent.PhasePost, wantID: "d1"},
				{clock: 40 * time.Minute, sweep: true, wantPhase: deployevent.PhaseSteady},
			},
			wantOutcomes: []Outcome{OutcomeSucceeded},
			wantStable:   "v2",
		},
		{
			name: "failed opens the post window and keeps the previous version",
			steps: []step{
				{event: event("d1", started, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: 5 * time.Minute, event: event("d1", failed, 5*time.Minute, "v2"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhasePost, wantID: "d1"},
			},
			wantOutcomes: []Outcome{OutcomeFailed},
			wantStable:   "v1",
		},
		{
			name: "rolled_back opens the post window",
			steps: []step{
				{event: event("d1", progressing, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: time.Minute, event: event("d1", rolledBack, time.Minute, "v2"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhasePost, wantID: "d1"},
			},
			wantOutcomes: []Outcome{OutcomeRolledBack},
			wantStable:   "v1",
		},
		{
			name: "cancelled while queued opens the post window",
			steps: []step{
				{event: event("d1", queued, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhasePre, wantID: "d1"},
				{clock: time.Minute, event: event("d1", cancelled, time.Minute, "v2"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhasePost, wantID: "d1"},
			},
			wantOutcomes: []Outcome{OutcomeCancelled},
			wantStable:   "v1",
		},
		{
			name: "the same id and state twice is a duplicate",
			steps: []step{
				{event: event("d1", started, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: time.Minute, event: event("d1", started, time.Minute, "v2"), wantReason: ReasonDuplicate, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: 2 * time.Minute, event: event("d1", succeeded, 2*time.Minute, "v2"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhasePost, wantID: "d1"},
				{clock: 3 * time.Minute, event: event("d1", succeeded, 2*time.Minute, "v2"), wantReason: ReasonDuplicate, wantPhase: deployevent.PhasePost, wantID: "d1"},
			},
			wantOutcomes: []Outcome{OutcomeSucceeded},
			wantStable:   "v2",
		},
		{
			name: "a late started after succeeded does not reopen the deployment",
			steps: []step{
				{event: event("d1", succeeded, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhasePost, wantID: "d1"},
				{clock: time.Minute, event: event("d1", started, -5*time.Minute, "v2"), wantReason: ReasonOutOfOrder, wantPhase: deployevent.PhasePost, wantID: "d1"},
				// After the post window the deployment is only in the history: still ignored.
				{clock: 31 * time.Minute, sweep: true, wantPhase: deployevent.PhaseSteady},
				{clock: 32 * time.Minute, event: event("d1", progressing, -4*time.Minute, "v2"), wantReason: ReasonOutOfOrder, wantPhase: deployevent.PhaseSteady},
			},
			wantOutcomes: []Outcome{OutcomeSucceeded},
			wantStable:   "v2",
		},
		{
			name: "a state behind the current one is out of order",
			steps: []step{
				{event: event("d1", progressing, time.Minute, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{event: event("d1", queued, 0, "v2"), wantReason: ReasonOutOfOrder, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{event: event("d1", started, 30*time.Second, "v2"), wantReason: ReasonOutOfOrder, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
			},
			wantStable: "v1",
		},
		{
			name: "the first final state wins",
			steps: []step{
				{event: event("d1", failed, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhasePost, wantID: "d1"},
				{clock: time.Minute, event: event("d1", rolledBack, time.Minute, "v2"), wantReason: ReasonOutOfOrder, wantPhase: deployevent.PhasePost, wantID: "d1"},
			},
			wantOutcomes: []Outcome{OutcomeFailed},
			wantStable:   "v1",
		},
		{
			name: "a new deployment supersedes a running one, whose late events are ignored",
			steps: []step{
				{event: event("d1", started, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: 5 * time.Minute, event: event("d2", started, 5*time.Minute, "v3"), wantApplied: true, wantReason: ReasonSupersede, wantPhase: deployevent.PhaseDuring, wantID: "d2"},
				{clock: 6 * time.Minute, event: event("d1", succeeded, 6*time.Minute, "v2"), wantReason: ReasonSuperseded, wantPhase: deployevent.PhaseDuring, wantID: "d2"},
				{clock: 7 * time.Minute, event: event("d2", succeeded, 7*time.Minute, "v3"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhasePost, wantID: "d2"},
			},
			wantOutcomes: []Outcome{OutcomeSuperseded, OutcomeSucceeded},
			wantStable:   "v3",
		},
		{
			name: "a new deployment older than the running one is stale",
			steps: []step{
				{clock: 10 * time.Minute, event: event("d2", started, 10*time.Minute, "v3"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseDuring, wantID: "d2"},
				{clock: 11 * time.Minute, event: event("d1", started, 0, "v2"), wantReason: ReasonStale, wantPhase: deployevent.PhaseDuring, wantID: "d2"},
			},
			wantStable: "v1",
		},
		{
			name: "a deployment after a finished one ends its post window early",
			steps: []step{
				{event: event("d1", succeeded, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhasePost, wantID: "d1"},
				{clock: 5 * time.Minute, event: event("d2", queued, 5*time.Minute, "v3"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhasePre, wantID: "d2"},
			},
			wantOutcomes: []Outcome{OutcomeSucceeded},
			wantStable:   "v2",
		},
		{
			name: "running longer than max_duration is stuck, and stays during",
			steps: []step{
				{event: event("d1", started, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: 59 * time.Minute, sweep: true, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				{clock: 61 * time.Minute, sweep: true, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
			},
			wantStable: "v1",
			wantStuck:  true,
		},
		{
			name: "the late end of a deployment seen running opens a whole post window",
			steps: []step{
				{event: event("d1", started, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseDuring, wantID: "d1"},
				// The tool says it ended at 5m; we hear of it at 2h.
				{clock: 2 * time.Hour, event: event("d1", succeeded, 5*time.Minute, "v2"), wantApplied: true, wantReason: ReasonTransition, wantPhase: deployevent.PhasePost, wantID: "d1"},
				{clock: 2*time.Hour + 29*time.Minute, sweep: true, wantPhase: deployevent.PhasePost, wantID: "d1"},
				{clock: 2*time.Hour + 30*time.Minute, sweep: true, wantPhase: deployevent.PhaseSteady},
			},
			wantOutcomes: []Outcome{OutcomeSucceeded},
			wantStable:   "v2",
		},
		{
			name: "a final event older than the post window leaves the service steady",
			steps: []step{
				{clock: 2 * time.Hour, event: event("d1", succeeded, 0, "v2"), wantApplied: true, wantReason: ReasonNew, wantPhase: deployevent.PhaseSteady},
			},
			wantOutcomes: []Outcome{OutcomeSucceeded},
			wantStable:   "v2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, clk, _ := newTestTracker(func(c *Config) { c.Inference = false })
			// The service runs v1 before any deployment.
			tr.Observe(checkout, "v1", t0.Add(-time.Hour))
			for i, s := range tt.steps {
				clk.now = t0.Add(s.clock)
				if s.sweep {
					tr.Sweep(clk.now)
				} else {
					applied, reason := tr.Apply(s.event)
					assert.Equal(t, s.wantApplied, applied, "step %d applied", i)
					assert.Equal(t, s.wantReason, reason, "step %d reason", i)
				}
				tag := tr.Lookup(checkout, "", clk.now)
				assert.Equal(t, s.wantPhase, tag.Phase, "step %d phase", i)
				assert.Equal(t, s.wantID, tag.ID, "step %d id", i)
			}
			st, ok := tr.Service(checkout, clk.now)
			require.True(t, ok)
			var outcomes []Outcome
			for _, d := range st.History {
				outcomes = append(outcomes, d.Outcome)
			}
			assert.Equal(t, tt.wantOutcomes, outcomes, "history")
			assert.Equal(t, tt.wantStable, st.StableVersion, "stable version")
			if st.Current != nil {
				assert.Equal(t, tt.wantStuck, st.Current.Stuck, "stuck")
			}
		})
	}
}

func TestDeploymentRecord(t *testing.T) {
	tr, clk, n := newTestTracker(func(c *Config) { c.Inference = false })
	tr.Observe(checkout, "v1", t0)
	commit := t0.Add(-3 * time.Hour)

	ev := event("d1", deployevent.StateQueued, 0, "v2")
	ev.Name, ev.Revision, ev.Strategy, ev.CommitTime = "checkout", "abc123", deployevent.StrategyCanary, commit
	_, _ = tr.Apply(ev)
	_, _ = tr.Apply(event("d1", deployevent.StateStarted, time.Minute, "v2"))
	clk.now = t0.Add(10 * time.Minute)
	_, _ = tr.Apply(event("d1", deployevent.StateSucceeded, 10*time.Minute, "v2"))

	st, ok := tr.Service(checkout, clk.now)
	require.True(t, ok)
	require.Len(t, st.History, 1)
	assert.Equal(t, Deployment{
		ID: "d1", Name: "checkout", Source: deployevent.SourceGitHub, Strategy: "canary", Revision: "abc123",
		State: deployevent.StateSucceeded, Outcome: OutcomeSucceeded,
		Version: "v2", PreviousVersion: "v1",
		QueuedTime: t0, StartTime: t0.Add(time.Minute), EndTime: t0.Add(10 * time.Minute), CommitTime: commit,
	}, st.History[0])
	assert.Equal(t, 1, n.started)
	assert.Equal(t, 1, n.ended)
}

func TestSupersededRecord(t *testing.T) {
	tr, _, _ := newTestTracker(nil)
	_, _ = tr.Apply(event("d1", deployevent.StateStarted, 0, "v2"))
	_, _ = tr.Apply(event("d2", deployevent.StateStarted, time.Minute, "v3"))
	st, _ := tr.Service(checkout, t0.Add(time.Minute))
	require.Len(t, st.History, 1)
	assert.Equal(t, "d2", st.History[0].SupersededBy)
	assert.Equal(t, t0.Add(time.Minute), st.History[0].EndTime)
	assert.Equal(t, "d2", st.Current.ID)
}

func TestHistoryIsBounded(t *testing.T) {
	tr, clk, _ := newTestTracker(func(c *Config) { c.HistorySize = 3 })
	for i := range 5 {
		at := time.Duration(i) * time.Hour
		clk.now = t0.Add(at)
		id := string(rune('a' + i))
		_, _ = tr.Apply(event(id, deployevent.StateStarted, at, "v"+id))
		_, _ = tr.Apply(event(id, deployevent.StateSucceeded, at+time.Minute, "v"+id))
	}
	st, _ := tr.Service(checkout, clk.now)
	require.Len(t, st.History, 3)
	assert.Equal(t, []string{"c", "d", "e"}, []string{st.History[0].ID, st.History[1].ID, st.History[2].ID})
}

func TestEnvironmentsAreSeparateKeys(t *testing.T) {
	tr, _, _ := newTestTracker(nil)
	_, _ = tr.Apply(event("d1", deployevent.StateStarted, 0, "v2"))
	staging := checkout
	staging.Environment = "staging"
	assert.Equal(t, deployevent.PhaseDuring, tr.Lookup(checkout, "", t0).Phase)
	assert.Equal(t, deployevent.Phase(""), tr.Lookup(staging, "", t0).Phase, "untracked")
}

func TestLookupAndObserveDoNotAllocate(t *testing.T) {
	tr, _, _ := newTestTracker(nil)
	tr.Observe(checkout, "v1", t0)
	tr.Observe(checkout, "v2", t0)
	key := Key{Namespace: "shop", Service: "checkout", Environment: "prod"}
	allocs := testing.AllocsPerRun(1000, func() {
		tr.Observe(key, "v1", t0)
		tr.Observe(key, "v2", t0)
		tag := tr.Lookup(key, "v2", t0)
		if tag.Cohort != deployevent.CohortCanary {
			t.Fatal("not canary")
		}
	})
	assert.Zero(t, allocs)
}
