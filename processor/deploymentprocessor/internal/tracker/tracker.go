// Package tracker follows the deployments of every service key seen in
// deployment.lifecycle events and telemetry: a state machine per key, version
// inference, cohorts, a bounded LRU of keys and snapshots for storage. It knows
// nothing of the collector; time comes from the caller or Config.Now.
package tracker // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"

import (
	"container/heap"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Key identifies a tracked service: the value of three resource attributes.
type Key struct {
	Namespace   string
	Service     string
	Environment string
}

// Config bounds and times the tracker. Zero durations disable what they time
// (no post window, never stuck, no idle expiry).
type Config struct {
	// PostWindow is how long a service stays `post` after a deployment ends.
	PostWindow time.Duration
	// MaxDuration marks a deployment stuck when it has run longer.
	MaxDuration time.Duration
	// MaxServices bounds the number of keys; the least recently seen idle key
	// is evicted to make room, else the new key is refused.
	MaxServices int
	// IdleTTL evicts keys with neither telemetry nor events for this long.
	IdleTTL time.Duration
	// HistorySize is the number of finished deployments kept per key.
	HistorySize int
	// Inference starts a deployment when telemetry shows a new version.
	Inference bool
	// Settle is how long a version must be silent to count as gone, and how
	// recently it must have reported to count as serving (for cohorts).
	Settle time.Duration
	// Now is the clock of Apply; nil means time.Now.
	Now func() time.Time
	// Hooks are told about what happens inside the tracker.
	Hooks Hooks
}

// Hooks are called with the tracker's lock held: they must be quick and must
// not call the tracker. Any of them may be nil.
type Hooks struct {
	// Started is called when a deployment record of service k is created.
	Started func(k Key, d *Deployment)
	// Ended is called when a deployment of service k gets its outcome.
	Ended func(k Key, d *Deployment)
	// Stuck is called once when a deployment is marked stuck.
	Stuck func(d *Deployment)
	// Evicted is called when a key is dropped.
	Evicted func(reason EvictReason)
	// Refused is called when a new key cannot be tracked because every
	// tracked key is busy with a deployment.
	Refused func()
	// Forgotten is the one place that learns a key is gone: evicted (idle
	// TTL, LRU) or refused. Unlike the other hooks it runs after the
	// tracker's lock is released, so it may take other locks and call the
	// tracker; everything kept per key elsewhere is dropped there.
	Forgotten func(k Key, reason EvictReason)
}

// EvictReason says why a key was dropped.
type EvictReason string

// The eviction reasons.
const (
	EvictLRU  EvictReason = "lru"
	EvictIdle EvictReason = "idle_ttl"
	// EvictRefused: the key was refused (the tracker is full); Forgotten is
	// told so that nothing else keeps state for a key the tracker does not.
	EvictRefused EvictReason = "refused"
)

// Reason says what Apply did with an event, or why it ignored it.
type Reason string

// Reasons for applied events.
const (
	// ReasonNew: the event began a new deployment.
	ReasonNew Reason = "new"
	// ReasonTransition: the event moved a known deployment forward.
	ReasonTransition Reason = "transition"
	// ReasonSupersede: the event began a deployment that replaced a running one.
	ReasonSupersede Reason = "supersede"
	// ReasonAdopt: the event named a deployment the tracker had inferred.
	ReasonAdopt Reason = "adopt"
)

// Reasons for ignored events.
const (
	// ReasonDuplicate: the deployment is already in that state.
	ReasonDuplicate Reason = "duplicate"
	// ReasonOutOfOrder: the event would move a deployment backwards, or
	// reopen one that ended.
	ReasonOutOfOrder Reason = "out_of_order"
	// ReasonStale: a new deployment older than the current one.
	ReasonStale Reason = "stale"
	// ReasonSuperseded: the deployment was already replaced by a newer one.
	ReasonSuperseded Reason = "superseded"
	// ReasonRefused: the key is new and the tracker is full.
	ReasonRefused Reason = "refused"
)

// Tag is what telemetry of a key is tagged with. Its strings belong to the
// tracker and are never modified, so callers may keep them.
type Tag struct {
	// Known is set when a deployment of the key is known: running, in its
	// post window, or remembered as finished.
	Known bool
	// Phase is empty when the key is not tracked.
	Phase deployevent.Phase
	// ID is the deployment's id in pre, during and post.
	ID string
	// Cohort is set during a deployment while both versions report.
	Cohort deployevent.Cohort
	// Version is the deployed version: the one being deployed in pre and
	// during, the one that serves in post and steady.
	Version string
}

// maxVersions bounds the versions remembered per key.
const maxVersions = 4

type versionSeen struct {
	name     string
	lastSeen atomic.Int64 // unix nanoseconds
}

type entry struct {
	key Key
	// stable is the version that serves when no deployment runs.
	stable   string
	versions [maxVersions]versionSeen
	// current is the running deployment, or the finished one during its post
	// window; nil in steady.
	current *Deployment
	// history holds finished deployments, oldest first.
	history []*Deployment
	// deployed is set once the key has had a deployment.
	deployed bool
	lastSeen atomic.Int64 // unix nanoseconds of the last telemetry or event
	lruStamp int64
	lruIndex int
}

func (e *entry) slot(version string) *versionSeen {
	for i := range e.versions {
		if e.versions[i].name == version {
			return &e.versions[i]
		}
	}
	return nil
}

// seen is when version last reported, 0 if never.
func (e *entry) seen(version string) int64 {
	if version == "" {
		return 0
	}
	if s := e.slot(version); s != nil {
		return s.lastSeen.Load()
	}
	return 0
}

// addSlot remembers version, replacing the least recently seen version that
// neither serves nor takes part in the current deployment.
func (e *entry) addSlot(version string, n int64) *versionSeen {
	var victim *versionSeen
	for i := range e.versions {
		s := &e.versions[i]
		if s.name == "" {
			victim = s
			break
		}
		if e.protected(s.name) {
			continue
		}
		if victim == nil || s.lastSeen.Load() < victim.lastSeen.Load() {
			victim = s
		}
	}
	if victim == nil {
		victim = &e.versions[0]
		for i := 1; i < len(e.versions); i++ {
			if e.versions[i].lastSeen.Load() < victim.lastSeen.Load() {
				victim = &e.versions[i]
			}
		}
	}
	victim.name = strings.Clone(version)
	victim.lastSeen.Store(n)
	return victim
}

func (e *entry) protected(version string) bool {
	if version == e.stable {
		return true
	}
	d := e.current
	return d != nil && (version == d.Version || version == d.PreviousVersion)
}

func (e *entry) find(id string) *Deployment {
	for i := len(e.history) - 1; i >= 0; i-- {
		if e.history[i].ID == id {
			return e.history[i]
		}
	}
	return nil
}

// Tracker holds the deployment state of every tracked key. It is safe for
// concurrent use; Observe and Lookup take only a read lock in steady state.
type Tracker struct {
	cfg Config

	mu      sync.RWMutex
	entries map[Key]*entry
	lru     lruHeap
	// busyUntil: no key was evictable at the last scan; until then, refuse.
	busyUntil int64
	// forgotten holds the keys dropped or refused under the lock, for the
	// Forgotten hook once it is released (see unlock).
	forgotten []forgottenKey

	// generation changes whenever state worth saving changes.
	generation atomic.Uint64
}

type forgottenKey struct {
	key    Key
	reason EvictReason
}

// forget queues key for the Forgotten hook; called with the lock held.
func (t *Tracker) forget(key Key, reason EvictReason) {
	if t.cfg.Hooks.Forgotten != nil {
		t.forgotten = append(t.forgotten, forgottenKey{key: key, reason: reason})
	}
}

// unlock releases the write lock, then tells the Forgotten hook about the
// keys dropped while it was held.
func (t *Tracker) unlock() {
	gone := t.forgotten
	t.forgotten = nil
	t.mu.Unlock()
	for _, f := range gone {
		t.cfg.Hooks.Forgotten(f.key, f.reason)
	}
}

// New returns an empty tracker.
func New(cfg Config) *Tracker {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxServices <= 0 {
		cfg.MaxServices = 1
	}
	return &Tracker{cfg: cfg, entries: make(map[Key]*entry)}
}

// Len is the number of tracked keys.
func (t *Tracker) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.entries)
}

// Generation changes whenever the state changes in a way a snapshot would
// show (not on every datum); compare it to know whether to save.
func (t *Tracker) Generation() uint64 { return t.generation.Load() }

func (t *Tracker) changed() { t.generation.Add(1) }

// Observe records that telemetry of key reported version at now. A version
// that is new, or back after more than Settle of silence, may start an
// inferred deployment. Without a version it only marks the key as seen.
func (t *Tracker) Observe(key Key, version string, now time.Time) {
	n := now.UnixNano()
	t.mu.RLock()
	if e := t.entries[key]; e != nil {
		storeMax(&e.lastSeen, n)
		if version == "" {
			t.mu.RUnlock()
			return
		}
		if s := e.slot(version); s != nil && s.lastSeen.Load() >= n-int64(t.cfg.Settle) {
			storeMax(&s.lastSeen, n)
			t.mu.RUnlock()
			return
		}
	} else if version == "" {
		t.mu.RUnlock()
		return
	}
	t.mu.RUnlock()

	t.mu.Lock()
	defer t.unlock()
	t.observeLocked(key, version, now)
}

func (t *Tracker) observeLocked(key Key, version string, now time.Time) {
	n := now.UnixNano()
	e := t.entries[key]
	if e == nil {
		if e = t.insertLocked(key, n); e == nil {
			return
		}
		e.stable = strings.Clone(version)
		e.addSlot(version, n)
		return
	}
	storeMax(&e.lastSeen, n)
	s := e.slot(version)
	if s != nil && s.lastSeen.Load() >= n-int64(t.cfg.Settle) {
		// Another goroutine got here first.
		storeMax(&s.lastSeen, n)
		return
	}
	// Record the version first, then apply due transitions: a version that
	// reports now is not silent, whatever order a batch's resources come in.
	if s == nil {
		e.addSlot(version, n)
		t.changed()
	} else {
		storeMax(&s.lastSeen, n)
	}
	t.advance(e, now)

	d := e.current
	switch {
	case version == e.stable:
		return
	case e.stable == "" && (d == nil || !d.Running()):
		e.stable = strings.Clone(version)
		t.changed()
		return
	case d != nil && d.Running():
		if !d.Inferred() {
			if d.Version == "" {
				// The event did not say which version it deploys; the first
				// new version to report is it.
				d.Version = strings.Clone(version)
				t.changed()
			}
			return
		}
		if t.cfg.Inference && version != d.Version && version != d.PreviousVersion {
			t.startInferred(e, version, now)
		}
		return
	case d != nil && version == d.Version:
		// The version a finished deployment deployed, in its post window.
		return
	}
	if t.cfg.Inference {
		t.startInferred(e, version, now)
	}
}

func (t *Tracker) startInferred(e *entry, version string, now time.Time) {
	d := &Deployment{
		ID: deployevent.DeriveID(deployevent.SourceInferred,
			e.key.Namespace, e.key.Service, e.key.Environment, version, strconv.FormatInt(now.UnixNano(), 10)),
		Source:          deployevent.SourceInferred,
		Strategy:        string(deployevent.StrategyUnknown),
		State:           deployevent.StateStarted,
		Version:         strings.Clone(version),
		PreviousVersion: e.stable,
		StartTime:       now,
	}
	t.begin(e, d, now)
}

// Lookup returns the tag for telemetry of key reporting version (may be empty)
// at now. It takes a read lock and allocates nothing.
func (t *Tracker) Lookup(key Key, version string, now time.Time) Tag {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e := t.entries[key]
	if e == nil {
		return Tag{}
	}
	n := now.UnixNano()
	tag := Tag{Known: e.deployed, Phase: deployevent.PhaseSteady, Version: e.stable}
	d, phase, outcome := t.view(e, now)
	if d == nil {
		return tag
	}
	tag.Phase = phase
	if phase != deployevent.PhaseSteady {
		tag.ID = d.ID
	}
	switch {
	case d.Running() && outcome == "":
		if d.Version != "" {
			tag.Version = d.Version
		}
		if phase == deployevent.PhaseDuring && version != "" {
			tag.Cohort = t.cohort(e, d, version, n)
		}
	case outcome == OutcomeSucceeded && d.Version != "":
		tag.Version = d.Version
	}
	return tag
}

// Current is the deployment a key's phase refers to.
type Current struct {
	Phase deployevent.Phase
	// ID and Strategy are those of the deployment in pre, during and post.
	ID       string
	Strategy string
}

// Current returns key's phase and deployment at now, and whether the key is
// tracked. It takes a read lock and allocates nothing.
func (t *Tracker) Current(key Key, now time.Time) (Current, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e := t.entries[key]
	if e == nil {
		return Current{}, false
	}
	d, phase, _ := t.view(e, now)
	c := Current{Phase: phase}
	if d != nil && phase != deployevent.PhaseSteady {
		c.ID, c.Strategy = d.ID, d.Strategy
	}
	return c, true
}

// view is the state of e at now, including transitions that are due but not
// yet applied (an inferred deployment that has settled, a post window that
// has passed). d is the deployment the phase refers to; outcome is its
// outcome as of now.
func (t *Tracker) view(e *entry, now time.Time) (d *Deployment, phase deployevent.Phase, outcome Outcome) {
	d = e.current
	if d == nil {
		return nil, deployevent.PhaseSteady, ""
	}
	outcome, end := d.Outcome, d.postStart()
	if d.Running() {
		if !d.Inferred() {
			return d, d.runningPhase(), ""
		}
		var ok bool
		if outcome, end, ok = t.inferredEnd(e, d, now.UnixNano()); !ok {
			return d, d.runningPhase(), ""
		}
	}
	if now.Before(end.Add(t.cfg.PostWindow)) {
		return d, deployevent.PhasePost, outcome
	}
	return d, deployevent.PhaseSteady, outcome
}

// inferredEnd decides whether an inferred deployment has ended at n: the old
// version silent for Settle means it succeeded; the new one silent while the
// old still reports means it was rolled back.
func (t *Tracker) inferredEnd(e *entry, d *Deployment, n int64) (Outcome, time.Time, bool) {
	settle := int64(t.cfg.Settle)
	oldSeen, newSeen := e.seen(d.PreviousVersion), e.seen(d.Version)
	oldSilent, newSilent := n-oldSeen >= settle, n-newSeen >= settle
	var outcome Outcome
	var end int64
	switch {
	case oldSilent && (!newSilent || oldSeen <= newSeen):
		outcome, end = OutcomeSucceeded, oldSeen
	case newSilent:
		outcome, end = OutcomeRolledBack, newSeen
	default:
		return "", time.Time{}, false
	}
	endTime := fromNanos(end)
	if start := d.since(); endTime.Before(start) {
		endTime = start
	}
	return outcome, endTime, true
}

func (t *Tracker) cohort(e *entry, d *Deployment, version string, n int64) deployevent.Cohort {
	if d.Version == "" || d.PreviousVersion == "" {
		return ""
	}
	recent := n - int64(t.cfg.Settle)
	if e.seen(d.Version) < recent || e.seen(d.PreviousVersion) < recent {
		return ""
	}
	switch version {
	case d.Version:
		return deployevent.CohortCanary
	case d.PreviousVersion:
		return deployevent.CohortBaseline
	}
	return ""
}

// Apply applies a deployment.lifecycle event and reports whether it changed
// the state, and why (see the Reason constants). Events with a zero
// Timestamp happen at Config.Now.
func (t *Tracker) Apply(ev deployevent.Event) (applied bool, reason Reason) {
	now := t.cfg.Now()
	ts := ev.Timestamp
	if ts.IsZero() {
		ts = now
	}
	key := Key{Namespace: ev.Namespace, Service: ev.Service, Environment: ev.Environment}

	t.mu.Lock()
	defer t.unlock()
	n := now.UnixNano()
	e := t.entries[key]
	if e == nil {
		if e = t.insertLocked(key, n); e == nil {
			return false, ReasonRefused
		}
	}
	storeMax(&e.lastSeen, n)
	t.advance(e, now)

	cur := e.current
	if cur != nil && cur.ID == ev.ID {
		return t.update(e, cur, &ev, ts, now)
	}
	if old := e.find(ev.ID); old != nil {
		return false, ignoredFor(old, ev.State)
	}
	if cur != nil && cur.Inferred() && (ev.Version == "" || ev.Version == cur.Version) {
		return t.adopt(e, cur, &ev, ts, now)
	}
	if cur != nil && ts.Before(cur.since()) {
		return false, ReasonStale
	}

	d := &Deployment{
		ID:       strings.Clone(ev.ID),
		Source:   intern(ev.Source),
		State:    ev.State,
		Strategy: intern(string(ev.Strategy)),
	}
	d.mergeMissing(&ev)
	if d.PreviousVersion == "" && e.stable != d.Version {
		d.PreviousVersion = e.stable
	}
	if e.stable == "" && d.PreviousVersion != "" {
		e.stable = d.PreviousVersion
	}
	switch ev.State {
	case deployevent.StateQueued:
		d.QueuedTime = ts
	case deployevent.StateStarted, deployevent.StateProgressing:
		d.StartTime = ts
	}
	reason = ReasonNew
	if cur != nil && cur.Running() {
		reason = ReasonSupersede
	}
	t.begin(e, d, ts)
	if ev.State.Final() {
		// First heard of by its end: the window runs from the tool's time,
		// so replayed or backfilled history does not put a service in post.
		t.finish(e, d, Outcome(ev.State), ts, time.Time{})
	}
	return true, reason
}

func ignoredFor(d *Deployment, state deployevent.State) Reason {
	switch {
	case d.Outcome == OutcomeSuperseded:
		return ReasonSuperseded
	case d.State == state:
		return ReasonDuplicate
	}
	return ReasonOutOfOrder
}

// update applies an event to the deployment it names. Deployments only move
// forward: queued → started → progressing → a final state.
func (t *Tracker) update(e *entry, d *Deployment, ev *deployevent.Event, ts, now time.Time) (bool, Reason) {
	if !d.Running() {
		return false, ignoredFor(d, ev.State)
	}
	d.mergeMissing(ev)
	if ev.State == d.State {
		return false, ReasonDuplicate
	}
	if stateRank(ev.State) < stateRank(d.State) {
		return false, ReasonOutOfOrder
	}
	if ev.State.Final() {
		t.finish(e, d, Outcome(ev.State), ts, laterOf(ts, now))
	} else {
		d.State = ev.State
		if d.StartTime.IsZero() {
			d.StartTime = ts
		}
		t.changed()
	}
	return true, ReasonTransition
}

// adopt gives an inferred deployment the identity of the event that names its
// version: the tool's event and the telemetry describe one deployment.
func (t *Tracker) adopt(e *entry, d *Deployment, ev *deployevent.Event, ts, now time.Time) (bool, Reason) {
	d.ID = strings.Clone(ev.ID)
	d.Source = intern(ev.Source)
	if ev.PreviousVersion != "" {
		d.PreviousVersion = strings.Clone(ev.PreviousVersion)
	}
	if d.Strategy == string(deployevent.StrategyUnknown) {
		d.Strategy = ""
	}
	d.mergeMissing(ev)
	switch {
	case d.Running() && ev.State.Final():
		t.finish(e, d, Outcome(ev.State), ts, laterOf(ts, now))
	case d.Running() && ev.State != deployevent.StateQueued:
		d.State = ev.State
		if ts.Before(d.StartTime) {
			d.StartTime = ts
		}
	case !d.Running() && ev.State.Final() && Outcome(ev.State) != d.Outcome:
		// The tool's word on the outcome beats the inference.
		d.Outcome, d.State = Outcome(ev.State), ev.State
		switch {
		case d.Outcome == OutcomeSucceeded && d.Version != "":
			e.stable = d.Version
		case d.Outcome != OutcomeSucceeded && e.stable == d.Version && d.PreviousVersion != "":
			e.stable = d.PreviousVersion
		}
	}
	t.changed()
	return true, ReasonAdopt
}

// begin makes d the current deployment of e, superseding a running one.
func (t *Tracker) begin(e *entry, d *Deployment, at time.Time) {
	if cur := e.current; cur != nil && cur.Running() {
		cur.Outcome = OutcomeSuperseded
		cur.SupersededBy = d.ID
		cur.EndTime = at
		if s := cur.since(); at.Before(s) {
			cur.EndTime = s
		}
		t.pushHistory(e, cur)
		t.hookEnded(e, cur)
	}
	e.current = d
	e.deployed = true
	if t.cfg.Hooks.Started != nil {
		t.cfg.Hooks.Started(e.key, d)
	}
	t.changed()
}

// finish ends d with outcome at end and opens its post window, from
// postFrom if later than end.
func (t *Tracker) finish(e *entry, d *Deployment, outcome Outcome, end, postFrom time.Time) {
	d.Outcome = outcome
	d.State = deployevent.State(outcome)
	if s := d.since(); !s.IsZero() && end.Before(s) {
		end = s
	}
	d.EndTime = end
	if postFrom.After(end) {
		d.PostStart = postFrom
	}
	switch {
	case outcome == OutcomeSucceeded && d.Version != "":
		e.stable = d.Version
	case e.stable == "":
		e.stable = d.PreviousVersion
	}
	t.pushHistory(e, d)
	t.hookEnded(e, d)
	t.changed()
}

func (t *Tracker) hookEnded(e *entry, d *Deployment) {
	if t.cfg.Hooks.Ended != nil {
		t.cfg.Hooks.Ended(e.key, d)
	}
}

func (t *Tracker) pushHistory(e *entry, d *Deployment) {
	if t.cfg.HistorySize <= 0 {
		return
	}
	if len(e.history) >= t.cfg.HistorySize {
		n := copy(e.history, e.history[len(e.history)-t.cfg.HistorySize+1:])
		clear(e.history[n:])
		e.history = e.history[:n]
	}
	e.history = append(e.history, d)
}

// advance applies the time-driven transitions of e that are due at now: an
// inferred deployment settles, a deployment becomes stuck, a post window ends.
func (t *Tracker) advance(e *entry, now time.Time) {
	d := e.current
	if d == nil {
		return
	}
	if d.Running() && d.Inferred() {
		if outcome, end, ok := t.inferredEnd(e, d, now.UnixNano()); ok {
			t.finish(e, d, outcome, end, time.Time{})
		}
	}
	if d.Running() && !d.Stuck && t.cfg.MaxDuration > 0 && now.Sub(d.since()) >= t.cfg.MaxDuration {
		d.Stuck = true
		if t.cfg.Hooks.Stuck != nil {
			t.cfg.Hooks.Stuck(d)
		}
		t.changed()
	}
	if !d.Running() && !now.Before(d.postStart().Add(t.cfg.PostWindow)) {
		e.current = nil
		t.busyUntil = 0
		t.changed()
	}
}

// Sweep applies the time-driven transitions due at now to every key and
// evicts keys idle for longer than IdleTTL, whatever their phase.
func (t *Tracker) Sweep(now time.Time) {
	t.mu.Lock()
	defer t.unlock()
	idleBefore := now.Add(-t.cfg.IdleTTL).UnixNano()
	for _, e := range t.entries {
		t.advance(e, now)
		if t.cfg.IdleTTL > 0 && e.lastSeen.Load() < idleBefore {
			t.removeLocked(e)
			t.hookEvicted(EvictIdle)
			t.forget(e.key, EvictIdle)
		}
	}
}

func (t *Tracker) hookEvicted(reason EvictReason) {
	if t.cfg.Hooks.Evicted != nil {
		t.cfg.Hooks.Evicted(reason)
	}
}

// insertLocked adds an entry for key, evicting the least recently seen idle
// key when full. It returns nil, and calls Refused, when nothing can go.
func (t *Tracker) insertLocked(key Key, n int64) *entry {
	if len(t.entries) >= t.cfg.MaxServices && !t.evictLocked(n) {
		if t.cfg.Hooks.Refused != nil {
			t.cfg.Hooks.Refused()
		}
		t.forget(key, EvictRefused)
		return nil
	}
	e := &entry{key: Key{
		Namespace:   strings.Clone(key.Namespace),
		Service:     strings.Clone(key.Service),
		Environment: strings.Clone(key.Environment),
	}}
	e.lastSeen.Store(n)
	e.lruStamp = n
	heap.Push(&t.lru, e)
	t.entries[e.key] = e
	t.changed()
	return e
}

// evictLocked drops the least recently seen key that is steady. The heap is
// ordered by the stamp of each entry's last repositioning; an entry seen
// since is re-stamped and sinks, so the first clean top is the least recently
// seen key. Keys busy with a deployment are skipped (and sink). When every
// key is busy, further attempts within rescanAfter are refused without a scan.
func (t *Tracker) evictLocked(n int64) bool {
	if n < t.busyUntil {
		return false
	}
	now := fromNanos(n)
	for range 2 * len(t.lru) {
		e := t.lru[0]
		if seen := e.lastSeen.Load(); seen > e.lruStamp {
			e.lruStamp = seen
			heap.Fix(&t.lru, 0)
			continue
		}
		if t.advance(e, now); e.current != nil {
			e.lruStamp = n
			heap.Fix(&t.lru, 0)
			continue
		}
		t.removeLocked(e)
		t.hookEvicted(EvictLRU)
		t.forget(e.key, EvictLRU)
		return true
	}
	t.busyUntil = n + int64(rescanAfter)
	return false
}

// rescanAfter rate-limits eviction scans of a tracker whose keys are all busy.
const rescanAfter = time.Second

func (t *Tracker) removeLocked(e *entry) {
	delete(t.entries, e.key)
	heap.Remove(&t.lru, e.lruIndex)
	t.busyUntil = 0
	t.changed()
}

// Stats counts tracked keys by phase at now.
type Stats struct {
	Services int
	Pre      int
	During   int
	Post     int
}

// Stats counts the tracked keys and their phases at now.
func (t *Tracker) Stats(now time.Time) Stats {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := Stats{Services: len(t.entries)}
	for _, e := range t.entries {
		switch _, phase, _ := t.view(e, now); phase {
		case deployevent.PhasePre:
			s.Pre++
		case deployevent.PhaseDuring:
			s.During++
		case deployevent.PhasePost:
			s.Post++
		}
	}
	return s
}

// ServiceState is a copy of one key's state.
type ServiceState struct {
	Key   Key
	Phase deployevent.Phase
	// StableVersion is the version serving when no deployment runs.
	StableVersion string
	// Current is the deployment the phase refers to (nil in steady), as of
	// now: an inferred deployment that has settled shows its outcome.
	Current *Deployment
	// History holds finished deployments, oldest first.
	History []Deployment
	// Versions are the versions remembered, with when each last reported.
	Versions []VersionSeen
	LastSeen time.Time
}

// VersionSeen is a version and when it last reported.
type VersionSeen struct {
	Version  string    `json:"version"`
	LastSeen time.Time `json:"last_seen"`
}

// Service returns a copy of key's state at now, after applying the
// transitions due by then.
func (t *Tracker) Service(key Key, now time.Time) (ServiceState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		return ServiceState{}, false
	}
	t.advance(e, now)
	s := ServiceState{
		Key:           e.key,
		Phase:         deployevent.PhaseSteady,
		StableVersion: e.stable,
		Versions:      e.versionsCopy(),
		LastSeen:      fromNanos(e.lastSeen.Load()),
	}
	if d := e.current; d != nil {
		c := *d
		s.Current = &c
		s.Phase = deployevent.PhasePost
		if d.Running() {
			s.Phase = d.runningPhase()
		}
	}
	for _, h := range e.history {
		s.History = append(s.History, *h)
	}
	return s, true
}

func (e *entry) versionsCopy() []VersionSeen {
	var out []VersionSeen
	for i := range e.versions {
		if v := &e.versions[i]; v.name != "" {
			out = append(out, VersionSeen{Version: v.name, LastSeen: fromNanos(v.lastSeen.Load())})
		}
	}
	return out
}

// storeMax raises a to v; concurrent observers only move time forward.
func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// fromNanos turns a stored unix-nanosecond instant back into a time (UTC).
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
