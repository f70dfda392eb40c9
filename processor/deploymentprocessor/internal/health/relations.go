// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"math"
	"sort"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// Relations gives a service's judgement the edges of the service graph it
// takes part in: an engine of edges (Config.Edges) is one. Implementations
// must not call the engine that reads them.
type Relations interface {
	// Outgoing calls fn with the last snapshot of every edge from caller.
	Outgoing(caller Key, fn func(*Snapshot))
	// Incoming calls fn with the last snapshot of every edge to callee (the
	// callers of the callee's namespace and environment).
	Incoming(callee Key, fn func(*Snapshot))
}

// edgeIndex finds an engine of edges' series by caller and by callee.
// It lives under the engine's lock.
type edgeIndex struct {
	out map[Key]map[Key]*Series // caller → edge key → series
	in  map[Key]map[Key]*Series // callee → edge key → series
	// alias maps a callee as callers name it to the service it is (learned
	// from span pairs): its edges are found under the service.
	alias map[Key]Key
}

// callee is the service an edge calls, its name resolved.
func (x *edgeIndex) callee(key Key) Key {
	c := key.Callee()
	if to, ok := x.alias[c]; ok {
		return to
	}
	return c
}

func (x *edgeIndex) add(key Key, s *Series) {
	if x.out == nil {
		x.out, x.in = map[Key]map[Key]*Series{}, map[Key]map[Key]*Series{}
	}
	put := func(m map[Key]map[Key]*Series, at Key) {
		if m[at] == nil {
			m[at] = map[Key]*Series{}
		}
		m[at][key] = s
	}
	put(x.out, key.Caller())
	put(x.in, x.callee(key))
}

func (x *edgeIndex) remove(key Key) {
	drop := func(m map[Key]map[Key]*Series, at Key) {
		if set := m[at]; set != nil {
			delete(set, key)
			if len(set) == 0 {
				delete(m, at)
			}
		}
	}
	drop(x.out, key.Caller())
	drop(x.in, x.callee(key))
}

// AliasCallee says that callers naming named call service: the edges to
// named count as edges into service (its blast radius). At most MaxKeys
// aliases are kept; an alias to a name itself is forgotten.
func (e *Engine) AliasCallee(named, service Key) {
	named, service = named.Caller(), service.Caller()
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &e.edges
	if cur, ok := x.alias[named]; ok && cur == service {
		return
	}
	if x.alias == nil {
		x.alias = map[Key]Key{}
	}
	if _, ok := x.alias[named]; !ok && len(x.alias) >= e.cfg.MaxKeys {
		return
	}
	from := named
	if cur, ok := x.alias[named]; ok {
		from = cur
	}
	if named == service {
		delete(x.alias, named)
	} else {
		x.alias[named] = service
	}
	if from == service || len(x.in[from]) == 0 {
		return
	}
	// The edges that name named move from where they were found to service.
	for k, s := range x.in[from] {
		if k.Callee() != named {
			continue
		}
		delete(x.in[from], k)
		if x.in[service] == nil {
			x.in[service] = map[Key]*Series{}
		}
		x.in[service][k] = s
	}
	if len(x.in[from]) == 0 {
		delete(x.in, from)
	}
}

// fanOut is how many edges leave caller.
func (x *edgeIndex) fanOut(caller Key) int { return len(x.out[caller]) }

func (x *edgeIndex) each(m map[Key]map[Key]*Series, at Key) []*Series {
	set := m[at]
	list := make([]*Series, 0, len(set))
	for _, s := range set {
		list = append(list, s)
	}
	return list
}

// Outgoing implements Relations for an engine of edges.
func (e *Engine) Outgoing(caller Key, fn func(*Snapshot)) { e.eachEdge(true, caller, fn) }

// Incoming implements Relations for an engine of edges.
func (e *Engine) Incoming(callee Key, fn func(*Snapshot)) { e.eachEdge(false, callee, fn) }

// eachEdge calls fn with the last snapshot of every edge from (out) or to a service.
func (e *Engine) eachEdge(out bool, service Key, fn func(*Snapshot)) {
	e.mu.RLock()
	m := e.edges.in
	if out {
		m = e.edges.out
	}
	list := e.edges.each(m, service.Caller())
	e.mu.RUnlock()
	for _, s := range list {
		if snap := s.snapshot.Load(); snap != nil {
			fn(snap)
		}
	}
}

// ForgetCaller drops every edge from caller (the caller is forgotten) and
// counts them as evicted.
func (e *Engine) ForgetCaller(caller Key) {
	e.mu.RLock()
	list := e.edges.each(e.edges.out, caller.Caller())
	e.mu.RUnlock()
	for _, s := range list {
		e.Forget(s.key)
	}
}

// DependencyRefused counts edges not judged because their caller had
// MaxDependencies already.
func (e *Engine) DependencyRefused() uint64 { return e.refusedFanOut.Load() }

// relations is what the edges of a service say in one of its evaluations.
type relations struct {
	// dependency and caller are the family's evidence from the service's own
	// calls and, while it deploys, from its callers' calls to it; not
	// Judged when no edge was.
	dependency, caller Evidence
	impact, explained  []Relation
}

// edgeFresh is how many steady intervals an edge's snapshot counts after its
// evaluation: an edge without calls stops counting soon.
const edgeFresh = 2

// relations reads the edges of s as of the interval ending at end.
func (s *Series) relations(st Status, end int64) relations {
	var out relations
	rel := s.engine.cfg.Relations
	if rel == nil || s.key.Dependency != "" {
		return out
	}
	oldest := end - edgeFresh*s.engine.steady
	fresh := func(snap *Snapshot) bool { return snap.Time.UnixNano() >= oldest }
	var own []*Snapshot
	rel.Outgoing(s.key, func(snap *Snapshot) {
		if !fresh(snap) {
			return
		}
		if snap.Subject == s.key || snap.Subject.Service == "" {
			own = append(own, snap)
			return
		}
		// The callee deploys: the edge is its blast radius, and its harm
		// explains this service's.
		if ev, ok := strongest(&snap.Health); ok && harmful(&snap.Health, &ev) {
			out.explained = append(out.explained, Relation{Peer: snap.Subject, DeploymentID: snap.DeploymentID, Evidence: ev})
		}
	})
	out.dependency = familyEvidence(own, RelationDependency, func(snap *Snapshot) Key { return snap.Key.Callee() })

	deploying := st.Phase == deployevent.PhaseDuring || st.Phase == deployevent.PhasePost
	if deploying && st.DeploymentID != "" {
		var callers []*Snapshot
		rel.Incoming(s.key, func(snap *Snapshot) {
			if !fresh(snap) || snap.Subject != s.key || snap.DeploymentID != st.DeploymentID {
				return
			}
			callers = append(callers, snap)
			if ev, ok := strongest(&snap.Health); ok && harmful(&snap.Health, &ev) {
				out.impact = append(out.impact, Relation{Peer: snap.Key.Caller(), DeploymentID: snap.DeploymentID, Evidence: ev})
			}
		})
		out.caller = familyEvidence(callers, RelationCaller, func(snap *Snapshot) Key { return snap.Key.Caller() })
	}
	byStrength := func(list []Relation) {
		sort.SliceStable(list, func(a, b int) bool {
			if list[a].Evidence.Score != list[b].Evidence.Score {
				return list[a].Evidence.Score > list[b].Evidence.Score
			}
			return list[a].Peer.Service < list[b].Peer.Service
		})
	}
	byStrength(out.impact)
	byStrength(out.explained)
	return out
}

// strongest is an edge's judged evidence with the smallest p-value (the
// strongest score), false when it judged nothing.
func strongest(h *Health) (Evidence, bool) {
	best := -1
	for i := range h.Indicators {
		ev := &h.Indicators[i]
		if ev.Judged && (best < 0 || ev.PValue < h.Indicators[best].PValue) {
			best = i
		}
	}
	if best < 0 {
		return Evidence{}, false
	}
	return h.Indicators[best], true
}

// harmful tells whether an edge's judgement is evidence of harm: its verdict
// calls for action, or its strongest evidence passed alpha.
func harmful(h *Health, ev *Evidence) bool {
	return h.Verdict == deployevent.VerdictUnhealthy || h.Verdict == deployevent.VerdictDegraded || ev.Score >= AlphaScore
}

// familyEvidence is one piece of evidence for a service's family from a set
// of edges: the strongest edge's strongest evidence, its p-value multiplied
// by the number of edges judged (Bonferroni across edges), so that a service
// with many dependencies is not alarmed by chance on one of them, nor are
// its own indicators' p-values diluted by one test per edge.
func familyEvidence(edges []*Snapshot, kind RelationKind, peer func(*Snapshot) Key) Evidence {
	var best Evidence
	var bestPeer Key
	judged := 0
	found := false
	for _, snap := range edges {
		ev, ok := strongest(&snap.Health)
		if !ok {
			continue
		}
		judged++
		if !found || ev.PValue < best.PValue || (ev.PValue == best.PValue && peer(snap).Service < bestPeer.Service) {
			best, bestPeer, found = ev, peer(snap), true
		}
	}
	if !found {
		return Evidence{}
	}
	best.PValue = math.Min(1, best.PValue*float64(judged))
	best.Relation, best.Peer, best.Dimension = kind, bestPeer, indicators.DimensionDependencies
	best.Score, best.Confidence = 0, 0
	return best
}

// apply adds the relations' evidence to a service's family, and, while the
// service deploys, takes out of it the harm its dependencies' rollouts
// explain: an own indicator of a dimension in which an explaining edge shows
// harm (errors, latency) counts no harm against this deployment.
func (r *relations) apply(ev []Evidence, phase deployevent.Phase) []Evidence {
	r.mask(ev, phase)
	if r.dependency.Judged {
		ev = append(ev, r.dependency)
	}
	if r.caller.Judged {
		ev = append(ev, r.caller)
	}
	return ev
}

// mask takes out of a family (the service's, or a cohort's) the harm its
// dependencies' rollouts explain, while the service deploys.
func (r *relations) mask(ev []Evidence, phase deployevent.Phase) {
	if phase != deployevent.PhaseDuring && phase != deployevent.PhasePost {
		return
	}
	for i := range ev {
		if ev[i].Relation != "" || ev[i].PValue >= 1 {
			continue
		}
		for _, x := range r.explained {
			if x.Evidence.Dimension == ev[i].Dimension && ev[i].Dimension != indicators.DimensionThroughput {
				ev[i].PValue, ev[i].ExplainedBy = 1, x.Peer.Service
				break
			}
		}
	}
}
