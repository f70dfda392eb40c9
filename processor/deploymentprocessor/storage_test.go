// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/kpi"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

// memStorage is an in-memory storage extension; its data outlives clients,
// as a file would outlive a process.
type memStorage struct {
	component.StartFunc
	component.ShutdownFunc

	mu      sync.Mutex
	data    map[string][]byte
	sets    map[string]int
	clients []component.ID
	closed  int
	failSet error
}

func newMemStorage() *memStorage {
	return &memStorage{data: map[string][]byte{}, sets: map[string]int{}}
}

func (m *memStorage) GetClient(_ context.Context, kind component.Kind, id component.ID, name string) (storage.Client, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if kind != component.KindProcessor || name != "" {
		return nil, errors.New("unexpected client request")
	}
	m.clients = append(m.clients, id)
	return &memClient{storage: m}, nil
}

// setCount is how many times the tracker state was written.
func (m *memStorage) setCount() int { return m.setCountOf(stateKey) }

func (m *memStorage) setCountOf(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sets[key]
}

type memClient struct{ storage *memStorage }

func (c *memClient) Get(_ context.Context, key string) ([]byte, error) {
	c.storage.mu.Lock()
	defer c.storage.mu.Unlock()
	return c.storage.data[key], nil
}

func (c *memClient) Set(_ context.Context, key string, value []byte) error {
	c.storage.mu.Lock()
	defer c.storage.mu.Unlock()
	if c.storage.failSet != nil {
		return c.storage.failSet
	}
	c.storage.data[key] = append([]byte(nil), value...)
	c.storage.sets[key]++
	return nil
}

func (c *memClient) Delete(_ context.Context, key string) error {
	c.storage.mu.Lock()
	defer c.storage.mu.Unlock()
	delete(c.storage.data, key)
	return nil
}

func (c *memClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	for _, op := range ops {
		var err error
		switch op.Type {
		case storage.Get:
			op.Value, err = c.Get(ctx, op.Key)
		case storage.Set:
			err = c.Set(ctx, op.Key, op.Value)
		case storage.Delete:
			err = c.Delete(ctx, op.Key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *memClient) Close(context.Context) error {
	c.storage.mu.Lock()
	defer c.storage.mu.Unlock()
	c.storage.closed++
	return nil
}

// extensionHost is a host with extensions.
type extensionHost struct {
	component.Host
	extensions map[component.ID]component.Component
}

func (h extensionHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

var storageID = component.MustNewID("file_storage")

func withStorage(flush time.Duration) func(*Config) {
	return func(c *Config) {
		id := storageID
		c.Storage = &id
		c.FlushInterval = flush
	}
}

func hostWith(ext component.Component) component.Host {
	return extensionHost{Host: componenttest.NewNopHost(), extensions: map[component.ID]component.Component{storageID: ext}}
}

// runUntilRestart starts a deployment of checkout (1.4.0 → 1.5.0, both
// reporting), then shuts the collector down at t0+3m.
func runUntilRestart(t *testing.T, host component.Host) {
	t.Helper()
	ps := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: host})
	ctx := context.Background()
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV1)))
	ps.clock.Set(t0.Add(time.Minute))
	ps.consumeEvents(t, deployEvent("rollout-9", deployevent.StateStarted, time.Minute))
	ps.clock.Set(t0.Add(3 * time.Minute))
	require.NoError(t, ps.traces.ConsumeTraces(ctx, tracesOf(checkoutV1, checkoutV2)))
	ps.shutdown(t)
}

// assertResumed restarts at t0+10m and checks the deployment carried on.
func assertResumed(t *testing.T, host component.Host) {
	t.Helper()
	ps := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: host})
	ps.clock.Set(t0.Add(10 * time.Minute))

	st, ok := ps.proc.tracker.Service(checkoutKey(), ps.clock.Now())
	require.True(t, ok, "state restored")
	assert.Equal(t, deployevent.PhaseDuring, st.Phase)
	require.NotNil(t, st.Current)
	assert.Equal(t, "rollout-9", st.Current.ID)
	assert.Equal(t, t0.Add(time.Minute), st.Current.StartTime)
	assert.Equal(t, "1.5.0", st.Current.Version)
	assert.Equal(t, "1.4.0", st.Current.PreviousVersion)
	assert.Equal(t, "1.4.0", st.StableVersion)

	// Telemetry after the restart is tagged as before it, cohorts included.
	require.NoError(t, ps.traces.ConsumeTraces(context.Background(), tracesOf(checkoutV1, checkoutV2)))
	rss := ps.tracesSink.AllTraces()[0].ResourceSpans()
	assert.Equal(t, map[string]string{"deployment.phase": "during", "deployment.id": "rollout-9", "deployment.cohort": "baseline"},
		deploymentAttrs(rss.At(0).Resource().Attributes()))
	assert.Equal(t, map[string]string{"deployment.phase": "during", "deployment.id": "rollout-9", "deployment.cohort": "canary"},
		deploymentAttrs(rss.At(1).Resource().Attributes()))

	// And it ends normally.
	ps.consumeEvents(t, deployEvent("rollout-9", deployevent.StateSucceeded, 10*time.Minute))
	assert.Equal(t, deployevent.PhasePost, ps.proc.tracker.Lookup(checkoutKey(), "", ps.clock.Now()).Phase)
}

func TestRestartKeepsDeployment(t *testing.T) {
	store := newMemStorage()
	host := hostWith(store)
	runUntilRestart(t, host)
	assert.Equal(t, 1, store.setCount(), "saved once, at shutdown")
	assert.Equal(t, 1, store.setCountOf(healthKey), "health saved once, at shutdown")
	assert.Equal(t, 1, store.closed)
	assert.Equal(t, []component.ID{component.NewID(metadata.Type)}, store.clients, "one client for the shared instance")
	assertResumed(t, host)
}

func TestRestartWithFileStorage(t *testing.T) {
	dir := t.TempDir()
	newExtension := func() component.Component {
		f := filestorage.NewFactory()
		cfg := f.CreateDefaultConfig().(*filestorage.Config)
		cfg.Directory = dir
		ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
		require.NoError(t, err)
		require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
		return ext
	}

	ext := newExtension()
	runUntilRestart(t, hostWith(ext))
	require.NoError(t, ext.Shutdown(context.Background()))

	ext = newExtension()
	// Processors shut down (t.Cleanup, last in first out) before the extension.
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	assertResumed(t, hostWith(ext))
}

func TestPeriodicFlush(t *testing.T) {
	store := newMemStorage()
	ps := newPipelines(t, pipelineOptions{edit: withStorage(10 * time.Millisecond), host: hostWith(store)})
	ps.consumeEvents(t, deployEvent("rollout-9", deployevent.StateStarted, 0))
	require.Eventually(t, func() bool { return store.setCount() == 1 }, 5*time.Second, 5*time.Millisecond)
	// Nothing changed: nothing more is written.
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, store.setCount())
	ps.consumeEvents(t, deployEvent("rollout-9", deployevent.StateSucceeded, time.Minute))
	require.Eventually(t, func() bool { return store.setCount() == 2 }, 5*time.Second, 5*time.Millisecond)
}

func TestStorageStartErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		host    component.Host
		wantErr string
	}{
		{name: "missing", host: componenttest.NewNopHost(), wantErr: `storage: extension "file_storage" not found`},
		{name: "not a storage extension", host: hostWith(struct {
			component.StartFunc
			component.ShutdownFunc
		}{}), wantErr: `storage: extension "file_storage" is not a storage extension`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFactory()
			cfg := createDefaultConfig().(*Config)
			withStorage(time.Second)(cfg)
			traces, err := f.processorFactory().CreateTraces(ctx, processortest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
			require.NoError(t, err)
			assert.EqualError(t, traces.Start(ctx, tt.host), tt.wantErr)
			require.NoError(t, traces.Shutdown(ctx))
			assert.Zero(t, f.instances.Len())
		})
	}
}

func TestUnreadableStateStartsEmpty(t *testing.T) {
	store := newMemStorage()
	store.data[stateKey] = []byte("{not json")
	ps := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: hostWith(store)})
	assert.Zero(t, ps.proc.tracker.Len())

	other := newMemStorage()
	other.data[stateKey] = []byte(`{"format": 99, "services": []}`)
	ps = newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: hostWith(other), factory: newFactory()})
	assert.Zero(t, ps.proc.tracker.Len())
}

func TestSaveErrorIsReportedAtShutdown(t *testing.T) {
	store := newMemStorage()
	store.failSet = errors.New("disk full")
	ps := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: hostWith(store)})
	ps.consumeEvents(t, deployEvent("rollout-9", deployevent.StateStarted, 0))
	require.NoError(t, ps.traces.Shutdown(context.Background()))
	require.NoError(t, ps.metrics.Shutdown(context.Background()))
	assert.ErrorContains(t, ps.logs.Shutdown(context.Background()), "disk full")
	assert.Equal(t, 1, store.closed, "the client is closed anyway")
}

// TestRestartKeepsKPIsAndAlerts: the KPI book (its counters' start time
// included) and a firing alert survive a restart: the alert is not fired
// again, and the counters carry on.
func TestRestartKeepsKPIsAndAlerts(t *testing.T) {
	store := newMemStorage()
	host := hostWith(store)
	ps := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: host})
	ps.clock.Set(t0.Add(time.Minute))
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, time.Minute))
	ps.clock.Set(t0.Add(5 * time.Minute))
	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateFailed, 5*time.Minute))
	key := kpi.Key(checkoutKey())
	before, ok := ps.proc.emitter.book.Values(key, ps.clock.Now())
	require.True(t, ok)
	actx := alerts.Context{Key: alerts.Key(checkoutKey()), DeploymentID: "rollout-1"}
	fired := ps.proc.emitter.alerts.Evaluate(actx, []alerts.Condition{{Name: alerts.DeploymentFailed, Severity: "warning", Active: true}}, ps.clock.Now())
	require.Len(t, fired, 1)
	ps.shutdown(t)
	assert.Equal(t, 1, store.setCountOf(kpiKey))
	assert.Equal(t, 1, store.setCountOf(alertsKey))

	ps = newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: host})
	ps.clock.Set(t0.Add(5*time.Minute + 30*time.Second))
	after, ok := ps.proc.emitter.book.Values(key, ps.clock.Now())
	require.True(t, ok, "KPI book restored")
	assert.Equal(t, before.Counts, after.Counts)
	assert.Equal(t, [4][3]int64{{}, {0, 0, 1}, {}, {}}, after.Counts, "failed, unjudged (no telemetry)")
	assert.True(t, before.StartTime.Equal(after.StartTime), "the counters keep their start time")
	assert.InDelta(t, 240, after.Duration, 1e-9)
	require.Len(t, ps.proc.emitter.alerts.Firing(alerts.Key(checkoutKey())), 1, "the firing alert is remembered")
	cond := []alerts.Condition{{Name: alerts.DeploymentFailed, Severity: "warning", Active: true}}
	assert.Empty(t, ps.proc.emitter.alerts.Evaluate(actx, cond, ps.clock.Now()), "not fired again after the restart")
	resent := ps.proc.emitter.alerts.Evaluate(actx, cond, t0.Add(6*time.Minute))
	require.Len(t, resent, 1, "re-sent when due")
	assert.Equal(t, fired[0].StartedAt, resent[0].StartedAt, "a re-send of the same alert")
}

// TestFrozenBaselinesSavedAtNextFlush: baselines freezing for a deployment
// are saved at the next flush, though the health state was saved less than
// healthSaveInterval ago: a crash loses at most flush_interval of them.
func TestFrozenBaselinesSavedAtNextFlush(t *testing.T) {
	store := newMemStorage()
	ps := newPipelines(t, pipelineOptions{edit: withStorage(10 * time.Millisecond), host: hostWith(store)})
	rng := rand.New(rand.NewPCG(3, 5)) //nolint:gosec // test data
	at := t0
	for range 3 {
		at = at.Add(10 * time.Second)
		ps.serveInterval(t, rng, at, v1("pod-a"))
	}
	require.Eventually(t, func() bool { return store.setCountOf(healthKey) >= 1 }, 5*time.Second, 5*time.Millisecond)
	saved := store.setCountOf(healthKey)

	ps.consumeEvents(t, deployEvent("rollout-1", deployevent.StateStarted, at.Sub(t0)))
	at = at.Add(10 * time.Second)
	ps.serveInterval(t, rng, at, v1("pod-a"))
	snap := checkoutHealth(ps)
	require.NotNil(t, snap)
	require.True(t, snap.Frozen, "the deployment froze the baselines")
	require.Less(t, ps.clock.Now().Sub(t0), healthSaveInterval, "all within one healthSaveInterval")
	assert.Eventually(t, func() bool { return store.setCountOf(healthKey) > saved }, 5*time.Second, 5*time.Millisecond,
		"the freeze is saved at the next flush")
}
