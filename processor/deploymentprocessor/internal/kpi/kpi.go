// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package kpi keeps the deployment KPIs and the four DORA metrics per
// tracked service: how many deployments ended and how, how long they took,
// how often they happen, lead time for changes, change failure rate, time to
// restore, and time to detect. It knows nothing of the collector: the
// processor feeds it deployment starts and ends, alerts and health
// verdicts, and reads Values on its evaluation interval.
//
// Definitions (the processor's README repeats them):
//   - count: finished deployments by outcome; a superseded deployment (a newer
//     one started before it ended) counts as cancelled.
//   - duration: end − start of the most recent finished deployment with a
//     known start.
//   - interval (deployment frequency): start − start of the two most recent
//     deployments (the end stands in for a deployment first heard of at its end).
//   - lead time: end − commit time of the most recent succeeded deployment
//     whose events carried a commit time.
//   - change failure ratio: failed + rolled back over succeeded + failed +
//     rolled back, among deployments that ended within the window.
//   - recovery time (time to restore): a failure opens at a deployment's first
//     alert, or at its end when it failed or was rolled back without an
//     alert; it closes when the service is healthy again, or when a later
//     deployment succeeds (a fix), or when the rollback ends if health is not
//     judged. The value is the most recent closed failure's length.
//   - detection time: a deployment's start to its first alert, for the most
//     recent deployment that alerted.
//   - judgement (alert accuracy and monitoring coverage): every finished
//     deployment is counted with how deploylens judged it while it ran —
//     alerted (an alert fired for it before it ended), passed (a conclusive
//     health verdict at least once and no alert) or unjudged. It is known
//     when the deployment ends: an alert in the post window after the end
//     does not change it.
//
// The processor reports only judgement alerts (not the DeploymentFailed and
// DeploymentStuck facts) to Alert: they give detection time, open failures
// and make a deployment alerted.
package kpi // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/kpi"

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/deploylens/deploylens/internal/lru"
)

// Key identifies a tracked service, as the tracker does.
type Key struct {
	Namespace   string `json:"namespace,omitempty"`
	Service     string `json:"service"`
	Environment string `json:"environment,omitempty"`
}

// Outcome is how a deployment ended, as the count attribute reports it.
type Outcome string

// The outcomes counted.
const (
	Succeeded  Outcome = "succeeded"
	Failed     Outcome = "failed"
	RolledBack Outcome = "rolled_back"
	Cancelled  Outcome = "cancelled"
)

// Outcomes lists every counted outcome in a fixed order.
var Outcomes = [...]Outcome{Succeeded, Failed, RolledBack, Cancelled}

// Judgement is how a finished deployment was judged while it ran, as the
// count attribute reports it.
type Judgement string

// The judgements counted.
const (
	// Alerted: an alert fired for the deployment before it ended.
	Alerted Judgement = "alerted"
	// Passed: judged conclusively at least once, and no alert fired.
	Passed Judgement = "passed"
	// Unjudged: never judged conclusively (too little traffic, not followed
	// by the health engine) and not alerted.
	Unjudged Judgement = "unjudged"
)

// Judgements lists every counted judgement in a fixed order.
var Judgements = [...]Judgement{Alerted, Passed, Unjudged}

// Deployment is what the book needs to know of a deployment.
type Deployment struct {
	ID         string
	StartTime  time.Time // zero when unknown
	EndTime    time.Time
	CommitTime time.Time // zero when unknown
	Outcome    Outcome
}

// Config bounds the book.
type Config struct {
	// ChangeFailureWindow is how far back the change failure ratio looks.
	ChangeFailureWindow time.Duration
	// MaxOutcomes bounds the outcomes remembered per service for the window.
	MaxOutcomes int
	// MaxServices bounds the services kept; the least recently updated is
	// dropped first (its counters start again if it comes back).
	MaxServices int
}

// DefaultConfig is 30 days of change failures, at most 1000 outcomes per
// service and 10 000 services (the tracker's default limit).
func DefaultConfig() Config {
	return Config{ChangeFailureWindow: 30 * 24 * time.Hour, MaxOutcomes: 1000, MaxServices: 10000}
}

// Values are one service's KPIs at a moment. A Has* false means the metric
// has no value yet (nothing happened that defines it) and is not emitted.
type Values struct {
	// StartTime is when counting began for this service: the stable start
	// time of the cumulative counts.
	StartTime time.Time
	// Counts are the finished deployments by outcome and judgement
	// (Outcomes × Judgements).
	Counts [len(Outcomes)][len(Judgements)]int64 `json:"counts_by_judgement"`

	Duration, Interval, LeadTime, RecoveryTime, DetectionTime float64 // seconds
	DurationOutcome                                           Outcome
	HasDuration, HasInterval, HasLeadTime                     bool
	HasRecoveryTime, HasDetectionTime                         bool

	ChangeFailureRatio    float64
	HasChangeFailureRatio bool
	// FailureOpen is true while a failure has not recovered.
	FailureOpen bool
}

// outcomeAt is one finished deployment in the change-failure window.
type outcomeAt struct {
	End    time.Time `json:"end"`
	Failed bool      `json:"failed"`
}

// service is one key's book.
type service struct {
	Values     Values      `json:"values"`
	LastStart  time.Time   `json:"last_start,omitzero"`
	Recent     []outcomeAt `json:"recent,omitempty"`
	FailedAt   time.Time   `json:"failed_at,omitzero"`   // the open failure's start
	Alerted    []string    `json:"alerted,omitempty"`    // deployments whose first alert was seen (bounded)
	Judged     []string    `json:"judged,omitempty"`     // deployments judged conclusively while they ran (bounded)
	Starts     []idTime    `json:"starts,omitempty"`     // recent deployments' starts, for detection time (bounded)
	LastUpdate time.Time   `json:"last_update,omitzero"` // for eviction
}

type idTime struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// maxRemembered bounds the per-service lists of deployment ids.
const maxRemembered = 16

// Book holds the KPIs of every service. It is safe for concurrent use.
type Book struct {
	cfg      Config
	mu       sync.Mutex
	services map[Key]*service
	// recency orders services by last update, for O(1) eviction.
	recency *lru.Order[Key]
	evicted int64
}

// New returns an empty book.
func New(cfg Config) *Book {
	if cfg.MaxOutcomes <= 0 {
		cfg.MaxOutcomes = DefaultConfig().MaxOutcomes
	}
	if cfg.MaxServices <= 0 {
		cfg.MaxServices = DefaultConfig().MaxServices
	}
	if cfg.ChangeFailureWindow <= 0 {
		cfg.ChangeFailureWindow = DefaultConfig().ChangeFailureWindow
	}
	return &Book{cfg: cfg, services: map[Key]*service{}, recency: lru.New[Key]()}
}

func (b *Book) get(key Key, now time.Time) *service {
	s, ok := b.services[key]
	if !ok {
		if len(b.services) >= b.cfg.MaxServices {
			b.evictOldest()
		}
		s = &service{Values: Values{StartTime: now}}
		b.services[key] = s
	}
	s.LastUpdate = now
	b.recency.Touch(key)
	return s
}

// evictOldest drops the least recently updated service, in O(1).
func (b *Book) evictOldest() {
	if k, ok := b.recency.Oldest(); ok {
		b.recency.Remove(k)
		delete(b.services, k)
		b.evicted++
	}
}

// Started records a deployment; its start counts once known (a deployment
// announced by a queued event has none yet: its end will stand in).
func (b *Book) Started(key Key, d Deployment, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(key, at)
	if !d.StartTime.IsZero() {
		s.noteStart(d.ID, d.StartTime)
	}
}

func (s *service) noteStart(id string, start time.Time) {
	for _, st := range s.Starts {
		if st.ID == id {
			return
		}
	}
	if !s.LastStart.IsZero() && start.After(s.LastStart) {
		s.Values.Interval = start.Sub(s.LastStart).Seconds()
		s.Values.HasInterval = true
	}
	if start.After(s.LastStart) {
		s.LastStart = start
	}
	s.Starts = append(s.Starts, idTime{ID: id, Time: start})
	if len(s.Starts) > maxRemembered {
		s.Starts = s.Starts[len(s.Starts)-maxRemembered:]
	}
}

// Ended records a deployment's end; now is the processing time.
func (b *Book) Ended(key Key, d Deployment, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(key, now)
	end := d.EndTime
	if end.IsZero() {
		end = now
	}
	if d.StartTime.IsZero() {
		// First heard of at its end: the end stands in for the start.
		s.noteStart(d.ID, end)
	} else {
		s.noteStart(d.ID, d.StartTime)
	}
	outcome := d.Outcome
	switch outcome {
	case Succeeded, Failed, RolledBack, Cancelled:
	default:
		outcome = Cancelled // superseded, or a state we do not count as a change
	}
	for i, o := range Outcomes {
		if o == outcome {
			s.Values.Counts[i][slices.Index(Judgements[:], s.judgementOf(d.ID))]++
		}
	}
	if !d.StartTime.IsZero() && !end.Before(d.StartTime) {
		s.Values.Duration = end.Sub(d.StartTime).Seconds()
		s.Values.DurationOutcome = outcome
		s.Values.HasDuration = true
	}
	if outcome == Succeeded && !d.CommitTime.IsZero() && end.After(d.CommitTime) {
		s.Values.LeadTime = end.Sub(d.CommitTime).Seconds()
		s.Values.HasLeadTime = true
	}
	if outcome != Cancelled {
		s.Recent = append(s.Recent, outcomeAt{End: end, Failed: outcome == Failed || outcome == RolledBack})
		if len(s.Recent) > b.cfg.MaxOutcomes {
			s.Recent = s.Recent[len(s.Recent)-b.cfg.MaxOutcomes:]
		}
	}
	switch outcome {
	case Failed, RolledBack:
		if s.FailedAt.IsZero() {
			s.FailedAt = end
		}
		s.Values.FailureOpen = true
	case Succeeded:
		// A later successful deployment is a fix: it restores service.
		s.closeFailure(end)
	}
}

// judgementOf is how deployment id was judged while it ran.
func (s *service) judgementOf(id string) Judgement {
	switch {
	case slices.Contains(s.Alerted, id):
		return Alerted
	case slices.Contains(s.Judged, id):
		return Passed
	}
	return Unjudged
}

// remember appends id to a bounded list of deployment ids unless it is there;
// it reports whether id is new.
func remember(ids *[]string, id string) bool {
	if slices.Contains(*ids, id) {
		return false
	}
	*ids = append(*ids, id)
	if len(*ids) > maxRemembered {
		*ids = (*ids)[len(*ids)-maxRemembered:]
	}
	return true
}

// Judged records that the health engine reached a conclusive verdict at at
// on the service while its deployment id ran.
func (b *Book) Judged(key Key, deploymentID string, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	remember(&b.get(key, at).Judged, deploymentID)
}

// Alert records that an alert fired at at for the service's deployment id,
// which started at start (zero when unknown). The first alert of a deployment
// gives the detection time and opens a failure when none is open.
func (b *Book) Alert(key Key, deploymentID string, start, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.get(key, at)
	if !remember(&s.Alerted, deploymentID) {
		return
	}
	if !start.IsZero() && !at.Before(start) {
		s.Values.DetectionTime = at.Sub(start).Seconds()
		s.Values.HasDetectionTime = true
	}
	if s.FailedAt.IsZero() {
		s.FailedAt = at
	}
	s.Values.FailureOpen = true
}

// Healthy records that the service was judged healthy at at: an open
// failure closes.
func (b *Book) Healthy(key Key, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s, ok := b.services[key]; ok {
		s.closeFailure(at)
	}
}

func (s *service) closeFailure(at time.Time) {
	if s.FailedAt.IsZero() {
		return
	}
	if !at.Before(s.FailedAt) {
		s.Values.RecoveryTime = at.Sub(s.FailedAt).Seconds()
		s.Values.HasRecoveryTime = true
	}
	s.FailedAt = time.Time{}
	s.Values.FailureOpen = false
}

// Values returns key's KPIs at now (the change failure window ends at now).
func (b *Book) Values(key Key, now time.Time) (Values, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.services[key]
	if !ok {
		return Values{}, false
	}
	return s.valuesAt(now, b.cfg.ChangeFailureWindow), true
}

func (s *service) valuesAt(now time.Time, window time.Duration) Values {
	v := s.Values
	from := now.Add(-window)
	var total, failed int
	for _, o := range s.Recent {
		if o.End.Before(from) || o.End.After(now) {
			continue
		}
		total++
		if o.Failed {
			failed++
		}
	}
	if total > 0 {
		v.ChangeFailureRatio = float64(failed) / float64(total)
		v.HasChangeFailureRatio = true
	}
	return v
}

// Each calls fn for every service's values at now, in no particular order.
func (b *Book) Each(now time.Time, fn func(Key, Values)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, s := range b.services {
		fn(k, s.valuesAt(now, b.cfg.ChangeFailureWindow))
	}
}

// Len is the number of services in the book; Evicted how many were dropped.
func (b *Book) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.services)
}

// Evicted counts services dropped to stay within MaxServices.
func (b *Book) Evicted() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.evicted
}

// Forget drops a key (the tracker forgot it); it reports whether the key
// was in the book.
func (b *Book) Forget(key Key) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.services[key]; !ok {
		return false
	}
	delete(b.services, key)
	b.recency.Remove(key)
	return true
}

type snapshotEntry struct {
	Key     Key      `json:"key"`
	Service *service `json:"service"`
}

// snapshotVersion 2 counts deployments by outcome and judgement. Version 1
// (a bare list of entries) counted them by outcome only.
const snapshotVersion = 2

type snapshot struct {
	Version  int             `json:"version"`
	Services []snapshotEntry `json:"services"`
}

// Snapshot encodes the whole book for a storage extension.
func (b *Book) Snapshot() ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	entries := make([]snapshotEntry, 0, len(b.services))
	for k, s := range b.services {
		entries = append(entries, snapshotEntry{Key: k, Service: s})
	}
	return json.Marshal(snapshot{Version: snapshotVersion, Services: entries})
}

// Restore replaces the book's content with a snapshot. A version 1 snapshot
// keeps everything but its counts, which did not say how deployments were
// judged: they start again from zero, from the service's last update.
func (b *Book) Restore(data []byte) error {
	var entries []snapshotEntry
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		if err := json.Unmarshal(data, &entries); err != nil {
			return err
		}
		for _, e := range entries {
			if e.Service != nil {
				e.Service.Values.StartTime = e.Service.LastUpdate
			}
		}
	} else {
		var snap snapshot
		if err := json.Unmarshal(data, &snap); err != nil {
			return err
		}
		if snap.Version != snapshotVersion {
			return fmt.Errorf("KPI snapshot version %d, want %d", snap.Version, snapshotVersion)
		}
		entries = snap.Services
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.services = make(map[Key]*service, len(entries))
	b.recency.Clear()
	entries = slices.DeleteFunc(entries, func(e snapshotEntry) bool { return e.Service == nil })
	// Oldest update first, so the recency order is the saved one and a
	// smaller max_services keeps the most recently updated.
	slices.SortStableFunc(entries, func(x, y snapshotEntry) int { return x.Service.LastUpdate.Compare(y.Service.LastUpdate) })
	for _, e := range entries {
		if _, dup := b.services[e.Key]; !dup && len(b.services) >= b.cfg.MaxServices {
			b.evictOldest()
		}
		b.services[e.Key] = e.Service
		b.recency.Touch(e.Key)
	}
	return nil
}
