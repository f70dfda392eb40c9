// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/pairs"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

// edgeCacheSize is how many dependencies of one resource's spans are looked
// up once each; calls to more look their edge up per span.
const edgeCacheSize = 8

// pairSample offers one call in pairSample of an edge whose callee is not
// known as a service to the span pairs: a few pairs teach the name.
const pairSample = 8

// Bounds of the span pairs: calls waiting for their server span (per
// generation of pairs.Window) and names learned.
const (
	maxPendingCalls = 10_000
	maxLearnedNames = 10_000
)

// edgeCache remembers, within one resource, the edge of each dependency
// named (nil when the engine refused it), so that spans look it up without
// hashing a key or building a name; and whether its name is a known
// service (else a sample of its calls go to the span pairs).
type edgeCache struct {
	n       int
	names   [edgeCacheSize]indicators.DependencyName
	edges   [edgeCacheSize]*health.Series
	unknown [edgeCacheSize]bool
	calls   [edgeCacheSize]uint8
	locked  *health.Series
	engine  *health.Engine
	caller  health.Key

	// p is set when the span pairs learn names; table tells whether their
	// lock is held; learned are the names learned, applied once every lock
	// is released.
	p       *deploymentProcessor
	table   bool
	learned []pairs.Name
	now     int64
}

func (c *edgeCache) slot(name indicators.DependencyName) int {
	for i := range c.n {
		if c.names[i] == name {
			return i
		}
	}
	// Looking an edge up may take the engine's lock, which its sweep holds
	// while it takes series' locks (and reads the pairs): no series lock,
	// nor the pairs', is held meanwhile.
	c.lock(nil)
	c.unlockTable()
	edge := c.caller
	edge.Dependency = name.String()
	i := edgeCacheSize - 1 // full: the last slot holds one more, uncached
	if c.n < edgeCacheSize {
		i = c.n
		c.n++
	}
	c.names[i], c.edges[i] = name, c.engine.Series(edge)
	c.unknown[i] = c.p != nil && name.System == "" && !c.p.knownService(edge.Callee())
	return i
}

func (c *edgeCache) get(name indicators.DependencyName) *health.Series { return c.edges[c.slot(name)] }

// lock holds s's lock, releasing the one held before (spans of one
// dependency usually follow each other).
func (c *edgeCache) lock(s *health.Series) {
	if c.locked == s {
		return
	}
	if c.locked != nil {
		c.locked.Unlock()
	}
	c.locked = s
	if s != nil {
		s.Lock()
	}
}

func (c *edgeCache) lockTable() {
	if !c.table {
		c.p.pairs.Lock()
		c.table = true
	}
}

func (c *edgeCache) unlockTable() {
	if c.table {
		c.p.pairs.Unlock()
		c.table = false
	}
}

// done releases every lock and applies the names learned.
func (c *edgeCache) done() {
	c.lock(nil)
	c.unlockTable()
	for _, n := range c.learned {
		if service, ok := c.p.pairs.Resolve(n); ok {
			c.p.edges.AliasCallee(health.Key{Namespace: n.Namespace, Service: n.Dependency, Environment: n.Environment},
				health.Key{Namespace: n.Namespace, Service: service, Environment: n.Environment})
		}
	}
}

// knownService tells whether a callee name is a service the tracker knows,
// or one the span pairs resolved.
func (p *deploymentProcessor) knownService(callee health.Key) bool {
	if _, _, ok := p.trackedCallee(callee); ok {
		return true
	}
	_, ok := p.pairs.Resolve(pairs.Name{Namespace: callee.Namespace, Environment: callee.Environment, Dependency: callee.Service})
	return ok
}

// dependencySpans counts a resource's outgoing calls (CLIENT and PRODUCER
// spans) on the edge of the dependency each names. Calls to a name that is
// no known service are sampled into the span pairs, and the resource's
// requests (SERVER, CONSUMER spans) are matched with the calls waiting there:
// the pair teaches what service the name means.
func (p *deploymentProcessor) dependencySpans(key tracker.Key, src *indicators.Source, scopes ptrace.ScopeSpansSlice) {
	cache := edgeCache{engine: p.edges, caller: serviceHealthKey(key), p: p, now: src.Now}
	waiting := p.pairs.Waiting()
	for i := range scopes.Len() {
		spans := scopes.At(i).Spans()
		for j := range spans.Len() {
			span := spans.At(j)
			kind := span.Kind()
			if waiting && (kind == ptrace.SpanKindServer || kind == ptrace.SpanKindConsumer) {
				if parent := span.ParentSpanID(); !parent.IsEmpty() {
					cache.lockTable()
					if n, ok := p.pairs.MatchLocked(parent, key.Environment, key.Service, src.Now); ok {
						cache.learned = append(cache.learned, n)
					}
				}
				continue
			}
			if !p.edges.Counts(kind) {
				continue
			}
			name, failed := indicators.ReadCall(span)
			if name.Empty() {
				continue
			}
			k := cache.slot(name)
			s := cache.edges[k]
			if s == nil {
				continue
			}
			if cache.unknown[k] {
				if cache.calls[k]%pairSample == 0 && !span.SpanID().IsEmpty() {
					cache.lock(nil)
					cache.lockTable()
					p.pairs.AddCallLocked(span.SpanID(), pairs.Name{Namespace: key.Namespace, Environment: key.Environment, Dependency: name.Name}, src.Now)
				}
				cache.calls[k]++
			}
			cache.unlockTable()
			cache.lock(s)
			s.AddCall(src, span, failed)
		}
	}
	cache.done()
}

// trackedCallee finds a callee in the tracker: in its caller's namespace,
// else without a namespace. It returns the key found and its state.
func (p *deploymentProcessor) trackedCallee(callee health.Key) (health.Key, tracker.Current, bool) {
	now := p.now()
	c, ok := p.tracker.Current(trackerKey(callee), now)
	if !ok && callee.Namespace != "" {
		callee.Namespace = ""
		c, ok = p.tracker.Current(trackerKey(callee), now)
	}
	return callee, c, ok
}
