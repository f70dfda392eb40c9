// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package pairs learns which service a dependency name means from the spans
// of both ends of a call: a SERVER (or CONSUMER) span whose parent is a
// CLIENT (or PRODUCER) span seen shortly before says that the name the
// caller calls ("payment.shop.svc:8080", "10.0.4.17") is the callee's
// service.name. Calls wait in two generations of a bounded table (a
// generation lives one Window), so memory stays bounded without a timestamp
// per call; learned names are bounded too and forgotten after a TTL without
// a new pair.
//
// contrib's servicegraph connector pairs spans the same way to build edges;
// here only the name is learned (the edge itself is the caller's, from its
// CLIENT spans alone), so a call is kept only until its server span comes,
// and only a sample of calls is offered.
package pairs // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/pairs"

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Window is how long a call waits for its server span (at least one window,
// at most two).
const Window = 30 * time.Second

// Name is a dependency as a caller names it, in the caller's namespace and
// environment.
type Name struct {
	Namespace, Environment, Dependency string
}

// learned is a name's service and when a pair last said so.
type learned struct {
	service string
	seen    int64
}

// Table holds the calls waiting for their server span and the names learned.
// Safe for concurrent use; the *Locked methods need Lock held.
type Table struct {
	mu        sync.Mutex
	cur, prev map[pcommon.SpanID]Name
	rotated   int64
	pending   atomic.Int64
	names     map[Name]learned
	maxCalls  int
	maxNames  int

	droppedCalls, droppedNames atomic.Uint64
	size                       atomic.Int64
}

// New returns a table of at most maxCalls waiting calls (per generation)
// and maxNames learned names.
func New(maxCalls, maxNames int) *Table {
	return &Table{cur: map[pcommon.SpanID]Name{}, prev: map[pcommon.SpanID]Name{}, names: map[Name]learned{},
		maxCalls: maxCalls, maxNames: maxNames}
}

// Lock and Unlock hold the table for the *Locked methods (a resource's spans
// at once).
func (t *Table) Lock()   { t.mu.Lock() }
func (t *Table) Unlock() { t.mu.Unlock() }

// Waiting tells, without the lock, whether any call waits for its server span.
func (t *Table) Waiting() bool { return t.pending.Load() > 0 }

// AddCallLocked offers a call (the CLIENT span's id and what it calls) at now.
func (t *Table) AddCallLocked(id pcommon.SpanID, n Name, now int64) {
	t.rotate(now)
	if len(t.cur) >= t.maxCalls {
		t.droppedCalls.Add(1)
		return
	}
	if _, ok := t.cur[id]; !ok {
		n.Namespace, n.Environment, n.Dependency = strings.Clone(n.Namespace), strings.Clone(n.Environment), strings.Clone(n.Dependency)
		t.cur[id] = n
		t.pending.Add(1)
	}
}

// MatchLocked pairs a server span whose parent is parent with its call, if
// one waits: the caller's name for the dependency then means service (in
// the same environment). It returns the name when the pair taught it anew.
func (t *Table) MatchLocked(parent pcommon.SpanID, environment, service string, now int64) (Name, bool) {
	n, ok := t.cur[parent]
	if ok {
		delete(t.cur, parent)
	} else if n, ok = t.prev[parent]; ok {
		delete(t.prev, parent)
	}
	if !ok {
		return Name{}, false
	}
	t.pending.Add(-1)
	if n.Environment != environment || n.Dependency == service {
		return Name{}, false
	}
	old, known := t.names[n]
	if !known && len(t.names) >= t.maxNames {
		t.droppedNames.Add(1)
		return Name{}, false
	}
	if !known || old.service != service {
		t.names[n] = learned{service: strings.Clone(service), seen: now}
		t.size.Store(int64(len(t.names)))
		return n, true
	}
	t.names[n] = learned{service: old.service, seen: now}
	return Name{}, false
}

// rotate starts a new generation every Window: the calls of the one before
// last never saw their server span.
func (t *Table) rotate(now int64) {
	if now-t.rotated < int64(Window) {
		return
	}
	t.pending.Add(-int64(len(t.prev)))
	t.prev, t.cur = t.cur, t.prev
	clear(t.cur)
	t.rotated = now
}

// Resolve is the service a caller's name for a dependency means, if a pair taught it.
func (t *Table) Resolve(n Name) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.names[n]
	return l.service, ok
}

// Each calls fn with every learned name and its service.
func (t *Table) Each(fn func(Name, string)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for n, l := range t.names {
		fn(n, l.service)
	}
}

// Sweep forgets the names no pair confirmed since before, and rotates.
func (t *Table) Sweep(now, before int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rotate(now)
	for n, l := range t.names {
		if l.seen < before {
			delete(t.names, n)
		}
	}
	t.size.Store(int64(len(t.names)))
}

// Names is how many names are learned.
func (t *Table) Names() int64 { return t.size.Load() }

// Waiting calls, for the gauge.
func (t *Table) Calls() int64 { return t.pending.Load() }

// Dropped counts the calls and names refused at the limits.
func (t *Table) Dropped() (calls, names uint64) { return t.droppedCalls.Load(), t.droppedNames.Load() }
