// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package alerts turns what the processor concludes about a service (health
// verdicts, indicator regressions, failed or stuck deployments, user rules)
// into deployment.alert signals: firing once when a condition starts, re-sent
// on an interval while it holds (so a restarted receiver learns it), resolved
// when it stops or the deployment is rolled back; one stable fingerprint per
// alert, never two firing signals for one alert in one interval. It knows
// nothing of the collector beyond writing the signal as a log record.
package alerts // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/lru"
)

// ReasonStoppedReporting is the alert.reason of the alerts resolved because
// their service was forgotten (idle for idle_ttl, or evicted at max_services):
// no data means no judgement, and a receiver must not page on forever.
const ReasonStoppedReporting = "service stopped reporting"

// Built-in alert names (alert.name).
const (
	// Regression is the one alert of a deployment (or service) judged
	// harmful: degraded or unhealthy, for the service or its canary. Its
	// severity changes in place; its evidence lists every indicator.
	Regression = deployevent.AlertRegression
	// IndicatorRegression is one alert per indicator, opt-in
	// (signals::alerts::per_indicator).
	IndicatorRegression = deployevent.AlertIndicatorRegression
	// DeploymentFailed and DeploymentStuck are facts, not judgements: alerts of their own.
	DeploymentFailed = deployevent.AlertDeploymentFailed
	DeploymentStuck  = deployevent.AlertDeploymentStuck
	// DependencyImpact is a service's calls to a deploying dependency
	// regressing: named after the dependency's deployment, which answers for it.
	DependencyImpact = deployevent.AlertDependencyImpact
)

// IsJudgement tells whether an alert is deploylens's judgement of the
// telemetry (as opposed to a fact a deployment tool reported or a timeout).
func IsJudgement(name string) bool { return deployevent.IsJudgement(name) }

// Key identifies a tracked service.
type Key struct {
	Namespace, Service, Environment string
}

// Context is the deployment an alert is about.
type Context struct {
	Key
	DeploymentID    string
	Version         string
	PreviousVersion string
	Phase           string
	Revision        string
	// DeploymentStart is when the rollout began (zero when unknown).
	DeploymentStart time.Time
}

// Evidence is what an indicator alert rests on.
type Evidence struct {
	Indicator    string
	Observed     float64
	Baseline     float64
	Lower, Upper float64
	AnomalyScore float64
	Confidence   float64
	Test         string
	// Unit says how to print the values: "ratio" (as %), "seconds", "rate" (/s) or "".
	Unit string
	// Caller and Callee are set on the evidence of an edge of the service
	// graph: Caller's calls to Callee.
	Caller, Callee string
}

// Condition is one alert's state as the processor sees it in an evaluation.
type Condition struct {
	Name     string // alert.name
	Severity string // info | warning | critical
	// Recommendation is none | investigate | hold | rollback.
	Recommendation deployevent.Recommendation
	// Indicator distinguishes per-indicator alerts of one name.
	Indicator string
	Active    bool
	// Evidence is what a per-indicator alert rests on; Evidences, strongest
	// first, what an alert about the whole deployment rests on.
	Evidence  *Evidence
	Evidences []Evidence
	// Detail is an optional clause for the body ("stuck for 1h12m").
	Detail string
}

// Signal is one deployment.alert record to emit.
type Signal struct {
	Context
	Name, State, Severity, Fingerprint string
	Recommendation                     deployevent.Recommendation
	Evidence                           *Evidence
	Evidences                          []Evidence
	// PreviousSeverity is set on the one signal that changes the severity of a firing alert.
	PreviousSeverity         string
	StartedAt, EndedAt, Time time.Time
	Body                     string
	// Reason says why a resolved alert was resolved when its condition did
	// not simply stop holding (alert.reason); empty otherwise.
	Reason string `json:",omitempty"`
}

// Config bounds the engine.
type Config struct {
	// ResendInterval re-sends a firing alert while it holds.
	ResendInterval time.Duration
	// MaxAlerts bounds the alerts remembered (firing or recently resolved).
	MaxAlerts int
}

type alertState struct {
	signal   Signal
	lastSent time.Time
	firing   bool
}

// Engine remembers the alerts of every service. Safe for concurrent use.
// Every operation costs O(1) or O(alerts of one service): alerts are indexed
// by service, and resolved ones (the only evictable) are in resolve order.
type Engine struct {
	cfg       Config
	mu        sync.Mutex
	alerts    map[string]*alertState
	byService map[Key]map[string]*alertState
	// resolved orders the fingerprints of resolved alerts, oldest first.
	resolved *lru.Order[string]
	dropped  int64
}

// New returns an engine.
func New(cfg Config) *Engine {
	if cfg.ResendInterval <= 0 {
		cfg.ResendInterval = time.Minute
	}
	if cfg.MaxAlerts <= 0 {
		cfg.MaxAlerts = 10000
	}
	return &Engine{cfg: cfg, alerts: map[string]*alertState{}, byService: map[Key]map[string]*alertState{}, resolved: lru.New[string]()}
}

func (e *Engine) add(st *alertState) {
	fp := st.signal.Fingerprint
	e.alerts[fp] = st
	m := e.byService[st.signal.Key]
	if m == nil {
		m = map[string]*alertState{}
		e.byService[st.signal.Key] = m
	}
	m[fp] = st
	if !st.firing {
		e.resolved.Touch(fp)
	}
}

func (e *Engine) remove(fp string) {
	st := e.alerts[fp]
	if st == nil {
		return
	}
	delete(e.alerts, fp)
	if m := e.byService[st.signal.Key]; m != nil {
		delete(m, fp)
		if len(m) == 0 {
			delete(e.byService, st.signal.Key)
		}
	}
	e.resolved.Remove(fp)
}

// Fingerprint is stable per alert: name, service key, deployment and indicator.
func Fingerprint(ctx Context, name, indicator string) string {
	h := sha256.New()
	for _, p := range []string{name, ctx.Namespace, ctx.Service, ctx.Environment, ctx.DeploymentID, indicator} {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Evaluate updates the alerts of one service from its conditions at now and
// returns the signals to emit: new firing alerts, re-sends that are due, and
// resolutions. A condition not listed is left as it is.
func (e *Engine) Evaluate(ctx Context, conds []Condition, now time.Time) []Signal {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Signal
	for _, c := range conds {
		fp := Fingerprint(ctx, c.Name, c.Indicator)
		st, known := e.alerts[fp]
		switch {
		case c.Active && (!known || !st.firing):
			if !known && len(e.alerts) >= e.cfg.MaxAlerts && !e.evictResolved() {
				e.dropped++
				continue
			}
			if known {
				e.remove(fp)
			}
			st = &alertState{firing: true, lastSent: now}
			st.signal = Signal{Context: ctx, Name: c.Name, State: deployevent.AlertFiring, Severity: c.Severity,
				Fingerprint: fp, Recommendation: c.Recommendation, Evidence: c.Evidence, Evidences: c.Evidences, StartedAt: now, Time: now}
			st.signal.Body = body(&st.signal, c.Detail)
			e.add(st)
			out = append(out, st.signal)
		case c.Active:
			// Still firing: refresh the evidence, re-send (with a fresh body)
			// when due, and at once when the severity changed in place.
			previous := st.signal.Severity
			st.signal.Context, st.signal.Evidence, st.signal.Evidences, st.signal.Severity = ctx, c.Evidence, c.Evidences, c.Severity
			st.signal.Recommendation = c.Recommendation
			changed := previous != c.Severity
			if changed || now.Sub(st.lastSent) >= e.cfg.ResendInterval {
				st.lastSent = now
				st.signal.Time = now
				st.signal.Body = body(&st.signal, c.Detail)
				sig := st.signal
				if changed {
					sig.PreviousSeverity = previous
				}
				out = append(out, sig)
			}
		case known && st.firing:
			out = append(out, e.resolve(st, now, ""))
		}
	}
	return out
}

func (e *Engine) resolve(st *alertState, now time.Time, reason string) Signal {
	st.firing = false
	st.lastSent = now
	st.signal.State = deployevent.AlertResolved
	st.signal.EndedAt = now
	st.signal.Time = now
	st.signal.Reason = reason
	st.signal.Body = resolvedBody(&st.signal)
	e.resolved.Touch(st.signal.Fingerprint)
	return st.signal
}

// ResolveService resolves every firing alert of a service (its deployment was
// rolled back, or it is no longer tracked), saying why when reason is set.
func (e *Engine) ResolveService(key Key, now time.Time, reason string) []Signal {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Signal
	for _, st := range e.byService[key] {
		if st.firing {
			out = append(out, e.resolve(st, now, reason))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out
}

// Firing lists the firing alerts of a service, for the health snapshot.
func (e *Engine) Firing(key Key) []Signal {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Signal
	for _, st := range e.byService[key] {
		if st.firing {
			out = append(out, st.signal)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Fingerprint < out[j].Fingerprint })
	return out
}

// Sweep forgets resolved alerts older than keep, oldest first: it costs
// the alerts it forgets, not all the alerts remembered.
func (e *Engine) Sweep(now time.Time, keep time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		fp, ok := e.resolved.Oldest()
		if !ok || now.Sub(e.alerts[fp].lastSent) <= keep {
			return
		}
		e.remove(fp)
	}
}

// evictResolved forgets the alert resolved longest ago, in O(1).
func (e *Engine) evictResolved() bool {
	fp, ok := e.resolved.Oldest()
	if !ok {
		return false
	}
	e.remove(fp)
	return true
}

// EachService calls fn with every service that has an alert remembered.
func (e *Engine) EachService(fn func(Key)) {
	eachKey(&e.mu, e.byService, func(k Key) Key { return k }, fn)
}

// eachKey copies the services of m under mu, then calls fn with each once
// mu is released (fn may call back into the owner).
func eachKey[K comparable, V any](mu *sync.Mutex, m map[K]V, service func(K) Key, fn func(Key)) {
	mu.Lock()
	keys := make([]Key, 0, len(m))
	for k := range m {
		keys = append(keys, service(k))
	}
	mu.Unlock()
	for _, k := range keys {
		fn(k)
	}
}

// Services is the number of services with an alert remembered.
func (e *Engine) Services() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.byService)
}

// Len is the number of alerts remembered; Dropped counts alerts refused at the limit.
func (e *Engine) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.alerts)
}

// Dropped counts firing alerts refused because MaxAlerts were all firing.
func (e *Engine) Dropped() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dropped
}

// body is the one sentence a person can act on, e.g. "checkout 1.4.2 in
// production: error ratio 4.1% vs baseline 0.9% (expected ≤ 1.6%) since
// 14:02, 3 min after the rollout began; recommendation: rollback".
func body(s *Signal, detail string) string {
	var b strings.Builder
	b.WriteString(s.Service)
	if s.Version != "" {
		b.WriteString(" " + s.Version)
	}
	if s.Environment != "" {
		b.WriteString(" in " + s.Environment)
	}
	b.WriteString(": ")
	switch {
	case s.Evidence != nil:
		writeEvidence(&b, s.Evidence)
	case len(s.Evidences) > 0:
		// The strongest two in the sentence; all of them are in the record.
		for i := range s.Evidences[:min(2, len(s.Evidences))] {
			if i > 0 {
				b.WriteString(", ")
			}
			writeEvidence(&b, &s.Evidences[i])
		}
		if more := len(s.Evidences) - 2; more > 0 {
			fmt.Fprintf(&b, " and %d more", more)
		}
	default:
		b.WriteString(humanName(s.Name))
	}
	if detail != "" {
		b.WriteString(", " + detail)
	}
	b.WriteString(" since " + s.StartedAt.UTC().Format("15:04"))
	if !s.DeploymentStart.IsZero() && !s.StartedAt.Before(s.DeploymentStart) {
		fmt.Fprintf(&b, ", %s after the rollout began", deployevent.ShortDuration(s.StartedAt.Sub(s.DeploymentStart)))
	}
	if s.Recommendation != "" && s.Recommendation != deployevent.RecommendNone {
		b.WriteString("; recommendation: " + string(s.Recommendation))
	}
	return b.String()
}

func writeEvidence(b *strings.Builder, ev *Evidence) {
	if ev.Callee != "" {
		writeCallEvidence(b, ev)
		return
	}
	fmt.Fprintf(b, "%s %s vs baseline %s", humanIndicator(ev.Indicator), format(ev.Observed, ev.Unit), format(ev.Baseline, ev.Unit))
	if r := expected(ev); r != "" {
		b.WriteString(" (expected " + r + ")")
	}
}

// writeCallEvidence words an edge's evidence: "checkout's calls to payment
// fail 6.1% vs 0.4%".
func writeCallEvidence(b *strings.Builder, ev *Evidence) {
	if ev.Caller != "" {
		b.WriteString(ev.Caller + "'s ")
	}
	b.WriteString("calls to " + ev.Callee + " ")
	observed, baseline := format(ev.Observed, ev.Unit), format(ev.Baseline, ev.Unit)
	switch ev.Indicator {
	case "error_ratio":
		fmt.Fprintf(b, "fail %s vs %s", observed, baseline)
	case "latency_p95":
		fmt.Fprintf(b, "take %s vs %s (p95)", observed, baseline)
	case "request_rate":
		fmt.Fprintf(b, "run at %s vs %s", observed, baseline)
	default:
		fmt.Fprintf(b, "%s %s vs %s", humanIndicator(ev.Indicator), observed, baseline)
	}
}

// CallEvidenceText words an edge's evidence as alert bodies do.
func CallEvidenceText(ev *Evidence) string {
	var b strings.Builder
	writeCallEvidence(&b, ev)
	return b.String()
}

func resolvedBody(s *Signal) string {
	b := fmt.Sprintf("resolved: %s %s in %s: %s ended at %s after %s", s.Service, s.Version, s.Environment,
		humanName(s.Name), s.EndedAt.UTC().Format("15:04"), deployevent.ShortDuration(s.EndedAt.Sub(s.StartedAt)))
	if s.Reason != "" {
		b += " (" + s.Reason + ")"
	}
	return b
}

func humanIndicator(name string) string { return strings.ReplaceAll(name, "_", " ") }

func humanName(name string) string {
	switch name {
	case Regression:
		return "regression"
	case DeploymentFailed:
		return "deployment failed"
	case DeploymentStuck:
		return "deployment stuck"
	case IndicatorRegression:
		return "indicator regression"
	case DependencyImpact:
		return "a dependency's deployment impacts it"
	}
	return name
}

func expected(ev *Evidence) string {
	lo, hi := ev.Lower, ev.Upper
	switch {
	case isNum(lo) && isNum(hi) && lo > 0:
		return format(lo, ev.Unit) + "–" + format(hi, ev.Unit)
	case isNum(hi):
		return "≤ " + format(hi, ev.Unit)
	case isNum(lo):
		return "≥ " + format(lo, ev.Unit)
	}
	return ""
}

func isNum(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func format(v float64, unit string) string {
	if !isNum(v) {
		return "n/a"
	}
	switch unit {
	case "ratio":
		return plain(v*100) + "%"
	case "seconds":
		if v < 1 {
			return fmt.Sprintf("%.0f ms", v*1000)
		}
		return fmt.Sprintf("%.2f s", v)
	case "rate":
		return plain(v) + "/s"
	}
	return plain(v)
}

// plain prints a number as a person reads it: whole from 100, one decimal
// from 1, two significant digits below (0.024, not 0.0), never in exponent form.
func plain(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1 || a == 0:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 2, 64), 64)
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// ScopeName is the instrumentation scope of alert records.
const ScopeName = "github.com/deploylens/deploylens/processor/deploymentprocessor"

// AppendTo writes the signal as a deployment.alert log record (DESIGN.md):
// the service on the resource, the deployment context and evidence as record
// attributes, severity WARN/ERROR/FATAL, the sentence as body.
func (s *Signal) AppendTo(logs plog.Logs) {
	rl := logs.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(deployevent.AttrServiceName, s.Service)
	putIf(res, deployevent.AttrServiceNamespace, s.Namespace)
	putIf(res, deployevent.AttrEnvironment, s.Environment)
	putIf(res, deployevent.AttrServiceVersion, s.Version)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(deployevent.AlertEventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(s.Time))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(s.Time))
	switch {
	case s.State == deployevent.AlertResolved:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	case s.Severity == deployevent.SeverityCritical && s.Recommendation == deployevent.RecommendRollback:
		lr.SetSeverityNumber(plog.SeverityNumberFatal)
		lr.SetSeverityText("FATAL")
	case s.Severity == deployevent.SeverityCritical:
		lr.SetSeverityNumber(plog.SeverityNumberError)
		lr.SetSeverityText("ERROR")
	default:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	}
	lr.Body().SetStr(s.Body)
	a := lr.Attributes()
	a.PutStr(deployevent.AttrAlertName, s.Name)
	a.PutStr(deployevent.AttrAlertState, s.State)
	a.PutStr(deployevent.AttrAlertSeverity, s.Severity)
	a.PutStr(deployevent.AttrAlertFingerprint, s.Fingerprint)
	rec := s.Recommendation
	if rec == "" {
		rec = deployevent.RecommendNone
	}
	a.PutStr(deployevent.AttrAlertRecommendation, string(rec))
	a.PutStr(deployevent.AttrAlertStartedAt, s.StartedAt.UTC().Format(time.RFC3339Nano))
	if !s.EndedAt.IsZero() {
		a.PutStr(deployevent.AttrAlertEndedAt, s.EndedAt.UTC().Format(time.RFC3339Nano))
	}
	putIf(a, deployevent.AttrDeploymentID, s.DeploymentID)
	putIf(a, deployevent.AttrPreviousVersion, s.PreviousVersion)
	putIf(a, deployevent.AttrDeploymentPhase, s.Phase)
	putIf(a, deployevent.AttrRevision, s.Revision)
	putIf(a, deployevent.AttrAlertPreviousSeverity, s.PreviousSeverity)
	putIf(a, deployevent.AttrAlertReason, s.Reason)
	if ev := s.Evidence; ev != nil {
		ev.putTo(a)
	}
	if len(s.Evidences) > 0 {
		list := a.PutEmptySlice(deployevent.AttrAlertEvidence)
		list.EnsureCapacity(len(s.Evidences))
		for i := range s.Evidences {
			s.Evidences[i].putTo(list.AppendEmpty().SetEmptyMap())
		}
	}
}

// putTo writes the evidence with the indicator.* and anomaly.* keys.
func (ev *Evidence) putTo(a pcommon.Map) {
	a.PutStr(deployevent.AttrIndicatorName, ev.Indicator)
	putNum(a, deployevent.AttrIndicatorValue, ev.Observed)
	putNum(a, deployevent.AttrIndicatorBaseline, ev.Baseline)
	putNum(a, deployevent.AttrIndicatorLower, ev.Lower)
	putNum(a, deployevent.AttrIndicatorUpper, ev.Upper)
	putNum(a, deployevent.AttrAnomalyScore, ev.AnomalyScore)
	putNum(a, deployevent.AttrAnomalyConfidence, ev.Confidence)
	putIf(a, deployevent.AttrAnomalyTest, ev.Test)
	putIf(a, deployevent.AttrDependencyCaller, ev.Caller)
	putIf(a, deployevent.AttrDependencyCallee, ev.Callee)
}

func putIf(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

func putNum(m pcommon.Map, k string, v float64) {
	if isNum(v) {
		m.PutDouble(k, v)
	}
}

// persistedAlert is one remembered alert in a snapshot.
type persistedAlert struct {
	Signal   Signal    `json:"signal"`
	LastSent time.Time `json:"last_sent"`
	Firing   bool      `json:"firing"`
}

// Snapshot encodes the remembered alerts for a storage extension, so a
// restart neither re-fires nor forgets a firing alert.
func (e *Engine) Snapshot() ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]persistedAlert, 0, len(e.alerts))
	for _, st := range e.alerts {
		sig := st.signal
		// Evidence may hold NaN (JSON has none); the next evaluation refreshes it.
		sig.Evidence, sig.Evidences = nil, nil
		out = append(out, persistedAlert{Signal: sig, LastSent: st.lastSent, Firing: st.firing})
	}
	return json.Marshal(out)
}

// Restore replaces the remembered alerts with a snapshot's.
func (e *Engine) Restore(data []byte) error {
	var in []persistedAlert
	if err := json.Unmarshal(data, &in); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.alerts = make(map[string]*alertState, len(in))
	clear(e.byService)
	e.resolved.Clear()
	// Resolved in the order they were resolved, so eviction stays oldest first.
	slices.SortStableFunc(in, func(x, y persistedAlert) int { return x.LastSent.Compare(y.LastSent) })
	for _, a := range in {
		if len(e.alerts) >= e.cfg.MaxAlerts {
			break
		}
		if _, dup := e.alerts[a.Signal.Fingerprint]; dup {
			continue
		}
		e.add(&alertState{signal: a.Signal, lastSent: a.LastSent, firing: a.Firing})
	}
	return nil
}
