// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadata"
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

// The configuration of the issue, as written, next to `processors: deployment: {}`.
func TestConfigFromIssue(t *testing.T) {
	cfg := loadConfig(t, "")
	require.NoError(t, confmap.Validate(cfg))
	assert.Equal(t, []string{"http://127.0.0.1:9093"}, cfg.Alertmanager.Endpoints)
	require.True(t, cfg.Gate.HasValue())
	assert.Equal(t, "localhost:8089", cfg.Gate.Get().NetAddr.Endpoint)
	assert.Empty(t, cfg.Channels)
	assert.Empty(t, cfg.Routes)
}

func TestConfigDefaults(t *testing.T) {
	cfg := loadConfig(t, "defaults")
	require.NoError(t, confmap.Validate(cfg))
	assert.Empty(t, cfg.Alertmanager.Endpoints)
	assert.Equal(t, defaultClientTimeout, cfg.Alertmanager.Timeout)
	assert.Equal(t, 5*time.Minute, cfg.Alertmanager.ResolveTimeout)
	assert.Equal(t, time.Minute, cfg.Alertmanager.ResendInterval)
	assert.Empty(t, cfg.RunbookURL)
	g := cfg.Gate.Get()
	require.NotNil(t, g)
	assert.Equal(t, "localhost:8089", g.NetAddr.Endpoint)
	assert.Equal(t, 5*time.Minute, g.MinObservation)
	assert.Equal(t, "hold", g.Inconclusive)
	assert.Zero(t, g.InconclusivePassWindow, "no data never passes the gate by default")
	assert.Equal(t, 5*time.Minute, g.MaxHealthAge)
	assert.Equal(t, 2*time.Second, g.StatusRefreshInterval)
	assert.InDelta(t, 40, g.ImpactUnhealthyBelow, 0, "the processor's health::unhealthy_below")
	assert.Equal(t, StateConfig{
		MaxServices: 1000, ServiceTTL: 24 * time.Hour, MaxAlerts: 10000, AlertTTL: 30 * time.Minute,
		History: 10, MaxIndicators: 16, SparklinePoints: 60, MaxEdges: 10000, EdgeTTL: 30 * time.Minute,
	}, cfg.State)
	q := cfg.QueueConfig.Get()
	require.NotNil(t, q)
	assert.Equal(t, 1, q.NumConsumers)
	assert.Equal(t, int64(1000), q.QueueSize)
	assert.Nil(t, q.StorageID)
	assert.True(t, cfg.BackOffConfig.Enabled)
	assert.Equal(t, 5*time.Minute, cfg.BackOffConfig.MaxElapsedTime)
}

func TestConfigEveryOption(t *testing.T) {
	cfg := loadConfig(t, "all")
	require.NoError(t, confmap.Validate(cfg))
	am := cfg.Alertmanager
	assert.Equal(t, []string{"http://am-0.monitoring:9093", "https://am-1.monitoring:9093/alertmanager"}, am.Endpoints)
	assert.Equal(t, 3*time.Second, am.Timeout)
	orgID, ok := am.Headers.Get("X-Scope-OrgID")
	assert.True(t, ok)
	assert.Equal(t, configopaque.String("team-a"), orgID)
	assert.Equal(t, 10*time.Minute, am.ResolveTimeout)
	assert.Equal(t, 2*time.Minute, am.ResendInterval)
	assert.Equal(t, map[string]string{"cluster": "eu-1"}, am.Labels)
	assert.Equal(t, "https://runbooks.example.com/deploylens/{alertname}?service={service}", cfg.RunbookURL)

	require.Len(t, cfg.Channels, 3)
	assert.Equal(t, channelSlack, cfg.Channels["team-slack"].Type)
	assert.Equal(t, configopaque.String("pd-routing-key"), cfg.Channels["oncall"].RoutingKey)
	assert.Equal(t, 2*time.Second, cfg.Channels["audit"].Timeout)
	require.Len(t, cfg.Routes, 2)
	assert.Equal(t, RouteConfig{
		Severities: []string{"critical"}, Services: []string{"checkout"}, Environments: []string{"production"},
		Channels: []string{"team-slack", "oncall"}, EscalateAfter: 15 * time.Minute,
	}, cfg.Routes[0])

	g := cfg.Gate.Get()
	assert.Equal(t, "0.0.0.0:9089", g.NetAddr.Endpoint)
	assert.Equal(t, 10*time.Minute, g.MinObservation)
	assert.Equal(t, "pass", g.Inconclusive)
	assert.Equal(t, time.Minute, g.InconclusivePassWindow)
	assert.Equal(t, 3*time.Minute, g.MaxHealthAge)
	assert.Equal(t, 5*time.Second, g.StatusRefreshInterval)
	assert.InDelta(t, 30, g.ImpactUnhealthyBelow, 0)
	assert.Equal(t, StateConfig{
		MaxServices: 50, ServiceTTL: time.Hour, MaxAlerts: 100, AlertTTL: 10 * time.Minute,
		History: 3, MaxIndicators: 4, SparklinePoints: 20, MaxEdges: 200, EdgeTTL: 5 * time.Minute,
	}, cfg.State)
	q := cfg.QueueConfig.Get()
	assert.Equal(t, int64(500), q.QueueSize)
	require.NotNil(t, q.StorageID)
	assert.Equal(t, "file_storage", q.StorageID.String())
	assert.Equal(t, time.Duration(0), cfg.BackOffConfig.MaxElapsedTime)
}

func TestConfigGateOff(t *testing.T) {
	cfg := loadConfig(t, "gate_off")
	require.NoError(t, confmap.Validate(cfg))
	assert.False(t, cfg.Gate.HasValue())
}

func TestConfigValidateErrors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		wantErr []string
	}{
		{name: "am_bad_url", wantErr: []string{"alertmanager::endpoints[0]: invalid URL"}},
		{name: "am_duplicate", wantErr: []string{"alertmanager::endpoints[1]: \"http://a:9093\" is listed twice"}},
		{name: "am_endpoint_singular", wantErr: []string{"alertmanager::endpoint: not used; list the Alertmanagers under alertmanager::endpoints"}},
		{name: "am_resolve_timeout", wantErr: []string{"alertmanager::resolve_timeout: must be positive"}},
		{name: "am_resend_interval", wantErr: []string{"alertmanager::resend_interval: must be positive"}},
		{name: "am_resend_too_long", wantErr: []string{"alertmanager::resend_interval: must be shorter than resolve_timeout"}},
		{name: "am_label_name", wantErr: []string{"alertmanager::labels: \"bad-name\" is not a valid label name"}},
		{name: "am_label_builtin", wantErr: []string{"alertmanager::labels: \"service\" is set by deploylens"}},
		{name: "channel_type", wantErr: []string{"channels::x::type: must be one of webhook, slack, pagerduty"}},
		{name: "channel_name", wantErr: []string{"channels::bad name: channel name must be"}},
		{name: "channel_no_endpoint", wantErr: []string{"channels::x::endpoint: must not be empty for a slack channel"}},
		{name: "channel_bad_endpoint", wantErr: []string{"channels::x::endpoint: invalid URL"}},
		{name: "channel_no_routing_key", wantErr: []string{"channels::x::routing_key: must not be empty"}},
		{name: "route_unknown_channel", wantErr: []string{"routes[0]::channels: unknown channel \"y\""}},
		{name: "route_no_channels", wantErr: []string{"routes[0]::channels: must name at least one channel"}},
		{name: "route_severity", wantErr: []string{"routes[0]::severities: must be info, warning or critical"}},
		{name: "route_escalate_after", wantErr: []string{"routes[0]::escalate_after: must not be negative"}},
		{name: "routes_without_channels", wantErr: []string{"routes: no channels are configured"}},
		{name: "runbook_placeholder", wantErr: []string{"runbook_url: unknown placeholder {alert}"}},
		{name: "gate_endpoint", wantErr: []string{"gate::endpoint: must not be empty"}},
		{name: "gate_min_observation", wantErr: []string{"gate::min_observation: must not be negative"}},
		{name: "gate_inconclusive", wantErr: []string{"gate::inconclusive: must be hold or pass"}},
		{name: "gate_pass_window", wantErr: []string{"gate::inconclusive_pass_window: must not be negative"}},
		{name: "gate_max_health_age", wantErr: []string{"gate::max_health_age: must be positive"}},
		{name: "gate_refresh", wantErr: []string{"gate::status_refresh_interval: must be at least 100ms"}},
		{name: "gate_impact", wantErr: []string{"gate::impact_unhealthy_below: must be between 0 and 100, got 101"}},
		{name: "state_limits", wantErr: []string{
			"state::max_services: must be positive", "state::service_ttl: must be positive",
			"state::max_alerts: must be positive", "state::alert_ttl: must be positive", "state::history: must be positive",
			"state::max_indicators: must be positive", "state::sparkline_points: must be positive",
			"state::max_edges: must be positive", "state::edge_ttl: must be positive",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := confmap.Validate(loadConfig(t, tt.name))
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestValidateChannelErrorsInNameOrder(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Channels = map[string]ChannelConfig{}
	for _, name := range []string{"zeta", "alpha", "mid", "beta"} {
		cfg.Channels[name] = ChannelConfig{Type: "fax"}
	}
	first := cfg.Validate()
	require.Error(t, first)
	for range 20 {
		assert.Equal(t, first.Error(), cfg.Validate().Error(), "a configuration always reads the same errors")
	}
	msg := first.Error()
	assert.Less(t, strings.Index(msg, "channels::alpha"), strings.Index(msg, "channels::beta"))
	assert.Less(t, strings.Index(msg, "channels::mid"), strings.Index(msg, "channels::zeta"))
}
