// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Rollout verdicts the gate answers.
const (
	verdictPass         = "pass"
	verdictFail         = "fail"
	verdictInconclusive = "inconclusive"
)

// query names what the gate is asked about; empty Namespace or Environment
// match any, as long as only one view matches.
type query struct {
	Service     string
	Environment string
	Namespace   string
}

func (q query) String() string {
	parts := []string{"service=" + q.Service}
	if q.Environment != "" {
		parts = append(parts, "environment="+q.Environment)
	}
	if q.Namespace != "" {
		parts = append(parts, "namespace="+q.Namespace)
	}
	return strings.Join(parts, " ")
}

// verdictResult is the JSON the gate answers with.
type verdictResult struct {
	Verdict         string   `json:"verdict"`
	HealthScore     *float64 `json:"health_score"`
	Phase           string   `json:"phase"`
	DeploymentID    string   `json:"deployment_id"`
	Version         string   `json:"version"`
	Reasons         []string `json:"reasons"`
	PreviousVersion string   `json:"previous_version,omitempty"`
	Service         string   `json:"service"`
	Namespace       string   `json:"namespace,omitempty"`
	Environment     string   `json:"environment,omitempty"`
	State           string   `json:"deployment_state,omitempty"`
	HealthVerdict   string   `json:"health_verdict,omitempty"`
	Recommendation  string   `json:"recommendation"`
	StartedAt       string   `json:"started_at,omitempty"`
	ObservedSeconds float64  `json:"observed_seconds"`
	// Decision is set by POST /v1/gate (advance|hold) and POST
	// /v1/gate/rollback (rollback|no_rollback).
	Decision string `json:"decision,omitempty"`

	found   bool
	hold    bool // recommendation hold: the gate holds whatever the window
	started time.Time
}

// lookup finds the one view q names; it returns a reason when there is none
// or more than one.
func (s *state) lookup(q query) (*serviceView, string) {
	v, _, why := s.find(q)
	return v, why
}

// find is lookup that also says how many views match q: 0 (unknown), 1 (v)
// or more (ambiguous), so an API can answer 404 and 409 apart.
func (s *state) find(q query) (v *serviceView, matched int, reason string) {
	var matches []*serviceView
	for k, v := range s.services {
		if k.Service != q.Service ||
			(q.Environment != "" && k.Environment != q.Environment) ||
			(q.Namespace != "" && k.Namespace != q.Namespace) {
			continue
		}
		matches = append(matches, v)
	}
	switch len(matches) {
	case 0:
		return nil, 0, "deploylens has seen no deployment, health data or alert for " + q.String()
	case 1:
		return matches[0], 1, ""
	}
	keys := make([]string, 0, len(matches))
	for _, m := range matches {
		keys = append(keys, m.Key.String())
	}
	sort.Strings(keys)
	return nil, len(keys), fmt.Sprintf("%s matches %d services (%s); add namespace and environment", q, len(keys), strings.Join(keys, ", "))
}

// verdict judges the deployment q names at now:
//   - fail when the recommendation (fresh health data or a firing alert of the
//     current deployment) is rollback, the health verdict is unhealthy, a
//     critical alert fires for the current deployment, or a caller's calls
//     into the service are harmed since its rollout began;
//   - pass when the health verdict is healthy and the deployment has been
//     observed for at least min_observation;
//   - inconclusive otherwise.
func (s *state) verdict(q query, now time.Time, g *GateConfig) verdictResult {
	v, why := s.lookup(q)
	if v == nil {
		return verdictResult{
			Verdict: verdictInconclusive, Service: q.Service, Namespace: q.Namespace, Environment: q.Environment,
			Recommendation: string(deployevent.RecommendNone), Reasons: []string{why},
		}
	}
	return verdictOf(v, s.alertsFor(v.Key), s.impacts()[v.Key], now, g)
}

// verdictOf judges view v, whose firing alerts are alerts and whose
// callers' edges counted against its current deployment are impacts (worst
// first).
func verdictOf(v *serviceView, alerts []*alertEntry, impacts []impact, now time.Time, g *GateConfig) verdictResult {
	r := verdictResult{Service: v.Key.Service, Recommendation: string(deployevent.RecommendNone), Reasons: []string{}}
	r.found = true
	r.Namespace, r.Environment = v.Key.Namespace, v.Key.Environment
	r.Phase = v.Phase
	if r.Phase == "" {
		r.Phase = string(deployevent.PhaseSteady)
	}
	r.Version = v.Version
	r.started = v.FirstSeen
	d := v.Deployment
	if d != nil {
		r.DeploymentID, r.PreviousVersion, r.State = d.ID, d.PreviousVersion, string(d.State)
		if d.Version != "" {
			r.Version = d.Version
		}
		r.started = d.StartedAt
	}
	r.StartedAt = r.started.UTC().Format(time.RFC3339)
	observed := max(now.Sub(r.started), 0)
	r.ObservedSeconds = observed.Seconds()

	h := v.effectiveHealth()
	fresh := h.known() && now.Sub(h.ReceivedAt) <= g.MaxHealthAge
	rec := deployevent.RecommendNone
	if h.known() {
		if !math.IsNaN(h.Score) {
			score := h.Score
			r.HealthScore = &score
		}
		r.HealthVerdict = string(h.Verdict)
	}
	if fresh {
		rec = deployevent.Stronger(rec, h.Recommendation)
	}

	var fails, notes []string
	var counted []*alertSignal // the firing alerts of the current deployment
	if fresh && h.Recommendation == deployevent.RecommendRollback {
		fails = append(fails, fmt.Sprintf("health recommendation is rollback (%s)", scoreText(h)))
	}
	// The judgement that raises the deployment's one alert fails its rollout:
	// unhealthy, or degraded while it rolls out (recommendation hold).
	switch {
	case !fresh:
	case h.Verdict == deployevent.VerdictUnhealthy:
		fails = append(fails, fmt.Sprintf("health verdict is unhealthy (%s)", scoreText(h)))
	case h.Recommendation == deployevent.RecommendHold:
		fails = append(fails, fmt.Sprintf("health verdict is %s (%s), recommendation hold", h.Verdict, scoreText(h)))
	}
	for _, e := range alerts {
		a := &e.Signal
		if d != nil && a.DeploymentID != "" && a.DeploymentID != d.ID {
			continue // about an earlier deployment
		}
		counted = append(counted, a)
		rec = deployevent.Stronger(rec, a.Recommendation)
		line := fmt.Sprintf("%s alert %s firing since %s: %s", a.Severity, a.Name, a.StartsAt.UTC().Format(time.RFC3339), a.Summary)
		switch {
		case a.Severity == deployevent.SeverityCritical:
			fails = append(fails, line)
		case a.Recommendation == deployevent.RecommendRollback:
			fails = append(fails, line+" (recommendation rollback)")
		default:
			notes = append(notes, line)
		}
	}
	// A caller's calls harmed since the rollout began fail it, even where
	// another gateway judged them (impact.go). An edge an alert of this
	// deployment already tells of (the processor saw both ends) is not told
	// twice.
	for i := range impacts {
		im := &impacts[i]
		rec = deployevent.Stronger(rec, im.recommendation())
		if !slices.ContainsFunc(counted, func(a *alertSignal) bool { return a.namesEdge(im.Edge) }) {
			fails = append(fails, im.reason())
		}
	}
	r.Recommendation = string(rec)

	switch {
	case len(fails) > 0:
		r.Verdict = verdictFail
		r.Reasons = append(r.Reasons, fails...)
	case fresh && h.Verdict == deployevent.VerdictHealthy && observed >= g.MinObservation:
		r.Verdict = verdictPass
		r.Reasons = append(r.Reasons, fmt.Sprintf("healthy (%s), observed %s (min_observation %s)", scoreText(h), observed.Round(time.Second), g.MinObservation))
	default:
		r.Verdict = verdictInconclusive
		switch {
		case !h.known():
			r.Reasons = append(r.Reasons, "no health data yet")
		case !fresh:
			r.Reasons = append(r.Reasons, fmt.Sprintf("health data is stale: last received %s ago (max_health_age %s)", now.Sub(h.ReceivedAt).Round(time.Second), g.MaxHealthAge))
		case h.Verdict == deployevent.VerdictHealthy:
			r.Reasons = append(r.Reasons, fmt.Sprintf("healthy (%s) but observed only %s of min_observation %s", scoreText(h), observed.Round(time.Second), g.MinObservation))
		default:
			r.Reasons = append(r.Reasons, fmt.Sprintf("health verdict is %s (%s)", h.Verdict, scoreText(h)))
		}
		if rec == deployevent.RecommendHold {
			r.hold = true
			r.Reasons = append(r.Reasons, "recommendation is hold")
		}
	}
	r.Reasons = append(r.Reasons, notes...)
	return r
}

// gateAllows applies the inconclusive policy for POST /v1/gate.
func gateAllows(r *verdictResult, now time.Time, g *GateConfig) bool {
	switch r.Verdict {
	case verdictPass:
		return true
	case verdictFail:
		return false
	}
	if r.hold {
		return false
	}
	if r.found && now.Sub(r.started) < g.InconclusivePassWindow {
		r.Reasons = append(r.Reasons, fmt.Sprintf("inconclusive within inconclusive_pass_window (%s) of the deployment start: pass", g.InconclusivePassWindow))
		return true
	}
	if g.Inconclusive == inconclusivePass {
		r.Reasons = append(r.Reasons, "inconclusive: pass (gate::inconclusive)")
		return true
	}
	r.Reasons = append(r.Reasons, "inconclusive: hold (gate::inconclusive)")
	return false
}

// scoreText is the score for a reason: "score 62.5", or "no score" while
// nothing is judged.
func scoreText(h *health) string {
	if math.IsNaN(h.Score) {
		return "no score"
	}
	return "score " + fmtNum(h.Score)
}
