// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/detector"
	"github.com/deploylens/deploylens/internal/stats"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

type specKind uint8

const (
	kindRequestRate specKind = iota
	kindErrorRatio
	kindLatency
	kindLogErrorRate
	kindGauge
	kindRate
	kindRatio
)

// spec is one indicator as the engine judges it.
type spec struct {
	name   string
	kind   specKind
	dim    indicators.Dimension
	dir    detector.Direction
	weight float64
	// custom is the index of a user-declared indicator, -1 for built-ins.
	custom int
	// tolerance is how far (relative) a value must stray from its baseline,
	// in the harmful direction, for the detector's evidence to count.
	tolerance float64
}

// buildSpecs lists the indicators judged: the built-in ones, then defs. An
// engine of edges judges calls: no log records.
func buildSpecs(defs []indicators.Definition, edges bool) []spec {
	specs := []spec{
		{name: indicators.RequestRate, kind: kindRequestRate, dim: indicators.DimensionThroughput, dir: detector.LowerIsWorse, weight: 1, custom: -1, tolerance: tolRate},
		{name: indicators.ErrorRatio, kind: kindErrorRatio, dim: indicators.DimensionErrors, dir: detector.HigherIsWorse, weight: 1, custom: -1, tolerance: tolRatioRelative},
		{name: indicators.LatencyP95, kind: kindLatency, dim: indicators.DimensionLatency, dir: detector.HigherIsWorse, weight: 1, custom: -1, tolerance: tolLatencyRelative},
	}
	if !edges {
		specs = append(specs, spec{name: indicators.LogErrorRate, kind: kindLogErrorRate, dim: indicators.DimensionLogs, dir: detector.HigherIsWorse, weight: 1, custom: -1, tolerance: tolEventRate})
	}
	for i, d := range defs {
		sp := spec{name: d.Name, dim: d.Dimension, dir: d.Direction, weight: d.Weight, custom: i}
		switch d.Kind {
		case indicators.KindGauge:
			sp.kind, sp.tolerance = kindGauge, tolGaugeRelative
		case indicators.KindRate:
			sp.kind, sp.tolerance = kindRate, tolRate
		default:
			sp.kind, sp.tolerance = kindRatio, tolRatioRelative
		}
		specs = append(specs, sp)
	}
	return specs
}

// Engine holds the health state of every judged key. It is safe for
// concurrent use: a key's data and evaluations hold its own lock, readers of
// snapshots hold none.
type Engine struct {
	cfg       Config
	extractor *indicators.Extractor
	specs     []spec
	// weights are the specs' weights within their dimensions, then those of
	// the family's two relation evidences (see relations).
	weights []float64
	status  StatusFunc
	limit   *indicators.StreamLimit
	now     func() time.Time

	tick, steady, grace, window int64

	mu   sync.RWMutex
	keys map[Key]*Series
	// edges indexes the keys of an engine of edges by caller and callee.
	edges edgeIndex

	refused       atomic.Uint64
	refusedFanOut atomic.Uint64
	evicted       atomic.Uint64
	evaluations   atomic.Uint64
	generation    atomic.Uint64

	bins sync.Pool // *[]stats.Bin scratch for distributions
}

// New returns an engine; cfg must be valid. status tells the deployment
// state of a key.
func New(cfg Config, status StatusFunc) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for i := range cfg.Indicators {
		if err := cfg.Indicators[i].Validate(); err != nil {
			return nil, fmt.Errorf("indicators[%d]: %w", i, err)
		}
	}
	e := &Engine{
		cfg:       cfg,
		extractor: indicators.NewExtractor(cfg.SpanKinds, cfg.Indicators, cfg.IntervalActive),
		specs:     buildSpecs(cfg.Indicators, cfg.Edges),
		status:    status,
		limit:     indicators.NewStreamLimit(cfg.MaxStreams),
		now:       cfg.Now,
		tick:      int64(cfg.IntervalActive),
		steady:    int64(cfg.IntervalSteady),
		grace:     int64(cfg.CloseDelay),
		window:    int64(cfg.CompareWindow),
		keys:      map[Key]*Series{},
	}
	if e.now == nil {
		e.now = time.Now
	}
	for _, sp := range e.specs {
		e.weights = append(e.weights, sp.weight)
	}
	e.weights = append(e.weights, 1, 1) // a service's dependencies, its callers
	e.bins.New = func() any { b := make([]stats.Bin, 0, 512); return &b }
	return e, nil
}

// Counts tells whether spans of kind k are the engine's requests.
func (e *Engine) Counts(k ptrace.SpanKind) bool { return e.extractor.Counts(k) }

// Config returns the engine's settings.
func (e *Engine) Config() Config { return e.cfg }

// IndicatorNames lists the indicators judged, in evidence order.
func (e *Engine) IndicatorNames() []string {
	out := make([]string, len(e.specs))
	for i, sp := range e.specs {
		out[i] = sp.name
	}
	return out
}

// Len is the number of keys judged.
func (e *Engine) Len() int {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.keys)
}

// Refused counts keys not judged because MaxKeys were.
func (e *Engine) Refused() uint64 { return e.refused.Load() }

// Evaluations counts the evaluations of keys.
func (e *Engine) Evaluations() uint64 { return e.evaluations.Load() }

// Evicted counts keys forgotten (idle, or no longer tracked).
func (e *Engine) Evicted() uint64 { return e.evicted.Load() }

// Streams is the number of cumulative metric streams remembered, and the
// points refused because MaxStreams were.
func (e *Engine) Streams() (remembered int64, dropped uint64) {
	return e.limit.Len(), e.limit.Dropped()
}

// Generation changes whenever an evaluation changed a key's state.
func (e *Engine) Generation() uint64 { return e.generation.Load() }

// Series returns the state of key, creating it; nil when MaxKeys keys are
// judged already. The caller locks it (Lock/Unlock) around Add* calls.
func (e *Engine) Series(key Key) *Series {
	e.mu.RLock()
	s := e.keys[key]
	e.mu.RUnlock()
	if s != nil {
		return s
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s = e.keys[key]; s != nil {
		return s
	}
	if len(e.keys) >= e.cfg.MaxKeys {
		e.refused.Add(1)
		return nil
	}
	if key.Dependency != "" && e.cfg.MaxDependencies > 0 && e.edges.fanOut(key.Caller()) >= e.cfg.MaxDependencies {
		e.refusedFanOut.Add(1)
		return nil
	}
	key = Key{Namespace: strings.Clone(key.Namespace), Service: strings.Clone(key.Service),
		Environment: strings.Clone(key.Environment), Dependency: strings.Clone(key.Dependency)}
	s = e.newSeries(key)
	e.insert(key, s)
	return s
}

// insert adds a series; the engine's lock must be held.
func (e *Engine) insert(key Key, s *Series) {
	e.keys[key] = s
	if key.Dependency != "" {
		e.edges.add(key, s)
	}
}

// delete drops a series; the engine's lock must be held.
func (e *Engine) delete(key Key) {
	delete(e.keys, key)
	if key.Dependency != "" {
		e.edges.remove(key)
	}
}

// Snapshot returns the last snapshot of key, nil before its first evaluation.
func (e *Engine) Snapshot(key Key) *Snapshot {
	e.mu.RLock()
	s := e.keys[key]
	e.mu.RUnlock()
	if s == nil {
		return nil
	}
	return s.snapshot.Load()
}

// Snapshots calls fn with every key's last snapshot until it returns false.
func (e *Engine) Snapshots(fn func(*Snapshot) bool) {
	e.mu.RLock()
	list := make([]*Series, 0, len(e.keys))
	for _, s := range e.keys {
		list = append(list, s)
	}
	e.mu.RUnlock()
	for _, s := range list {
		if snap := s.snapshot.Load(); snap != nil && !fn(snap) {
			return
		}
	}
}

// Sweep closes the intervals that no data closed CloseDelay after their end
// (evaluating their keys), and forgets keys the tracker no longer tracks or
// without data for IdleTTL, and metric streams without a point for StreamTTL.
func (e *Engine) Sweep(now time.Time) {
	n := now.UnixNano()
	e.mu.RLock()
	list := make([]*Series, 0, len(e.keys))
	for _, s := range e.keys {
		list = append(list, s)
	}
	e.mu.RUnlock()
	var gone []*Series
	for _, s := range list {
		s.mu.Lock()
		if !e.status(s.key).Tracked || n-s.lastSeen > int64(e.cfg.IdleTTL) {
			gone = append(gone, s)
			s.mu.Unlock()
			continue
		}
		s.closeStale(n)
		if s.streams != nil {
			s.streams.Sweep(n - int64(e.cfg.StreamTTL))
		}
		s.mu.Unlock()
	}
	if len(gone) == 0 {
		return
	}
	e.mu.Lock()
	for _, s := range gone {
		if e.keys[s.key] == s {
			e.delete(s.key)
			e.evicted.Add(1)
		}
		s.mu.Lock()
		if s.streams != nil {
			s.streams.Release()
		}
		s.mu.Unlock()
	}
	e.mu.Unlock()
	e.generation.Add(1)
}

// Has reports whether key is judged (it has a series).
func (e *Engine) Has(key Key) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.keys[key] != nil
}

// Forget drops key at once (the tracker no longer tracks it) and counts it
// as evicted; it reports whether the key was judged.
func (e *Engine) Forget(key Key) bool {
	e.mu.RLock()
	s := e.keys[key]
	e.mu.RUnlock()
	if s == nil {
		return false
	}
	e.mu.Lock()
	if e.keys[key] != s {
		e.mu.Unlock()
		return false
	}
	e.delete(key)
	e.evicted.Add(1)
	e.mu.Unlock()
	s.mu.Lock()
	if s.streams != nil {
		s.streams.Release()
	}
	s.mu.Unlock()
	e.generation.Add(1)
	return true
}

func (e *Engine) getBins() *[]stats.Bin { return e.bins.Get().(*[]stats.Bin) }

func (e *Engine) putBins(b *[]stats.Bin) {
	*b = (*b)[:0]
	e.bins.Put(b)
}
