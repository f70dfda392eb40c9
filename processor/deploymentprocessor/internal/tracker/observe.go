// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

// This file holds version inference from telemetry (Observe) and the
// lookups the processor makes per record (Lookup, Current).

import (
	"strconv"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Observe records that telemetry of key reported version at now. A version
// that is new, or back after more than Settle of silence, may start an
// inferred deployment. Without a version it only marks the key as seen.
func (t *Tracker) Observe(key Key, version string, now time.Time) {
	n := now.UnixNano()
	t.mu.RLock()
	if e := t.entries[key]; e != nil {
		storeMax(&e.lastSeen, n)
		if version == "" {
			t.mu.RUnlock()
			return
		}
		if s := e.slot(version); s != nil && s.lastSeen.Load() >= n-int64(t.cfg.Settle) {
			storeMax(&s.lastSeen, n)
			t.mu.RUnlock()
			return
		}
	} else if version == "" {
		t.mu.RUnlock()
		return
	}
	t.mu.RUnlock()

	t.mu.Lock()
	defer t.unlock()
	t.observeLocked(key, version, now)
}

func (t *Tracker) observeLocked(key Key, version string, now time.Time) {
	n := now.UnixNano()
	e := t.entries[key]
	if e == nil {
		if e = t.insertLocked(key, n); e == nil {
			return
		}
		e.stable = strings.Clone(version)
		e.addSlot(version, n)
		return
	}
	storeMax(&e.lastSeen, n)
	s := e.slot(version)
	if s != nil && s.lastSeen.Load() >= n-int64(t.cfg.Settle) {
		// Another goroutine got here first.
		storeMax(&s.lastSeen, n)
		return
	}
	// Record the version first, then apply due transitions: a version that
	// reports now is not silent, whatever order a batch's resources come in.
	if s == nil {
		e.addSlot(version, n)
		t.changed()
	} else {
		storeMax(&s.lastSeen, n)
	}
	t.advance(e, now)

	d := e.current
	switch {
	case version == e.stable:
		return
	case e.stable == "" && (d == nil || !d.Running()):
		e.stable = strings.Clone(version)
		t.changed()
		return
	case d != nil && d.Running():
		if !d.Inferred() {
			if d.Version == "" {
				// The event did not say which version it deploys; the first
				// new version to report is it.
				d.Version = strings.Clone(version)
				t.changed()
			}
			return
		}
		if t.cfg.Inference && version != d.Version && version != d.PreviousVersion {
			t.startInferred(e, version, now)
		}
		return
	case d != nil && version == d.Version:
		// The version a finished deployment deployed, in its post window.
		return
	}
	if t.cfg.Inference {
		t.startInferred(e, version, now)
	}
}

func (t *Tracker) startInferred(e *entry, version string, now time.Time) {
	d := &Deployment{
		ID: deployevent.DeriveID(deployevent.SourceInferred,
			e.key.Namespace, e.key.Service, e.key.Environment, version, strconv.FormatInt(now.UnixNano(), 10)),
		Source:          deployevent.SourceInferred,
		Strategy:        string(deployevent.StrategyUnknown),
		State:           deployevent.StateStarted,
		Version:         strings.Clone(version),
		PreviousVersion: e.stable,
		StartTime:       now,
	}
	t.begin(e, d, now)
}

// Lookup returns the tag for telemetry of key reporting version (may be empty)
// at now. It takes a read lock and allocates nothing.
func (t *Tracker) Lookup(key Key, version string, now time.Time) Tag {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e := t.entries[key]
	if e == nil {
		return Tag{}
	}
	n := now.UnixNano()
	tag := Tag{Known: e.deployed, Phase: deployevent.PhaseSteady, Version: e.stable}
	d, phase, outcome := t.view(e, now)
	if d == nil {
		return tag
	}
	tag.Phase = phase
	if phase != deployevent.PhaseSteady {
		tag.ID = d.ID
	}
	switch {
	case d.Running() && outcome == "":
		if d.Version != "" {
			tag.Version = d.Version
		}
		if phase == deployevent.PhaseDuring && version != "" {
			tag.Cohort = t.cohort(e, d, version, n)
		}
	case outcome == OutcomeSucceeded && d.Version != "":
		tag.Version = d.Version
	}
	return tag
}

// Current is the deployment a key's phase refers to.
type Current struct {
	Phase deployevent.Phase
	// ID and Strategy are those of the deployment in pre, during and post.
	ID       string
	Strategy string
}

// Current returns key's phase and deployment at now, and whether the key is
// tracked. It takes a read lock and allocates nothing.
func (t *Tracker) Current(key Key, now time.Time) (Current, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e := t.entries[key]
	if e == nil {
		return Current{}, false
	}
	d, phase, _ := t.view(e, now)
	c := Current{Phase: phase}
	if d != nil && phase != deployevent.PhaseSteady {
		c.ID, c.Strategy = d.ID, d.Strategy
	}
	return c, true
}

// view is the state of e at now, including transitions that are due but not
// yet applied (an inferred deployment that has settled, a post window that
// has passed). d is the deployment the phase refers to; outcome is its
// outcome as of now.
func (t *Tracker) view(e *entry, now time.Time) (d *Deployment, phase deployevent.Phase, outcome Outcome) {
	d = e.current
	if d == nil {
		return nil, deployevent.PhaseSteady, ""
	}
	outcome, end := d.Outcome, d.postStart()
	if d.Running() {
		if !d.Inferred() {
			return d, d.runningPhase(), ""
		}
		var ok bool
		if outcome, end, ok = t.inferredEnd(e, d, now.UnixNano()); !ok {
			return d, d.runningPhase(), ""
		}
	}
	if now.Before(end.Add(t.cfg.PostWindow)) {
		return d, deployevent.PhasePost, outcome
	}
	return d, deployevent.PhaseSteady, outcome
}

// inferredEnd decides whether an inferred deployment has ended at n: the old
// version silent for Settle means it succeeded; the new one silent while the
// old still reports means it was rolled back.
func (t *Tracker) inferredEnd(e *entry, d *Deployment, n int64) (Outcome, time.Time, bool) {
	settle := int64(t.cfg.Settle)
	oldSeen, newSeen := e.seen(d.PreviousVersion), e.seen(d.Version)
	oldSilent, newSilent := n-oldSeen >= settle, n-newSeen >= settle
	var outcome Outcome
	var end int64
	switch {
	case oldSilent && (!newSilent || oldSeen <= newSeen):
		outcome, end = OutcomeSucceeded, oldSeen
	case newSilent:
		outcome, end = OutcomeRolledBack, newSeen
	default:
		return "", time.Time{}, false
	}
	endTime := fromNanos(end)
	if start := d.since(); endTime.Before(start) {
		endTime = start
	}
	return outcome, endTime, true
}

func (t *Tracker) cohort(e *entry, d *Deployment, version string, n int64) deployevent.Cohort {
	if d.Version == "" || d.PreviousVersion == "" {
		return ""
	}
	recent := n - int64(t.cfg.Settle)
	if e.seen(d.Version) < recent || e.seen(d.PreviousVersion) < recent {
		return ""
	}
	switch version {
	case d.Version:
		return deployevent.CohortCanary
	case d.PreviousVersion:
		return deployevent.CohortBaseline
	}
	return ""
}
