// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"context"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// gateImpactPrefix starts the fingerprints of the impact alerts the gate
// tier raises itself.
const gateImpactPrefix = "gate-impact/"

// raisedImpact is an impact alert the gate tier raised: the record it sent,
// kept to resolve it.
type raisedImpact struct {
	res      pcommon.Resource
	record   plog.LogRecord
	holder   plog.Logs
	startsAt time.Time
}

// impactAlerts raises the DependencyDeploymentImpact alert of each caller
// whose calls into a deploying service count against that deployment — the
// caller's gateway cannot, as it does not know that the callee deploys — and
// resolves those it raised once the calls no longer do. A caller for which
// the processor raised the alert itself (one collector: it knew) gets none
// from here. Caller holds mu.
func (c *core) impactAlerts(ctx context.Context, now time.Time, out batches) {
	want := map[string]impact{}
	for _, list := range c.st.impacts() {
		for _, im := range list {
			fp := gateImpactPrefix + im.Edge.Key.Caller.String() + "/" + im.Edge.Key.Dependency + "/" + im.Deployment.ID
			if _, ok := want[fp]; !ok && !c.processorRaisedImpact(im.Edge.Key.Caller) {
				want[fp] = im
			}
		}
	}
	fps := make([]string, 0, len(want))
	for fp := range want {
		fps = append(fps, fp)
	}
	sort.Strings(fps)
	for _, fp := range fps {
		if _, ok := c.raised[fp]; ok {
			continue // firing; re-sent by the tick like every stored alert
		}
		im := want[fp]
		r := newImpactRecord(&im, fp, now)
		c.raised[fp] = r
		c.routeRecord(ctx, r, now, out)
	}
	gone := make([]string, 0)
	for fp := range c.raised {
		if _, ok := want[fp]; !ok {
			gone = append(gone, fp)
		}
	}
	sort.Strings(gone)
	for _, fp := range gone {
		r := c.raised[fp]
		delete(c.raised, fp)
		a := r.record.Attributes()
		a.PutStr(deployevent.AttrAlertState, deployevent.AlertResolved)
		a.PutStr(deployevent.AttrAlertEndedAt, now.UTC().Format(time.RFC3339Nano))
		r.record.SetTimestamp(pcommon.NewTimestampFromTime(now))
		r.record.SetSeverityNumber(plog.SeverityNumberInfo)
		c.routeRecord(ctx, r, now, out)
	}
}

// processorRaisedImpact tells whether a processor's own impact alert fires for caller.
func (c *core) processorRaisedImpact(caller serviceKey) bool {
	for _, e := range c.st.alertsFor(caller) {
		if e.Signal.Name == deployevent.AlertDependencyImpact && e.Signal.firing() && !isGateImpact(e.Signal.Fingerprint) {
			return true
		}
	}
	return false
}

func isGateImpact(fp string) bool { return strings.HasPrefix(fp, gateImpactPrefix) }

// newImpactRecord is the alert record of an impact, as the processor words
// its own: "checkout in production: calls to payment fail 6.1 %
// vs 0.4 %, explained by payment 2.3.0's rollout (deployment d-42) since 10:42".
func newImpactRecord(im *impact, fp string, now time.Time) *raisedImpact {
	r := &raisedImpact{holder: plog.NewLogs(), startsAt: im.Since}
	rl := r.holder.ResourceLogs().AppendEmpty()
	r.res = rl.Resource()
	caller := im.Edge.Key.Caller
	ra := r.res.Attributes()
	ra.PutStr(deployevent.AttrServiceName, caller.Service)
	if caller.Namespace != "" {
		ra.PutStr(deployevent.AttrServiceNamespace, caller.Namespace)
	}
	if caller.Environment != "" {
		ra.PutStr(deployevent.AttrEnvironment, caller.Environment)
	}
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	r.record = lr
	lr.SetEventName(deployevent.AlertEventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	where := caller.Service
	if caller.Environment != "" {
		where += " in " + caller.Environment
	}
	lr.Body().SetStr(where + ": " + strings.TrimPrefix(im.callText(), caller.Service+"'s ") + ", explained by " + rolloutText(im) + " since " + im.Since.UTC().Format("15:04") +
		"; recommendation: " + string(deployevent.RecommendInvestigate))
	a := lr.Attributes()
	a.PutStr(deployevent.AttrAlertName, deployevent.AlertDependencyImpact)
	a.PutStr(deployevent.AttrAlertState, deployevent.AlertFiring)
	a.PutStr(deployevent.AttrAlertSeverity, deployevent.SeverityWarning)
	a.PutStr(deployevent.AttrAlertFingerprint, fp)
	a.PutStr(deployevent.AttrAlertRecommendation, string(deployevent.RecommendInvestigate))
	a.PutStr(deployevent.AttrAlertStartedAt, im.Since.UTC().Format(time.RFC3339Nano))
	a.PutStr(deployevent.AttrDependencyCallee, im.Edge.Key.Dependency)
	return r
}

// rolloutText names the callee's deployment: "payment 2.3.0's rollout (deployment d-42)".
func rolloutText(im *impact) string {
	who := im.Callee.Key.Service
	if v := im.Deployment.Version; v != "" {
		who += " " + v
	}
	return who + "'s rollout (deployment " + im.Deployment.ID + ")"
}

// routeRecord routes a record the gate tier wrote as if it had come down the pipeline.
func (c *core) routeRecord(ctx context.Context, r *raisedImpact, now time.Time, out batches) {
	single := plog.NewLogs()
	r.holder.CopyTo(single)
	rl := single.ResourceLogs().At(0)
	a, err := parseAlert(rl.Resource(), rl.ScopeLogs().At(0).LogRecords().At(0), now)
	if err != nil {
		return // written above with every required field
	}
	c.routeSignal(ctx, &a, single, now, out)
}
