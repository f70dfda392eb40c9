// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package sharedcomponent lets the pipelines that use one component ID share
// one instance of it: a processor in a traces, a metrics and a logs pipeline,
// or the logs and the metrics exporter of one ID, hold one state.
//
// A factory keeps a Map. Each create call takes a Handle on the instance of
// its ID (creating the instance for the first one) and wires the handle's
// Start and Shutdown into the component it returns. The instance is started
// by the first handle started and shut down, then forgotten, with the last
// handle shut down, so a reloaded configuration gets a fresh instance.
package sharedcomponent // import "github.com/deploylens/deploylens/internal/sharedcomponent"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Map holds one factory's shared instances by component ID. The zero value
// is ready to use.
type Map[C component.Component] struct {
	// mu guards entries and every entry's users; it is held across the last
	// Shutdown so a new instance of an ID never runs beside the old one.
	mu      sync.Mutex
	entries map[component.ID]*entry[C]
}

type entry[C component.Component] struct {
	value C
	users int // handles taken and not yet shut down (guarded by Map.mu)

	mu      sync.Mutex // serialises the value's Start and Shutdown
	running bool
}

// Acquire returns a handle on the instance of id, creating the instance with
// create when no handle holds one. create runs under the map's lock.
func (m *Map[C]) Acquire(id component.ID, create func() (C, error)) (*Handle[C], error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[id]
	if !ok {
		value, err := create()
		if err != nil {
			return nil, err
		}
		if m.entries == nil {
			m.entries = map[component.ID]*entry[C]{}
		}
		e = &entry[C]{value: value}
		m.entries[id] = e
	}
	e.users++
	return &Handle[C]{m: m, id: id, e: e}, nil
}

// Get returns the instance of id while a handle holds it.
func (m *Map[C]) Get(id component.ID) (C, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[id]
	if !ok {
		var zero C
		return zero, false
	}
	return e.value, true
}

// Len is the number of instances held.
func (m *Map[C]) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.entries)
}

// Handle is one pipeline's use of a shared instance. Shutdown is safe without
// Start and safe twice.
type Handle[C component.Component] struct {
	m  *Map[C]
	id component.ID
	e  *entry[C]

	mu      sync.Mutex
	started bool
	stopped bool
}

// Value is the shared instance.
func (h *Handle[C]) Value() C { return h.e.value }

// Start starts the instance unless another handle already did. A failed
// Start leaves it stopped; the next handle's Start tries again.
func (h *Handle[C]) Start(ctx context.Context, host component.Host) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.started || h.stopped {
		return nil
	}
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	if !h.e.running {
		if err := h.e.value.Start(ctx, host); err != nil {
			return err
		}
		h.e.running = true
	}
	h.started = true
	return nil
}

// Shutdown releases this handle; the last one shuts the instance down, even
// one never started (a component's Shutdown is safe without Start), and
// forgets it.
func (h *Handle[C]) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil
	}
	h.stopped = true
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	h.e.users--
	if h.e.users > 0 {
		return nil
	}
	if h.m.entries[h.id] == h.e {
		delete(h.m.entries, h.id)
	}
	h.e.mu.Lock()
	defer h.e.mu.Unlock()
	h.e.running = false
	return h.e.value.Shutdown(ctx)
}

// Attributes the collector adds to a component's telemetry that name one
// pipeline or signal; they do not describe an instance shared between them.
const (
	attrSignal     = "otelcol.signal"
	attrPipelineID = "otelcol.pipeline.id"
)

// TelemetrySettings returns ts without the pipeline and signal attributes the
// collector injects, for an instance that serves several pipelines. The
// collector's providers that support it are recognised by the method they
// expose; others are left as they are.
func TelemetrySettings(ts component.TelemetrySettings) component.TelemetrySettings {
	drop := []string{attrSignal, attrPipelineID}
	if ts.Logger != nil {
		ts.Logger = ts.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
			if d, ok := c.(interface {
				DropInjectedAttributes(...string) zapcore.Core
			}); ok {
				return d.DropInjectedAttributes(drop...)
			}
			return c
		}))
	}
	if d, ok := ts.MeterProvider.(interface {
		DropInjectedAttributes(...string) metric.MeterProvider
	}); ok {
		ts.MeterProvider = d.DropInjectedAttributes(drop...)
	}
	if d, ok := ts.TracerProvider.(interface {
		DropInjectedAttributes(...string) trace.TracerProvider
	}); ok {
		ts.TracerProvider = d.DropInjectedAttributes(drop...)
	}
	return ts
}
