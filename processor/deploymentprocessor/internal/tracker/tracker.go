// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package tracker follows the deployments of every service key seen in
// deployment.lifecycle events and telemetry: a state machine per key, version
// inference, cohorts, a bounded LRU of keys and snapshots for storage. It knows
// nothing of the collector; time comes from the caller or Config.Now.
package tracker // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"

import (
	"container/heap"
	"strings"
	"sync"
	"sync/atomic"
	"time"
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
