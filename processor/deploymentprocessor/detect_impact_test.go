// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"flag"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/score"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
)

var detectTopologies = flag.Bool("detect.topologies", true, "also run the multi-service topologies (scenario.Topologies) and print the impact figures")

// topologyOutcome is what the processor said of one topology scenario's deployments.
type topologyOutcome struct {
	label scenario.Label
	// culpritAlarm is the first alarm of the culprit's deployment;
	// attributed the first whose Impact names a harmed caller.
	culpritAlarm, attributed time.Time
	// wrong lists the deployments that alarmed but are not the culprit's.
	wrong []string
	// explained: a harmed caller's health named the culprit's rollout;
	// callerAlarm: a harmed caller alarmed (its alert then names the rollout).
	explained, callerAlarm bool
	// steadyAlarms lists the services that alarmed before any deployment
	// started (their calls and requests are clean then).
	steadyAlarms []string
	why          string
	err          error
}

// runTopology feeds one topology scenario through a fresh processor, as
// runScenario does, and follows every deployment of it.
func runTopology(sc scenario.Scenario) (out topologyOutcome) {
	out.label = sc.Label()
	out.label.Shift(*detectOffset)
	l := &out.label
	bp, err := newSimProcessor(sc.Start.Add(*detectOffset))
	if err != nil {
		out.err = err
		return out
	}
	defer bp.shutdown()
	bp.backfillDeadline = l.DeploymentStart.Add(-30 * time.Second)
	key := func(service string) health.Key {
		return health.Key{Namespace: l.Namespace, Service: service, Environment: l.Environment}
	}
	wrong := map[string]bool{}
	traced := map[string]time.Time{}
	out.err = sc.Run(func(st scenario.Step) error {
		st.Shift(*detectOffset)
		if _, err := bp.feed(st); err != nil {
			return err
		}
		bp.alertSink.Reset()
		if st.Time.Before(l.DeploymentStart) {
			for _, svc := range sc.Services {
				if snap := bp.p.health.Snapshot(key(svc.Name)); snap != nil && snap.Alarm() && !slices.Contains(out.steadyAlarms, svc.Name) {
					out.steadyAlarms = append(out.steadyAlarms, svc.Name)
				}
			}
		}
		for _, d := range l.Deployments {
			if st.Time.Before(d.Start) {
				continue
			}
			snap := bp.p.health.Snapshot(key(d.Service))
			if snap != nil && *detectTrace > 0 && st.Time.Sub(d.Start) <= *detectTrace && snap.EvaluatedAt != traced[d.Service] {
				traced[d.Service] = snap.EvaluatedAt
				fmt.Printf("%s %s +%.0fs %s\n", l.Scenario, d.Service, st.Time.Sub(d.Start).Seconds(), traceSnapshot(snap))
			}
			if snap == nil || snap.DeploymentID != d.DeploymentID || !snap.Alarm() {
				continue
			}
			if d.Service != l.Culprit {
				if !wrong[d.Service] {
					out.why += fmt.Sprintf(" %s alarmed +%.0fs: %s", d.Service, st.Time.Sub(d.Start).Seconds(), describeAlarm(snap))
				}
				wrong[d.Service] = true
				continue
			}
			if out.culpritAlarm.IsZero() {
				out.culpritAlarm = st.Time
			}
			if out.attributed.IsZero() && slices.ContainsFunc(snap.Health.Impact, func(r health.Relation) bool {
				return slices.Contains(l.Harmed, r.Peer.Service)
			}) {
				out.attributed = st.Time
			}
		}
		for _, caller := range l.Harmed {
			if snap := bp.p.health.Snapshot(key(caller)); snap != nil && *detectTrace > 0 && st.Time.Sub(l.DeploymentStart) <= *detectTrace &&
				!st.Time.Before(l.DeploymentStart) && snap.EvaluatedAt != traced[caller] {
				traced[caller] = snap.EvaluatedAt
				fmt.Printf("%s %s (caller) +%.0fs %s\n", l.Scenario, caller, st.Time.Sub(l.DeploymentStart).Seconds(), traceSnapshot(snap))
			}
			if snap := bp.p.health.Snapshot(key(caller)); snap != nil && slices.ContainsFunc(snap.Health.ExplainedBy, func(r health.Relation) bool {
				return r.Peer.Service == l.Culprit && r.DeploymentID == l.DeploymentID
			}) {
				out.explained = true
				out.callerAlarm = out.callerAlarm || snap.Alarm()
			}
		}
		return nil
	})
	for s := range wrong {
		out.wrong = append(out.wrong, s)
	}
	sort.Strings(out.wrong)
	return out
}

// impactReport is the figures of the topologies.
type impactReport struct {
	// callersOnly: harm seen only by the culprit's callers; detected when
	// the culprit's deployment alarmed with a harmed caller in its impact.
	callersOnly, callersOnlyAttributed int
	// harmed: every scenario whose culprit harms a caller (its own telemetry
	// may show the harm too).
	harmed, harmedAttributed, harmedExplained int
	// culprits: every harmful scenario, and those whose culprit alarmed.
	culprits, culpritsAlarmed int
	// misattributed: scenarios in which a deployment other than the culprit's
	// alarmed (clean-pair: any deployment).
	scenarios, misattributed int
	// steadyAlarms: scenarios in which a service alarmed before any deployment.
	steadyAlarms int
	delays       []float64
	byTopology   map[string][3]int // attributed or alarmed, misattributed, total
}

func summarizeImpact(outcomes []topologyOutcome) impactReport {
	r := impactReport{byTopology: map[string][3]int{}}
	for i := range outcomes {
		o := &outcomes[i]
		l := &o.label
		r.scenarios++
		if len(o.steadyAlarms) > 0 {
			r.steadyAlarms++
		}
		t := r.byTopology[l.Topology]
		t[2]++
		if len(o.wrong) > 0 {
			r.misattributed++
			t[1]++
		} else if l.Culprit == "" {
			t[0]++ // clean: judged right when nothing alarmed
		}
		if l.Culprit != "" {
			r.culprits++
			if !o.culpritAlarm.IsZero() {
				r.culpritsAlarmed++
				if len(l.Harmed) == 0 {
					t[0]++
				}
			}
		}
		if len(l.Harmed) > 0 && l.Culprit != "" {
			r.harmed++
			if !o.attributed.IsZero() {
				r.harmedAttributed++
				t[0]++
				r.delays = append(r.delays, o.attributed.Sub(l.RegressionOnset).Seconds())
			}
			if o.explained {
				r.harmedExplained++
			}
			if l.CallersOnly {
				r.callersOnly++
				if !o.attributed.IsZero() {
					r.callersOnlyAttributed++
				}
			}
		}
		r.byTopology[l.Topology] = t
	}
	sort.Float64s(r.delays)
	return r
}

// lines writes the impact figures; the two bar lines come last.
func (r *impactReport) lines() string {
	var b strings.Builder
	names := make([]string, 0, len(r.byTopology))
	for n := range r.byTopology {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := r.byTopology[n]
		fmt.Fprintf(&b, "topology[%s]: %d/%d judged right (the harm attributed to the culprit; its own regression alarmed; clean: nothing alarmed), %d misattributed\n", n, t[0], t[2], t[1])
	}
	fmt.Fprintf(&b, "impact_attributed (every harm callers see, own telemetry too): %d/%d; callers' health explained by the culprit's rollout: %d/%d\n",
		r.harmedAttributed, r.harmed, r.harmedExplained, r.harmed)
	fmt.Fprintf(&b, "culprits_alarmed: %d/%d; impact_delay_median_s: %.0f; topology_steady_alarms (a service alarmed before any rollout): %d/%d\n",
		r.culpritsAlarmed, r.culprits, score.Quantile(r.delays, 0.5), r.steadyAlarms, r.scenarios)
	fmt.Fprintf(&b, "impact_detected: %.1f%%\n", score.Percent(r.callersOnlyAttributed, r.callersOnly))
	fmt.Fprintf(&b, "impact_misattributed: %.1f%%\n", score.Percent(r.misattributed, r.scenarios))
	return b.String()
}

// runTopologies runs the topology library (filtered like the scenario
// library) and returns its report; nil when the flag is off.
func runTopologies(tb testing.TB) *impactReport {
	if !*detectTopologies {
		return nil
	}
	lib := scenario.Topologies(*detectSeed)
	if *detectFilter != "" {
		re := regexp.MustCompile(*detectFilter)
		lib = slices.DeleteFunc(lib, func(sc scenario.Scenario) bool { return !re.MatchString(sc.Name) })
	}
	if len(lib) == 0 {
		return nil
	}
	outcomes := make([]topologyOutcome, len(lib))
	parallel(len(lib), func(i int) { outcomes[i] = runTopology(lib[i]) })
	for i := range outcomes {
		o := &outcomes[i]
		if o.err != nil {
			tb.Fatalf("%s: %v", lib[i].Name, o.err)
		}
		if *detectVerbose {
			l := &o.label
			fmt.Printf("%-30s culprit=%s harmed=%v alarm=%s attributed=%s explained=%v caller_alarm=%v wrong=%v steady_alarms=%v%s\n", l.Scenario, l.Culprit, l.Harmed,
				since(o.culpritAlarm, l.RegressionOnset), since(o.attributed, l.RegressionOnset), o.explained, o.callerAlarm, o.wrong, o.steadyAlarms, o.why)
		}
	}
	r := summarizeImpact(outcomes)
	return &r
}

func since(t, from time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("+%.0fs", t.Sub(from).Seconds())
}

// parallel runs fn(0..n-1) on GOMAXPROCS goroutines.
func parallel(n int, fn func(int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(n, runtimeProcs())) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestImpactTopologiesQuick runs a few topology scenarios through the
// processor: the harm a callee's rollout does to its callers is attributed
// to it and to no other deployment, and a caller's own regression is its own.
func TestImpactTopologiesQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates several services for half an hour each")
	}
	lib := scenario.Topologies(1)
	picked := map[string]bool{}
	var run []scenario.Scenario
	for _, sc := range lib {
		l := sc.Label()
		if l.TrafficRPS >= 50 && !picked[l.Topology] {
			picked[l.Topology] = true
			run = append(run, sc)
		}
	}
	outcomes := make([]topologyOutcome, len(run))
	parallel(len(run), func(i int) { outcomes[i] = runTopology(run[i]) })
	for i := range outcomes {
		o := &outcomes[i]
		l := &o.label
		if o.err != nil {
			t.Fatal(o.err)
		}
		if len(o.wrong) > 0 {
			t.Errorf("%s: misattributed to %v:%s", l.Scenario, o.wrong, o.why)
		}
		if len(o.steadyAlarms) > 0 {
			t.Errorf("%s: %v alarmed before any rollout", l.Scenario, o.steadyAlarms)
		}
		if l.Culprit != "" && o.culpritAlarm.IsZero() {
			t.Errorf("%s: the culprit %s did not alarm", l.Scenario, l.Culprit)
		}
		if l.Culprit != "" && len(l.Harmed) > 0 && o.attributed.IsZero() {
			t.Errorf("%s: the harm to %v was not attributed to %s", l.Scenario, l.Harmed, l.Culprit)
		}
	}
}
