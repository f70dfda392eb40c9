// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deployevent // import "github.com/deploylens/deploylens/internal/deployevent"

// AlertEventName is the log record EventName of an alert signal: the
// processor writes them, the exporter delivers them.
const AlertEventName = "deployment.alert"

// The processor's built-in alert names (alert.name; Alertmanager's alertname).
const (
	// AlertRegression is the one alert of a deployment judged harmful.
	AlertRegression = "DeploymentRegression"
	// AlertIndicatorRegression is one alert per indicator, opt-in
	// (signals::alerts::per_indicator).
	AlertIndicatorRegression = "DeploymentIndicatorRegression"
	// AlertDeploymentFailed and AlertDeploymentStuck are facts, not
	// judgements: a deployment tool reported a failure, or the deployment
	// outran its max_duration. They are alerts of their own.
	AlertDeploymentFailed = "DeploymentFailed"
	AlertDeploymentStuck  = "DeploymentStuck"
	// AlertDependencyImpact is on a service whose calls to a dependency
	// regressed while that dependency deploys: harm it suffers, which the
	// dependency's deployment explains (and answers for). Not a judgement of
	// the service's own deployment.
	AlertDependencyImpact = "DependencyDeploymentImpact"
)

// IsJudgement tells whether an alert is deploylens's judgement of the
// telemetry, as opposed to a fact (failed, stuck) or another deployment's
// impact: what alert accuracy and "one alert per faulty deployment" count.
func IsJudgement(name string) bool {
	return name != AlertDeploymentFailed && name != AlertDeploymentStuck && name != AlertDependencyImpact
}

// Alert signal record attributes. The deployment context (service.name,
// service.namespace, deployment.environment.name, service.version) is on the
// resource; deployment.id, deployment.previous_version, deployment.phase and
// vcs.ref.head.revision are record attributes with the names above.
const (
	AttrAlertName           = "alert.name"
	AttrAlertState          = "alert.state"       // firing | resolved
	AttrAlertSeverity       = "alert.severity"    // info | warning | critical
	AttrAlertFingerprint    = "alert.fingerprint" // stable per alert
	AttrAlertRecommendation = "alert.recommendation"
	// AttrAlertStartedAt is when the alert first fired (RFC 3339); the record's
	// timestamp is when this signal was written (re-sends and resolves are later).
	AttrAlertStartedAt = "alert.started_at"
	// AttrAlertEndedAt is when a resolved alert stopped firing (RFC 3339).
	AttrAlertEndedAt = "alert.ended_at"
	// AttrAlertPreviousSeverity is on the first signal after an alert's
	// severity changed in place: receivers that key alerts by severity (an
	// Alertmanager label set) resolve the old one at once.
	AttrAlertPreviousSeverity = "alert.previous_severity"
	// AttrAlertReason is on a resolved signal whose alert ended for another
	// cause than its condition ceasing to hold, in words a person reads
	// (e.g. "service stopped reporting": the processor forgot the service).
	AttrAlertReason = "alert.reason"
	// AttrAlertEvidence lists every indicator an alert about a whole
	// deployment rests on: maps with the indicator.* and anomaly.* keys below.
	AttrAlertEvidence = "alert.evidence"

	// Evidence.
	AttrIndicatorName     = "indicator.name"
	AttrIndicatorValue    = "indicator.value"
	AttrIndicatorBaseline = "indicator.baseline"
	AttrIndicatorLower    = "indicator.lower" // expected range
	AttrIndicatorUpper    = "indicator.upper"
	AttrAnomalyScore      = "anomaly.score" // 0–1
	AttrAnomalyConfidence = "anomaly.confidence"
	AttrAnomalyTest       = "anomaly.test" // e.g. mann_whitney_u, two_proportion, poisson, baseline_band
	// On the evidence of an edge of the service graph: the calling service
	// (absent when it is the alert's service) and the called dependency.
	AttrDependencyCaller     = "deployment.dependency.caller"
	AttrDependencyCallee     = "deployment.dependency.name"
	AttrHealthScore          = "deployment.health.score"
	AttrHealthVerdict        = "deployment.health.verdict"
	AttrHealthRecommendation = "deployment.health.recommendation"
)

// Alert states.
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// Alert severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Recommendation is what deploylens advises for a deployment.
type Recommendation string

// The recommendations, from mildest to strongest.
const (
	RecommendNone        Recommendation = "none"
	RecommendInvestigate Recommendation = "investigate"
	RecommendHold        Recommendation = "hold"
	RecommendRollback    Recommendation = "rollback"
)

// Verdict is the health verdict of a tracked service (and cohort).
// It travels on the deployment.health.score data points as
// deployment.health.verdict, with deployment.health.recommendation, so a
// rollout gate in another collector tier can answer from the metrics alone.
type Verdict string

// The verdicts. Inconclusive: not enough data yet to judge.
const (
	VerdictHealthy      Verdict = "healthy"
	VerdictDegraded     Verdict = "degraded"
	VerdictUnhealthy    Verdict = "unhealthy"
	VerdictInconclusive Verdict = "inconclusive"
)

// recommendationRank orders recommendations from the mildest to the most drastic.
var recommendationRank = map[Recommendation]int{
	RecommendNone: 0, RecommendInvestigate: 1, RecommendHold: 2, RecommendRollback: 3,
}

// Stronger is the more drastic of two recommendations (a when they rank alike).
func Stronger(a, b Recommendation) Recommendation {
	if recommendationRank[b] > recommendationRank[a] {
		return b
	}
	return a
}
