// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/deploylens/deploylens/receiver/deploymentreceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) *Config {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	id := component.NewID(metadata.Type)
	if name != "" {
		id = component.NewIDWithName(metadata.Type, name)
	}
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg
}

func TestConfigDefaults(t *testing.T) {
	cfg := loadConfig(t, "")
	assert.Equal(t, "localhost:8088", cfg.NetAddr.Endpoint)
	assert.Equal(t, int64(defaultMaxRequestBodySize), cfg.MaxRequestBodySize)
	assert.Equal(t, defaultRetryAfter, cfg.RetryAfter)
	assert.Empty(t, cfg.DefaultEnvironment)
	// generic is on by default, every other source off until its key is present.
	require.True(t, cfg.Generic.HasValue())
	assert.Empty(t, cfg.Generic.Get().BearerToken)
	assert.False(t, cfg.GitHub.HasValue())
	assert.False(t, cfg.GitLab.HasValue())
	assert.False(t, cfg.ArgoCD.HasValue())
	assert.False(t, cfg.Flagger.HasValue())
	assert.False(t, cfg.ArgoRollouts.HasValue())
	assert.NoError(t, confmap.Validate(cfg))
}

func TestConfigEveryOption(t *testing.T) {
	cfg := loadConfig(t, "all")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, "0.0.0.0:9099", cfg.NetAddr.Endpoint)
	assert.Equal(t, int64(4096), cfg.MaxRequestBodySize)
	assert.Equal(t, "staging", cfg.DefaultEnvironment)
	assert.Equal(t, 30*time.Second, cfg.RetryAfter)
	assert.Equal(t, configopaque.String("generic-token"), cfg.Generic.Get().BearerToken)
	assert.Equal(t, configopaque.String("gh-secret"), cfg.GitHub.Get().Secret)
	assert.False(t, cfg.GitHub.Get().InsecureSkipVerify)
	assert.Equal(t, configopaque.String("gl-token"), cfg.GitLab.Get().Token)
	assert.Equal(t, configopaque.String("argocd-token"), cfg.ArgoCD.Get().BearerToken)
	// `flagger: {}` and `argo_rollouts: {}` enable the source with defaults.
	assert.True(t, cfg.Flagger.HasValue())
	assert.True(t, cfg.ArgoRollouts.HasValue())

	r, err := newReceiver(cfg, receiverSettings(), nil)
	require.NoError(t, err)
	defer r.telemetry.Shutdown()
	assert.Len(t, r.sources, 6)
	for _, path := range []string{pathGeneric, pathGitHub, pathGitLab, pathArgoCD, pathFlagger, pathArgoRollouts} {
		assert.Contains(t, r.sources, path)
	}
}

func TestConfigSwitchSourcesOff(t *testing.T) {
	cfg := loadConfig(t, "generic_off")
	require.NoError(t, confmap.Validate(cfg))
	assert.False(t, cfg.Generic.HasValue())
	assert.True(t, cfg.Flagger.HasValue())

	cfg = loadConfig(t, "insecure_github")
	require.NoError(t, confmap.Validate(cfg))
	assert.True(t, cfg.GitHub.Get().InsecureSkipVerify)
	assert.Empty(t, cfg.GitHub.Get().Secret)
}

func TestConfigValidateErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		wantErr string
	}{
		{name: "no_sources", wantErr: "no source enabled"},
		{name: "empty_endpoint", wantErr: "endpoint: must not be empty"},
		{name: "negative_retry_after", wantErr: "retry_after: must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, tt.name))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}
