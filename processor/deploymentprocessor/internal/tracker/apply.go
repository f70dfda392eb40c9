// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

// This file holds the lifecycle transitions: Apply and the phase changes
// that lifecycle events cause.

import (
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Apply applies a deployment.lifecycle event and reports whether it changed
// the state, and why (see the Reason constants). Events with a zero
// Timestamp happen at Config.Now.
func (t *Tracker) Apply(ev deployevent.Event) (applied bool, reason Reason) {
	now := t.cfg.Now()
	ts := ev.Timestamp
	if ts.IsZero() {
		ts = now
	}
	key := Key{Namespace: ev.Namespace, Service: ev.Service, Environment: ev.Environment}

	t.mu.Lock()
	defer t.unlock()
	n := now.UnixNano()
	e := t.entries[key]
	if e == nil {
		if e = t.insertLocked(key, n); e == nil {
			return false, ReasonRefused
		}
	}
	storeMax(&e.lastSeen, n)
	t.advance(e, now)

	cur := e.current
	if cur != nil && cur.ID == ev.ID {
		return t.update(e, cur, &ev, ts, now)
	}
	if old := e.find(ev.ID); old != nil {
		return false, ignoredFor(old, ev.State)
	}
	if cur != nil && cur.Inferred() && (ev.Version == "" || ev.Version == cur.Version) {
		return t.adopt(e, cur, &ev, ts, now)
	}
	if cur != nil && ts.Before(cur.since()) {
		return false, ReasonStale
	}

	d := &Deployment{
		ID:       strings.Clone(ev.ID),
		Source:   intern(ev.Source),
		State:    ev.State,
		Strategy: intern(string(ev.Strategy)),
	}
	d.mergeMissing(&ev)
	if d.PreviousVersion == "" && e.stable != d.Version {
		d.PreviousVersion = e.stable
	}
	if e.stable == "" && d.PreviousVersion != "" {
		e.stable = d.PreviousVersion
	}
	switch ev.State {
	case deployevent.StateQueued:
		d.QueuedTime = ts
	case deployevent.StateStarted, deployevent.StateProgressing:
		d.StartTime = ts
	}
	reason = ReasonNew
	if cur != nil && cur.Running() {
		reason = ReasonSupersede
	}
	t.begin(e, d, ts)
	if ev.State.Final() {
		// First heard of by its end: the window runs from the tool's time,
		// so replayed or backfilled history does not put a service in post.
		t.finish(e, d, Outcome(ev.State), ts, time.Time{})
	}
	return true, reason
}

func ignoredFor(d *Deployment, state deployevent.State) Reason {
	switch {
	case d.Outcome == OutcomeSuperseded:
		return ReasonSuperseded
	case d.State == state:
		return ReasonDuplicate
	}
	return ReasonOutOfOrder
}

// update applies an event to the deployment it names. Deployments only move
// forward: queued → started → progressing → a final state.
func (t *Tracker) update(e *entry, d *Deployment, ev *deployevent.Event, ts, now time.Time) (bool, Reason) {
	if !d.Running() {
		return false, ignoredFor(d, ev.State)
	}
	d.mergeMissing(ev)
	if ev.State == d.State {
		return false, ReasonDuplicate
	}
	if stateRank(ev.State) < stateRank(d.State) {
		return false, ReasonOutOfOrder
	}
	if ev.State.Final() {
		t.finish(e, d, Outcome(ev.State), ts, laterOf(ts, now))
	} else {
		d.State = ev.State
		if d.StartTime.IsZero() {
			d.StartTime = ts
		}
		t.changed()
	}
	return true, ReasonTransition
}

// adopt gives an inferred deployment the identity of the event that names its
// version: the tool's event and the telemetry describe one deployment.
func (t *Tracker) adopt(e *entry, d *Deployment, ev *deployevent.Event, ts, now time.Time) (bool, Reason) {
	d.ID = strings.Clone(ev.ID)
	d.Source = intern(ev.Source)
	if ev.PreviousVersion != "" {
		d.PreviousVersion = strings.Clone(ev.PreviousVersion)
	}
	if d.Strategy == string(deployevent.StrategyUnknown) {
		d.Strategy = ""
	}
	d.mergeMissing(ev)
	switch {
	case d.Running() && ev.State.Final():
		t.finish(e, d, Outcome(ev.State), ts, laterOf(ts, now))
	case d.Running() && ev.State != deployevent.StateQueued:
		d.State = ev.State
		if ts.Before(d.StartTime) {
			d.StartTime = ts
		}
	case !d.Running() && ev.State.Final() && Outcome(ev.State) != d.Outcome:
		// The tool's word on the outcome beats the inference.
		d.Outcome, d.State = Outcome(ev.State), ev.State
		switch {
		case d.Outcome == OutcomeSucceeded && d.Version != "":
			e.stable = d.Version
		case d.Outcome != OutcomeSucceeded && e.stable == d.Version && d.PreviousVersion != "":
			e.stable = d.PreviousVersion
		}
	}
	t.changed()
	return true, ReasonAdopt
}

// begin makes d the current deployment of e, superseding a running one.
func (t *Tracker) begin(e *entry, d *Deployment, at time.Time) {
	if cur := e.current; cur != nil && cur.Running() {
		cur.Outcome = OutcomeSuperseded
		cur.SupersededBy = d.ID
		cur.EndTime = at
		if s := cur.since(); at.Before(s) {
			cur.EndTime = s
		}
		t.pushHistory(e, cur)
		t.hookEnded(e, cur)
	}
	e.current = d
	e.deployed = true
	if t.cfg.Hooks.Started != nil {
		t.cfg.Hooks.Started(e.key, d)
	}
	t.changed()
}

// finish ends d with outcome at end and opens its post window, from
// postFrom if later than end.
func (t *Tracker) finish(e *entry, d *Deployment, outcome Outcome, end, postFrom time.Time) {
	d.Outcome = outcome
	d.State = deployevent.State(outcome)
	if s := d.since(); !s.IsZero() && end.Before(s) {
		end = s
	}
	d.EndTime = end
	if postFrom.After(end) {
		d.PostStart = postFrom
	}
	switch {
	case outcome == OutcomeSucceeded && d.Version != "":
		e.stable = d.Version
	case e.stable == "":
		e.stable = d.PreviousVersion
	}
	t.pushHistory(e, d)
	t.hookEnded(e, d)
	t.changed()
}

func (t *Tracker) hookEnded(e *entry, d *Deployment) {
	if t.cfg.Hooks.Ended != nil {
		t.cfg.Hooks.Ended(e.key, d)
	}
}

func (t *Tracker) pushHistory(e *entry, d *Deployment) {
	if t.cfg.HistorySize <= 0 {
		return
	}
	if len(e.history) >= t.cfg.HistorySize {
		n := copy(e.history, e.history[len(e.history)-t.cfg.HistorySize+1:])
		clear(e.history[n:])
		e.history = e.history[:n]
	}
	e.history = append(e.history, d)
}

// advance applies the time-driven transitions of e that are due at now: an
// inferred deployment settles, a deployment becomes stuck, a post window ends.
func (t *Tracker) advance(e *entry, now time.Time) {
	d := e.current
	if d == nil {
		return
	}
	if d.Running() && d.Inferred() {
		if outcome, end, ok := t.inferredEnd(e, d, now.UnixNano()); ok {
			t.finish(e, d, outcome, end, time.Time{})
		}
	}
	if d.Running() && !d.Stuck && t.cfg.MaxDuration > 0 && now.Sub(d.since()) >= t.cfg.MaxDuration {
		d.Stuck = true
		if t.cfg.Hooks.Stuck != nil {
			t.cfg.Hooks.Stuck(d)
		}
		t.changed()
	}
	if !d.Running() && !now.Before(d.postStart().Add(t.cfg.PostWindow)) {
		e.current = nil
		t.busyUntil = 0
		t.changed()
	}
}
