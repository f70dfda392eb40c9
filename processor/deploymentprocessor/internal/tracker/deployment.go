// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"

import (
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Outcome is how a deployment ended: a final lifecycle state, or superseded
// when a newer deployment of the same service started before it ended.
type Outcome string

// The outcomes of a finished deployment.
const (
	OutcomeSucceeded  Outcome = Outcome(deployevent.StateSucceeded)
	OutcomeFailed     Outcome = Outcome(deployevent.StateFailed)
	OutcomeRolledBack Outcome = Outcome(deployevent.StateRolledBack)
	OutcomeCancelled  Outcome = Outcome(deployevent.StateCancelled)
	OutcomeSuperseded Outcome = "superseded"
)

// Deployment is the record of one deployment of one service key. Records are
// owned by the Tracker; the copies it hands out (Service, Snapshot) are the
// caller's.
type Deployment struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Source   string `json:"source,omitempty"`
	Strategy string `json:"strategy,omitempty"`
	Revision string `json:"revision,omitempty"`
	// State is the last lifecycle state applied to the deployment.
	State deployevent.State `json:"state"`
	// Outcome is empty while the deployment runs.
	Outcome Outcome `json:"outcome,omitempty"`
	// Version is the version being deployed; PreviousVersion the one it replaces.
	Version         string `json:"version,omitempty"`
	PreviousVersion string `json:"previous_version,omitempty"`
	// QueuedTime, StartTime and EndTime are zero when unknown (a deployment
	// first heard of by its final event has no start).
	QueuedTime time.Time `json:"queued_time,omitzero"`
	StartTime  time.Time `json:"start_time,omitzero"`
	EndTime    time.Time `json:"end_time,omitzero"`
	CommitTime time.Time `json:"commit_time,omitzero"`
	// PostStart is when the post window opened, when later than EndTime: the
	// end of a deployment seen running is reported late (a delayed webhook,
	// a tool with a skewed clock), and data tagged `during` until then still
	// gets a whole validation window.
	PostStart time.Time `json:"post_start,omitzero"`
	// SupersededBy is the id of the deployment that replaced this one.
	SupersededBy string `json:"superseded_by,omitempty"`
	// Stuck is set once the deployment has run longer than MaxDuration.
	Stuck bool `json:"stuck,omitempty"`
}

// Inferred reports whether the deployment was inferred from telemetry.
func (d *Deployment) Inferred() bool { return d.Source == deployevent.SourceInferred }

// Running reports whether the deployment has not ended.
func (d *Deployment) Running() bool { return d.Outcome == "" }

// Phase is the phase the deployment puts its service in while it runs.
func (d *Deployment) runningPhase() deployevent.Phase {
	if d.State == deployevent.StateQueued {
		return deployevent.PhasePre
	}
	return deployevent.PhaseDuring
}

// postStart is when the post window of a finished deployment opened.
func (d *Deployment) postStart() time.Time {
	if d.PostStart.After(d.EndTime) {
		return d.PostStart
	}
	return d.EndTime
}

// since is the start of the deployment as best known: started, else queued,
// else ended.
func (d *Deployment) since() time.Time {
	switch {
	case !d.StartTime.IsZero():
		return d.StartTime
	case !d.QueuedTime.IsZero():
		return d.QueuedTime
	}
	return d.EndTime
}

// stateRank orders the lifecycle states; events may only move a deployment forward.
func stateRank(s deployevent.State) int {
	switch s {
	case deployevent.StateQueued:
		return 0
	case deployevent.StateStarted:
		return 1
	case deployevent.StateProgressing:
		return 2
	}
	return 3
}

// mergeMissing fills the fields d lacks from ev; what is already known stays.
func (d *Deployment) mergeMissing(ev *deployevent.Event) {
	fill := func(dst *string, src string) {
		if *dst == "" && src != "" {
			*dst = strings.Clone(src)
		}
	}
	fill(&d.Name, ev.Name)
	fill(&d.Revision, ev.Revision)
	fill(&d.Version, ev.Version)
	fill(&d.PreviousVersion, ev.PreviousVersion)
	if d.Strategy == "" || d.Strategy == string(deployevent.StrategyUnknown) {
		if ev.Strategy != "" {
			d.Strategy = intern(string(ev.Strategy))
		}
	}
	if d.CommitTime.IsZero() {
		d.CommitTime = ev.CommitTime
	}
}

// known holds the values of bounded vocabularies, shared by every record
// instead of copied into each.
var known = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		deployevent.SourceGitHub, deployevent.SourceGitLab, deployevent.SourceArgoCD, deployevent.SourceFlagger,
		deployevent.SourceArgoRollouts, deployevent.SourceGeneric, deployevent.SourceInferred,
	} {
		m[s] = s
	}
	for _, s := range deployevent.Strategies {
		m[string(s)] = string(s)
	}
	return m
}()

// intern returns the shared copy of a known value, else a private copy (the
// caller's string may point into a pdata buffer).
func intern(s string) string {
	if k, ok := known[s]; ok {
		return k
	}
	return strings.Clone(s)
}
