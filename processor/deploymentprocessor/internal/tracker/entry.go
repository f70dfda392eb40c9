// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

// This file holds the per-key entry: the versions seen and the current one.

import (
	"strings"
	"sync/atomic"
)

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
