// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"
)

// startFileStorage starts a file_storage extension on dir and returns a host
// that offers it.
func startFileStorage(t *testing.T, dir string) (*testHost, component.Component) {
	t.Helper()
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	cfg.Compaction.Directory = dir
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), &testHost{}))
	return &testHost{extensions: map[component.ID]component.Component{component.NewID(f.Type()): ext}}, ext
}

// An alert queued while the Alertmanager is down survives a restart of the
// exporter (sending_queue with storage: file_storage) and is delivered after.
func TestPersistentQueueSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	storageID := component.MustNewID("file_storage")
	newCfg := func() *Config {
		return testConfig(func(cfg *Config) {
			cfg.Alertmanager.Endpoints = []string{"http://" + addr}
			cfg.QueueConfig.Get().StorageID = &storageID
			cfg.Gate = configoptional.None[GateConfig]() // the gate plays no part here
		})
	}

	// First run: Alertmanager down; the alert is queued on disk.
	host, ext := startFileStorage(t, dir)
	first := newTestCore(t, newCfg(), newClock(t0.Add(3*time.Minute)), nil)
	require.NoError(t, first.Start(context.Background(), host))
	require.NoError(t, first.consumeLogs(context.Background(), alertLogs(criticalAlert())))
	time.Sleep(200 * time.Millisecond) // refused attempts, retrying
	require.NoError(t, first.Shutdown(context.Background()))
	require.NoError(t, ext.Shutdown(context.Background()))

	// Second run: Alertmanager up; the queued alert goes out.
	am := newRecorderAt(t, addr, nil)
	host, ext = startFileStorage(t, dir)
	t.Cleanup(func() { require.NoError(t, ext.Shutdown(context.Background())) })
	second := newTestCore(t, newCfg(), newClock(t0.Add(4*time.Minute)), nil)
	require.NoError(t, second.Start(context.Background(), host))
	require.Eventually(t, func() bool { return am.count() >= 1 }, 10*time.Second, 20*time.Millisecond)
	posted := decodeJSON(t, am.body(0)).([]any)
	require.Len(t, posted, 1)
	assert.Equal(t, "gh-1234", posted[0].(map[string]any)["labels"].(map[string]any)["deployment_id"])
}
