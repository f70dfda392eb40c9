// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	_ "embed"
	"html/template"
	"net/http"
	"sort"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

//go:embed statuspage.html
var statusPageHTML string

var statusPage = template.Must(template.New("status").Parse(statusPageHTML))

// maxRecent is how many finished deployments the page lists.
const maxRecent = 25

type statusSnapshot struct {
	GeneratedAt string             `json:"generated_at"`
	Active      []statusDeployment `json:"active"`
	Recent      []statusFinished   `json:"recent"`
	Alerts      []statusAlert      `json:"alerts"`
}

type statusDeployment struct {
	Key             string  `json:"key"`
	Service         string  `json:"service"`
	Namespace       string  `json:"namespace"`
	Environment     string  `json:"environment"`
	Phase           string  `json:"phase"`
	State           string  `json:"state"`
	Strategy        string  `json:"strategy"`
	DeploymentID    string  `json:"deployment_id"`
	Version         string  `json:"version"`
	PreviousVersion string  `json:"previous_version"`
	StartedAt       string  `json:"started_at"`
	DurationSeconds float64 `json:"duration_seconds"`
	// HealthScore is null while there is no score (no health data yet, or
	// the judgement is still learning or inconclusive); HealthScoreText is
	// then empty.
	HealthScore     *float64 `json:"health_score"`
	HealthScoreText string   `json:"health_score_text"`
	HealthVerdict   string   `json:"health_verdict"`
	// Recommendation is the deployment's one recommendation, the one the
	// gate acts on (POST /v1/gate/rollback rolls back on `rollback`).
	Recommendation string            `json:"recommendation"`
	Verdict        string            `json:"verdict"`
	Reasons        []string          `json:"reasons"`
	Scores         []statusPoint     `json:"scores"`
	Indicators     []statusIndicator `json:"indicators"`
}

// statusPoint is one point of a sparkline.
type statusPoint struct {
	At    string  `json:"at"`
	Value float64 `json:"value"`
}

// statusIndicator is an indicator's sparkline data, and its latest value and
// baseline as text with their unit.
type statusIndicator struct {
	Name      string        `json:"name"`
	Label     string        `json:"label"`
	Value     string        `json:"value"`
	Baseline  string        `json:"baseline"`
	Values    []statusPoint `json:"values"`
	Baselines []statusPoint `json:"baselines"`
}

type statusFinished struct {
	Service         string  `json:"service"`
	Namespace       string  `json:"namespace"`
	Environment     string  `json:"environment"`
	DeploymentID    string  `json:"deployment_id"`
	Version         string  `json:"version"`
	PreviousVersion string  `json:"previous_version"`
	Outcome         string  `json:"outcome"`
	StartedAt       string  `json:"started_at"`
	EndedAt         string  `json:"ended_at"`
	DurationSeconds float64 `json:"duration_seconds"`
}

// statusAlert is a firing alert, listed under the deployment it is about
// (Key and DeploymentID) with its evidence as text. It carries no
// recommendation of its own: the deployment's is the one to act on.
type statusAlert struct {
	Fingerprint  string `json:"fingerprint"`
	Alertname    string `json:"alertname"`
	Severity     string `json:"severity"`
	Key          string `json:"key"`
	Service      string `json:"service"`
	Namespace    string `json:"namespace"`
	Environment  string `json:"environment"`
	Version      string `json:"version"`
	DeploymentID string `json:"deployment_id"`
	Summary      string `json:"summary"`
	Evidence     string `json:"evidence"`
	StartsAt     string `json:"starts_at"`
}

// points is a ring's values for a sparkline, oldest first; values that are
// not numbers (a score withheld while the judgement is inconclusive) are left
// out, so a line never ramps from a made-up 0.
func points(tv []timedValue) []statusPoint {
	out := make([]statusPoint, 0, len(tv))
	for _, v := range tv {
		if finiteNum(v.Value) {
			out = append(out, statusPoint{At: time.Unix(0, v.At).UTC().Format(time.RFC3339Nano), Value: v.Value})
		}
	}
	return out
}

// lastText is the latest point's value in unit u, "" without points.
func lastText(ps []statusPoint, u unit) string {
	if len(ps) == 0 {
		return ""
	}
	return u.format(ps[len(ps)-1].Value)
}

// active reports whether a view is in a deployment: running, or in its
// post-deployment validation window.
func (v *serviceView) active() bool {
	switch deployevent.Phase(v.Phase) {
	case deployevent.PhasePre, deployevent.PhaseDuring, deployevent.PhasePost:
		return true
	}
	return v.Deployment != nil && !v.Deployment.State.Final() && v.Phase == ""
}

// snapshot builds the status page's data. Caller holds mu.
func (s *state) snapshot(now time.Time, g *GateConfig) statusSnapshot {
	snap := statusSnapshot{GeneratedAt: now.UTC().Format(time.RFC3339), Active: []statusDeployment{}, Recent: []statusFinished{}, Alerts: []statusAlert{}}
	entries := make([]*alertEntry, 0, len(s.alerts))
	for _, e := range s.alerts {
		entries = append(entries, e)
	}
	sortAlerts(entries)
	impacts := s.impacts()
	byKey := map[serviceKey][]*alertEntry{}
	for _, e := range entries {
		byKey[e.Signal.Key] = append(byKey[e.Signal.Key], e)
	}
	for _, v := range s.services {
		for _, f := range v.History.slice() {
			snap.Recent = append(snap.Recent, statusFinished{
				Service: f.Key.Service, Namespace: f.Key.Namespace, Environment: f.Key.Environment,
				DeploymentID: f.ID, Version: f.Version, PreviousVersion: f.PreviousVersion, Outcome: f.Outcome,
				StartedAt: rfc3339(f.StartedAt), EndedAt: rfc3339(f.EndedAt), DurationSeconds: f.EndedAt.Sub(f.StartedAt).Seconds(),
			})
		}
		if !v.active() {
			continue
		}
		vr := verdictOf(v, byKey[v.Key], impacts[v.Key], now, g)
		sd := statusDeployment{
			Key: v.Key.String(), Service: v.Key.Service, Namespace: v.Key.Namespace, Environment: v.Key.Environment,
			Phase: vr.Phase, State: vr.State, DeploymentID: vr.DeploymentID, Version: vr.Version, PreviousVersion: vr.PreviousVersion,
			StartedAt: vr.StartedAt, DurationSeconds: vr.ObservedSeconds, HealthVerdict: vr.HealthVerdict,
			Recommendation: vr.Recommendation, Verdict: vr.Verdict, Reasons: vr.Reasons,
			Scores: points(v.Scores.slice()), Indicators: []statusIndicator{},
		}
		if sc := vr.HealthScore; sc != nil && finiteNum(*sc) {
			sd.HealthScore, sd.HealthScoreText = sc, unitPlain.format(*sc)
		}
		if d := v.Deployment; d != nil {
			sd.Strategy = d.Strategy
			if d.State.Final() {
				sd.DurationSeconds = d.EndedAt.Sub(d.StartedAt).Seconds()
			}
		}
		names := make([]string, 0, len(v.Indicators))
		for name := range v.Indicators {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			ind, u := v.Indicators[name], unitOf(name)
			si := statusIndicator{Name: name, Label: indicatorLabel(name), Values: points(ind.Values.slice()), Baselines: points(ind.Baselines.slice())}
			si.Value, si.Baseline = lastText(si.Values, u), lastText(si.Baselines, u)
			sd.Indicators = append(sd.Indicators, si)
		}
		snap.Active = append(snap.Active, sd)
	}
	sort.Slice(snap.Active, func(i, j int) bool { return snap.Active[i].Key < snap.Active[j].Key })
	sort.Slice(snap.Recent, func(i, j int) bool { return snap.Recent[i].EndedAt > snap.Recent[j].EndedAt })
	if len(snap.Recent) > maxRecent {
		snap.Recent = snap.Recent[:maxRecent]
	}
	for _, e := range entries {
		a := &e.Signal
		snap.Alerts = append(snap.Alerts, statusAlert{
			Fingerprint: a.Fingerprint, Alertname: a.Name, Severity: a.Severity, Key: a.Key.String(),
			Service: a.Key.Service, Namespace: a.Key.Namespace, Environment: a.Key.Environment,
			Version: a.Version, DeploymentID: a.DeploymentID, Summary: a.Summary,
			Evidence: a.evidenceText((*evidence).display), StartsAt: rfc3339(a.StartsAt),
		})
	}
	// Grouped by deployment (the page lists them under it), oldest first within.
	sort.SliceStable(snap.Alerts, func(i, j int) bool {
		ai, aj := &snap.Alerts[i], &snap.Alerts[j]
		if ai.Key != aj.Key {
			return ai.Key < aj.Key
		}
		return ai.DeploymentID < aj.DeploymentID
	})
	return snap
}

// handleStatus answers GET /v1/status, the page's data.
func (g *gateServer) handleStatus(w http.ResponseWriter, _ *http.Request) {
	now := g.c.now()
	g.c.mu.Lock()
	snap := g.c.st.snapshot(now, g.cfg)
	g.c.mu.Unlock()
	writeJSON(w, http.StatusOK, snap)
}

// handlePage serves the status page: one self-contained HTML document (no
// external assets) that polls /v1/status.
func (g *gateServer) handlePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
	_ = statusPage.Execute(w, map[string]any{"RefreshMillis": g.cfg.StatusRefreshInterval.Milliseconds()})
}
