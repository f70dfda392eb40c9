// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/otlptranslator"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

var (
	repoRoot         = filepath.Join("..", "..")
	processorMDPath  = filepath.Join(repoRoot, "processor", "deploymentprocessor", "metadata.yaml")
	rulesPath        = filepath.Join(repoRoot, "deploy", "prometheus", "rules.yaml")
	rulesReadmePath  = filepath.Join(repoRoot, "deploy", "prometheus", "README.md")
	dashboardPath    = filepath.Join(repoRoot, "deploy", "grafana", "deployments.json")
	exporterLabelSet = []string{
		// The exporter adds the instrumentation scope (unless without_scope_info) ...
		"otel_scope_name", "otel_scope_version", "otel_scope_schema_url",
		// ... and Prometheus the scrape target's job and instance (the collector, not the service).
		"job", "instance",
	}
)

// The prometheus exporter (contrib v0.165.1) with translation_strategy unset and the
// DisableAddMetricSuffixes gate at its default (beta, on) names metrics with suffixes and escapes
// UTF-8 (configureMetricNamer, configureLabelNamer in its collector.go).
var (
	exporterMetricNamer = otlptranslator.MetricNamer{WithMetricSuffixes: true, UTF8Allowed: false}
	exporterLabelNamer  = otlptranslator.LabelNamer{UTF8Allowed: false, PreserveMultipleUnderscores: true}
)

// series is what a Prometheus metric name stands for: where it comes from and its labels.
type series struct {
	source string
	// otelName is the metric's name in metadata.yaml, for processor metrics.
	otelName string
	// enabled is false for a processor metric that is off unless the config enables it.
	enabled bool
	// labels maps each label the series may carry to its possible values; nil when any value goes.
	labels map[string][]string
}

// catalog maps Prometheus metric names to the series they stand for.
type catalog map[string]*series

func (c catalog) names() []string { return slices.Sorted(maps.Keys(c)) }

type metadataFile struct {
	ResourceAttributes map[string]struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"resource_attributes"`
	Attributes map[string]struct {
		NameOverride string   `yaml:"name_override"`
		Enum         []string `yaml:"enum"`
	} `yaml:"attributes"`
	Metrics map[string]struct {
		Enabled    bool      `yaml:"enabled"`
		Unit       string    `yaml:"unit"`
		Attributes []string  `yaml:"attributes"`
		Gauge      *struct{} `yaml:"gauge"`
		Sum        *struct {
			Monotonic bool `yaml:"monotonic"`
		} `yaml:"sum"`
		Histogram *struct{} `yaml:"histogram"`
	} `yaml:"metrics"`
}

// processorCatalog derives the series the exporter writes for the processor's metrics, with
// resource attributes as labels (resource_constant_labels, see deploy/prometheus/README.md).
func processorCatalog(t testing.TB) catalog {
	t.Helper()
	raw, err := os.ReadFile(processorMDPath)
	require.NoError(t, err)
	var md metadataFile
	require.NoError(t, yaml.Unmarshal(raw, &md))
	require.NotEmpty(t, md.Metrics, "metadata.yaml defines no metrics")

	common := map[string][]string{}
	for _, l := range exporterLabelSet {
		common[l] = nil
	}
	for name, attr := range md.ResourceAttributes {
		if !attr.Enabled {
			continue
		}
		common[promLabel(t, name)] = nil
	}

	cat := catalog{}
	for otelName, m := range md.Metrics {
		metric := otlptranslator.Metric{Name: otelName, Unit: m.Unit}
		switch {
		case m.Gauge != nil:
			metric.Type = otlptranslator.MetricTypeGauge
		case m.Sum != nil && m.Sum.Monotonic:
			metric.Type = otlptranslator.MetricTypeMonotonicCounter
		case m.Sum != nil:
			metric.Type = otlptranslator.MetricTypeNonMonotonicCounter
		case m.Histogram != nil:
			metric.Type = otlptranslator.MetricTypeHistogram
		default:
			t.Fatalf("metadata.yaml: metric %s has no type this test knows", otelName)
		}
		promName, err := exporterMetricNamer.Build(metric)
		require.NoError(t, err, otelName)

		lbls := maps.Clone(common)
		for _, key := range m.Attributes {
			attr, ok := md.Attributes[key]
			require.True(t, ok, "metadata.yaml: metric %s uses undefined attribute %s", otelName, key)
			name := key
			if attr.NameOverride != "" {
				name = attr.NameOverride
			}
			lbls[promLabel(t, name)] = attr.Enum
		}
		add := func(name string, extra ...string) {
			l := maps.Clone(lbls)
			for _, e := range extra {
				l[e] = nil
			}
			require.NotContains(t, cat, name, "two processor metrics map to the Prometheus name %s", name)
			cat[name] = &series{source: "processor metric " + otelName, otelName: otelName, enabled: m.Enabled, labels: l}
		}
		if metric.Type == otlptranslator.MetricTypeHistogram {
			add(promName+"_bucket", "le")
			add(promName + "_sum")
			add(promName + "_count")
			continue
		}
		add(promName)
	}
	return cat
}

func promLabel(t testing.TB, attribute string) string {
	t.Helper()
	l, err := exporterLabelNamer.Build(attribute)
	require.NoError(t, err, attribute)
	return l
}
