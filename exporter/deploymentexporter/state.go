// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"math"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/lru"
)

// ring keeps the last cap items pushed.
type ring[T any] struct {
	items []T
	next  int
	full  bool
}

func newRing[T any](capacity int) ring[T] { return ring[T]{items: make([]T, 0, capacity)} }

func (r *ring[T]) push(v T) {
	if len(r.items) < cap(r.items) {
		r.items = append(r.items, v)
		return
	}
	if cap(r.items) == 0 {
		return
	}
	r.items[r.next] = v
	r.next = (r.next + 1) % len(r.items)
	r.full = true
}

// slice returns the items oldest first.
func (r *ring[T]) slice() []T {
	out := make([]T, 0, len(r.items))
	if !r.full {
		return append(out, r.items...)
	}
	out = append(out, r.items[r.next:]...)
	return append(out, r.items[:r.next]...)
}

func (r *ring[T]) reset() {
	r.items = r.items[:0]
	r.next = 0
	r.full = false
}

// deployment is the deployment a view is about, from lifecycle events.
type deployment struct {
	ID              string
	Version         string
	PreviousVersion string
	State           deployevent.State
	Strategy        string
	Source          string
	Revision        string
	StartedAt       time.Time
	EndedAt         time.Time
	// stateAt is the timestamp of the event that set State.
	stateAt   time.Time
	inHistory bool
}

// finished is a deployment that ended (or was superseded), for the page.
type finished struct {
	Key             serviceKey
	ID              string
	Version         string
	PreviousVersion string
	Outcome         string
	StartedAt       time.Time
	EndedAt         time.Time
}

// outcomeSuperseded marks a deployment a newer one replaced before it ended.
const outcomeSuperseded = "superseded"

// health is the latest judgement of a cohort: its evaluation's
// deployment.health.score (NaN when none was written: nothing was judged)
// and the verdict and recommendation state sets.
type health struct {
	Score          float64
	Verdict        deployevent.Verdict
	Recommendation deployevent.Recommendation
	At             time.Time // the evaluation's timestamp
	ReceivedAt     time.Time // when we got it: staleness is judged on our clock
}

func (h *health) known() bool { return !h.ReceivedAt.IsZero() }

// timedValue is one sparkline point: 16 bytes (a time.Time would be 24
// more), as every service keeps sparkline_points of them per indicator.
type timedValue struct {
	At    int64 // unix nanoseconds
	Value float64
}

func pointAt(at time.Time, value float64) timedValue {
	return timedValue{At: at.UnixNano(), Value: value}
}

// indicator holds an indicator's recent values and baselines for sparklines.
type indicator struct {
	Values    ring[timedValue]
	Baselines ring[timedValue]
}

// serviceView is what the gate and the page know about one
// (namespace, service, environment).
type serviceView struct {
	Key        serviceKey
	Deployment *deployment
	History    ring[finished]
	// Version is service.version from health data, for services whose
	// lifecycle events never reached this exporter.
	Version string
	Phase   string
	PhaseAt time.Time
	// Health is the service-level (or canary-less) judgement, Canary the
	// canary cohort's; the baseline cohort is the old version, not judged.
	Health     health
	Canary     health
	Scores     ring[timedValue]
	Indicators map[string]*indicator
	// Edges are the service's calls by dependency name (the service graph);
	// state.edges holds the same entries, for the limit and the TTL.
	Edges map[string]*edge
	// Impact is deployment.impact.services of the current deployment: how
	// many of its callers' call edges regressed. Known when ImpactAt is set.
	Impact     int64
	ImpactAt   time.Time
	FirstSeen  time.Time
	LastUpdate time.Time
}

// effectiveHealth is the health the gate judges: the canary cohort's when
// it has reported since the deployment started, else the service's.
func (v *serviceView) effectiveHealth() *health {
	if v.Canary.known() && (v.Deployment == nil || !v.Canary.At.Before(v.Deployment.StartedAt)) {
		return &v.Canary
	}
	return &v.Health
}

// alertEntry is a firing alert.
type alertEntry struct {
	Signal alertSignal
	// logs is the last signal's record in a resource of its own, re-sent as is.
	logs       plog.Logs
	FirstSeen  time.Time
	LastSignal time.Time
	LastAMPost time.Time
	// notified are the channels that got the firing notification.
	notified map[string]bool
}

// state is the exporter's bounded in-memory view. Not safe for concurrent
// use: the core's mutex guards it.
type state struct {
	cfg      StateConfig
	services map[serviceKey]*serviceView
	alerts   map[string]*alertEntry
	// resolved remembers when alerts were resolved, so a repeated resolve
	// signal is not sent to the channels again.
	resolved map[string]time.Time
	// dropped counts entries dropped since the last call to takeDrops.
	dropped map[dropKey]int64
	// The recency orders of services, alerts and resolved: evicting the
	// oldest at a limit is O(1).
	// indicators is the number of indicators over every view (a size gauge).
	indicators    int
	serviceOrder  *lru.Order[serviceKey]
	alertOrder    *lru.Order[string]
	resolvedOrder *lru.Order[string]
	// edges is the service graph over every view, bounded by max_edges and
	// edge_ttl in the recency order edgeOrder.
	edges     map[edgeKey]*edge
	edgeOrder *lru.Order[edgeKey]
	// impactUnhealthyBelow is gate::impact_unhealthy_below: the edge score
	// under which a caller's calls into a deploying service are unhealthy.
	impactUnhealthyBelow float64
}

type dropKey struct{ kind, reason string }

func newState(cfg StateConfig) *state {
	return &state{
		cfg:      cfg,
		services: map[serviceKey]*serviceView{},
		alerts:   map[string]*alertEntry{},
		resolved: map[string]time.Time{},
		dropped:  map[dropKey]int64{},
		edges:    map[edgeKey]*edge{},

		impactUnhealthyBelow: defaultImpactUnhealthyBelow,

		serviceOrder:  lru.New[serviceKey](),
		alertOrder:    lru.New[string](),
		resolvedOrder: lru.New[string](),
		edgeOrder:     lru.New[edgeKey](),
	}
}

func (s *state) drop(kind, reason string) { s.dropped[dropKey{kind, reason}]++ }

// view returns the view of key, creating it (and making room) when needed.
func (s *state) view(key serviceKey, now time.Time) *serviceView {
	if v, ok := s.services[key]; ok {
		v.LastUpdate = now
		s.serviceOrder.Touch(key)
		return v
	}
	if len(s.services) >= s.cfg.MaxServices {
		if oldest, ok := s.serviceOrder.Oldest(); ok {
			s.deleteService(oldest)
			s.drop("service", "limit")
		}
	}
	v := &serviceView{
		Key:        key,
		History:    newRing[finished](s.cfg.History),
		Scores:     newRing[timedValue](s.cfg.SparklinePoints),
		Indicators: map[string]*indicator{},
		FirstSeen:  now,
		LastUpdate: now,
	}
	s.services[key] = v
	s.serviceOrder.Touch(key)
	return v
}

// deleteService forgets a view and everything keyed by it: its indicators
// and its edges go with it (counted as the service's drop, not their own).
func (s *state) deleteService(key serviceKey) {
	if v, ok := s.services[key]; ok {
		s.indicators -= len(v.Indicators)
		for dep := range v.Edges {
			k := edgeKey{Caller: key, Dependency: dep}
			delete(s.edges, k)
			s.edgeOrder.Remove(k)
		}
	}
	delete(s.services, key)
	s.serviceOrder.Remove(key)
}

func (s *state) deleteAlert(fingerprint string) {
	delete(s.alerts, fingerprint)
	s.alertOrder.Remove(fingerprint)
}

func (s *state) deleteResolved(fingerprint string) {
	delete(s.resolved, fingerprint)
	s.resolvedOrder.Remove(fingerprint)
}

func phaseOfState(st deployevent.State) deployevent.Phase {
	switch st {
	case deployevent.StateQueued:
		return deployevent.PhasePre
	case deployevent.StateStarted, deployevent.StateProgressing:
		return deployevent.PhaseDuring
	default:
		return deployevent.PhasePost
	}
}

// applyLifecycle updates a view from a deployment.lifecycle event.
func (s *state) applyLifecycle(ev *deployevent.Event, now time.Time) {
	key := serviceKey{Namespace: ev.Namespace, Service: ev.Service, Environment: ev.Environment}
	ts := ev.Timestamp
	if ts.IsZero() {
		ts = now
	}
	v := s.view(key, now)
	d := v.Deployment
	if d == nil || d.ID != ev.ID {
		if d != nil {
			for _, f := range v.History.slice() {
				if f.ID == ev.ID {
					return // a late event of a deployment already over
				}
			}
			if ts.Before(d.StartedAt) {
				return // older than the deployment we track
			}
			if !d.State.Final() {
				d.EndedAt = ts
				v.History.push(finished{
					Key: key, ID: d.ID, Version: d.Version, PreviousVersion: d.PreviousVersion,
					Outcome: outcomeSuperseded, StartedAt: d.StartedAt, EndedAt: ts,
				})
			}
		}
		d = &deployment{ID: ev.ID, StartedAt: ts}
		v.Deployment = d
		// A new deployment is judged afresh: the last one's health says nothing about it.
		v.Health, v.Canary = health{}, health{}
		v.Impact, v.ImpactAt = 0, time.Time{}
		v.Scores.reset()
	}
	if ev.Version != "" {
		d.Version = ev.Version
	}
	if ev.PreviousVersion != "" {
		d.PreviousVersion = ev.PreviousVersion
	}
	if ev.Strategy != "" {
		d.Strategy = string(ev.Strategy)
	}
	if ev.Source != "" {
		d.Source = ev.Source
	}
	if ev.Revision != "" {
		d.Revision = ev.Revision
	}
	if !ev.State.Final() && ts.Before(d.StartedAt) {
		d.StartedAt = ts // e.g. `queued` arriving after `started`
	}
	if d.State.Final() && !ev.State.Final() {
		return // out of order: never go back from an end state
	}
	if d.State != "" && ev.State.Final() == d.State.Final() && ts.Before(d.stateAt) {
		return // an older event of the same kind (e.g. queued after started)
	}
	d.State = ev.State
	d.stateAt = ts
	if !ts.Before(v.PhaseAt) {
		v.Phase = string(phaseOfState(ev.State))
		v.PhaseAt = ts
	}
	if ev.State.Final() {
		d.EndedAt = ts
		if !d.inHistory {
			d.inHistory = true
			v.History.push(finished{
				Key: key, ID: d.ID, Version: d.Version, PreviousVersion: d.PreviousVersion,
				Outcome: string(ev.State), StartedAt: d.StartedAt, EndedAt: ts,
			})
		}
	}
}

// healthField says which part of a judgement a data point carries.
type healthField uint8

const (
	fieldScore          healthField = iota // deployment.health.score
	fieldVerdict                           // deployment.health.verdict (the point whose value is 1)
	fieldRecommendation                    // deployment.health.recommendation (the point whose value is 1)
)

// healthPoint is one data point of a cohort's judgement.
type healthPoint struct {
	Key            serviceKey
	Version        string
	Field          healthField
	Score          float64
	Verdict        deployevent.Verdict
	Recommendation deployevent.Recommendation
	Phase          string
	Cohort         string
	At             time.Time
}

// applyHealth merges one point into its cohort's judgement. The points of
// one evaluation share a timestamp; a newer evaluation starts with no score,
// so an evaluation that wrote none (nothing judged) shows none.
func (s *state) applyHealth(p *healthPoint, now time.Time) {
	if p.Cohort == string(deployevent.CohortBaseline) {
		return
	}
	v := s.view(p.Key, now)
	if p.Version != "" {
		v.Version = p.Version
	}
	h := &v.Health
	if p.Cohort == string(deployevent.CohortCanary) {
		h = &v.Canary
	}
	if p.At.Before(h.At) {
		return // out of order
	}
	if p.At.After(h.At) || !h.known() {
		h.At, h.Score = p.At, math.NaN()
		if h.Verdict == "" {
			h.Verdict, h.Recommendation = deployevent.VerdictInconclusive, deployevent.RecommendNone
		}
	}
	h.ReceivedAt = now
	switch p.Field {
	case fieldScore:
		h.Score = p.Score
		if h == v.effectiveHealth() {
			v.Scores.push(pointAt(p.At, p.Score))
		}
		if p.Phase != "" && !p.At.Before(v.PhaseAt) {
			v.Phase = p.Phase
			v.PhaseAt = p.At
		}
	case fieldVerdict:
		h.Verdict = p.Verdict
	case fieldRecommendation:
		h.Recommendation = p.Recommendation
	}
}

// applyIndicator records a deployment.indicator.value (baseline=false) or
// .baseline data point.
func (s *state) applyIndicator(key serviceKey, name string, value float64, at time.Time, baseline bool, now time.Time) {
	v := s.view(key, now)
	ind, ok := v.Indicators[name]
	if !ok {
		if len(v.Indicators) >= s.cfg.MaxIndicators {
			// Refused, not evicted: a view's first indicators are the ones its page shows.
			s.drop("indicator", "limit")
			return
		}
		ind = &indicator{Values: newRing[timedValue](s.cfg.SparklinePoints), Baselines: newRing[timedValue](s.cfg.SparklinePoints)}
		v.Indicators[name] = ind
		s.indicators++
	}
	r := &ind.Values
	if baseline {
		r = &ind.Baselines
	}
	r.push(pointAt(at, value))
}

// applyAlert records an alert signal. For a firing one it returns its entry.
// For a resolve it returns the entry it ended (nil when it was not tracked)
// and whether this fingerprint was already resolved (a repeated resolve).
func (s *state) applyAlert(a *alertSignal, logs plog.Logs, now time.Time) (current, ended *alertEntry, repeated bool) {
	e, ok := s.alerts[a.Fingerprint]
	if !a.firing() {
		_, repeated = s.resolved[a.Fingerprint]
		if ok {
			s.deleteAlert(a.Fingerprint)
		}
		s.rememberResolved(a.Fingerprint, now)
		return nil, e, repeated && !ok
	}
	s.deleteResolved(a.Fingerprint) // it fires again
	if !ok {
		if len(s.alerts) >= s.cfg.MaxAlerts {
			if oldest, found := s.alertOrder.Oldest(); found {
				s.deleteAlert(oldest)
				s.drop("alert", "limit")
			}
		}
		e = &alertEntry{FirstSeen: now, notified: map[string]bool{}}
		s.alerts[a.Fingerprint] = e
	}
	e.Signal = *a
	e.logs = logs
	e.LastSignal = now
	s.alertOrder.Touch(a.Fingerprint)
	return e, nil, false
}

func (s *state) rememberResolved(fingerprint string, now time.Time) {
	if _, ok := s.resolved[fingerprint]; !ok && len(s.resolved) >= s.cfg.MaxAlerts {
		if oldest, found := s.resolvedOrder.Oldest(); found {
			s.deleteResolved(oldest)
			s.drop("resolved", "limit")
		}
	}
	s.resolved[fingerprint] = now
	s.resolvedOrder.Touch(fingerprint)
}

// sweep drops views and alerts past their TTL. Each recency order is the
// order of last updates, so it walks only what expires and the first entry
// that does not.
func (s *state) sweep(now time.Time) {
	for k, ok := s.serviceOrder.Oldest(); ok && now.Sub(s.services[k].LastUpdate) > s.cfg.ServiceTTL; k, ok = s.serviceOrder.Oldest() {
		s.deleteService(k)
		s.drop("service", "ttl")
	}
	for fp, ok := s.alertOrder.Oldest(); ok && now.Sub(s.alerts[fp].LastSignal) > s.cfg.AlertTTL; fp, ok = s.alertOrder.Oldest() {
		s.deleteAlert(fp)
		s.drop("alert", "ttl")
	}
	for fp, ok := s.resolvedOrder.Oldest(); ok && now.Sub(s.resolved[fp]) > s.cfg.AlertTTL; fp, ok = s.resolvedOrder.Oldest() {
		s.deleteResolved(fp)
		s.drop("resolved", "ttl")
	}
	for k, ok := s.edgeOrder.Oldest(); ok && now.Sub(s.edges[k].LastUpdate) > s.cfg.EdgeTTL; k, ok = s.edgeOrder.Oldest() {
		s.deleteEdge(k)
		s.drop("edge", "ttl")
	}
}

// takeDrops returns and clears the drop counts.
func (s *state) takeDrops() map[dropKey]int64 {
	if len(s.dropped) == 0 {
		return nil
	}
	out := s.dropped
	s.dropped = map[dropKey]int64{}
	return out
}

// alertsFor returns the firing alerts of key, oldest first.
func (s *state) alertsFor(key serviceKey) []*alertEntry {
	var out []*alertEntry
	for _, e := range s.alerts {
		if e.Signal.Key == key {
			out = append(out, e)
		}
	}
	sortAlerts(out)
	return out
}

func sortAlerts(es []*alertEntry) {
	sort.Slice(es, func(i, j int) bool {
		if !es[i].Signal.StartsAt.Equal(es[j].Signal.StartsAt) {
			return es[i].Signal.StartsAt.Before(es[j].Signal.StartsAt)
		}
		return es[i].Signal.Fingerprint < es[j].Signal.Fingerprint
	})
}
