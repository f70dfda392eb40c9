// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package otlpsend

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/receiver/deploymentreceiver"
)

// The JSON the sender posts is what the real deployment receiver accepts,
// and the events come out of it as they went in.
func TestEventsThroughDeploymentReceiver(t *testing.T) {
	factory := deploymentreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig().(*deploymentreceiver.Config)
	cfg.NetAddr.Endpoint = freeEndpoint(t)
	sink := new(consumertest.LogsSink)
	ctx := context.Background()
	rcv, err := factory.CreateLogs(ctx, receivertest.NewNopSettings(factory.Type()), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(ctx, componenttest.NewNopHost()))
	defer func() { assert.NoError(t, rcv.Shutdown(ctx)) }()

	col := startCollector(t)
	sc := smallScenario()
	sc.Deployment.Revision = "4f2d1c0b9a8e7d6c5b4a39281706f5e4d3c2b1a0"
	sc.Deployment.CommitTime = sc.Start.Add(-2 * time.Hour)
	sc.Deployment.Actor = "alice"
	want := sc.Events()
	require.NotEmpty(t, want)

	sender, err := New(ctx, Config{Endpoint: col.endpoint, DeploymentsURL: "http://" + cfg.NetAddr.Endpoint + "/v1/deployments"})
	require.NoError(t, err)
	defer func() { assert.NoError(t, sender.Shutdown(ctx)) }()
	_, err = sender.Replay(ctx, &sc)
	require.NoError(t, err)

	got, _ := lifecycleRecords(t, sink.AllLogs())
	require.Len(t, got, len(want))
	for i := range want {
		w, g := want[i], got[i]
		assert.Equal(t, w.Service, g.Service)
		assert.Equal(t, w.Namespace, g.Namespace)
		assert.Equal(t, w.Environment, g.Environment)
		assert.Equal(t, w.Version, g.Version)
		assert.Equal(t, w.PreviousVersion, g.PreviousVersion)
		assert.Equal(t, w.ID, g.ID)
		assert.Equal(t, w.State, g.State)
		assert.Equal(t, w.Strategy, g.Strategy)
		assert.Equal(t, deployevent.SourceGeneric, g.Source)
		assert.Equal(t, w.Revision, g.Revision)
		assert.Equal(t, w.Actor, g.Actor)
		assert.True(t, w.CommitTime.Equal(g.CommitTime))
		assert.True(t, w.Timestamp.Equal(g.Timestamp), "the event's own time, not the receipt time")
	}
}
