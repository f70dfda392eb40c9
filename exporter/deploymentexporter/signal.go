// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// serviceKey identifies a deployed thing, as the gate is asked about it.
type serviceKey struct {
	Namespace   string
	Service     string
	Environment string
}

func (k serviceKey) String() string {
	return k.Namespace + "/" + k.Service + "/" + k.Environment
}

// evidence is what an alert is based on; nil numbers were not given.
type evidence struct {
	Indicator    string   `json:"indicator,omitempty"`
	Value        *float64 `json:"value,omitempty"`
	Baseline     *float64 `json:"baseline,omitempty"`
	Lower        *float64 `json:"lower,omitempty"`
	Upper        *float64 `json:"upper,omitempty"`
	AnomalyScore *float64 `json:"anomaly_score,omitempty"`
	Confidence   *float64 `json:"confidence,omitempty"`
	Test         string   `json:"test,omitempty"`
	// Caller and Dependency name the edge of the service graph the evidence
	// is about (deployment.dependency.caller and .name), when it is one.
	Caller     string `json:"-"`
	Dependency string `json:"-"`
}

func (e *evidence) empty() bool {
	return e.Indicator == "" && e.Value == nil && e.Baseline == nil && e.Lower == nil && e.Upper == nil &&
		e.AnomalyScore == nil && e.Confidence == nil && e.Test == ""
}

// alertSignal is a deployment.alert log record read back into Go.
type alertSignal struct {
	Name           string
	State          string // firing | resolved
	Severity       string
	Fingerprint    string
	Recommendation deployevent.Recommendation
	Summary        string // the record body: one sentence a person can act on

	Key             serviceKey
	Version         string
	DeploymentID    string
	PreviousVersion string
	Phase           string
	Revision        string

	// StartsAt is when the alert first fired; EndsAt when a resolved alert
	// stopped firing. SignalledAt is when this record was written.
	StartsAt    time.Time
	EndsAt      time.Time
	SignalledAt time.Time

	// Evidence is what a per-indicator alert rests on; Evidences, what an
	// alert about a whole deployment rests on (alert.evidence), strongest first.
	Evidence      evidence
	Evidences     []evidence
	HealthScore   *float64
	HealthVerdict string
	// PreviousSeverity is set on the signal that changed a firing alert's
	// severity in place: the old Alertmanager label set is resolved at once.
	PreviousSeverity string
	// Reason says why a resolved alert was resolved when its condition did
	// not simply stop holding (alert.reason: "service stopped reporting").
	Reason string
	// ExplainedBy is, on a firing alert being delivered, the rollout of a
	// dependency that explains its harm, as the exporter correlated it
	// (impact.go); Summary then ends with "; explained by " and it.
	ExplainedBy string
}

// allEvidence is every piece of evidence the alert carries, strongest first.
func (a *alertSignal) allEvidence() []evidence {
	if len(a.Evidences) > 0 {
		return a.Evidences
	}
	if !a.Evidence.empty() {
		return []evidence{a.Evidence}
	}
	return nil
}

// evidenceText joins every piece of evidence's text with "; ".
func (a *alertSignal) evidenceText(text func(*evidence) string) string {
	all := a.allEvidence()
	parts := make([]string, 0, len(all))
	for i := range all {
		if t := text(&all[i]); t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "; ")
}

func (a *alertSignal) firing() bool { return a.State == deployevent.AlertFiring }

func isAlert(lr plog.LogRecord) bool { return lr.EventName() == deployevent.AlertEventName }

// parseAlert reads an alert signal. now stands in for missing timestamps.
// It fails only when the record cannot be delivered meaningfully.
func parseAlert(res pcommon.Resource, lr plog.LogRecord, now time.Time) (alertSignal, error) {
	ra := res.Attributes()
	la := lr.Attributes()
	a := alertSignal{
		Name:        str(la, deployevent.AttrAlertName),
		State:       strings.ToLower(str(la, deployevent.AttrAlertState)),
		Severity:    strings.ToLower(str(la, deployevent.AttrAlertSeverity)),
		Fingerprint: str(la, deployevent.AttrAlertFingerprint),
		Summary:     lr.Body().AsString(),
		Key: serviceKey{
			Namespace:   first(ra, la, deployevent.AttrServiceNamespace),
			Service:     first(ra, la, deployevent.AttrServiceName),
			Environment: first(ra, la, deployevent.AttrEnvironment),
		},
		Version:          first(ra, la, deployevent.AttrServiceVersion),
		DeploymentID:     str(la, deployevent.AttrDeploymentID),
		PreviousVersion:  str(la, deployevent.AttrPreviousVersion),
		Phase:            str(la, deployevent.AttrDeploymentPhase),
		Revision:         str(la, deployevent.AttrRevision),
		Evidence:         evidenceOf(la),
		HealthScore:      num(la, deployevent.AttrHealthScore),
		HealthVerdict:    str(la, deployevent.AttrHealthVerdict),
		PreviousSeverity: strings.ToLower(str(la, deployevent.AttrAlertPreviousSeverity)),
		Reason:           str(la, deployevent.AttrAlertReason),
	}
	if list, ok := la.Get(deployevent.AttrAlertEvidence); ok && list.Type() == pcommon.ValueTypeSlice {
		for i := 0; i < list.Slice().Len() && len(a.Evidences) < maxEvidence; i++ {
			if item := list.Slice().At(i); item.Type() == pcommon.ValueTypeMap {
				if ev := evidenceOf(item.Map()); !ev.empty() {
					a.Evidences = append(a.Evidences, ev)
				}
			}
		}
	}
	if a.Name == "" {
		return a, fmt.Errorf("missing %s", deployevent.AttrAlertName)
	}
	if a.Key.Service == "" {
		return a, fmt.Errorf("missing %s", deployevent.AttrServiceName)
	}
	if a.State != deployevent.AlertFiring && a.State != deployevent.AlertResolved {
		return a, fmt.Errorf("invalid %s %q", deployevent.AttrAlertState, a.State)
	}
	if a.Severity == "" {
		a.Severity = severityFromLog(lr.SeverityNumber())
	}
	a.Recommendation = deployevent.Recommendation(strings.ToLower(str(la, deployevent.AttrAlertRecommendation)))
	if a.Recommendation == "" {
		a.Recommendation = deployevent.RecommendNone
	}

	switch {
	case lr.Timestamp() != 0:
		a.SignalledAt = lr.Timestamp().AsTime()
	case lr.ObservedTimestamp() != 0:
		a.SignalledAt = lr.ObservedTimestamp().AsTime()
	default:
		a.SignalledAt = now
	}
	a.StartsAt = timeAttr(la, deployevent.AttrAlertStartedAt, a.SignalledAt)
	if !a.firing() {
		a.EndsAt = timeAttr(la, deployevent.AttrAlertEndedAt, a.SignalledAt)
	}
	if a.Fingerprint == "" {
		// The contract makes it required; derive a stable one rather than lose the alert.
		a.Fingerprint = deriveFingerprint(&a)
	}
	if a.Summary == "" {
		a.Summary = a.Name + " on " + a.Key.Service
	}
	return a, nil
}

// maxEvidence bounds the evidence read from one record (one per indicator in practice).
const maxEvidence = 32

// evidenceOf reads the indicator.* and anomaly.* keys of a map.
func evidenceOf(m pcommon.Map) evidence {
	return evidence{
		Indicator:    str(m, deployevent.AttrIndicatorName),
		Value:        num(m, deployevent.AttrIndicatorValue),
		Baseline:     num(m, deployevent.AttrIndicatorBaseline),
		Lower:        num(m, deployevent.AttrIndicatorLower),
		Upper:        num(m, deployevent.AttrIndicatorUpper),
		AnomalyScore: num(m, deployevent.AttrAnomalyScore),
		Confidence:   num(m, deployevent.AttrAnomalyConfidence),
		Test:         str(m, deployevent.AttrAnomalyTest),
		Caller:       str(m, deployevent.AttrDependencyCaller),
		Dependency:   str(m, deployevent.AttrDependencyCallee),
	}
}

func deriveFingerprint(a *alertSignal) string {
	h := sha256.New()
	for _, p := range []string{a.Name, a.Key.Namespace, a.Key.Service, a.Key.Environment, a.DeploymentID, a.Evidence.Indicator} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// severityFromLog maps the record severity the contract pairs with each
// alert.severity (WARN info, ERROR warning, FATAL critical) back, for records
// that omit alert.severity.
func severityFromLog(n plog.SeverityNumber) string {
	switch {
	case n >= plog.SeverityNumberFatal:
		return deployevent.SeverityCritical
	case n >= plog.SeverityNumberError:
		return deployevent.SeverityWarning
	default:
		return deployevent.SeverityInfo
	}
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func first(a, b pcommon.Map, k string) string {
	if v := str(a, k); v != "" {
		return v
	}
	return str(b, k)
}

func num(m pcommon.Map, k string) *float64 {
	v, ok := m.Get(k)
	if !ok {
		return nil
	}
	var f float64
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		f = v.Double()
	case pcommon.ValueTypeInt:
		f = float64(v.Int())
	case pcommon.ValueTypeStr:
		p, err := strconv.ParseFloat(v.Str(), 64)
		if err != nil {
			return nil
		}
		f = p
	default:
		return nil
	}
	if !finiteNum(f) {
		return nil
	}
	return &f
}

func timeAttr(m pcommon.Map, k string, fallback time.Time) time.Time {
	if s := str(m, k); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t
		}
	}
	return fallback
}

// fmtNum prints a number with at most 6 significant digits, never in
// exponent form.
func fmtNum(v float64) string {
	r, err := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	if err != nil {
		r = v
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// evidenceText is the evidence as `key=value` pairs, readable in
// Alertmanager's UI and easy to parse.
func (e *evidence) text() string {
	var parts []string
	add := func(k string, v *float64) {
		if v != nil {
			parts = append(parts, k+"="+fmtNum(*v))
		}
	}
	if e.Indicator != "" {
		parts = append(parts, "indicator="+e.Indicator)
	}
	add("value", e.Value)
	add("baseline", e.Baseline)
	if e.Lower != nil && e.Upper != nil {
		parts = append(parts, "expected=["+fmtNum(*e.Lower)+", "+fmtNum(*e.Upper)+"]")
	} else {
		add("lower", e.Lower)
		add("upper", e.Upper)
	}
	add("anomaly_score", e.AnomalyScore)
	add("confidence", e.Confidence)
	if e.Test != "" {
		parts = append(parts, "test="+e.Test)
	}
	return strings.Join(parts, " ")
}

// description is a few sentences with the deployment context and evidence.
func (a *alertSignal) description() string {
	var b strings.Builder
	b.WriteString(a.Key.Service)
	if a.Version != "" {
		b.WriteString(" " + a.Version)
	}
	if a.PreviousVersion != "" {
		b.WriteString(" (previous " + a.PreviousVersion + ")")
	}
	if a.Key.Environment != "" {
		b.WriteString(" in " + a.Key.Environment)
	}
	if a.Key.Namespace != "" {
		b.WriteString(", namespace " + a.Key.Namespace)
	}
	if a.Phase != "" {
		b.WriteString(", phase " + a.Phase)
	}
	if a.DeploymentID != "" {
		b.WriteString(", deployment " + a.DeploymentID)
	}
	b.WriteString(".")
	if ev := a.evidenceText((*evidence).display); ev != "" {
		b.WriteString(" " + ev + ".")
	}
	if a.Recommendation != "" && a.Recommendation != deployevent.RecommendNone {
		b.WriteString(" Recommendation: " + string(a.Recommendation) + ".")
	}
	if a.ExplainedBy != "" {
		b.WriteString(" Explained by " + a.ExplainedBy + ".")
	}
	return b.String()
}
