// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package otlpsend

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
)

// collector is an in-process OTLP/gRPC receiver writing into sinks.
type collector struct {
	endpoint string
	traces   *consumertest.TracesSink
	metrics  *consumertest.MetricsSink
	logs     *consumertest.LogsSink
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	c := &collector{endpoint: freeEndpoint(t), traces: new(consumertest.TracesSink), metrics: new(consumertest.MetricsSink), logs: new(consumertest.LogsSink)}
	factory := otlpreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*otlpreceiver.Config)
	grpc := configgrpc.NewDefaultServerConfig()
	grpc.NetAddr.Endpoint = c.endpoint
	cfg.Protocols.GRPC = configoptional.Some(grpc)
	cfg.Protocols.HTTP = configoptional.None[otlpreceiver.HTTPConfig]()
	set := receivertest.NewNopSettings(factory.Type())
	ctx := context.Background()
	tr, err := factory.CreateTraces(ctx, set, cfg, c.traces)
	require.NoError(t, err)
	mr, err := factory.CreateMetrics(ctx, set, cfg, c.metrics)
	require.NoError(t, err)
	lr, err := factory.CreateLogs(ctx, set, cfg, c.logs)
	require.NoError(t, err)
	for _, r := range []interface {
		Start(context.Context, component.Host) error
		Shutdown(context.Context) error
	}{tr, mr, lr} {
		require.NoError(t, r.Start(ctx, componenttest.NewNopHost()))
		t.Cleanup(func() { assert.NoError(t, r.Shutdown(context.Background())) })
	}
	return c
}

func freeEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// deployments is an httptest stand-in for the receiver's /v1/deployments.
type deployments struct {
	mu       sync.Mutex
	events   []GenericEvent
	auth     []string
	failures atomic.Int32 // answer 503 this many times first
}

func (d *deployments) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.failures.Add(-1) >= 0 {
		w.Header().Set("Retry-After", "0")
		http.Error(w, `{"error":"pipeline busy"}`, http.StatusServiceUnavailable)
		return
	}
	if r.URL.Path != "/v1/deployments" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields() // the receiver is strict too
	var batch []GenericEvent
	if err := dec.Decode(&batch); err != nil {
		http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusBadRequest)
		return
	}
	d.mu.Lock()
	d.events = append(d.events, batch...)
	d.auth = append(d.auth, r.Header.Get("Authorization"))
	d.mu.Unlock()
	_, _ = w.Write([]byte(`{"accepted":1}`))
}

func smallScenario() scenario.Scenario {
	return scenario.Scenario{
		Name:    "send",
		Seed:    7,
		Start:   time.Date(2026, time.February, 2, 10, 0, 0, 0, time.UTC),
		WarmUp:  time.Minute,
		Observe: 2 * time.Minute,
		Services: []scenario.Service{{
			Name: "checkout", Namespace: "shop", Environment: "production", Version: "1.0.0", Instances: 2,
			Traffic: scenario.Traffic{RPS: 20, ErrorRatio: 0.05, ClientErrorRatio: 0.02},
		}},
		Deployment: scenario.Deployment{Service: "checkout", Version: "1.1.0", QueuedFor: 30 * time.Second, InstanceInterval: 20 * time.Second},
	}
}

// expected counts what the scenario generates.
func expected(t *testing.T, sc *scenario.Scenario) (spans, points, appLogs int, events []deployevent.Event) {
	t.Helper()
	require.NoError(t, sc.Run(func(st scenario.Step) error {
		spans += st.Traces.SpanCount()
		points += st.Metrics.DataPointCount()
		appLogs += st.Logs.LogRecordCount() - len(st.Events)
		events = append(events, st.Events...)
		return nil
	}))
	return spans, points, appLogs, events
}

func lifecycleRecords(t *testing.T, all []plog.Logs) (events []deployevent.Event, other int) {
	t.Helper()
	for _, ld := range all {
		for _, rl := range ld.ResourceLogs().All() {
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					if !deployevent.IsLifecycle(lr) {
						other++
						continue
					}
					e, err := deployevent.FromLogRecord(rl.Resource(), lr)
					require.NoError(t, err)
					events = append(events, e)
				}
			}
		}
	}
	return events, other
}

func TestReplayEventsAsJSON(t *testing.T) {
	col := startCollector(t)
	dep := &deployments{}
	dep.failures.Store(2) // the first POST is retried through two 503s
	server := httptest.NewServer(dep)
	defer server.Close()

	sc := smallScenario()
	spans, points, appLogs, events := expected(t, &sc)
	require.NotEmpty(t, events)

	ctx := context.Background()
	sender, err := New(ctx, Config{Endpoint: col.endpoint, DeploymentsURL: server.URL + "/v1/deployments", BearerToken: "s3cret"})
	require.NoError(t, err)
	stats, err := sender.Replay(ctx, &sc)
	require.NoError(t, err)
	require.NoError(t, sender.Shutdown(ctx))
	require.NoError(t, sender.Shutdown(ctx), "Shutdown twice")

	assert.Equal(t, Stats{Steps: 36, Spans: spans, DataPoints: points, LogRecords: appLogs, Events: len(events)}, stats)
	assert.Equal(t, spans, col.traces.SpanCount())
	assert.Equal(t, points, col.metrics.DataPointCount())
	received, other := lifecycleRecords(t, col.logs.AllLogs())
	assert.Empty(t, received, "lifecycle events went as JSON, not OTLP")
	assert.Equal(t, appLogs, other)

	dep.mu.Lock()
	defer dep.mu.Unlock()
	require.Len(t, dep.events, len(events))
	for i, e := range events {
		assert.Equal(t, ToGeneric(&e), dep.events[i])
		assert.Equal(t, e.Timestamp.UTC().Format(time.RFC3339Nano), dep.events[i].Timestamp, "simulated timestamps")
	}
	for _, a := range dep.auth {
		assert.Equal(t, "Bearer s3cret", a)
	}
}

func TestReplayEventsAsOTLPLogs(t *testing.T) {
	col := startCollector(t)
	sc := smallScenario()
	_, _, appLogs, events := expected(t, &sc)

	ctx := context.Background()
	sender, err := New(ctx, Config{Endpoint: col.endpoint, Speed: 3600}) // 3 simulated minutes in 50ms
	require.NoError(t, err)
	defer func() { assert.NoError(t, sender.Shutdown(ctx)) }()
	begin := time.Now()
	_, err = sender.Replay(ctx, &sc)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(begin), 45*time.Millisecond, "paced by Speed")

	received, other := lifecycleRecords(t, col.logs.AllLogs())
	assert.Equal(t, appLogs, other)
	require.Len(t, received, len(events))
	for i := range events {
		assert.Equal(t, events[i].State, received[i].State)
		assert.Equal(t, events[i].ID, received[i].ID)
		assert.True(t, events[i].Timestamp.Equal(received[i].Timestamp))
	}
}

func TestReplayRealtimeRewritesTimestamps(t *testing.T) {
	col := startCollector(t)
	sc := smallScenario()
	ctx := context.Background()
	sender, err := New(ctx, Config{Endpoint: col.endpoint, Realtime: true})
	require.NoError(t, err)
	defer func() { assert.NoError(t, sender.Shutdown(ctx)) }()

	// A fake wall clock: sleeping advances it, so the replay takes no real time.
	wall := time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC)
	var slept []time.Duration
	sender.now = func() time.Time { return wall }
	sender.sleep = func(_ context.Context, d time.Duration) error {
		slept = append(slept, d)
		wall = wall.Add(d)
		return nil
	}
	stats, err := sender.Replay(ctx, &sc)
	require.NoError(t, err)
	require.Len(t, slept, stats.Steps)
	for _, d := range slept {
		assert.Equal(t, 5*time.Second, d, "one step of wall time per step")
	}

	offset := time.Date(2030, time.June, 1, 12, 0, 0, 0, time.UTC).Sub(sc.Start)
	label := sc.Label()
	label.Shift(offset)
	events, _ := lifecycleRecords(t, col.logs.AllLogs())
	require.NotEmpty(t, events)
	assert.True(t, label.DeploymentStart.Equal(events[1].Timestamp), "started at the shifted deployment start")
	for _, td := range col.traces.AllTraces() {
		for _, rs := range td.ResourceSpans().All() {
			for _, span := range rs.ScopeSpans().At(0).Spans().All() {
				end := span.EndTimestamp().AsTime()
				require.False(t, end.Before(label.DeploymentStart.Add(-sc.WarmUp)) || end.After(label.End), "span at %v outside the shifted scenario", end)
			}
		}
	}
}

func TestSendErrors(t *testing.T) {
	ctx := context.Background()
	_, err := New(ctx, Config{})
	require.ErrorContains(t, err, "Endpoint")
	_, err = New(ctx, Config{Endpoint: "localhost:1", Speed: -1})
	require.ErrorContains(t, err, "Speed")

	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"field \"state\": bad"}`, http.StatusBadRequest)
	}))
	defer server.Close()
	col := startCollector(t)
	sender, err := New(ctx, Config{Endpoint: col.endpoint, DeploymentsURL: server.URL})
	require.NoError(t, err)
	defer func() { assert.NoError(t, sender.Shutdown(ctx)) }()
	sc := smallScenario()
	_, err = sender.Replay(ctx, &sc)
	require.ErrorContains(t, err, "400", "a 4xx is not retried and says why")
	require.ErrorContains(t, err, `field \"state\": bad`)
}

func TestSendRetriesThenFails(t *testing.T) {
	// Nothing listens: the export is retried for RetryFor, then fails.
	ctx := context.Background()
	sender, err := New(ctx, Config{Endpoint: freeEndpoint(t), RetryFor: 300 * time.Millisecond, Timeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer func() { assert.NoError(t, sender.Shutdown(ctx)) }()
	sc := smallScenario()
	begin := time.Now()
	_, err = sender.Replay(ctx, &sc)
	require.Error(t, err)
	assert.Less(t, time.Since(begin), 5*time.Second)
	require.NoError(t, sender.Shutdown(ctx))
	require.ErrorContains(t, sender.Send(ctx, scenario.Step{}), "after Shutdown")
}

func TestReplayStopsWithContext(t *testing.T) {
	col := startCollector(t)
	sc := smallScenario()
	ctx, cancel := context.WithCancel(context.Background())
	sender, err := New(ctx, Config{Endpoint: col.endpoint, Speed: 1})
	require.NoError(t, err)
	defer func() { assert.NoError(t, sender.Shutdown(context.Background())) }()
	time.AfterFunc(50*time.Millisecond, cancel)
	begin := time.Now()
	_, err = sender.Replay(ctx, &sc)
	require.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(begin), 2*time.Second)
}
