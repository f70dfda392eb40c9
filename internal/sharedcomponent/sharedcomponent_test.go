// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package sharedcomponent

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/otel/metric"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	nooptrace "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter counts its lifecycle calls; startErr fails the next Start.
type counter struct {
	starts, shutdowns int
	startErr          error
}

func (c *counter) Start(context.Context, component.Host) error {
	if err := c.startErr; err != nil {
		c.startErr = nil
		return err
	}
	c.starts++
	return nil
}

func (c *counter) Shutdown(context.Context) error {
	c.shutdowns++
	return nil
}

var (
	idA = component.MustNewID("deployment")
	idB = component.MustNewIDWithName("deployment", "other")
)

func TestOneInstancePerID(t *testing.T) {
	var m Map[*counter]
	created := 0
	create := func() (*counter, error) { created++; return &counter{}, nil }

	a1, err := m.Acquire(idA, create)
	require.NoError(t, err)
	a2, err := m.Acquire(idA, create)
	require.NoError(t, err)
	b, err := m.Acquire(idB, create)
	require.NoError(t, err)

	assert.Equal(t, 2, created, "one instance per component ID")
	assert.Same(t, a1.Value(), a2.Value())
	assert.NotSame(t, a1.Value(), b.Value())
	assert.Equal(t, 2, m.Len())
	got, ok := m.Get(idA)
	require.True(t, ok)
	assert.Same(t, a1.Value(), got)

	ctx := context.Background()
	for _, h := range []*Handle[*counter]{a1, a2, b} {
		require.NoError(t, h.Shutdown(ctx))
	}
	assert.Zero(t, m.Len())
}

func TestSharedLifecycle(t *testing.T) {
	var m Map[*counter]
	ctx := context.Background()
	host := componenttest.NewNopHost()
	create := func() (*counter, error) { return &counter{}, nil }

	traces, err := m.Acquire(idA, create)
	require.NoError(t, err)
	logs, err := m.Acquire(idA, create)
	require.NoError(t, err)
	c := traces.Value()

	require.NoError(t, traces.Start(ctx, host))
	require.NoError(t, traces.Start(ctx, host), "start twice")
	require.NoError(t, logs.Start(ctx, host))
	assert.Equal(t, 1, c.starts, "started once for every handle")

	require.NoError(t, traces.Shutdown(ctx))
	require.NoError(t, traces.Shutdown(ctx), "shutdown twice")
	assert.Zero(t, c.shutdowns, "still in use by the logs handle")
	require.NoError(t, traces.Start(ctx, host), "start after shutdown does nothing")
	assert.Equal(t, 1, c.starts)
	_, ok := m.Get(idA)
	assert.True(t, ok)

	require.NoError(t, logs.Shutdown(ctx))
	assert.Equal(t, 1, c.shutdowns, "shut down with the last handle")
	_, ok = m.Get(idA)
	assert.False(t, ok, "forgotten once every handle is down")

	// A reload gets a fresh instance.
	again, err := m.Acquire(idA, create)
	require.NoError(t, err)
	assert.NotSame(t, c, again.Value())
	require.NoError(t, again.Shutdown(ctx))
}

func TestShutdownWithoutStart(t *testing.T) {
	var m Map[*counter]
	h, err := m.Acquire(idA, func() (*counter, error) { return &counter{}, nil })
	require.NoError(t, err)
	require.NoError(t, h.Shutdown(context.Background()))
	assert.Equal(t, 1, h.Value().shutdowns, "the last handle releases what the instance holds since creation")
	assert.Zero(t, h.Value().starts)
	assert.Zero(t, m.Len())
}

func TestFailedStartIsRetried(t *testing.T) {
	var m Map[*counter]
	ctx := context.Background()
	host := componenttest.NewNopHost()
	refused := errors.New("no storage")
	create := func() (*counter, error) { return &counter{startErr: refused}, nil }
	first, err := m.Acquire(idA, create)
	require.NoError(t, err)
	second, err := m.Acquire(idA, create)
	require.NoError(t, err)

	require.ErrorIs(t, first.Start(ctx, host), refused)
	require.NoError(t, second.Start(ctx, host), "the next handle tries again")
	assert.Equal(t, 1, first.Value().starts)
	require.NoError(t, first.Shutdown(ctx))
	require.NoError(t, second.Shutdown(ctx))
	assert.Equal(t, 1, first.Value().shutdowns)
}

func TestCreateError(t *testing.T) {
	var m Map[*counter]
	bad := errors.New("bad config")
	_, err := m.Acquire(idA, func() (*counter, error) { return nil, bad })
	require.ErrorIs(t, err, bad)
	assert.Zero(t, m.Len(), "nothing held after a failed create")

	h, err := m.Acquire(idA, func() (*counter, error) { return &counter{}, nil })
	require.NoError(t, err, "a later create is not blocked")
	require.NoError(t, h.Shutdown(context.Background()))
}

// Providers that take attributes away, as the collector's own do.
type droppingMeterProvider struct {
	noopmetric.MeterProvider
	dropped []string
}

func (p *droppingMeterProvider) DropInjectedAttributes(attrs ...string) metric.MeterProvider {
	p.dropped = attrs
	return p
}

type droppingTracerProvider struct {
	nooptrace.TracerProvider
	dropped []string
}

func (p *droppingTracerProvider) DropInjectedAttributes(attrs ...string) trace.TracerProvider {
	p.dropped = attrs
	return p
}

type droppingCore struct {
	zapcore.Core
	dropped *[]string
}

func (c droppingCore) DropInjectedAttributes(attrs ...string) zapcore.Core {
	*c.dropped = attrs
	return c
}

func TestTelemetrySettingsDropsPipelineAttributes(t *testing.T) {
	want := []string{"otelcol.signal", "otelcol.pipeline.id"}
	mp, tp := &droppingMeterProvider{}, &droppingTracerProvider{}
	var loggerDropped []string
	ts := componenttest.NewNopTelemetrySettings()
	ts.MeterProvider, ts.TracerProvider = mp, tp
	ts.Logger = zap.New(droppingCore{Core: zapcore.NewNopCore(), dropped: &loggerDropped})

	got := TelemetrySettings(ts)
	assert.Equal(t, want, mp.dropped)
	assert.Equal(t, want, tp.dropped)
	assert.Equal(t, want, loggerDropped)
	assert.Same(t, mp, got.MeterProvider)
	assert.Same(t, tp, got.TracerProvider)
}

func TestTelemetrySettingsKeepsPlainProviders(t *testing.T) {
	ts := componenttest.NewNopTelemetrySettings()
	got := TelemetrySettings(ts)
	assert.Equal(t, ts.MeterProvider, got.MeterProvider, "a provider without DropInjectedAttributes is left as is")
	assert.Equal(t, ts.TracerProvider, got.TracerProvider)
	require.NotNil(t, got.Logger)
}
