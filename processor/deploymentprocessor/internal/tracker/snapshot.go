// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
	"time"
)

// SnapshotFormat is the version of the Snapshot layout; Restore refuses others.
const SnapshotFormat = 1

// Snapshot is the saved state of a tracker: plain data, JSON-ready.
type Snapshot struct {
	Format int `json:"format"`
	// SavedAt is when the snapshot was taken. Restore shifts last-seen times
	// by the time since, so a collector's downtime does not count as silence.
	SavedAt  time.Time         `json:"saved_at"`
	Services []ServiceSnapshot `json:"services"`
}

// ServiceSnapshot is the saved state of one key.
type ServiceSnapshot struct {
	Namespace     string `json:"namespace,omitempty"`
	Service       string `json:"service"`
	Environment   string `json:"environment,omitempty"`
	StableVersion string `json:"stable_version,omitempty"`
	// Deployed is set once the key has had a deployment.
	Deployed bool          `json:"deployed,omitempty"`
	Versions []VersionSeen `json:"versions,omitempty"`
	// Current is the running deployment, or the finished one in its post
	// window; when finished it is also the last of History.
	Current  *Deployment  `json:"current,omitempty"`
	History  []Deployment `json:"history,omitempty"`
	LastSeen time.Time    `json:"last_seen"`
}

// Snapshot copies the whole state at now.
func (t *Tracker) Snapshot(now time.Time) Snapshot {
	t.mu.RLock()
	defer t.mu.RUnlock()
	s := Snapshot{Format: SnapshotFormat, SavedAt: now, Services: make([]ServiceSnapshot, 0, len(t.entries))}
	for _, e := range t.entries {
		ss := ServiceSnapshot{
			Namespace:     e.key.Namespace,
			Service:       e.key.Service,
			Environment:   e.key.Environment,
			StableVersion: e.stable,
			Deployed:      e.deployed,
			Versions:      e.versionsCopy(),
			LastSeen:      fromNanos(e.lastSeen.Load()),
		}
		if e.current != nil {
			c := *e.current
			ss.Current = &c
		}
		if len(e.history) > 0 {
			ss.History = make([]Deployment, len(e.history))
			for i, h := range e.history {
				ss.History[i] = *h
			}
		}
		s.Services = append(s.Services, ss)
	}
	// Most recently seen first, so a smaller max_services keeps the liveliest.
	slices.SortFunc(s.Services, func(a, b ServiceSnapshot) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen),
			cmp.Compare(a.Service, b.Service), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Environment, b.Environment))
	})
	return s
}

// Restore replaces the state with s, taken at s.SavedAt, as of now. Keys over
// MaxServices (the least recently seen) are dropped and counted as evicted.
// It returns the number of keys restored.
func (t *Tracker) Restore(s Snapshot, now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = make(map[Key]*entry, min(len(s.Services), t.cfg.MaxServices))
	t.lru = t.lru[:0]
	t.busyUntil = 0
	var downtime time.Duration
	if !s.SavedAt.IsZero() && now.After(s.SavedAt) {
		downtime = now.Sub(s.SavedAt)
	}
	services := slices.Clone(s.Services)
	slices.SortStableFunc(services, func(a, b ServiceSnapshot) int { return b.LastSeen.Compare(a.LastSeen) })
	for i := range services {
		ss := &services[i]
		if len(t.entries) >= t.cfg.MaxServices {
			t.hookEvicted(EvictLRU)
			continue
		}
		key := Key{Namespace: strings.Clone(ss.Namespace), Service: strings.Clone(ss.Service), Environment: strings.Clone(ss.Environment)}
		if _, dup := t.entries[key]; dup || key.Service == "" {
			continue
		}
		e := &entry{key: key, stable: ss.StableVersion, deployed: ss.Deployed || ss.Current != nil || len(ss.History) > 0}
		for j, v := range ss.Versions {
			if j >= maxVersions || v.Version == "" {
				break
			}
			e.versions[j].name = v.Version
			e.versions[j].lastSeen.Store(v.LastSeen.Add(downtime).UnixNano())
		}
		last := ss.LastSeen.Add(downtime).UnixNano()
		e.lastSeen.Store(last)
		e.lruStamp = last
		for j := range ss.History {
			d := ss.History[j]
			e.history = append(e.history, &d)
		}
		if t.cfg.HistorySize >= 0 && len(e.history) > t.cfg.HistorySize {
			e.history = e.history[len(e.history)-t.cfg.HistorySize:]
		}
		if ss.Current != nil {
			c := *ss.Current
			e.current = &c
			// A finished current deployment is the last of history: share it.
			if !c.Running() && len(e.history) > 0 && e.history[len(e.history)-1].ID == c.ID {
				e.current = e.history[len(e.history)-1]
			}
		}
		heap.Push(&t.lru, e)
		t.entries[key] = e
	}
	t.changed()
	return len(t.entries)
}
