// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deployevent // import "github.com/deploylens/deploylens/internal/deployevent"

import (
	"fmt"
	"time"
) // EventName is the log record EventName of every deployment lifecycle event.
const EventName = "deployment.lifecycle"

// Resource attribute names (OpenTelemetry semantic conventions).
const (
	AttrServiceName      = "service.name"
	AttrServiceNamespace = "service.namespace"
	AttrServiceVersion   = "service.version"
	AttrEnvironment      = "deployment.environment.name"
)

// Log record attribute names of the deployment.lifecycle contract.
const (
	AttrDeploymentID     = "deployment.id"
	AttrDeploymentName   = "deployment.name"
	AttrDeploymentState  = "deployment.state"
	AttrDeploymentStatus = "deployment.status"
	AttrPreviousVersion  = "deployment.previous_version"
	AttrStrategy         = "deployment.strategy"
	AttrSource           = "deployment.source"
	AttrCommitTime       = "deployment.commit_time"
	AttrRevision         = "vcs.ref.head.revision"
	AttrRepositoryURL    = "vcs.repository.url.full"
	AttrRefName          = "vcs.ref.head.name"
	AttrPipelineRunID    = "cicd.pipeline.run.id"
	AttrPipelineRunURL   = "cicd.pipeline.run.url.full"
	AttrActor            = "enduser.id"
	AttrDeploymentPhase  = "deployment.phase"
	AttrDeploymentCohort = "deployment.cohort"
	// AttrSourceState keeps the tool's own word for the state (GitHub "in_progress",
	// Flagger "Promoting" …), so nothing the tool said is lost in the mapping.
	AttrSourceState = "deployment.source.state"
)

// State is the lifecycle state of a deployment.
type State string

// The lifecycle states, in the order a deployment normally goes through them.
const (
	StateQueued      State = "queued"
	StateStarted     State = "started"
	StateProgressing State = "progressing"
	StateSucceeded   State = "succeeded"
	StateFailed      State = "failed"
	StateRolledBack  State = "rolled_back"
	StateCancelled   State = "cancelled"
)

// States lists every valid State.
var States = []State{StateQueued, StateStarted, StateProgressing, StateSucceeded, StateFailed, StateRolledBack, StateCancelled}

// Valid reports whether s is one of the contract's states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Final reports whether s ends a deployment.
func (s State) Final() bool {
	switch s {
	case StateSucceeded, StateFailed, StateRolledBack, StateCancelled:
		return true
	}
	return false
}

// Status is the semantic-convention deployment.status of a final state, or ""
// where the convention has no value for it (cancelled, and every non-final state).
func (s State) Status() string {
	switch s {
	case StateSucceeded:
		return "succeeded"
	case StateFailed, StateRolledBack:
		return "failed"
	}
	return ""
}

// Strategy is how a deployment replaces the old version.
type Strategy string

// The deployment strategies of the contract.
const (
	StrategyRolling   Strategy = "rolling"
	StrategyCanary    Strategy = "canary"
	StrategyBlueGreen Strategy = "blue_green"
	StrategyRecreate  Strategy = "recreate"
	StrategyUnknown   Strategy = "unknown"
)

// Strategies lists every valid Strategy.
var Strategies = []Strategy{StrategyRolling, StrategyCanary, StrategyBlueGreen, StrategyRecreate, StrategyUnknown}

// Valid reports whether s is one of the contract's strategies.
func (s Strategy) Valid() bool {
	for _, v := range Strategies {
		if s == v {
			return true
		}
	}
	return false
}

// Source names the tool an event came from (deployment.source).
const (
	SourceGitHub       = "github"
	SourceGitLab       = "gitlab"
	SourceArgoCD       = "argocd"
	SourceFlagger      = "flagger"
	SourceArgoRollouts = "argo_rollouts"
	SourceGeneric      = "generic"
	SourceInferred     = "inferred"
)

// Phase is the deployment phase written on telemetry (deployment.phase).
type Phase string

// The phases a tracked service goes through.
const (
	PhaseSteady Phase = "steady"
	PhasePre    Phase = "pre"
	PhaseDuring Phase = "during"
	PhasePost   Phase = "post"
)

// Cohort says which of two serving versions a datum came from (deployment.cohort).
type Cohort string

// The cohorts while two versions serve at once.
const (
	CohortBaseline Cohort = "baseline"
	CohortCanary   Cohort = "canary"
)

// ShortDuration words a duration as alert bodies do: "40 s", "3 min",
// "1h12m0s" (the processor's alerts and the exporter's gate reasons).
func ShortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return d.Truncate(time.Minute).String()
}
