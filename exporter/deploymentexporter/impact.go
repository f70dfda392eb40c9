// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Impact across gateways. Behind a load-balancing tier, the caller's gateway
// judges its calls to a dependency without knowing that the dependency
// deploys (the dependency's lifecycle events went to another gateway), so
// it judges the edge against its rolling baseline as a steady one. The
// exporter sees the whole judgement stream: it counts a caller's harmed
// calls into a deploying service against that service's deployment (its
// gate fails), and explains the caller's own alert by that rollout.

// attrExplainedBy carries, on an alert record queued for delivery (never in
// the pipeline), which dependency's rollout explains the alert's harm. It is
// set by the exporter when it queues the record, from its state at the time.
const attrExplainedBy = "deploylens.exporter.explained_by"

// Tolerances a band breach must also pass to count, the processor's own
// (health's tolRatioRelative, tolRatioAbsolute, tolLatencyRelative): an
// error ratio 1.5 times its baseline and 0.1 percentage point above it, a
// latency 10 % above it. A band around a tiny baseline is narrow, and one
// failed call must not fail another service's rollout.
const (
	impactRatioRelative   = 0.5
	impactRatioAbsolute   = 1e-3
	impactLatencyRelative = 0.1
)

// edgeHarm is what one evaluation of an edge says about its calls.
type edgeHarm struct {
	// Harmed: unhealthy, or an error ratio or latency above its band.
	Harmed bool
	// Unhealthy: the edge's score is below gate::impact_unhealthy_below.
	Unhealthy bool
	// Indicator is the indicator that words the harm (edgeErrorRatio, …),
	// -1 when no indicator has the numbers to.
	Indicator int
}

// breached reports whether indicator i is above its expected band (with its
// baseline known) and beyond the tolerance from its baseline.
func (e *edge) breached(i int) bool {
	n := &e.Indicators[i]
	if !finiteNum(n.Value) || !finiteNum(n.Baseline) || !finiteNum(n.Upper) || n.Value <= n.Upper {
		return false
	}
	switch i {
	case edgeErrorRatio:
		return n.Value > n.Baseline*(1+impactRatioRelative) && n.Value-n.Baseline >= impactRatioAbsolute
	case edgeLatencyP95:
		return n.Value > n.Baseline*(1+impactLatencyRelative)
	}
	return false
}

// harm judges the edge's latest evaluation. An edge is harmed when its
// score is below unhealthyBelow (the processor judged it unhealthy), or when
// its error ratio or latency is above the band its baseline expects: the
// caller's gateway judges the edge as steady, against a rolling baseline
// that learns the regression, so its score seldom falls far while the
// callee rolls out (see the README, "Impact across gateways").
func (e *edge) harm(unhealthyBelow float64) edgeHarm {
	h := edgeHarm{Indicator: -1}
	h.Unhealthy = finiteNum(e.Score) && e.Score < unhealthyBelow
	for _, i := range []int{edgeErrorRatio, edgeLatencyP95} {
		if e.breached(i) {
			h.Harmed = true
			if h.Indicator < 0 {
				h.Indicator = i
			}
		}
	}
	if !h.Unhealthy {
		return h
	}
	h.Harmed = true
	if h.Indicator >= 0 {
		return h
	}
	// Unhealthy with no band breached: word what moved most, else the error ratio.
	rate, ratio, latency := &e.Indicators[edgeRequestRate], &e.Indicators[edgeErrorRatio], &e.Indicators[edgeLatencyP95]
	switch {
	case finiteNum(ratio.Value) && finiteNum(ratio.Upper) && ratio.Value > ratio.Upper && finiteNum(ratio.Baseline):
		h.Indicator = edgeErrorRatio
	case finiteNum(latency.Value) && finiteNum(latency.Upper) && latency.Value > latency.Upper && finiteNum(latency.Baseline):
		h.Indicator = edgeLatencyP95
	case finiteNum(rate.Value) && finiteNum(rate.Lower) && rate.Value < rate.Lower && finiteNum(rate.Baseline):
		h.Indicator = edgeRequestRate
	case finiteNum(ratio.Value) && finiteNum(ratio.Baseline):
		h.Indicator = edgeErrorRatio
	}
	return h
}

// settle closes the edge's evaluation before a newer one replaces it: the
// start of a run of harmed evaluations is kept (HarmedSince), and cleared by
// one that is not harmed.
func (e *edge) settle(unhealthyBelow float64) {
	if !e.harm(unhealthyBelow).Harmed {
		e.HarmedSince = time.Time{}
		return
	}
	if e.HarmedSince.IsZero() {
		e.HarmedSince = e.At
	}
}

// deploying is v's current deployment while it rolls out or is in its post
// window (with a start time); nil otherwise.
func (v *serviceView) deploying() *deployment {
	d := v.Deployment
	if d == nil || d.StartedAt.IsZero() {
		return nil
	}
	switch deployevent.Phase(v.Phase) {
	case deployevent.PhaseDuring, deployevent.PhasePost:
		return d
	}
	return nil
}

// impact is a caller's edge counted against the deployment of the service
// it calls.
type impact struct {
	Edge   *edge
	Harm   edgeHarm
	Callee *serviceView
	// Deployment is the callee's current deployment; Since is when the
	// run of harmed evaluations the edge is in began.
	Deployment *deployment
	Since      time.Time
}

// impactOn is e's impact on callee, the service it resolves to: nil unless
// callee deploys, e was evaluated after its deployment started and e is
// harmed.
func (s *state) impactOn(e *edge, callee *serviceView) *impact {
	if callee == nil || callee.Key == e.Key.Caller {
		return nil
	}
	d := callee.deploying()
	if d == nil || !e.At.After(d.StartedAt) {
		return nil
	}
	h := e.harm(s.impactUnhealthyBelow)
	if !h.Harmed {
		return nil
	}
	since := e.HarmedSince
	if since.IsZero() {
		since = e.At
	}
	return &impact{Edge: e, Harm: h, Callee: callee, Deployment: d, Since: since}
}

// impacts lists, per deploying service, the edges into it counted against
// its deployment, worst first. Caller holds mu.
func (s *state) impacts() map[serviceKey][]impact {
	var out map[serviceKey][]impact
	var r *calleeResolver
	for _, e := range s.edges {
		if r == nil {
			r = s.calleeResolver()
		}
		if im := s.impactOn(e, r.callee(e.Key, e.Service)); im != nil {
			if out == nil {
				out = map[serviceKey][]impact{}
			}
			out[im.Callee.Key] = append(out[im.Callee.Key], *im)
		}
	}
	for _, list := range out {
		sortImpacts(list)
	}
	return out
}

// sortImpacts orders impacts worst first: unhealthy ones, then by score
// (unscored last), then by caller and dependency.
func sortImpacts(list []impact) {
	sort.Slice(list, func(i, j int) bool {
		a, b := &list[i], &list[j]
		if a.Harm.Unhealthy != b.Harm.Unhealthy {
			return a.Harm.Unhealthy
		}
		as, bs := finiteNum(a.Edge.Score), finiteNum(b.Edge.Score)
		if as != bs {
			return as
		}
		if as && a.Edge.Score != b.Edge.Score {
			return a.Edge.Score < b.Edge.Score
		}
		if a.Edge.Key.Caller != b.Edge.Key.Caller {
			return a.Edge.Key.Caller.String() < b.Edge.Key.Caller.String()
		}
		return a.Edge.Key.Dependency < b.Edge.Key.Dependency
	})
}

// recommendation is what an impact asks of the callee's rollout: rollback
// when the calls are unhealthy, hold otherwise.
func (im *impact) recommendation() deployevent.Recommendation {
	if im.Harm.Unhealthy {
		return deployevent.RecommendRollback
	}
	return deployevent.RecommendHold
}

// callText words the calls: "checkout's calls to payment fail 6.1 % vs
// 0.4 %", in the units the page uses.
func (im *impact) callText() string {
	e := im.Edge
	text := e.Key.Caller.Service + "'s calls to " + e.Key.Dependency + " "
	if im.Harm.Indicator < 0 {
		return text + "are unhealthy"
	}
	n := &e.Indicators[im.Harm.Indicator]
	u := unitOf(edgeIndicatorNames[im.Harm.Indicator])
	value, baseline := u.format(n.Value), u.format(n.Baseline)
	switch im.Harm.Indicator {
	case edgeErrorRatio:
		return text + "fail " + value + " vs " + baseline
	case edgeLatencyP95:
		return text + "take " + value + " vs " + baseline + " (p95)"
	}
	return text + "run at " + value + " vs " + baseline
}

// reason is the gate's reason: "checkout's calls to payment fail 6.1 % vs
// 0.4 % (edge score 12) since 10:42:10, 40 s after payment's rollout began".
func (im *impact) reason() string {
	var b strings.Builder
	b.WriteString(im.callText())
	if finiteNum(im.Edge.Score) {
		b.WriteString(" (edge score " + unitPlain.format(im.Edge.Score) + ")")
	}
	b.WriteString(" since " + im.Since.UTC().Format("15:04:05"))
	callee := im.Callee.Key.Service
	if after := im.Since.Sub(im.Deployment.StartedAt); after >= 0 {
		fmt.Fprintf(&b, ", %s after %s's rollout began", deployevent.ShortDuration(after), callee)
	} else {
		fmt.Fprintf(&b, ", before %s's rollout began", callee)
	}
	return b.String()
}

// explanation words the rollout that explains the caller's harm:
// "payment 2.3.0's rollout (deployment d-42): checkout's calls to payment
// fail 6.1 % vs 0.4 %".
func (im *impact) explanation() string {
	who := im.Callee.Key.Service
	if v := im.Deployment.Version; v != "" {
		who += " " + v
	}
	return fmt.Sprintf("%s's rollout (deployment %s): %s", who, im.Deployment.ID, im.callText())
}

// namesEdge reports whether alert a already tells of the calls of e: its
// evidence is about that edge, or its sentence words it.
func (a *alertSignal) namesEdge(e *edge) bool {
	for _, ev := range a.allEvidence() {
		if ev.Caller == e.Key.Caller.Service && ev.Dependency == e.Key.Dependency {
			return true
		}
	}
	return strings.Contains(a.Summary, e.Key.Caller.Service+"'s calls to "+e.Key.Dependency+" ")
}

// explainedAlready reports whether an alert's sentence says what explains it.
func explainedAlready(summary string) bool {
	return strings.Contains(strings.ToLower(summary), "explained by")
}

// explanation is, for a firing DeploymentRegression alert of service C that
// does not say what explains it, the rollout of a service C calls whose
// calls from C are harmed since that rollout began (the worst, "and N more"
// when several); empty otherwise. callees, when not nil, caches the callee
// resolver between calls that do not change the services. Caller holds mu.
func (s *state) explanation(a *alertSignal, callees **calleeResolver) string {
	if !a.firing() || a.Name != deployevent.AlertRegression || explainedAlready(a.Summary) {
		return ""
	}
	v := s.services[a.Key]
	if v == nil || len(v.Edges) == 0 {
		return ""
	}
	var r *calleeResolver
	switch {
	case callees == nil:
		r = s.calleeResolver()
	case *callees == nil:
		r = s.calleeResolver()
		*callees = r
	default:
		r = *callees
	}
	var found []impact
	for _, e := range v.Edges {
		if im := s.impactOn(e, r.callee(e.Key, e.Service)); im != nil {
			found = append(found, *im)
		}
	}
	if len(found) == 0 {
		return ""
	}
	sortImpacts(found)
	text := found[0].explanation()
	if more := len(found) - 1; more > 0 {
		text += fmt.Sprintf(" and %d more", more)
	}
	return text
}

// withExplanation is an alert record (in logs of its own) as it is queued
// for delivery: with attrExplainedBy when a dependency's rollout explains
// the alert now, without it otherwise (whatever the record came with). The
// record itself is never changed; callees is as for state.explanation.
// Caller holds mu.
func (c *core) withExplanation(a *alertSignal, record plog.Logs, callees **calleeResolver) plog.Logs {
	text := c.st.explanation(a, callees)
	_, had := record.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(attrExplainedBy)
	if text == "" && !had {
		return record
	}
	out := plog.NewLogs()
	record.CopyTo(out)
	attrs := out.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes()
	if text == "" {
		attrs.Remove(attrExplainedBy)
	} else {
		attrs.PutStr(attrExplainedBy, text)
	}
	return out
}

// explain records what explains a's harm and appends it to the sentence a
// person reads, unless that already says it.
func (a *alertSignal) explain(text string) {
	if text == "" {
		return
	}
	a.ExplainedBy = text
	if !explainedAlready(a.Summary) {
		a.Summary += "; explained by " + text
	}
}
