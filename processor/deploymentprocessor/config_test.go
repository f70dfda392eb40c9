// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/alerts"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	storageID := component.MustNewIDWithName("file_storage", "deployments")
	full := &Config{
		EnvironmentDefault: "production",
		PostWindow:         15 * time.Minute,
		MaxDuration:        2 * time.Hour,
		MaxServices:        500,
		IdleTTL:            6 * time.Hour,
		HistorySize:        20,
		Inference:          InferenceConfig{Enabled: false, Settle: 5 * time.Minute},
		TagUnknownAsSteady: false,
		Tagging: TaggingConfig{
			Traces:  SignalTagging{Attributes: []string{"deployment.phase", "deployment.id", "deployment.cohort", "service.version"}, Level: "span"},
			Metrics: SignalTagging{Attributes: []string{"deployment.phase", "deployment.cohort", "deployment.id"}, Level: "datapoint"},
			Logs:    SignalTagging{Attributes: []string{"deployment.phase"}, Level: "record"},
		},
		Storage:       &storageID,
		FlushInterval: 30 * time.Second,
		Health:        defaultHealthConfig(),
		Signals:       defaultEmissionConfig(),
	}
	signalsFull := createDefaultConfig().(*Config)
	signalsFull.Signals.Interval = 5 * time.Second
	signalsFull.Signals.SteadyInterval = 2 * time.Minute
	signalsFull.Signals.ChangeFailureWindow = 7 * 24 * time.Hour
	signalsFull.Signals.Alerts.ResendInterval = 30 * time.Second
	signalsFull.Signals.Alerts.ResolvedTTL = 10 * time.Minute
	signalsFull.Signals.Alerts.PerIndicator = true
	signalsFull.Signals.Alerts.AnomalyThresholds = map[string]float64{"steady": 0.95, "pre": 0.9, "during": 0.6, "post": 0.8}
	signalsFull.Signals.Alerts.Rules = []alerts.Rule{{Name: "ErrorsDuringRollout", Expr: "error_ratio > 5% for 2m in phase during", Severity: "critical", Recommendation: "rollback"}}
	metricsLevelOnly := createDefaultConfig().(*Config)
	metricsLevelOnly.Tagging.Metrics.Level = "datapoint"
	healthFull := createDefaultConfig().(*Config)
	healthFull.Health = HealthConfig{
		Enabled:       true,
		Evaluation:    EvaluationConfig{IntervalActive: 15 * time.Second, IntervalSteady: time.Minute, CloseDelay: 2 * time.Second},
		SpanKinds:     []string{"server"},
		MinRequests:   50,
		Alpha:         0.0001,
		CompareWindow: 10 * time.Minute,
		Weights:       WeightsConfig{Errors: 0.5, Latency: 0.3, Throughput: 0.1, Saturation: 0.1, Dependencies: 0.2},
		Hysteresis:    HysteresisConfig{Enter: 3, Leave: 5},
		Thresholds:    ThresholdsConfig{Healthy: 80, Unhealthy: 50},
		MaxStreams:    5000,
		Indicators: []IndicatorConfig{
			{Name: "orders", Kind: "rate", Metric: "orders.completed", Attributes: map[string]string{"shop": "eu"},
				Direction: "lower_is_worse", Dimension: "business", Weight: 2},
			{Name: "order_failures", Kind: "ratio", Numerator: "orders.failed", Denominator: "orders.completed",
				Direction: "higher_is_worse", Dimension: "business"},
		},
		Dependencies: DependenciesConfig{Enabled: true, SpanKinds: []string{"client"}, MaxPerService: 16, MaxEdges: 1000},
	}
	healthOff := createDefaultConfig().(*Config)
	healthOff.Health.Enabled = false

	tests := []struct {
		id   component.ID
		want component.Config
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig()},
		{id: component.NewIDWithName(metadata.Type, "full"), want: full},
		{id: component.NewIDWithName(metadata.Type, "signals"), want: signalsFull},
		{id: component.NewIDWithName(metadata.Type, "metrics_level_only"), want: metricsLevelOnly},
		{id: component.NewIDWithName(metadata.Type, "health"), want: healthFull},
		{id: component.NewIDWithName(metadata.Type, "health_off"), want: healthOff},
	}
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			require.NoError(t, confmap.Validate(cfg))
			assert.Equal(t, tt.want, cfg)
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, cfg.Validate())
	// `deployment: {}` tracks, infers and tags.
	assert.True(t, cfg.Inference.Enabled)
	assert.True(t, cfg.TagUnknownAsSteady)
	assert.Equal(t, 30*time.Minute, cfg.PostWindow)
	assert.Equal(t, time.Hour, cfg.MaxDuration)
	assert.Equal(t, 10_000, cfg.MaxServices)
	assert.Equal(t, 2*time.Minute, cfg.Inference.Settle)
	assert.Equal(t, []string{"deployment.phase", "deployment.id", "deployment.cohort"}, cfg.Tagging.Traces.Attributes)
	assert.Equal(t, []string{"deployment.phase", "deployment.cohort"}, cfg.Tagging.Metrics.Attributes, "no deployment.id on metrics")
	assert.Equal(t, []string{"deployment.phase", "deployment.id", "deployment.cohort"}, cfg.Tagging.Logs.Attributes)
	for _, st := range []SignalTagging{cfg.Tagging.Traces, cfg.Tagging.Metrics, cfg.Tagging.Logs} {
		assert.Equal(t, "resource", st.Level)
	}
	assert.Nil(t, cfg.Storage)
}

func TestValidateErrorOrderIsStable(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Signals.Interval, cfg.Signals.SteadyInterval, cfg.Signals.ChangeFailureWindow = 0, 0, 0
	for _, phase := range []string{"post", "during", "pre", "later", "steady"} {
		cfg.Signals.Alerts.AnomalyThresholds[phase] = 2
	}
	want := cfg.Validate()
	require.Error(t, want)
	for range 20 {
		assert.Equal(t, want.Error(), cfg.Validate().Error(), "a configuration always reads the same errors")
	}
	msg := want.Error()
	assert.Less(t, strings.Index(msg, "signals::interval"), strings.Index(msg, "signals::steady_interval"))
	assert.Less(t, strings.Index(msg, "thresholds::during"), strings.Index(msg, "thresholds::post"), "phases in sorted order")
}

func TestValidate(t *testing.T) {
	storageID := component.MustNewID("file_storage")
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr []string
	}{
		{name: "negative post_window", edit: func(c *Config) { c.PostWindow = -time.Second }, wantErr: []string{"post_window: must not be negative"}},
		{name: "zero signals interval", edit: func(c *Config) { c.Signals.Interval = 0 }, wantErr: []string{"signals::interval: must be positive"}},
		{name: "zero resolved_ttl", edit: func(c *Config) { c.Signals.Alerts.ResolvedTTL = 0 }, wantErr: []string{"signals::alerts::resolved_ttl: must be positive"}},
		{name: "anomaly threshold phase", edit: func(c *Config) { c.Signals.Alerts.AnomalyThresholds["later"] = 0.5 }, wantErr: []string{`signals::alerts::anomaly_thresholds: "later" is not a phase`}},
		{name: "anomaly threshold range", edit: func(c *Config) { c.Signals.Alerts.AnomalyThresholds["during"] = 1.5 }, wantErr: []string{"signals::alerts::anomaly_thresholds::during: must be in (0, 1]"}},
		{name: "bad rule", edit: func(c *Config) { c.Signals.Alerts.Rules = []alerts.Rule{{Name: "r", Expr: "x >"}} }, wantErr: []string{`signals::alerts::rules: rule "r": expr`}},
		{name: "zero post_window is allowed", edit: func(c *Config) { c.PostWindow = 0 }},
		{name: "zero max_duration", edit: func(c *Config) { c.MaxDuration = 0 }, wantErr: []string{"max_duration: must be positive"}},
		{name: "zero max_services", edit: func(c *Config) { c.MaxServices = 0 }, wantErr: []string{"max_services: must be positive"}},
		{name: "zero idle_ttl", edit: func(c *Config) { c.IdleTTL = 0 }, wantErr: []string{"idle_ttl: must be positive"}},
		{name: "negative history_size", edit: func(c *Config) { c.HistorySize = -1 }, wantErr: []string{"history_size: must not be negative"}},
		{name: "zero settle", edit: func(c *Config) { c.Inference.Settle = 0 }, wantErr: []string{"inference::settle: must be positive"}},
		{name: "storage needs a flush_interval", edit: func(c *Config) { c.Storage = &storageID; c.FlushInterval = 0 }, wantErr: []string{"flush_interval: must be positive"}},
		{name: "flush_interval unused without storage", edit: func(c *Config) { c.FlushInterval = 0 }},
		{
			name: "unknown attribute",
			edit: func(c *Config) {
				c.Tagging.Metrics.Attributes = []string{"deployment.phase", "deployment.cohort", "deployment.name"}
			},
			wantErr: []string{`tagging::metrics::attributes[2]: unknown attribute "deployment.name", must be one of deployment.phase, deployment.id, deployment.cohort, service.version`},
		},
		{
			name:    "attribute twice",
			edit:    func(c *Config) { c.Tagging.Traces.Attributes = []string{"deployment.id", "deployment.id"} },
			wantErr: []string{`tagging::traces::attributes[1]: "deployment.id" is listed twice`},
		},
		{
			name:    "level of another signal",
			edit:    func(c *Config) { c.Tagging.Logs.Level = "span" },
			wantErr: []string{`tagging::logs::level: must be "resource" or "record", got "span"`},
		},
		{
			name:    "empty level",
			edit:    func(c *Config) { c.Tagging.Traces.Level = "" },
			wantErr: []string{`tagging::traces::level: must be "resource" or "span", got ""`},
		},
		{name: "no attributes disables a signal's tagging", edit: func(c *Config) { c.Tagging.Metrics.Attributes = nil }},
		{
			name:    "every error is reported",
			edit:    func(c *Config) { c.MaxServices = -5; c.Tagging.Metrics.Level = "record" },
			wantErr: []string{"max_services: must be positive, got -5", `tagging::metrics::level: must be "resource" or "datapoint", got "record"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tt.edit(cfg)
			err := cfg.Validate()
			if len(tt.wantErr) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tt.wantErr {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}
