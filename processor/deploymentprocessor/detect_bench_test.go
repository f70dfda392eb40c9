// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/score"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

var (
	detectSeed    = flag.Int64("detect.seed", 1, "seed of the scenario library BenchmarkDetect runs")
	detectFilter  = flag.String("detect.filter", "", "run only the scenarios whose name matches this regular expression")
	detectVerbose = flag.Bool("detect.verbose", false, "print one line per scenario")
	detectTrace   = flag.Duration("detect.trace", 0, "print every evaluation of the deployed service for this long after the deployment starts")
	// The library's scenarios start on a whole minute, so their steps line
	// up with the evaluation intervals; a real SDK's exports do not.
	// detect-e2e sends the warm-ups as fast as the collector takes them in
	// the minute before the deployments: a backfill, old data on a live clock.
	detectBackfill = flag.Bool("detect.backfill", false, "send each warm-up but its last 30 s as a backfill: old data on a clock 30 s before the deployment")
	detectOffset   = flag.Duration("detect.offset", 0, "shift every scenario by this much (e.g. 2.5s: steps straddle the evaluation intervals' boundaries)")
)

// scenarioOutcome is what the processor said of one scenario's deployed service.
type scenarioOutcome struct {
	label scenario.Label
	// alarm is the first time (the clock after a step) the deployed
	// service's snapshot called for action at or after the deployment start.
	alarm time.Time
	// why describes the alarming snapshot's strongest evidence.
	why string
	// steadyAlarm: an alarm on the deployed service before its deployment.
	steadyAlarm bool
	// bystanderAlarm: an alarm on the service that was not deployed.
	bystanderAlarm bool
	// inconclusive counts evaluations after the start whose key verdict was inconclusive.
	inconclusive, evaluations int
	// lowestScore is the lowest health score (key or cohort) after the start,
	// among evaluations that were not inconclusive: how close a clean
	// deployment came to an alarm.
	lowestScore float64
	lowestWhy   string
	// alerts is the largest number of deployment.alert signals about the
	// deployment firing at once (distinct fingerprints, facts excluded).
	alerts int
	err    error
}

// runScenario feeds one scenario through a fresh processor (the logs, traces
// and metrics pipelines of one component ID) in simulated time: the clock is
// each step's time, the health sweep runs after each step, and the signals
// (derived metrics, alert signals) are emitted every signals::interval, as
// the processor's loop does.
// simProcessor is one fresh processor in the logs, traces and metrics
// pipelines of one component ID, not started (no background loop, so
// simulated time alone drives it), on a clock of its own.
type simProcessor struct {
	p                *deploymentProcessor
	cfg              *Config
	clock            *testClock
	logs             processor.Logs
	traces           processor.Traces
	metrics          processor.Metrics
	alertSink        *consumertest.LogsSink
	lastEmit         time.Time
	backfillDeadline time.Time
}

func newSimProcessor(start time.Time) (*simProcessor, error) {
	f := newFactory()
	pf := f.processorFactory()
	bp := &simProcessor{cfg: createDefaultConfig().(*Config), clock: newTestClock(start)}
	set := processortest.NewNopSettings(metadata.Type)
	ctx := context.Background()
	// The logs pipeline's output: the data passed on and the alert signals,
	// read (and dropped) after every emission.
	bp.alertSink = new(consumertest.LogsSink)
	var err error
	if bp.logs, err = pf.CreateLogs(ctx, set, bp.cfg, bp.alertSink); err != nil {
		return nil, err
	}
	if bp.traces, err = pf.CreateTraces(ctx, set, bp.cfg, consumertest.NewNop()); err != nil {
		return nil, err
	}
	if bp.metrics, err = pf.CreateMetrics(ctx, set, bp.cfg, consumertest.NewNop()); err != nil {
		return nil, err
	}
	bp.p = f.instance(set.ID)
	bp.p.now = bp.clock.Now
	return bp, nil
}

func (bp *simProcessor) shutdown() {
	for _, c := range []component.Component{bp.logs, bp.traces, bp.metrics} {
		_ = c.Shutdown(context.Background())
	}
}

// feed consumes one step at its time (or, in a backfill, at the live clock
// before it), sweeps, and tells whether the signals were emitted (every
// signals::interval, as the processor's loop does).
func (bp *simProcessor) feed(st scenario.Step) (bool, error) {
	ctx := context.Background()
	bp.clock.Set(st.Time)
	if *detectBackfill && st.Time.Before(bp.backfillDeadline) {
		bp.clock.Set(bp.backfillDeadline)
	}
	if err := bp.logs.ConsumeLogs(ctx, st.Logs); err != nil {
		return false, err
	}
	if err := bp.traces.ConsumeTraces(ctx, st.Traces); err != nil {
		return false, err
	}
	if err := bp.metrics.ConsumeMetrics(ctx, st.Metrics); err != nil {
		return false, err
	}
	if bp.p.edges != nil {
		bp.p.edges.Sweep(bp.clock.Now())
	}
	bp.p.health.Sweep(bp.clock.Now())
	if st.Time.Sub(bp.lastEmit) < bp.cfg.Signals.Interval {
		return false, nil
	}
	bp.lastEmit = st.Time
	bp.p.emitSignals(ctx, st.Time)
	return true, nil
}

func runScenario(sc scenario.Scenario) (out scenarioOutcome) {
	out.label = sc.Label()
	out.label.Shift(*detectOffset)
	bp, err := newSimProcessor(sc.Start.Add(*detectOffset))
	if err != nil {
		out.err = err
		return out
	}
	defer bp.shutdown()
	p, alertSink := bp.p, bp.alertSink
	bp.backfillDeadline = out.label.DeploymentStart.Add(-30 * time.Second)

	l := &out.label
	deployed := health.Key{Namespace: l.Namespace, Service: l.Service, Environment: l.Environment}
	var bystander health.Key
	for _, svc := range sc.Services {
		if svc.Name != l.Service {
			bystander = health.Key{Namespace: svc.Namespace, Service: svc.Name, Environment: svc.Environment}
		}
	}
	var lastEval time.Time
	out.lowestScore = 100
	// Alert signals about the deployment, whatever their name: the measure
	// must not depend on how many alerts one regression raises.
	tally := score.NewTally()
	defer func() { out.alerts = tally.Max(l.DeploymentID) }()
	out.err = sc.Run(func(st scenario.Step) error {
		st.Shift(*detectOffset)
		emitted, err := bp.feed(st)
		if err != nil {
			return err
		}
		if emitted {
			var changes []score.Change
			for _, a := range alertRecords(alertSink) {
				if a.service == l.Service && a.deploymentID == l.DeploymentID {
					fingerprint, _ := a.attrs[deployevent.AttrAlertFingerprint].(string)
					changes = append(changes, score.Change{Fingerprint: fingerprint, Name: a.name, Firing: a.state == deployevent.AlertFiring})
				}
			}
			tally.Apply(l.DeploymentID, changes, st.Time)
			alertSink.Reset()
		}
		started := !st.Time.Before(l.DeploymentStart)
		if snap := p.health.Snapshot(deployed); snap != nil {
			if started && snap.EvaluatedAt != lastEval {
				lastEval = snap.EvaluatedAt
				if *detectTrace > 0 && st.Time.Sub(l.DeploymentStart) <= *detectTrace {
					fmt.Printf("%s +%.0fs %s\n", l.Scenario, st.Time.Sub(l.DeploymentStart).Seconds(), traceSnapshot(snap))
				}
				out.evaluations++
				if snap.Health.Verdict == deployevent.VerdictInconclusive {
					out.inconclusive++
				}
				for _, h := range append([]health.Health{snap.Health}, cohortHealths(snap)...) {
					if h.Candidate != deployevent.VerdictInconclusive && h.Score < out.lowestScore {
						out.lowestScore = h.Score
						out.lowestWhy = fmt.Sprintf("+%.0fs %s", st.Time.Sub(l.DeploymentStart).Seconds(), describeAlarm(snap))
					}
				}
			}
			if snap.Alarm() {
				switch {
				case !started:
					out.steadyAlarm = true
				case out.alarm.IsZero():
					out.alarm = st.Time
					out.why = describeAlarm(snap)
				}
			}
		}
		if snap := p.health.Snapshot(bystander); started && snap != nil && snap.Alarm() {
			out.bystanderAlarm = true
		}
		return nil
	})
	return out
}

func cohortHealths(s *health.Snapshot) []health.Health {
	out := make([]health.Health, len(s.Cohorts))
	for i := range s.Cohorts {
		out[i] = s.Cohorts[i].Health
	}
	return out
}

func traceSnapshot(s *health.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s score=%.0f %s(%s)/%s", s.Phase, s.Health.Score, s.Health.Verdict, s.Health.Candidate, s.Health.Recommendation)
	list := func(prefix string, h *health.Health) {
		for _, ev := range h.Indicators {
			if !ev.Judged {
				fmt.Fprintf(&b, "\n    %s%s: inconclusive v=%.4g", prefix, ev.Indicator, ev.Value)
				continue
			}
			fmt.Fprintf(&b, "\n    %s%s: %s/%s score=%.2f p=%.1e obs=%.4g exp=%.4g v=%.4g b=%.4g [%.4g,%.4g]", prefix, ev.Indicator, ev.Comparison, ev.Test,
				ev.Score, ev.PValue, ev.Observed, ev.Expected, ev.Value, ev.Baseline, ev.Lower, ev.Upper)
		}
	}
	list("", &s.Health)
	for i := range s.Cohorts {
		c := &s.Cohorts[i]
		fmt.Fprintf(&b, "\n  [%s score=%.0f %s(%s)/%s]", c.Cohort, c.Score, c.Verdict, c.Candidate, c.Recommendation)
		list(string(c.Cohort)+".", &c.Health)
	}
	return b.String()
}

func describeAlarm(s *health.Snapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s score=%.0f %s/%s", s.Phase, s.Health.Score, s.Health.Verdict, s.Health.Recommendation)
	list := func(prefix string, h *health.Health) {
		for _, ev := range h.Indicators {
			if ev.Score > 0.2 {
				fmt.Fprintf(&b, " %s%s:%s/%s(%.2f p=%.1e obs=%.4g exp=%.4g)", prefix, ev.Indicator, ev.Comparison, ev.Test, ev.Score, ev.PValue, ev.Observed, ev.Expected)
			}
		}
	}
	list("", &s.Health)
	for i := range s.Cohorts {
		c := &s.Cohorts[i]
		if c.Verdict != deployevent.VerdictHealthy {
			fmt.Fprintf(&b, " [%s %s/%s]", c.Cohort, c.Verdict, c.Recommendation)
			list(string(c.Cohort)+".", &c.Health)
		}
	}
	return b.String()
}

// detectReport is the benchmark's figures: the scored bar figures and what
// helps to read them.
type detectReport struct {
	score.Summary
	steadyAlarms, bystanderAlarms int
	inconclusiveLow, evalsLow     int
	cleanLowest                   []float64
	byKind                        map[string][2]int // detected, total
}

func summarize(outcomes []scenarioOutcome) detectReport {
	scored := make([]score.Outcome, len(outcomes))
	r := detectReport{byKind: map[string][2]int{}}
	for i := range outcomes {
		o := &outcomes[i]
		l := &o.label
		scored[i] = score.Outcome{Label: *l, Alarm: o.alarm, Alerts: o.alerts}
		if o.steadyAlarm {
			r.steadyAlarms++
		}
		if o.bystanderAlarm {
			r.bystanderAlarms++
		}
		switch {
		case !l.Regressed:
			r.cleanLowest = append(r.cleanLowest, o.lowestScore)
		case !l.LowTraffic():
			group := string(l.Kind)
			if l.Shape != "" {
				group = l.Shape
			}
			k := r.byKind[group]
			k[1]++
			if !o.alarm.IsZero() {
				k[0]++
			}
			r.byKind[group] = k
		}
		if l.LowTraffic() {
			r.inconclusiveLow += o.inconclusive
			r.evalsLow += o.evaluations
		}
	}
	r.Summary = score.Summarize(scored)
	sort.Float64s(r.cleanLowest)
	return r
}

// BenchmarkDetect runs the scenario library (internal/scenario) through the
// processor in simulated time, one fresh processor per scenario, and prints
// the detection figures, ending with the five lines `make detect-bench`
// reports. Run it once: -benchtime 1x.
func BenchmarkDetect(b *testing.B) {
	lib := scenario.Library(*detectSeed)
	if *detectFilter != "" {
		re := regexp.MustCompile(*detectFilter)
		lib = slices.DeleteFunc(lib, func(sc scenario.Scenario) bool { return !re.MatchString(sc.Name) })
	}
	var report detectReport
	var impact *impactReport
	for range b.N {
		outcomes := runLibrary(b, lib)
		report = summarize(outcomes)
		impact = runTopologies(b)
	}
	b.StopTimer()
	fmt.Print(formatReport(report))
	if impact != nil {
		fmt.Print(impact.lines())
	}
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

func runLibrary(tb testing.TB, lib []scenario.Scenario) []scenarioOutcome {
	outcomes := make([]scenarioOutcome, len(lib))
	parallel(len(lib), func(i int) { outcomes[i] = runScenario(lib[i]) })
	for i := range outcomes {
		o := &outcomes[i]
		if o.err != nil {
			tb.Fatalf("%s: %v", lib[i].Name, o.err)
		}
		if *detectVerbose {
			l := &o.label
			status := "quiet"
			if !o.alarm.IsZero() {
				status = fmt.Sprintf("ALARM +%.0fs %s", o.alarm.Sub(l.DeploymentStart).Seconds(), o.why)
			}
			fmt.Printf("%-28s %-22s %s inconclusive=%d/%d steady_alarm=%v bystander_alarm=%v alerts_at_once=%d\n",
				l.Scenario, l.Signals, status, o.inconclusive, o.evaluations, o.steadyAlarm, o.bystanderAlarm, o.alerts)
			if !l.Regressed {
				fmt.Printf("    lowest %.0f at %s\n", o.lowestScore, o.lowestWhy)
			}
		}
	}
	return outcomes
}

// formatReport writes the report; the lines the bars are about come last.
func formatReport(r detectReport) string {
	var b strings.Builder
	w := &b
	kinds := make([]string, 0, len(r.byKind))
	for k := range r.byKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "detected[%s]: %d/%d\n", k, r.byKind[k][0], r.byKind[k][1])
	}
	fmt.Fprintf(w, "low_traffic_detected: %d/%d (regressions below %d req/s; not a bar)\n", r.LowDetected, r.LowRegressions, scenario.LowTrafficRPS)
	fmt.Fprintf(w, "low_traffic_inconclusive_evaluations: %.1f%%\n", score.Percent(r.inconclusiveLow, r.evalsLow))
	fmt.Fprintf(w, "steady_alarms (before a deployment): %d; bystander_alarms: %d\n", r.steadyAlarms, r.bystanderAlarms)
	if len(r.cleanLowest) > 0 {
		fmt.Fprintf(w, "clean deployments' lowest health score: min %.0f, 5th percentile %.0f, median %.0f\n",
			r.cleanLowest[0], score.Quantile(r.cleanLowest, 0.05), score.Quantile(r.cleanLowest, 0.5))
	}
	if len(r.Delays) > 0 {
		fmt.Fprintf(w, "delays_s: %v\n", r.Delays)
	}
	fmt.Fprintf(w, "scenarios: %d regressions at >= %d req/s, %d clean (%d low traffic); %d faulty deployments alerted\n",
		r.Regressions, scenario.LowTrafficRPS, r.Clean, r.LowClean, r.Faulty)
	b.WriteString(r.Lines())
	return b.String()
}
