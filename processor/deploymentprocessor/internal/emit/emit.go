// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package emit turns what the processor knows of its services — health
// snapshots, KPI books, deployment state — into the derived metrics of its
// metadata.yaml (through builder.go) and into the conditions
// the alert engine turns into deployment.alert signals.
package emit // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/emit"

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/processor"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/kpi"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

// Service is one tracked service at an emission.
type Service struct {
	Key   health.Key
	Phase deployevent.Phase
	// Snapshot is the last health evaluation (nil before the first).
	Snapshot *health.Snapshot
	KPI      kpi.Values
	HasKPI   bool
	// Edges are the last evaluations of the service's calls to each of its
	// dependencies; EdgeServices the service each dependency is, "" when
	// unknown (deployment.dependency.service).
	Edges        []*health.Snapshot
	EdgeServices []string
}

// Metrics builds one emission of derived metrics.
type Metrics struct {
	mb     *builder
	starts map[health.Key]pcommon.Timestamp // the KPI counters' start time per service
}

// NewMetrics returns a builder with the metrics of metadata.yaml enabled as configured.
func NewMetrics(set processor.Settings, cfg metadata.MetricsBuilderConfig) *Metrics {
	return &Metrics{mb: newBuilder(cfg, set.BuildInfo), starts: map[health.Key]pcommon.Timestamp{}}
}

// Append records one service's metrics at ts: health, per-indicator band and
// anomaly scores (per cohort while two serve), activity, KPIs and DORA.
func (m *Metrics) Append(s Service, ts time.Time) {
	now := pcommon.NewTimestampFromTime(ts)
	phase := phaseAttr(s.Phase)
	if s.Snapshot != nil {
		m.health(now, phase, metadata.AttributeDeploymentCohort(0), &s.Snapshot.Health)
		for i := range s.Snapshot.Cohorts {
			c := &s.Snapshot.Cohorts[i]
			m.health(now, phase, cohortAttr(c.Cohort), &c.Health)
		}
	}
	for i, edge := range s.Edges {
		service := ""
		if i < len(s.EdgeServices) {
			service = s.EdgeServices[i]
		}
		m.dependency(now, edge, service)
	}
	if s.Phase != "" && s.Phase != deployevent.PhaseSteady {
		m.mb.int(mActive, now, 1, phase.String())
		if s.Snapshot != nil && (s.Phase == deployevent.PhaseDuring || s.Phase == deployevent.PhasePost) {
			m.mb.int(mImpactServices, now, int64(len(s.Snapshot.Health.Impact)), phase.String())
		}
	}
	if s.HasKPI {
		v := &s.KPI
		m.starts[s.Key] = pcommon.NewTimestampFromTime(v.StartTime)
		for i, o := range kpi.Outcomes {
			for j, jd := range kpi.Judgements {
				m.mb.int(mCount, now, v.Counts[i][j], statusAttr(o).String(), judgementAttr(jd).String())
			}
		}
		if v.HasDuration {
			m.mb.double(mDuration, now, v.Duration, statusAttr(v.DurationOutcome).String())
		}
		if v.HasInterval {
			m.mb.double(mInterval, now, v.Interval)
		}
		if v.HasLeadTime {
			m.mb.double(mLeadTime, now, v.LeadTime)
		}
		if v.HasChangeFailureRatio {
			m.mb.double(mChangeFailureRatio, now, v.ChangeFailureRatio)
		}
		if v.HasRecoveryTime {
			m.mb.double(mRecoveryTime, now, v.RecoveryTime)
		}
		if v.HasDetectionTime {
			m.mb.double(mDetectionTime, now, v.DetectionTime)
		}
	}
	rb := m.mb.newResourceBuilder()
	rb.SetServiceName(s.Key.Service)
	if s.Key.Namespace != "" {
		rb.SetServiceNamespace(s.Key.Namespace)
	}
	if s.Key.Environment != "" {
		rb.SetDeploymentEnvironmentName(s.Key.Environment)
	}
	// A service with nothing to report adds no resource.
	m.mb.emitForResource(rb.Emit())
}

func (m *Metrics) health(now pcommon.Timestamp, phase metadata.AttributeDeploymentPhase, cohort metadata.AttributeDeploymentCohort, h *health.Health) {
	if h.Verdict == "" {
		return
	}
	// The verdict and the recommendation as state sets: every value each
	// time, 1 for the current one, so their series never change identity.
	verdict, rec := verdictAttr(h.Verdict), recommendationAttr(h.Recommendation)
	for _, v := range verdictValues {
		m.mb.int(mHealthVerdict, now, oneIf(v == verdict), cohort.String(), v.String())
	}
	for _, r := range recommendationValues {
		m.mb.int(mHealthRecommendation, now, oneIf(r == rec), cohort.String(), r.String())
	}
	// A score is a judgement: none while nothing is judged.
	if isNum(h.Score) {
		m.mb.double(mHealthScore, now, h.Score, phase.String(), cohort.String())
	}
	for _, d := range h.Dimensions {
		if d.Judged {
			if dim, ok := metadata.MapAttributeHealthDimension[string(d.Dimension)]; ok {
				m.mb.double(mHealthDimensionScore, now, d.Score, phase.String(), cohort.String(), dim.String())
			}
		}
	}
	for i := range h.Indicators {
		ev := &h.Indicators[i]
		if ev.Relation != "" {
			continue // an edge's: its own series (deployment.dependency.*)
		}
		if isNum(ev.Value) {
			m.mb.double(mIndicatorValue, now, ev.Value, phase.String(), cohort.String(), ev.Indicator)
		}
		if isNum(ev.Baseline) {
			m.mb.double(mIndicatorBaseline, now, ev.Baseline, phase.String(), cohort.String(), ev.Indicator)
		}
		if isNum(ev.Lower) {
			m.mb.double(mIndicatorLower, now, ev.Lower, phase.String(), cohort.String(), ev.Indicator)
		}
		if isNum(ev.Upper) {
			m.mb.double(mIndicatorUpper, now, ev.Upper, phase.String(), cohort.String(), ev.Indicator)
		}
		if ev.Judged {
			m.mb.double(mAnomalyScore, now, finite(ev.Score, 0), phase.String(), cohort.String(), ev.Indicator)
		}
	}
}

// dependency records one edge's indicators, bands and score.
func (m *Metrics) dependency(now pcommon.Timestamp, edge *health.Snapshot, service string) {
	dep := edge.Key.Dependency
	h := &edge.Health
	if isNum(h.Score) {
		m.mb.double(mDependencyHealthScore, now, h.Score, dep, service)
	}
	for i := range h.Indicators {
		ev := &h.Indicators[i]
		if isNum(ev.Value) {
			m.mb.double(mDependencyValue, now, ev.Value, dep, service, ev.Indicator)
		}
		for _, p := range []struct {
			id metricID
			v  float64
		}{{mDependencyBaseline, ev.Baseline}, {mDependencyLower, ev.Lower}, {mDependencyUpper, ev.Upper}} {
			if isNum(p.v) {
				m.mb.double(p.id, now, p.v, dep, ev.Indicator)
			}
		}
	}
}

// Emit returns the metrics appended since the last Emit. The cumulative
// deployment.count of each service starts when its KPI book began counting,
// a start time that survives restarts with the book.
func (m *Metrics) Emit() pmetric.Metrics {
	md := m.mb.emit()
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		res := rms.At(i).Resource().Attributes()
		start, ok := m.starts[health.Key{Namespace: str(res, deployevent.AttrServiceNamespace),
			Service: str(res, deployevent.AttrServiceName), Environment: str(res, deployevent.AttrEnvironment)}]
		if !ok {
			continue
		}
		sms := rms.At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				if ms.At(k).Name() != "deployment.count" {
					continue
				}
				dps := ms.At(k).Sum().DataPoints()
				for d := 0; d < dps.Len(); d++ {
					dps.At(d).SetStartTimestamp(start)
				}
			}
		}
	}
	clear(m.starts)
	return md
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.Str()
	}
	return ""
}

// Thresholds is the anomaly score at which an indicator alerts, per phase:
// stricter during and right after a rollout.
type Thresholds map[deployevent.Phase]float64

// DefaultThresholds alert at 0.7 during a rollout, 0.8 in its post window,
// 0.9 announced, and 0.95 in steady state.
func DefaultThresholds() Thresholds {
	return Thresholds{
		deployevent.PhaseSteady: 0.95, deployevent.PhasePre: 0.9,
		deployevent.PhaseDuring: 0.7, deployevent.PhasePost: 0.8,
	}
}

// Deployment is what the tracker says of the service's current deployment.
type Deployment struct {
	Failed bool // the deployment failed or was rolled back (post window)
	Stuck  bool
	Detail string // e.g. "stuck for 1h12m"
	// Explained says which dependency's rollout explains the service's
	// harm, e.g. "payment 2.3's rollout (deployment d-42)"; empty when none does.
	Explained string
}

// Conditions lists every built-in alert of a service as active or not, so
// the alert engine fires and resolves them. A service (or its canary) whose
// judgement calls for action (health.Alarming: unhealthy, or a hold or
// rollback advised) is one Regression alert whatever the number of
// indicators that moved: its severity is critical when a verdict is
// unhealthy or a rollback is advised, warning otherwise, and its evidence
// lists every indicator with evidence of harm. Failed and stuck deployments
// are alerts of their own; per-indicator alerts (at the per-phase anomaly
// thresholds) only when perIndicator is set.
func Conditions(snap *health.Snapshot, phase deployevent.Phase, dep Deployment, th Thresholds, perIndicator bool) []alerts.Condition {
	var h health.Health
	var canary *health.Health
	if snap != nil {
		h = snap.Health
		for i := range snap.Cohorts {
			if snap.Cohorts[i].Cohort == deployevent.CohortCanary {
				canary = &snap.Cohorts[i].Health
			}
		}
	}
	harmful := func(x *health.Health) bool { return x != nil && health.Alarming(x) }
	rec := h.Recommendation
	critical := h.Verdict == deployevent.VerdictUnhealthy
	if canary != nil {
		rec = deployevent.Stronger(rec, canary.Recommendation)
		critical = critical || canary.Verdict == deployevent.VerdictUnhealthy
	}
	critical = critical || rec == deployevent.RecommendRollback
	regression := alerts.Condition{Name: alerts.Regression, Severity: deployevent.SeverityWarning, Recommendation: rec,
		Active: harmful(&h) || harmful(canary)}
	if critical {
		regression.Severity = deployevent.SeverityCritical
	}
	if regression.Active {
		service := ""
		if snap != nil {
			service = snap.Key.Service
		}
		regression.Evidences = harmEvidence(service, &h, canary)
		if !harmful(&h) {
			regression.Detail = "in the canary"
		}
		if dep.Explained != "" {
			regression.Detail = strings.TrimPrefix(regression.Detail+", explained by "+dep.Explained, ", ")
		}
	}
	// The harm the service's calls suffer from a deploying dependency: an
	// alert of its own, named after that deployment (which answers for it).
	impact := alerts.Condition{Name: alerts.DependencyImpact, Severity: deployevent.SeverityWarning,
		Recommendation: deployevent.RecommendInvestigate, Active: len(h.ExplainedBy) > 0 && dep.Explained != ""}
	if impact.Active {
		for i := range h.ExplainedBy {
			r := &h.ExplainedBy[i]
			ev := Evidence(&r.Evidence)
			ev.Callee = r.Peer.Service
			impact.Evidences = append(impact.Evidences, ev)
		}
		impact.Detail = "explained by " + dep.Explained
	}
	out := []alerts.Condition{
		regression,
		impact,
		{Name: alerts.DeploymentFailed, Severity: deployevent.SeverityWarning, Recommendation: deployevent.RecommendInvestigate,
			Active: dep.Failed},
		{Name: alerts.DeploymentStuck, Severity: deployevent.SeverityWarning, Recommendation: deployevent.RecommendInvestigate,
			Active: dep.Stuck, Detail: dep.Detail},
	}
	if !perIndicator {
		return out
	}
	limit, ok := th[phase]
	if !ok {
		limit = 0.9
	}
	active := phase == deployevent.PhaseDuring || phase == deployevent.PhasePost
	for i := range h.Indicators {
		ev := &h.Indicators[i]
		severity := deployevent.SeverityWarning
		if active && ev.Score >= 0.9 {
			severity = deployevent.SeverityCritical
		}
		evidence := Evidence(ev)
		out = append(out, alerts.Condition{Name: alerts.IndicatorRegression, Indicator: ev.Indicator, Severity: severity,
			Recommendation: rec, Active: ev.Judged && ev.Score >= limit, Evidence: &evidence})
	}
	return out
}

// harmEvidence is the evidence of a harmful judgement, strongest first:
// every judged indicator of the service and its canary whose adjusted
// p-value passed alpha (one entry per indicator, its stronger side), or the
// strongest judged one when none did.
func harmEvidence(name string, service, canary *health.Health) []alerts.Evidence {
	best := map[string]*health.Evidence{}
	var order []string
	consider := func(id string, ev *health.Evidence) {
		if cur, ok := best[id]; !ok {
			order = append(order, id)
			best[id] = ev
		} else if ev.Score > cur.Score {
			best[id] = ev
		}
	}
	for _, x := range []*health.Health{service, canary} {
		if x == nil {
			continue
		}
		for i := range x.Indicators {
			ev := &x.Indicators[i]
			switch {
			case !ev.Judged:
			case ev.Relation == health.RelationCaller:
				// Every harmed caller, from the impact list, instead.
			case ev.Relation != "":
				consider(string(ev.Relation)+"/"+ev.Peer.Service+"/"+ev.Indicator, ev)
			default:
				consider(ev.Indicator, ev)
			}
		}
		for i := range x.Impact {
			r := &x.Impact[i]
			ev := r.Evidence
			ev.Relation, ev.Peer = health.RelationCaller, r.Peer
			consider("caller/"+r.Peer.Service+"/"+ev.Indicator, &ev)
		}
	}
	out := make([]alerts.Evidence, 0, len(order))
	for _, id := range order {
		if ev := best[id]; ev.Score >= health.AlphaScore {
			out = append(out, EdgeEvidence(name, ev))
		}
	}
	if len(out) == 0 {
		var top *health.Evidence
		for _, name := range order {
			if ev := best[name]; top == nil || ev.Score > top.Score {
				top = ev
			}
		}
		if top != nil {
			out = append(out, EdgeEvidence(name, top))
		}
	}
	slices.SortStableFunc(out, func(a, b alerts.Evidence) int { return cmp.Compare(b.AnomalyScore, a.AnomalyScore) })
	return out
}

// Evidence converts a health indicator's judgement for an alert.
func Evidence(ev *health.Evidence) alerts.Evidence {
	return alerts.Evidence{Indicator: ev.Indicator, Observed: ev.Value, Baseline: ev.Baseline, Lower: ev.Lower, Upper: ev.Upper,
		AnomalyScore: ev.Score, Confidence: ev.Confidence, Test: ev.Test, Unit: unitOf(ev.Indicator)}
}

// EdgeEvidence is Evidence, with the edge's ends for an edge's evidence in
// the health of service.
func EdgeEvidence(service string, ev *health.Evidence) alerts.Evidence {
	out := Evidence(ev)
	switch ev.Relation {
	case health.RelationCaller:
		out.Caller, out.Callee = ev.Peer.Service, service
	case health.RelationDependency:
		out.Callee = ev.Peer.Service
	}
	return out
}

// EvidenceByIndicator is the snapshot's indicators keyed by name, for user rules.
func EvidenceByIndicator(snap *health.Snapshot) map[string]alerts.Evidence {
	out := map[string]alerts.Evidence{}
	if snap == nil {
		return out
	}
	for i := range snap.Health.Indicators {
		if ev := &snap.Health.Indicators[i]; ev.Relation == "" {
			out[ev.Indicator] = Evidence(ev)
		}
	}
	return out
}

func unitOf(indicator string) string {
	switch {
	case strings.HasSuffix(indicator, "_ratio"):
		return "ratio"
	case strings.HasPrefix(indicator, "latency"):
		return "seconds"
	case strings.HasSuffix(indicator, "_rate"):
		return "rate"
	}
	return ""
}

// Every value of the verdict and recommendation enums, in a fixed order.
var (
	verdictValues        = enumValues(metadata.MapAttributeHealthVerdict)
	recommendationValues = enumValues(metadata.MapAttributeHealthRecommendation)
)

func enumValues[T ~int](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func oneIf(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func isNum(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func finite(v, fallback float64) float64 {
	if isNum(v) {
		return v
	}
	return fallback
}

// lookup maps a value to its generated attribute enum (mdatagen's
// MapAttribute… tables), with a fallback for values outside the enum.
func lookup[T any](m map[string]T, value string, fallback T) T {
	if v, ok := m[value]; ok {
		return v
	}
	return fallback
}

func phaseAttr(p deployevent.Phase) metadata.AttributeDeploymentPhase {
	return lookup(metadata.MapAttributeDeploymentPhase, string(p), metadata.AttributeDeploymentPhaseSteady)
}

// cohortAttr is empty for the service as a whole.
func cohortAttr(c deployevent.Cohort) metadata.AttributeDeploymentCohort {
	return lookup(metadata.MapAttributeDeploymentCohort, string(c), 0)
}

// statusAttr: a superseded deployment counts as cancelled.
func statusAttr(o kpi.Outcome) metadata.AttributeDeploymentStatus {
	return lookup(metadata.MapAttributeDeploymentStatus, string(o), metadata.AttributeDeploymentStatusCancelled)
}

func judgementAttr(j kpi.Judgement) metadata.AttributeDeploymentJudgement {
	return lookup(metadata.MapAttributeDeploymentJudgement, string(j), metadata.AttributeDeploymentJudgementUnjudged)
}

func verdictAttr(v deployevent.Verdict) metadata.AttributeHealthVerdict {
	return lookup(metadata.MapAttributeHealthVerdict, string(v), metadata.AttributeHealthVerdictInconclusive)
}

func recommendationAttr(r deployevent.Recommendation) metadata.AttributeHealthRecommendation {
	return lookup(metadata.MapAttributeHealthRecommendation, string(r), metadata.AttributeHealthRecommendationNone)
}
