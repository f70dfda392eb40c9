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

// report makes each version report every 30s from t0+from to t0+to.
func report(tr *Tracker, from, to time.Duration, versions ...string) {
	for at := from; at <= to; at += 30 * time.Second {
		for _, v := range versions {
			tr.Observe(checkout, v, t0.Add(at))
		}
	}
}

func TestInferredDeploymentSucceeds(t *testing.T) {
	tr, _, n := newTestTracker(nil)
	report(tr, 0, 10*time.Minute, "v1")

	// v2 appears: a deployment starts, v1 and v2 report side by side.
	report(tr, 11*time.Minute, 15*time.Minute, "v1", "v2")
	at := t0.Add(15 * time.Minute)
	tag := tr.Lookup(checkout, "v2", at)
	assert.Equal(t, deployevent.PhaseDuring, tag.Phase)
	assert.Equal(t, deployevent.CohortCanary, tag.Cohort)
	assert.Equal(t, "v2", tag.Version)
	assert.Equal(t, deployevent.CohortBaseline, tr.Lookup(checkout, "v1", at).Cohort)
	assert.Empty(t, tr.Lookup(checkout, "", at).Cohort, "no version, no cohort")

	st, _ := tr.Service(checkout, at)
	require.NotNil(t, st.Current)
	assert.Equal(t, deployevent.SourceInferred, st.Current.Source)
	assert.Equal(t, "v2", st.Current.Version)
	assert.Equal(t, "v1", st.Current.PreviousVersion)
	assert.Equal(t, t0.Add(11*time.Minute), st.Current.StartTime)
	id := st.Current.ID
	assert.NotEmpty(t, id)

	// v1 goes silent; 2m later the deployment has succeeded (seen by Lookup
	// before any sweep), ending when v1 was last seen.
	report(tr, 15*time.Minute+30*time.Second, 17*time.Minute, "v2")
	at = t0.Add(17*time.Minute + time.Second)
	tag = tr.Lookup(checkout, "v2", at)
	assert.Equal(t, deployevent.PhasePost, tag.Phase)
	assert.Equal(t, id, tag.ID)
	assert.Empty(t, tag.Cohort, "no cohort after the rollout")
	assert.Equal(t, "v2", tag.Version)

	tr.Sweep(at)
	st, _ = tr.Service(checkout, at)
	require.Len(t, st.History, 1)
	assert.Equal(t, OutcomeSucceeded, st.History[0].Outcome)
	assert.Equal(t, t0.Add(15*time.Minute), st.History[0].EndTime)
	assert.Equal(t, "v2", st.StableVersion)

	// The post window runs from the end.
	assert.Equal(t, deployevent.PhasePost, tr.Lookup(checkout, "v2", t0.Add(44*time.Minute)).Phase)
	assert.Equal(t, deployevent.PhaseSteady, tr.Lookup(checkout, "v2", t0.Add(45*time.Minute)).Phase)
	assert.Equal(t, 1, n.started)
	assert.Equal(t, 1, n.ended)
}

func TestInferredDeploymentRolledBack(t *testing.T) {
	tr, _, _ := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1")
	report(tr, 90*time.Second, 3*time.Minute, "v1", "v2")
	// v2 disappears, v1 keeps reporting.
	report(tr, 3*time.Minute+30*time.Second, 6*time.Minute, "v1")
	at := t0.Add(6 * time.Minute)
	tag := tr.Lookup(checkout, "v1", at)
	assert.Equal(t, deployevent.PhasePost, tag.Phase)
	assert.Equal(t, "v1", tag.Version)
	tr.Sweep(at)
	st, _ := tr.Service(checkout, at)
	require.Len(t, st.History, 1)
	assert.Equal(t, OutcomeRolledBack, st.History[0].Outcome)
	assert.Equal(t, "v1", st.StableVersion)
}

func TestInferenceDisabled(t *testing.T) {
	tr, _, n := newTestTracker(func(c *Config) { c.Inference = false })
	report(tr, 0, time.Minute, "v1")
	report(tr, 90*time.Second, 3*time.Minute, "v1", "v2")
	tag := tr.Lookup(checkout, "v2", t0.Add(3*time.Minute))
	assert.Equal(t, deployevent.PhaseSteady, tag.Phase)
	assert.Empty(t, tag.Cohort)
	assert.Zero(t, n.started)
}

func TestFirstVersionIsNotADeployment(t *testing.T) {
	tr, _, n := newTestTracker(nil)
	report(tr, 0, time.Hour, "v1")
	assert.Equal(t, deployevent.PhaseSteady, tr.Lookup(checkout, "v1", t0.Add(time.Hour)).Phase)
	assert.Zero(t, n.started)
}

func TestStableVersionBackAfterSilenceIsNotADeployment(t *testing.T) {
	tr, _, n := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1")
	// Scaled to zero overnight, back in the morning with the same version.
	report(tr, 8*time.Hour, 8*time.Hour+time.Minute, "v1")
	assert.Zero(t, n.started)
}

func TestOldVersionBackAfterSilenceIsADeployment(t *testing.T) {
	tr, _, n := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1")
	report(tr, 90*time.Second, 2*time.Minute, "v1", "v2")
	report(tr, 150*time.Second, 10*time.Minute, "v2")
	tr.Sweep(t0.Add(10 * time.Minute))
	// Someone redeploys v1 by hand.
	report(tr, 11*time.Minute, 12*time.Minute, "v1", "v2")
	at := t0.Add(12 * time.Minute)
	tag := tr.Lookup(checkout, "v1", at)
	assert.Equal(t, deployevent.PhaseDuring, tag.Phase)
	assert.Equal(t, deployevent.CohortCanary, tag.Cohort)
	assert.Equal(t, 2, n.started)
}

func TestNewerVersionSupersedesInferredDeployment(t *testing.T) {
	tr, _, _ := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1")
	report(tr, 90*time.Second, 2*time.Minute, "v1", "v2")
	report(tr, 150*time.Second, 3*time.Minute, "v1", "v2", "v3")
	at := t0.Add(3 * time.Minute)
	st, _ := tr.Service(checkout, at)
	require.NotNil(t, st.Current)
	assert.Equal(t, "v3", st.Current.Version)
	assert.Equal(t, "v1", st.Current.PreviousVersion)
	require.Len(t, st.History, 1)
	assert.Equal(t, OutcomeSuperseded, st.History[0].Outcome)
	assert.Equal(t, st.Current.ID, st.History[0].SupersededBy)
	assert.Empty(t, tr.Lookup(checkout, "v2", at).Cohort, "v2 is neither canary nor baseline")
}

func TestEventAdoptsInferredDeployment(t *testing.T) {
	tr, clk, n := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1")
	// The new version reports before the webhook arrives.
	report(tr, 90*time.Second, 2*time.Minute, "v1", "v2")
	clk.now = t0.Add(2 * time.Minute)
	applied, reason := tr.Apply(event("gh-42", deployevent.StateStarted, 80*time.Second, "v2"))
	assert.True(t, applied)
	assert.Equal(t, ReasonAdopt, reason)

	tag := tr.Lookup(checkout, "v2", clk.now)
	assert.Equal(t, "gh-42", tag.ID)
	assert.Equal(t, deployevent.CohortCanary, tag.Cohort)

	clk.now = t0.Add(5 * time.Minute)
	applied, reason = tr.Apply(event("gh-42", deployevent.StateSucceeded, 5*time.Minute, "v2"))
	assert.True(t, applied)
	assert.Equal(t, ReasonTransition, reason)

	st, _ := tr.Service(checkout, clk.now)
	require.Len(t, st.History, 1, "one deployment, not an inferred one and an event one")
	d := st.History[0]
	assert.Equal(t, "gh-42", d.ID)
	assert.Equal(t, deployevent.SourceGitHub, d.Source)
	assert.Equal(t, t0.Add(80*time.Second), d.StartTime, "the tool's start is earlier")
	assert.Equal(t, OutcomeSucceeded, d.Outcome)
	assert.Equal(t, 1, n.started)
}

func TestEventAdoptsSettledInferredDeployment(t *testing.T) {
	tr, clk, _ := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1")
	report(tr, 90*time.Second, 2*time.Minute, "v1", "v2")
	report(tr, 150*time.Second, 6*time.Minute, "v2")
	// Inference already saw v1 go; the webhook's succeeded arrives late.
	clk.now = t0.Add(6 * time.Minute)
	applied, reason := tr.Apply(event("gh-42", deployevent.StateSucceeded, 5*time.Minute, "v2"))
	assert.True(t, applied)
	assert.Equal(t, ReasonAdopt, reason)
	st, _ := tr.Service(checkout, clk.now)
	require.Len(t, st.History, 1)
	assert.Equal(t, "gh-42", st.History[0].ID)
	assert.Equal(t, "gh-42", tr.Lookup(checkout, "v2", clk.now).ID)
}

func TestEventDrivenDeploymentIsNotInferredAgain(t *testing.T) {
	tr, clk, n := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1")
	clk.now = t0.Add(time.Minute)
	_, _ = tr.Apply(event("gh-1", deployevent.StateStarted, time.Minute, "v2"))
	report(tr, 90*time.Second, 3*time.Minute, "v1", "v2")
	at := t0.Add(3 * time.Minute)
	tag := tr.Lookup(checkout, "v1", at)
	assert.Equal(t, "gh-1", tag.ID)
	assert.Equal(t, deployevent.CohortBaseline, tag.Cohort)
	assert.Equal(t, 1, n.started)

	// Old version silent: an event-driven deployment waits for its final event.
	report(tr, 210*time.Second, 10*time.Minute, "v2")
	assert.Equal(t, deployevent.PhaseDuring, tr.Lookup(checkout, "v2", t0.Add(10*time.Minute)).Phase)
	assert.Empty(t, tr.Lookup(checkout, "v2", t0.Add(10*time.Minute)).Cohort, "one version reports: no cohort")
}

func TestEventWithoutVersionLearnsItFromTelemetry(t *testing.T) {
	tr, clk, _ := newTestTracker(func(c *Config) { c.Inference = false })
	report(tr, 0, time.Minute, "v1")
	clk.now = t0.Add(time.Minute)
	_, _ = tr.Apply(event("gh-1", deployevent.StateStarted, time.Minute, ""))
	report(tr, 90*time.Second, 2*time.Minute, "v1", "v2")
	at := t0.Add(2 * time.Minute)
	assert.Equal(t, deployevent.CohortCanary, tr.Lookup(checkout, "v2", at).Cohort)
	assert.Equal(t, deployevent.CohortBaseline, tr.Lookup(checkout, "v1", at).Cohort)
}

func TestMidRolloutAtFirstSight(t *testing.T) {
	tr, _, n := newTestTracker(nil)
	report(tr, 0, time.Minute, "v1", "v2")
	assert.Equal(t, deployevent.PhaseDuring, tr.Lookup(checkout, "v2", t0.Add(time.Minute)).Phase)
	assert.Equal(t, 1, n.started)
}

func TestBatchOrderDoesNotMatter(t *testing.T) {
	for _, order := range [][]string{{"v2", "v1"}, {"v1", "v2"}} {
		t.Run(order[0]+" first", func(t *testing.T) {
			tr, _, n := newTestTracker(nil)
			tr.Observe(checkout, "v1", t0)
			// v1 was quiet for longer than settle (a slow reporter); then one
			// batch carries both versions.
			at := t0.Add(5 * time.Minute)
			for _, v := range order {
				tr.Observe(checkout, v, at)
			}
			assert.Equal(t, deployevent.CohortCanary, tr.Lookup(checkout, "v2", at).Cohort)
			assert.Equal(t, deployevent.CohortBaseline, tr.Lookup(checkout, "v1", at).Cohort)
			assert.Equal(t, 1, n.started)
		})
	}
}

func TestKnown(t *testing.T) {
	tr, clk, _ := newTestTracker(nil)
	tr.Observe(checkout, "v1", t0)
	assert.False(t, tr.Lookup(checkout, "v1", t0).Known, "seen, never deployed")
	_, _ = tr.Apply(event("d1", deployevent.StateSucceeded, 0, "v2"))
	clk.now = t0.Add(2 * time.Hour)
	tr.Sweep(clk.now)
	tag := tr.Lookup(checkout, "v2", clk.now)
	assert.True(t, tag.Known, "a finished deployment is remembered")
	assert.Equal(t, deployevent.PhaseSteady, tag.Phase)
	assert.Empty(t, tag.ID)
}
