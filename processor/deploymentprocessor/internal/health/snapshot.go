// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/detector"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// Key identifies a judged service, as the tracker does; with a Dependency,
// the calls of that service to its dependency (an edge of the service graph).
type Key struct {
	Namespace   string
	Service     string
	Environment string
	// Dependency names what Service calls (deployment.dependency.name);
	// empty for the service itself.
	Dependency string
}

// Caller is the service of an edge (the key itself for a service).
func (k Key) Caller() Key {
	return Key{Namespace: k.Namespace, Service: k.Service, Environment: k.Environment}
}

// Callee is the service an edge calls, as a service of the caller's
// namespace and environment (it may be no tracked service: a database).
func (k Key) Callee() Key {
	return Key{Namespace: k.Namespace, Service: k.Dependency, Environment: k.Environment}
}

// Status is what the deployment tracker says of a key, at the processor's clock.
type Status struct {
	// Tracked is false once the tracker forgot the key.
	Tracked bool
	Phase   deployevent.Phase
	// DeploymentID is the deployment the phase refers to.
	DeploymentID string
	// Strategy is the deployment's strategy (canary, rolling, ...).
	Strategy string
	// Subject is the service whose deployment the phase is about: the key
	// itself for a service; for an edge, its callee while the callee
	// deploys (the edge is then its blast radius), else its caller.
	Subject Key
}

// StatusFunc reports a key's deployment status. It is called with the key's
// lock held and must not call the engine.
type StatusFunc func(Key) Status

// Snapshot is the health of one key after its last evaluation. Snapshots are
// immutable: readers may keep them.
type Snapshot struct {
	Key Key
	// Time is the end of the last interval evaluated (data time);
	// EvaluatedAt the processor's clock then.
	Time, EvaluatedAt time.Time
	Phase             deployevent.Phase
	DeploymentID      string
	// Subject is the service whose deployment Phase and DeploymentID are
	// about (Status.Subject).
	Subject Key
	// Frozen is set while the baselines are frozen for a deployment.
	Frozen bool
	// Health is the key's health: its detectors, the deployment's window
	// against the one before it, and the canary against the baseline cohort.
	Health Health
	// Cohorts holds, while two versions serve, the baseline cohort's health
	// (against the window before the deployment) and the canary's (against
	// the baseline cohort).
	Cohorts []CohortHealth
}

// Health is a health score with its verdict, recommendation and evidence.
type Health struct {
	// Score is the judgement, 0 (unhealthy) to 100 (healthy): it agrees with
	// Verdict (JudgedScore) and is NaN while the verdict is inconclusive.
	// CandidateScore is what this evaluation alone computed (NaN when it
	// judged nothing).
	Score, CandidateScore float64
	// Verdict is the stable verdict (with hysteresis); Candidate is what this
	// evaluation alone says.
	Verdict, Candidate deployevent.Verdict
	Recommendation     deployevent.Recommendation
	// Dimensions has one entry per dimension with a positive weight.
	Dimensions []DimensionScore
	// Indicators has one entry per indicator, built-in ones first; then, in
	// a service's health, at most one entry for its calls to its
	// dependencies and one for its callers' calls to it (Evidence.Relation).
	Indicators []Evidence
	// Impact lists the callers whose calls to the service regressed since
	// its deployment began, strongest first: its blast radius, counted
	// against its deployment.
	Impact []Relation
	// ExplainedBy lists the dependencies whose rollout explains the harm
	// the service's calls to them show, strongest first. While the service
	// deploys too, the harm of its own indicators of the same dimensions is
	// not counted against its deployment (Evidence.ExplainedBy).
	ExplainedBy []Relation
}

// Relation is the judgement of one edge in a service's health.
type Relation struct {
	// Peer is the other service: the caller in Impact, the dependency in
	// ExplainedBy and in a dependency's evidence.
	Peer Key
	// DeploymentID is the deployment the edge is judged against (the
	// callee's while it deploys).
	DeploymentID string
	// Evidence is the edge's strongest evidence.
	Evidence Evidence
}

// CohortHealth is the health of one cohort.
type CohortHealth struct {
	Cohort deployevent.Cohort
	Health
}

// DimensionScore is one dimension's score, 0–100.
type DimensionScore struct {
	Dimension indicators.Dimension
	Score     float64
	// Judged is false when none of its indicators had enough data.
	Judged bool
}

// Evidence is an indicator's judgement and what it rests on.
type Evidence struct {
	Indicator string
	Dimension indicators.Dimension
	Direction detector.Direction
	// Value is the indicator over the last interval (ratios 0–1, latencies in
	// seconds, rates per second); Baseline, Lower and Upper are its expected
	// value and range (frozen during a deployment). NaN when unknown.
	Value, Baseline, Lower, Upper float64
	// Test is the test that weighs most in Score: a detector test
	// (robust_z, window_shift, step_change) or a comparison
	// (mann_whitney_u, two_proportion_z, fisher_exact,
	// poisson_conditional_binomial); Comparison says what it compared.
	Test       string
	Comparison Comparison
	// Observed and Expected are what the test compared: the candidate's value
	// and the reference's.
	Observed, Expected float64
	// PValue is Holm-adjusted across the family's indicators; Confidence is 1 - PValue.
	PValue, Confidence float64
	// Score is the anomaly score, 0 (normal) to 1 (certainly harmful).
	Score float64
	// Judged is false when the indicator had too little data (inconclusive).
	Judged bool
	// Relation is empty for the service's own indicators; otherwise the
	// evidence is an edge's (RelationDependency, RelationCaller) and Peer
	// the service at its other end.
	Relation RelationKind
	Peer     Key
	// ExplainedBy names the dependency whose rollout explains this
	// indicator's harm: the service's deployment is not blamed for it.
	ExplainedBy string
}

// RelationKind says which edge an evidence is about.
type RelationKind string

// The relations.
const (
	// RelationDependency: the service's calls to Peer.
	RelationDependency RelationKind = "dependency"
	// RelationCaller: Peer's calls to the service.
	RelationCaller RelationKind = "caller"
)

// Comparison names what a test compared.
type Comparison string

// The comparisons.
const (
	// CompareBaseline: the last interval against the indicator's (frozen) baseline.
	CompareBaseline Comparison = "baseline"
	// CompareBeforeAfter: the data since the deployment started against the
	// window before it (in a cohort's health: the cohort's data).
	CompareBeforeAfter Comparison = "before_after"
	// CompareCohorts: the canary cohort against the baseline cohort.
	CompareCohorts Comparison = "canary_baseline"
	// CompareCanaryBefore: the canary cohort against the window before the deployment.
	CompareCanaryBefore Comparison = "canary_before"
)

// Alarming tells whether a health judgement calls for action on the
// deployment: an unhealthy verdict, or a hold or rollback recommendation (a
// degraded rollout; a degraded post window only asks to investigate).
func Alarming(h *Health) bool {
	return h.Verdict == deployevent.VerdictUnhealthy ||
		h.Recommendation == deployevent.RecommendHold || h.Recommendation == deployevent.RecommendRollback
}

// Alarm tells whether the service or its canary cohort is Alarming — exactly
// when the processor raises the deployment's DeploymentRegression alert and
// the gate fails it (the baseline cohort is the old version: not its fault).
func (s *Snapshot) Alarm() bool {
	if Alarming(&s.Health) {
		return true
	}
	for i := range s.Cohorts {
		if s.Cohorts[i].Cohort == deployevent.CohortCanary && Alarming(&s.Cohorts[i].Health) {
			return true
		}
	}
	return false
}
