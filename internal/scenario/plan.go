// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario // import "github.com/deploylens/deploylens/internal/scenario"

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// plan is the precomputed shape of a scenario: which instance serves, with
// which version and share of traffic, when, and the lifecycle events.
type plan struct {
	sc          *Scenario // defaulted
	deployStart time.Time
	// promotion is when a canary is promoted; zero when it is not within the scenario.
	promotion time.Time
	// rolloutEnd is when the new version serves everything; zero when not within the scenario.
	rolloutEnd time.Time
	onset      time.Time // zero for a clean deployment
	end        time.Time
	instances  []planInstance
	events     []deployevent.Event
	// rollouts are the deployments: the main one (the fields above) first, then Also's.
	rollouts []rollout
	// mainService is the index of the main deployment's service, the only one a regression affects.
	mainService int
	// canaryFraction is, per service, its deployment's canary share.
	canaryFraction []float64
}

// rollout is one deployment's place in the plan.
type rollout struct {
	d       *Deployment
	service int
	start   time.Time
	// promotion and end (the rollout's) are zero when not within the scenario.
	promotion, end time.Time
}

// planInstance is one replica: it serves from `from` until `until` (zero: to the end).
type planInstance struct {
	service     int
	id          string
	version     string
	isNew       bool
	canary      bool
	from, until time.Time
}

func (p *planInstance) active(t time.Time) bool {
	return !t.Before(p.from) && (p.until.IsZero() || t.Before(p.until))
}

func newPlan(sc *Scenario) *plan {
	p := &plan{sc: sc, deployStart: sc.Start.Add(sc.WarmUp), end: sc.Start.Add(sc.WarmUp + sc.Observe)}
	p.canaryFraction = make([]float64, len(sc.Services))
	setup := newRand(sc.Seed, streamSetup)
	deployed := map[string]bool{sc.Deployment.Service: true}
	for k := range sc.Also {
		deployed[sc.Also[k].Service] = true
	}
	for i := range sc.Services {
		svc := &sc.Services[i]
		if deployed[svc.Name] {
			continue
		}
		for range svc.Instances {
			p.instances = append(p.instances, planInstance{service: i, id: podName(setup, svc.Name, svc.Version), version: svc.Version, from: sc.Start})
		}
	}

	p.mainService = max(0, sc.serviceIndex(sc.Deployment.Service))
	p.roll(setup, &sc.Deployment, p.mainService, p.deployStart)
	for k := range sc.Also {
		a := &sc.Also[k]
		if idx := sc.serviceIndex(a.Service); idx >= 0 {
			p.roll(setup, a, idx, p.deployStart.Add(a.Offset))
		}
	}
	main := &p.rollouts[0]
	p.promotion, p.rolloutEnd = main.promotion, main.end

	if r := sc.Regression; r != nil {
		p.onset = p.deployStart.Add(r.StartsAt)
	}
	for k := range p.rollouts {
		if !p.rollouts[k].d.Silent {
			p.events = append(p.events, p.lifecycle(setup, &p.rollouts[k])...)
		}
	}
	if len(p.rollouts) > 1 {
		sort.SliceStable(p.events, func(i, j int) bool { return p.events[i].Timestamp.Before(p.events[j].Timestamp) })
	}
	return p
}

// roll adds the instances of one deployment of service idx starting at start.
func (p *plan) roll(setup *rand.Rand, d *Deployment, idx int, start time.Time) {
	sc := p.sc
	r := rollout{d: d, service: idx, start: start}
	p.canaryFraction[idx] = d.CanaryFraction
	svc := &sc.Services[idx]
	n := svc.Instances
	old := make([]planInstance, n)
	for k := range old {
		old[k] = planInstance{service: idx, id: podName(setup, svc.Name, svc.Version), version: svc.Version, from: sc.Start}
	}
	newInstance := func(from time.Time) planInstance {
		return planInstance{service: idx, id: podName(setup, svc.Name, d.Version), version: d.Version, isNew: true, from: from}
	}
	// replace swaps old instance k for a new one at at; the new instance
	// takes over the old one's share (a surge of one, no capacity lost).
	replaceFrom := func(from time.Time) {
		for k := range old {
			at := from.Add(time.Duration(k) * d.InstanceInterval)
			if !at.Before(p.end) {
				break
			}
			old[k].until = at
			p.instances = append(p.instances, newInstance(at))
		}
		if done := from.Add(time.Duration(n) * d.InstanceInterval); done.Before(p.end) {
			r.end = done
		}
	}
	switch d.Strategy {
	case deployevent.StrategyCanary:
		canary := newInstance(start)
		canary.canary = true
		if promotion := start.Add(d.CanaryDuration); promotion.Before(p.end) {
			r.promotion = promotion
			replaceFrom(promotion)
			// The canary leaves once every primary runs the new version.
			canary.until = promotion.Add(time.Duration(n-1) * d.InstanceInterval)
			if !canary.until.Before(p.end) {
				canary.until = time.Time{}
			}
		}
		p.instances = append(p.instances, canary)
	default:
		replaceFrom(start)
	}
	p.instances = append(p.instances, old...)
	p.rollouts = append(p.rollouts, r)
}

// podName is a Kubernetes-like pod name: the service, a hash of the version
// (the ReplicaSet's), and a random suffix.
func podName(r *rand.Rand, service, version string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(service + "@" + version))
	const letters = "bcdfghjklmnpqrstvwxz2456789"
	suffix := make([]byte, 5)
	for i := range suffix {
		suffix[i] = letters[r.IntN(len(letters))]
	}
	return fmt.Sprintf("%s-%08x-%s", service, h.Sum32(), suffix)
}

// lifecycle returns one deployment's events within the scenario, in time order.
func (p *plan) lifecycle(setup *rand.Rand, r *rollout) []deployevent.Event {
	sc := p.sc
	d := r.d
	svc := &sc.Services[r.service]
	runID := d.PipelineRunID
	if runID == "" {
		runID = strconv.Itoa(1_000_000 + setup.IntN(9_000_000))
	}
	base := deployevent.Event{
		Service:         svc.Name,
		Namespace:       svc.Namespace,
		Environment:     svc.Environment,
		Version:         d.Version,
		ID:              d.ID,
		Name:            svc.Name + " " + d.Version,
		PreviousVersion: svc.Version,
		Strategy:        d.Strategy,
		Source:          deployevent.SourceGeneric,
		Revision:        d.Revision,
		RepositoryURL:   d.RepositoryURL,
		RefName:         d.RefName,
		PipelineRunID:   runID,
		CommitTime:      d.CommitTime,
		Actor:           d.Actor,
	}
	var events []deployevent.Event
	add := func(state deployevent.State, at time.Time) {
		if at.Before(sc.Start) || !at.Before(p.end) {
			return
		}
		e := base
		e.State = state
		e.Timestamp = at
		events = append(events, e)
	}
	if d.QueuedFor > 0 {
		add(deployevent.StateQueued, r.start.Add(-d.QueuedFor))
	}
	add(deployevent.StateStarted, r.start)
	// The first new instance has passed its readiness check.
	if ready := r.start.Add(d.InstanceInterval); r.end.IsZero() || ready.Before(r.end) {
		add(deployevent.StateProgressing, ready)
	}
	if !r.promotion.IsZero() {
		add(deployevent.StateProgressing, r.promotion)
	}
	if !r.end.IsZero() {
		add(deployevent.StateSucceeded, r.end)
	}
	// A canary promoted within its first interval reports out of order otherwise.
	sort.SliceStable(events, func(i, j int) bool { return events[i].Timestamp.Before(events[j].Timestamp) })
	return events
}

// shares returns, for each instance of the plan, its share of its service's
// traffic at t (0 when it does not serve then).
func (p *plan) shares(t time.Time, out []float64) {
	for s := range p.sc.Services {
		fraction := p.canaryFraction[s]
		count, canaryActive := 0, false
		for i := range p.instances {
			in := &p.instances[i]
			if in.service != s || !in.active(t) {
				continue
			}
			if in.canary {
				canaryActive = true
			} else {
				count++
			}
		}
		for i := range p.instances {
			in := &p.instances[i]
			if in.service != s {
				continue
			}
			switch {
			case !in.active(t):
				out[i] = 0
			case in.canary && count == 0:
				out[i] = 1
			case in.canary:
				out[i] = fraction
			case canaryActive:
				out[i] = (1 - fraction) / float64(count)
			default:
				out[i] = 1 / float64(count)
			}
		}
	}
}

// Label is the ground truth of a scenario, for scoring a detector.
type Label struct {
	Scenario string
	// Shape is the scenario's Shape.
	Shape string
	// Regressed is true when the new version has a regression.
	Regressed bool
	Kind      Kind
	Magnitude float64
	Strategy  deployevent.Strategy
	// TrafficRPS is the deployed service's request rate at the deployment start.
	TrafficRPS float64
	// Signals is what the deployed service emits.
	Signals Signals
	// Silent deployments send no lifecycle events.
	Silent bool

	Service, Namespace, Environment string
	Version, PreviousVersion        string
	DeploymentID                    string

	DeploymentStart time.Time
	// RegressionOnset is when the regressed version first misbehaves while
	// serving; zero for a clean deployment. Detection delay counts from it.
	RegressionOnset time.Time
	// RolloutEnd is when the new version serves all traffic; zero when that
	// is not within the scenario (a canary that is never promoted).
	RolloutEnd time.Time
	// End is when the scenario's last step closes.
	End time.Time
	// Cohort is deployevent.CohortCanary when the regression first shows in a
	// canary cohort only (the baseline cohort stays healthy); empty otherwise.
	Cohort deployevent.Cohort

	// Topology is the scenario's Topology ("" for the classic scenarios).
	Topology string
	// Culprit is the service whose rollout is harmful: the main deployed
	// service when Regressed, else "".
	Culprit string
	// Harmed are the services that call the culprit on a route its
	// regression affects (sorted; nil when none). Throughput and saturation
	// regressions harm no caller: calls do not see them.
	Harmed []string
	// CallersOnly is the regression's CallersOnly: the culprit's own
	// telemetry stays healthy, only its callers' calls show the harm.
	CallersOnly bool
	// Deployments are every deployment of the scenario, the main one
	// (described by the fields above) first, then Scenario.Also's.
	Deployments []DeployedLabel
}

// DeployedLabel is one deployment of a scenario.
type DeployedLabel struct {
	Service, DeploymentID    string
	Version, PreviousVersion string
	// Start is when the deployment starts and its first new instance serves.
	Start time.Time
	// RolloutEnd is when its new version serves all of the service's
	// traffic; zero when that is not within the scenario.
	RolloutEnd time.Time
}

// LowTraffic reports whether the deployment is below LowTrafficRPS.
func (l Label) LowTraffic() bool { return l.TrafficRPS < LowTrafficRPS }

// Label returns the scenario's ground truth. The scenario must be valid.
func (s *Scenario) Label() Label {
	c := s.withDefaults()
	p := newPlan(&c)
	svc := c.deployed()
	l := Label{
		Scenario:        c.Name,
		Shape:           c.Shape,
		Kind:            KindNone,
		Strategy:        c.Deployment.Strategy,
		Silent:          c.Deployment.Silent,
		Service:         c.Deployment.Service,
		Version:         c.Deployment.Version,
		DeploymentID:    c.Deployment.ID,
		DeploymentStart: p.deployStart,
		RolloutEnd:      p.rolloutEnd,
		End:             p.end,
	}
	if svc != nil {
		l.TrafficRPS = svc.Traffic.RPS
		l.Signals = svc.Signals
		l.Namespace = svc.Namespace
		l.Environment = svc.Environment
		l.PreviousVersion = svc.Version
	}
	if r := c.Regression; r != nil {
		l.Regressed = true
		l.Kind = r.Kind
		l.Magnitude = r.Magnitude
		l.RegressionOnset = p.onset
		if c.Deployment.Strategy == deployevent.StrategyCanary && (p.promotion.IsZero() || p.onset.Before(p.promotion)) {
			l.Cohort = deployevent.CohortCanary
		}
		l.Culprit = c.Deployment.Service
		l.CallersOnly = r.CallersOnly
		l.Harmed = c.harmed()
	}
	l.Topology = c.Topology
	for k := range p.rollouts {
		ro := &p.rollouts[k]
		svc := &c.Services[ro.service]
		l.Deployments = append(l.Deployments, DeployedLabel{
			Service:         svc.Name,
			DeploymentID:    ro.d.ID,
			Version:         ro.d.Version,
			PreviousVersion: svc.Version,
			Start:           ro.start,
			RolloutEnd:      ro.end,
		})
	}
	return l
}

// harmed returns the callers of the regressed service on a route its
// regression affects, sorted (a defaulted scenario with a regression).
func (s *Scenario) harmed() []string {
	r := s.Regression
	if !r.Kind.routeScoped() {
		return nil
	}
	var out []string
	for i := range s.Services {
		svc := &s.Services[i]
		for k := range svc.Calls {
			if call := &svc.Calls[k]; call.Callee == s.Deployment.Service && r.affects(call.Route) {
				out = append(out, svc.Name)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}

// Events returns the scenario's lifecycle events in time order (none when
// the deployment is silent). The scenario must be valid.
func (s *Scenario) Events() []deployevent.Event {
	c := s.withDefaults()
	return newPlan(&c).events
}
