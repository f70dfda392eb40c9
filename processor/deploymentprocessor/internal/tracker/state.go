// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

// This file holds the read-only views of the tracker: counts and copies
// of one service's state.

import (
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Stats counts tracked keys by phase at now.
type Stats struct {
	Services int
	Pre      int
	During   int
	Post     int
}

// Stats counts the tracked keys and their phases at now.
func (t *Tracker) Stats(now time.Time) Stats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := Stats{Services: len(t.entries)}
	for _, e := range t.entries {
		switch _, phase, _ := t.view(e, now); phase {
		case deployevent.PhasePre:
			s.Pre++
		case deployevent.PhaseDuring:
			s.During++
		case deployevent.PhasePost:
			s.Post++
		}
	}
	return s
}

// ServiceState is a copy of one key's state.
type ServiceState struct {
	Key   Key
	Phase deployevent.Phase
	// StableVersion is the version serving when no deployment runs.
	StableVersion string
	// Current is the deployment the phase refers to (nil in steady), as of
	// now: an inferred deployment that has settled shows its outcome.
	Current *Deployment
	// History holds finished deployments, oldest first.
	History []Deployment
	// Versions are the versions remembered, with when each last reported.
	Versions []VersionSeen
	LastSeen time.Time
}

// VersionSeen is a version and when it last reported.
type VersionSeen struct {
	Version  string    `json:"version"`
	LastSeen time.Time `json:"last_seen"`
}

// Service returns a copy of key's state at now, after applying the
// transitions due by then.
func (t *Tracker) Service(key Key, now time.Time) (ServiceState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		return ServiceState{}, false
	}
	t.advance(e, now)
	s := ServiceState{
		Key:           e.key,
		Phase:         deployevent.PhaseSteady,
		StableVersion: e.stable,
		Versions:      e.versionsCopy(),
		LastSeen:      fromNanos(e.lastSeen.Load()),
	}
	if d := e.current; d != nil {
		c := *d
		s.Current = &c
		s.Phase = deployevent.PhasePost
		if d.Running() {
			s.Phase = d.runningPhase()
		}
	}
	for _, h := range e.history {
		s.History = append(s.History, *h)
	}
	return s, true
}

func (e *entry) versionsCopy() []VersionSeen {
	var out []VersionSeen
	for i := range e.versions {
		if v := &e.versions[i]; v.name != "" {
			out = append(out, VersionSeen{Version: v.name, LastSeen: fromNanos(v.lastSeen.Load())})
		}
	}
	return out
}
