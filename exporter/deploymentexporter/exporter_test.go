// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadata"
	"github.com/deploylens/deploylens/internal/deployevent"
)

// The logs and metrics exporters of one component ID share one state and one
// gate server; it stays up until the last of them shuts down.
func TestFactorySharesCoreAcrossSignals(t *testing.T) {
	fac := newFactory()
	f := fac.exporterFactory()
	cfg := testConfig(nil)
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewIDWithName(metadata.Type, "shared")
	ctx := context.Background()
	host := componenttest.NewNopHost()

	logs, err := f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	metrics, err := f.CreateMetrics(ctx, set, cfg)
	require.NoError(t, err)
	assert.False(t, logs.Capabilities().MutatesData)
	require.NoError(t, logs.Start(ctx, host))
	require.NoError(t, metrics.Start(ctx, host))

	core := sharedCoreOf(t, fac, set.ID)
	require.NotNil(t, core.gate)
	base := "http://" + core.gate.addr

	require.NoError(t, logs.ConsumeLogs(ctx, lifecycleLogs(deployevent.StateStarted, time.Now().Add(-10*time.Minute))))
	require.NoError(t, metrics.ConsumeMetrics(ctx, healthMetrics(testHealth{
		score: 97, verdict: deployevent.VerdictHealthy, recommendation: deployevent.RecommendNone, phase: deployevent.PhaseDuring, at: time.Now(),
	})))
	body := getJSON(t, base+"/v1/verdict?service=checkout&environment=production")
	assert.Equal(t, "pass", body["verdict"], "lifecycle from the logs pipeline and health from the metrics pipeline meet in one state")

	require.NoError(t, logs.Shutdown(ctx))
	require.NoError(t, logs.Shutdown(ctx), "shutdown twice is safe")
	assert.Equal(t, "pass", getJSON(t, base+"/v1/verdict?service=checkout&environment=production")["verdict"], "the gate stays up for the metrics exporter")
	require.NoError(t, metrics.Shutdown(ctx))
	_, err = http.Get(base + "/v1/verdict?service=checkout") //nolint:bodyclose // it must fail
	require.Error(t, err, "the gate is closed with the last exporter")

	// A new pair after shutdown gets a fresh core.
	logs2, err := f.CreateLogs(ctx, set, cfg)
	require.NoError(t, err)
	require.NoError(t, logs2.Start(ctx, host))
	assert.NotSame(t, core, sharedCoreOf(t, fac, set.ID))
	require.NoError(t, logs2.Shutdown(ctx))
}

func sharedCoreOf(t *testing.T, fac *factory, id component.ID) *core {
	t.Helper()
	c, ok := fac.cores.Get(id)
	require.True(t, ok)
	return c
}

func getJSON(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}
