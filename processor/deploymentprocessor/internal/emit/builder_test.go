// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package emit

import (
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/filter"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.yaml.in/yaml/v3"

	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

// The metrics section of metadata.yaml, as far as the builder repeats it.
type yamlMetric struct {
	Description string `yaml:"description"`
	Unit        string `yaml:"unit"`
	Gauge       *struct {
		ValueType string `yaml:"value_type"`
	} `yaml:"gauge"`
	Sum *struct {
		ValueType   string `yaml:"value_type"`
		Monotonic   bool   `yaml:"monotonic"`
		Temporality string `yaml:"aggregation_temporality"`
	} `yaml:"sum"`
	Attributes []string `yaml:"attributes"`
}

type yamlAttribute struct {
	NameOverride string `yaml:"name_override"`
}

func loadMetadata(t *testing.T) (map[string]yamlMetric, map[string]yamlAttribute) {
	raw, err := os.ReadFile("../../metadata.yaml")
	require.NoError(t, err)
	var md struct {
		Metrics    map[string]yamlMetric    `yaml:"metrics"`
		Attributes map[string]yamlAttribute `yaml:"attributes"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &md))
	return md.Metrics, md.Attributes
}

func defined(name string) bool {
	return slices.ContainsFunc(metricDefs[:], func(d metricDef) bool { return d.name == name })
}

// Every metric of the generated config enabled by default has a definition here.
func TestBuilderDefinesEveryEnabledMetric(t *testing.T) {
	cfg := reflect.ValueOf(metadata.NewDefaultMetricsBuilderConfig().Metrics)
	require.Positive(t, cfg.NumField())
	for i := 0; i < cfg.NumField(); i++ {
		name := cfg.Type().Field(i).Tag.Get("mapstructure")
		if cfg.Field(i).FieldByName("Enabled").Bool() {
			assert.Truef(t, defined(name), "metric %s (metadata.MetricsConfig.%s) is enabled by default but has no definition in metricDefs",
				name, cfg.Type().Field(i).Name)
		}
	}
}

// Each definition agrees with metadata.yaml, and they are in its
// alphabetical order, the order the generated builder emits metrics in.
func TestBuilderDefinitionsMatchMetadata(t *testing.T) {
	metrics, attributes := loadMetadata(t)
	var names []string
	for _, d := range metricDefs {
		names = append(names, d.name)
		m, ok := metrics[d.name]
		if !assert.Truef(t, ok, "metric %s is not in metadata.yaml", d.name) {
			continue
		}
		assert.Equal(t, m.Description, d.description, d.name)
		assert.Equal(t, m.Unit, d.unit, d.name)
		valueType := ""
		switch {
		case m.Gauge != nil:
			valueType = m.Gauge.ValueType
			assert.Falsef(t, d.sum, "%s is a gauge", d.name)
		case m.Sum != nil:
			valueType = m.Sum.ValueType
			assert.Truef(t, d.sum, "%s is a sum", d.name)
			assert.Equal(t, m.Sum.Monotonic, d.monotonic, d.name)
			assert.Equal(t, "cumulative", m.Sum.Temporality, "%s: the builder writes cumulative sums only", d.name)
		default:
			t.Errorf("%s is neither a gauge nor a sum", d.name)
		}
		assert.Equal(t, valueType == "int", d.intValue, "%s: value_type %s", d.name, valueType)
		var attrs []string
		for _, a := range m.Attributes {
			name := a
			if o := attributes[a].NameOverride; o != "" {
				name = o
			}
			attrs = append(attrs, name)
		}
		assert.Equal(t, attrs, d.attributes, d.name)
	}
	assert.Len(t, names, len(metrics), "metadata.yaml and metricDefs list different metrics")
	assert.True(t, slices.IsSorted(names), "metricDefs is not in metric name order")
}

// The builder honors the config: disabled metrics and attributes,
// aggregation, resource attribute filters, scope.
func TestBuilderHonorsConfig(t *testing.T) {
	cfg := metadata.NewDefaultMetricsBuilderConfig()
	cfg.Metrics.DeploymentInterval.Enabled = false
	cfg.Metrics.DeploymentActive.AggregationStrategy = metadata.AggregationStrategyMax
	cfg.Metrics.DeploymentHealthScore.EnabledAttributes = []metadata.DeploymentHealthScoreMetricAttributeKey{
		metadata.DeploymentHealthScoreMetricAttributeKeyDeploymentPhase}
	cfg.Metrics.DeploymentHealthDimensionScore.AggregationStrategy = metadata.AggregationStrategyAvg
	cfg.ResourceAttributes.ServiceName.MetricsExclude = []filter.Config{{Strict: "dropped"}}
	b := newBuilder(cfg, component.BuildInfo{Version: "1.2.3"})
	ts := pcommon.Timestamp(10)
	for _, svc := range []string{"kept", "dropped"} {
		b.double(mInterval, ts, 5)
		b.int(mActive, ts, 1, "during")
		b.int(mActive, ts, 3, "during")
		b.double(mHealthScore, ts, 90, "during", "canary")
		b.double(mHealthDimensionScore, ts, 1, "during", "", "errors")
		b.double(mHealthDimensionScore, ts, 2, "during", "", "errors")
		rb := b.newResourceBuilder()
		rb.SetServiceName(svc)
		b.emitForResource(rb.Emit())
	}
	md := b.emit()
	require.Equal(t, 1, md.ResourceMetrics().Len())
	rm := md.ResourceMetrics().At(0)
	name, _ := rm.Resource().Attributes().Get("service.name")
	assert.Equal(t, "kept", name.Str())
	sm := rm.ScopeMetrics().At(0)
	assert.Equal(t, metadata.ScopeName, sm.Scope().Name())
	assert.Equal(t, "1.2.3", sm.Scope().Version())
	got := map[string]pmetric.NumberDataPoint{}
	for i := 0; i < sm.Metrics().Len(); i++ {
		m := sm.Metrics().At(i)
		require.Equal(t, 1, m.Gauge().DataPoints().Len(), m.Name())
		got[m.Name()] = m.Gauge().DataPoints().At(0)
	}
	assert.NotContains(t, got, "deployment.interval")
	assert.Equal(t, int64(3), got["deployment.active"].IntValue())
	assert.InDelta(t, 1.5, got["deployment.health.dimension.score"].DoubleValue(), 1e-9)
	assert.Equal(t, map[string]any{"deployment.phase": "during"}, got["deployment.health.score"].Attributes().AsRaw())
	assert.Equal(t, ts, got["deployment.active"].Timestamp())
	assert.Equal(t, b.startTime, got["deployment.active"].StartTimestamp())
}
