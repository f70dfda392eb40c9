// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/detector"
	"github.com/deploylens/deploylens/internal/stats"
)

// stateMagic starts a saved state; stateVersion is bumped when the layout changes.
const (
	stateMagic   = "DLHS"
	stateVersion = 2
	// stateVersion1 saved no key's Dependency (engines of services only).
	stateVersion1 = 1
)

var errState = errors.New("health: invalid saved state")

// MarshalState encodes what the engine has learned, for a storage extension:
// per key its detectors (baselines, frozen or not), comparison windows, load
// fits and verdicts. The current, still open intervals and the cumulative
// metric streams are not kept: after a restart the first interval of each key
// starts afresh, and cumulative streams set their starting values again.
func (e *Engine) MarshalState(now time.Time) []byte {
	e.mu.RLock()
	list := make([]*Series, 0, len(e.keys))
	for _, s := range e.keys {
		list = append(list, s)
	}
	e.mu.RUnlock()

	w := &writer{buf: make([]byte, 0, 64+len(list)*8192)}
	w.buf = append(w.buf, stateMagic...)
	w.byte(stateVersion)
	w.i64(now.UnixNano())
	w.uvarint(uint64(len(e.specs)))
	for _, sp := range e.specs {
		w.str(sp.name)
	}
	w.uvarint(uint64(len(e.cfg.Indicators)))
	for _, d := range e.cfg.Indicators {
		w.str(d.Name)
	}
	w.uvarint(uint64(len(list)))
	for _, s := range list {
		s.mu.Lock()
		s.marshal(w)
		s.mu.Unlock()
	}
	return w.buf
}

func (s *Series) marshal(w *writer) {
	w.str(s.key.Namespace)
	w.str(s.key.Service)
	w.str(s.key.Environment)
	w.str(s.key.Dependency)
	w.i64(s.lastSeen)
	w.bool(s.frozen)
	w.str(s.judged)
	w.bool(s.cohortsSeen)
	w.str(s.strategy)
	w.str(string(s.phase))
	w.i64(s.lastEval)
	w.f64(s.load)
	w.f64(s.loadNoise)
	w.f64(s.loadN)
	for i := range s.inds {
		ind := &s.inds[i]
		w.bytes(ind.det.Snapshot())
		w.bool(ind.recentValid)
		w.f64(ind.recent)
		f := s.fits[i]
		w.bool(f != nil)
		if f != nil {
			for _, v := range []float64{f.n, f.mx, f.my, f.cxx, f.cxy, f.cyy, f.noise, f.adjusted, f.adjustedN, f.lastX} {
				w.f64(v)
			}
		}
	}
	for _, r := range []*rolling{&s.recent, &s.post, &s.cohorts[0], &s.cohorts[1]} {
		w.i64(r.since)
		r.older.marshal(w)
		r.newer.marshal(w)
	}
	for _, h := range []*Hysteresis{&s.keyVerdict, &s.cohortVerdict[0], &s.cohortVerdict[1]} {
		w.str(string(h.Verdict))
		w.uvarint(uint64(h.streak))
		w.bool(h.worse)
		w.str(string(h.bound))
	}
}

func (m *sums) marshal(w *writer) {
	w.uvarint(m.requests)
	w.uvarint(m.errors)
	w.f64(m.exposure)
	w.f64(m.instanceSeconds)
	w.uvarint(m.logErrors)
	w.f64(m.logSeconds)
	w.sketch(m.latency)
	w.uvarint(uint64(len(m.custom)))
	for i := range m.custom {
		c := &m.custom[i]
		w.f64(c.sum)
		w.f64(c.total)
		w.f64(c.exposure)
		w.sketch(c.values)
	}
}

// RestoreState replaces the engine's keys with a state saved by
// MarshalState, as of now, and returns how many keys it restored. Indicators
// are matched by name: one no longer configured is dropped, a new one starts
// to learn. Keys over MaxKeys are dropped. On error nothing changes.
func (e *Engine) RestoreState(data []byte, now time.Time) (int, error) {
	r := &reader{buf: data}
	if string(r.take(len(stateMagic))) != stateMagic {
		return 0, fmt.Errorf("%w: not a health state", errState)
	}
	version := r.byte()
	if version != stateVersion && version != stateVersion1 {
		return 0, fmt.Errorf("%w: not a health state of version %d or %d", errState, stateVersion1, stateVersion)
	}
	r.i64() // saved at
	specNames := make([]string, r.count())
	for i := range specNames {
		specNames[i] = r.str()
	}
	customNames := make([]string, r.count())
	for i := range customNames {
		customNames[i] = r.str()
	}
	// Where each saved indicator (and user-declared one) goes now; -1: dropped.
	specAt := make([]int, len(specNames))
	for i, name := range specNames {
		specAt[i] = -1
		for j, sp := range e.specs {
			if sp.name == name {
				specAt[i] = j
			}
		}
	}
	customAt := make([]int, len(customNames))
	for i, name := range customNames {
		customAt[i] = -1
		for j, d := range e.cfg.Indicators {
			if d.Name == name {
				customAt[i] = j
			}
		}
	}
	n := r.count()
	keys := make(map[Key]*Series, min(n, e.cfg.MaxKeys))
	for range n {
		s, err := e.unmarshalSeries(r, version, specAt, customAt)
		if err != nil {
			return 0, err
		}
		if len(keys) < e.cfg.MaxKeys && s.key.Service != "" && (s.key.Dependency != "") == e.cfg.Edges {
			keys[s.key] = s
		}
	}
	if r.err != nil {
		return 0, r.err
	}
	if len(r.buf) != 0 {
		return 0, fmt.Errorf("%w: %d trailing bytes", errState, len(r.buf))
	}
	e.mu.Lock()
	for _, s := range e.keys {
		if s.streams != nil {
			s.streams.Release()
		}
	}
	e.keys = map[Key]*Series{}
	e.edges = edgeIndex{}
	for k, s := range keys {
		e.insert(k, s)
	}
	e.mu.Unlock()
	e.generation.Add(1)
	_ = now
	return len(keys), nil
}

func (e *Engine) unmarshalSeries(r *reader, version byte, specAt, customAt []int) (*Series, error) {
	key := Key{Namespace: r.str(), Service: r.str(), Environment: r.str()}
	if version >= stateVersion {
		key.Dependency = r.str()
	}
	s := e.newSeries(key)
	s.lastSeen = r.i64()
	s.frozen = r.bool()
	s.judged = r.str()
	s.cohortsSeen = r.bool()
	s.strategy = r.str()
	s.phase = deployevent.Phase(r.str())
	s.lastEval = r.i64()
	s.load, s.loadNoise, s.loadN = r.f64(), r.f64(), r.f64()
	for _, at := range specAt {
		snapshot := r.bytes()
		recentValid, recent := r.bool(), r.f64()
		var fit *loadFit
		if r.bool() {
			fit = &loadFit{}
			for _, v := range []*float64{&fit.n, &fit.mx, &fit.my, &fit.cxx, &fit.cxy, &fit.cyy, &fit.noise, &fit.adjusted, &fit.adjustedN, &fit.lastX} {
				*v = r.f64()
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		if at < 0 {
			continue
		}
		ind := &s.inds[at]
		det := &detector.Detector{}
		if err := det.Restore(snapshot); err != nil {
			return nil, fmt.Errorf("%w: indicator %s: %w", errState, e.specs[at].name, err)
		}
		// A restored detector keeps its learned state; its direction is the
		// configured one (the configuration may have changed).
		if det.Config().Direction == e.specs[at].dir {
			ind.det = det
		}
		ind.recent, ind.recentValid = recent, recentValid
		if fit != nil && s.fits[at] != nil {
			s.fits[at] = fit
		}
	}
	for _, roll := range []*rolling{&s.recent, &s.post, &s.cohorts[0], &s.cohorts[1]} {
		roll.since = r.i64()
		roll.older.unmarshal(r, customAt, len(e.cfg.Indicators))
		roll.newer.unmarshal(r, customAt, len(e.cfg.Indicators))
	}
	for _, h := range []*Hysteresis{&s.keyVerdict, &s.cohortVerdict[0], &s.cohortVerdict[1]} {
		h.Verdict = deployevent.Verdict(r.str())
		h.streak = int(r.uvarint())
		h.worse = r.bool()
		h.bound = deployevent.Verdict(r.str())
	}
	if s.frozen {
		for i := range s.inds {
			s.inds[i].det.Freeze()
		}
	}
	return s, r.err
}

func (m *sums) unmarshal(r *reader, customAt []int, customs int) {
	m.requests = r.uvarint()
	m.errors = r.uvarint()
	m.exposure = r.f64()
	m.instanceSeconds = r.f64()
	m.logErrors = r.uvarint()
	m.logSeconds = r.f64()
	m.latency = r.sketch()
	n := r.count()
	if n > 0 && customs > 0 {
		m.custom = make([]customSums, customs)
	}
	for i := range n {
		c := customSums{sum: r.f64(), total: r.f64(), exposure: r.f64(), values: r.sketch()}
		if i < len(customAt) && customAt[i] >= 0 && m.custom != nil {
			m.custom[customAt[i]] = c
		}
	}
}

type writer struct{ buf []byte }

func (w *writer) byte(b byte)      { w.buf = append(w.buf, b) }
func (w *writer) uvarint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }
func (w *writer) i64(v int64)      { w.buf = binary.LittleEndian.AppendUint64(w.buf, uint64(v)) }
func (w *writer) f64(v float64)    { w.buf = binary.LittleEndian.AppendUint64(w.buf, math.Float64bits(v)) }
func (w *writer) str(s string)     { w.uvarint(uint64(len(s))); w.buf = append(w.buf, s...) }
func (w *writer) bytes(b []byte)   { w.uvarint(uint64(len(b))); w.buf = append(w.buf, b...) }
func (w *writer) bool(v bool) {
	if v {
		w.byte(1)
		return
	}
	w.byte(0)
}

func (w *writer) sketch(s *stats.Sketch) {
	if s == nil || s.Empty() {
		w.uvarint(0)
		return
	}
	b, _ := s.MarshalBinary() // cannot fail
	w.bytes(b)
}

// reader decodes what writer wrote; the first error sticks and zero values follow.
type reader struct {
	buf []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated %s", errState, what)
	}
	r.buf = nil
}

func (r *reader) take(n int) []byte {
	if n < 0 || len(r.buf) < n {
		r.fail("data")
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

func (r *reader) byte() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) bool() bool { return r.byte() != 0 }

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("number")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// count reads a length, bounded by what is left to read.
func (r *reader) count() int {
	v := r.uvarint()
	if v > uint64(len(r.buf)) {
		r.fail("count")
		return 0
	}
	return int(v)
}

func (r *reader) i64() int64 {
	if b := r.take(8); b != nil {
		return int64(binary.LittleEndian.Uint64(b))
	}
	return 0
}

func (r *reader) f64() float64 {
	if b := r.take(8); b != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return 0
}

func (r *reader) str() string { return strings.Clone(string(r.take(r.count()))) }

func (r *reader) bytes() []byte { return r.take(r.count()) }

func (r *reader) sketch() *stats.Sketch {
	b := r.bytes()
	if len(b) == 0 {
		return nil
	}
	s := &stats.Sketch{}
	if err := s.UnmarshalBinary(b); err != nil {
		if r.err == nil {
			r.err = fmt.Errorf("%w: %w", errState, err)
		}
		return nil
	}
	return s
}
