// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

// This file holds the reasons the tracker reports: why a key was evicted,
// why an event was applied or ignored.

import (
	"github.com/deploylens/deploylens/internal/deployevent"
)

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
