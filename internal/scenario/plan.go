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
	setup := newRand(sc.Seed, streamSetup)
	d := &sc.Deployment
	deployedIdx := 0
	for i := range sc.Services {
		svc := &sc.Services[i]
		if svc.Name == d.Service {
			deployedIdx = i
			continue
		}
		for range svc.Instances {
			p.instances = append(p.instances, planInstance{service: i, id: podName(setup, svc.Name, svc.Version), version: svc.Version, from: sc.Start})
		}
	}

	svc := &sc.Services[deployedIdx]
	n := svc.Instances
	old := make([]planInstance, n)
	for k := range old {
		old[k] = planInstance{service: deployedIdx, id: podName(setup, svc.Name, svc.Version), version: svc.Version, from: sc.Start}
	}
	newInstance := func(from time.Time) planInstance {
		return planInstance{service: deployedIdx, id: podName(setup, svc.Name, d.Version), version: d.Version, isNew: true, from: from}
	}
	// replace swaps old instance k for a new one at at; the new instance
	// takes over the old one's share (a surge of one, no capacity lost).
	replaceFrom := func(start time.Time) {
		for k := range old {
			at := start.Add(time.Duration(k) * d.InstanceInterval)
			if !at.Before(p.end) {
				break
			}
			old[k].until = at
			p.instances = append(p.instances, newInstance(at))
		}
		if done := start.Add(time.Duration(n) * d.InstanceInterval); done.Before(p.end) {
			p.rolloutEnd = done
		}
	}
	switch d.Strategy {
	case deployevent.StrategyCanary:
		canary := newInstance(p.deployStart)
		canary.canary = true
		if promotion := p.deployStart.Add(d.CanaryDuration); promotion.Before(p.end) {
			p.promotion = promotion
			replaceFrom(promotion)
			// The canary leaves once every primary runs the new version.
			canary.until = promotion.Add(time.Duration(n-1) * d.InstanceInterval)
			if !canary.until.Before(p.end) {
				canary.until = time.Time{}
			}
		}
		p.instances = append(p.instances, canary)
	default:
		replaceFrom(p.deployStart)
	}
	p.instances = append(p.instances, old...)

	if r := sc.Regression; r != nil {
		p.onset = p.deployStart.Add(r.StartsAt)
	}
	if !d.Silent {
		p.events = p.lifecycle(setup)
	}
	return p
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

// lifecycle returns the deployment's events within the scenario, in time order.
func (p *plan) lifecycle(setup *rand.Rand) []deployevent.Event {
	sc := p.sc
	d := &sc.Deployment
	svc := sc.deployed()
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
		add(deployevent.StateQueued, p.deployStart.Add(-d.QueuedFor))
	}
	add(deployevent.StateStarted, p.deployStart)
	// The first new instance has passed its readiness check.
	if ready := p.deployStart.Add(d.InstanceInterval); p.rolloutEnd.IsZero() || ready.Before(p.rolloutEnd) {
		add(deployevent.StateProgressing, ready)
	}
	if !p.promotion.IsZero() {
		add(deployevent.StateProgressing, p.promotion)
	}
	if !p.rolloutEnd.IsZero() {
		add(deployevent.StateSucceeded, p.rolloutEnd)
	}
	// A canary promoted within its first interval reports out of order otherwise.
	sort.SliceStable(events, func(i, j int) bool { return events[i].Timestamp.Before(events[j].Timestamp) })
	return events
}

// shares returns, for each instance of the plan, its share of its service's
// traffic at t (0 when it does not serve then).
func (p *plan) shares(t time.Time, out []float64) {
	fraction := p.sc.Deployment.CanaryFraction
	for s := range p.sc.Services {
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
	}
	return l
}

// Events returns the scenario's lifecycle events in time order (none when
// the deployment is silent). The scenario must be valid.
func (s *Scenario) Events() []deployevent.Event {
	c := s.withDefaults()
	return newPlan(&c).events
}
