// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package k8s

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// binaryPath finds the built distribution: DEPLOYLENS_BINARY, else _build/otelcol-deploylens.
// Outside CI a missing binary skips the test with a hint; under CI it fails.
func binaryPath(t testing.TB) string {
	t.Helper()
	path := os.Getenv("DEPLOYLENS_BINARY")
	if path == "" {
		path = filepath.Join(repoRoot(t), "_build", "otelcol-deploylens")
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the distribution is not built at %s (CI runs `make build` first): %v", path, err)
		}
		t.Skipf("the distribution is not built at %s: run `make build` first, or set DEPLOYLENS_BINARY", path)
	}
	return path
}

// validate runs `otelcol-deploylens validate --config` on a config, with only the
// variables the config is given (and PATH-less, HOME-less: as a container has them).
func validate(t *testing.T, binary string, cfg collectorConfig) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(path, cfg.yaml, 0o600))
	cmd := exec.Command(binary, "validate", "--config", path)
	cmd.Env = []string{}
	for _, name := range slices.Sorted(maps.Keys(cfg.env)) {
		cmd.Env = append(cmd.Env, name+"="+cfg.env[name])
	}
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "%s is not a valid config for %s:\n%s", cfg.where, filepath.Base(binary), out)
}

// TestManifestConfigsValidate checks every collector config in deploy/kubernetes with the
// built distribution.
func TestManifestConfigsValidate(t *testing.T) {
	configs := manifestConfigs(t, loadManifests(t))
	binary := binaryPath(t)
	for _, cfg := range configs {
		for _, name := range envReferences(cfg.yaml) {
			if _, ok := cfg.env[name]; !ok {
				cfg.env[name] = "dummy" // a config no container mounts (an alternative)
			}
		}
		t.Run(cfg.where, func(t *testing.T) { validate(t, binary, cfg) })
	}
}

// chartValueKeys are top-level values of the upstream chart (its values.yaml) that the
// values files may set; a key not here is a typo, or a value this list must learn.
var chartValueKeys = []string{
	"nameOverride", "fullnameOverride", "namespaceOverride", "mode", "presets", "configMap", "config",
	"image", "imagePullSecrets", "command", "serviceAccount", "clusterRole",
	"podSecurityContext", "securityContext", "nodeSelector", "tolerations", "affinity",
	"topologySpreadConstraints", "priorityClassName", "extraEnvs", "extraEnvsFrom",
	"extraVolumes", "extraVolumeMounts", "ports", "useGOMEMLIMIT", "resources",
	"podAnnotations", "podLabels", "additionalLabels", "hostNetwork", "replicaCount",
	"annotations", "livenessProbe", "readinessProbe", "startupProbe", "service",
	"podDisruptionBudget", "statefulset", "networkPolicy",
}

// chartKubernetesKeys are the keys of chartKubernetesValues.
var chartKubernetesKeys = []string{
	"extraEnvs", "extraVolumes", "extraVolumeMounts", "resources", "podSecurityContext",
	"securityContext", "affinity", "statefulset",
}

// chartModes are the upstream chart's modes.
var chartModes = []string{"daemonset", "deployment", "statefulset"}

// helmValues is what the test reads of a values file for open-telemetry/opentelemetry-collector.
type helmValues struct {
	Mode  string `json:"mode"`
	Image struct {
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
	} `json:"image"`
	Command struct {
		Name string `json:"name"`
	} `json:"command"`
	Config map[string]any `json:"config"`
}

// chartKubernetesValues are values the chart copies into its objects as they are: they must
// decode strictly into the Kubernetes API types.
type chartKubernetesValues struct {
	ExtraEnvs          []corev1.EnvVar              `json:"extraEnvs"`
	ExtraVolumes       []corev1.Volume              `json:"extraVolumes"`
	ExtraVolumeMounts  []corev1.VolumeMount         `json:"extraVolumeMounts"`
	Resources          *corev1.ResourceRequirements `json:"resources"`
	PodSecurityContext *corev1.PodSecurityContext   `json:"podSecurityContext"`
	SecurityContext    *corev1.SecurityContext      `json:"securityContext"`
	Affinity           *corev1.Affinity             `json:"affinity"`
	Statefulset        struct {
		VolumeClaimTemplates []corev1.PersistentVolumeClaim `json:"volumeClaimTemplates"`
	} `json:"statefulset"`
}

// decodeStrict decodes the JSON form of a values file into v, refusing unknown fields.
func decodeStrict(js []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// mergeHelm merges values into defaults as Helm does for a chart's values: maps key by
// key, anything else (lists included) replaced, and a null value removes the key.
func mergeHelm(defaults, values map[string]any) map[string]any {
	out := maps.Clone(defaults)
	for key, value := range values {
		if value == nil {
			delete(out, key)
			continue
		}
		if vm, ok := value.(map[string]any); ok {
			if dm, ok := out[key].(map[string]any); ok {
				out[key] = mergeHelm(dm, vm)
				continue
			}
			out[key] = mergeHelm(map[string]any{}, vm) // drops the nulls inside
			continue
		}
		out[key] = value
	}
	return out
}

func TestMergeHelm(t *testing.T) {
	defaults := map[string]any{
		"receivers": map[string]any{"jaeger": map[string]any{"a": 1.0}, "otlp": map[string]any{"b": 1.0}},
		"pipelines": map[string]any{"traces": map[string]any{"receivers": []any{"otlp", "jaeger"}, "exporters": []any{"debug"}}},
	}
	values := map[string]any{
		"receivers": map[string]any{"jaeger": nil, "deployment": map[string]any{"x": nil, "y": 2.0}},
		"pipelines": map[string]any{"traces": map[string]any{"receivers": []any{"otlp"}}},
	}
	assert.Equal(t, map[string]any{
		"receivers": map[string]any{"otlp": map[string]any{"b": 1.0}, "deployment": map[string]any{"y": 2.0}},
		"pipelines": map[string]any{"traces": map[string]any{"receivers": []any{"otlp"}, "exporters": []any{"debug"}}},
	}, mergeHelm(defaults, values))
}

// TestHelmValues checks the values files for the upstream chart: a chart mode, our image
// and binary, and a config that, merged with the chart's default config as Helm merges
// it, the distribution accepts.
func TestHelmValues(t *testing.T) {
	root := repoRoot(t)
	name, version := distribution(t)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "helm", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "deploy/helm holds values files")
	raw, err := os.ReadFile(filepath.Join(root, "internal", "tools", "k8s", "testdata", "chart-default-config.yaml"))
	require.NoError(t, err)
	var chartDefaults map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &chartDefaults))

	modes := map[string]bool{}
	var configs []collectorConfig
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		js, err := yaml.YAMLToJSONStrict(data)
		require.NoError(t, err, "%s: not strict YAML", rel)
		var values helmValues
		require.NoError(t, json.Unmarshal(js, &values), rel)
		var top map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(js, &top), rel)
		kube := map[string]json.RawMessage{}
		for key, value := range top {
			assert.Contains(t, chartValueKeys, key, "%s: %q is not a top-level value of the chart (as far as this list knows)", rel, key)
			if slices.Contains(chartKubernetesKeys, key) {
				kube[key] = value
			}
		}
		kubeJS, err := json.Marshal(kube)
		require.NoError(t, err)
		var k chartKubernetesValues
		assert.NoError(t, decodeStrict(kubeJS, &k), "%s: values the chart copies into Kubernetes objects do not decode strictly into the API types", rel)
		for _, m := range k.ExtraVolumeMounts {
			found := slices.ContainsFunc(k.ExtraVolumes, func(v corev1.Volume) bool { return v.Name == m.Name }) ||
				slices.ContainsFunc(k.Statefulset.VolumeClaimTemplates, func(c corev1.PersistentVolumeClaim) bool { return c.Name == m.Name })
			assert.True(t, found, "%s: extraVolumeMounts %q is neither in extraVolumes nor in statefulset.volumeClaimTemplates", rel, m.Name)
		}
		assert.Contains(t, chartModes, values.Mode, "%s: mode", rel)
		modes[values.Mode] = true
		assert.Equal(t, imageRepository, values.Image.Repository, "%s: image.repository", rel)
		assert.Equal(t, version, values.Image.Tag, "%s: image.tag is the distribution's version", rel)
		assert.Equal(t, name, values.Command.Name, "%s: command.name: the chart runs /<command.name>", rel)
		if !assert.NotEmpty(t, values.Config, "%s: config", rel) {
			continue
		}
		merged, err := yaml.Marshal(mergeHelm(chartDefaults, values.Config))
		require.NoError(t, err)
		cfg := collectorConfig{where: rel + ": config (merged with the chart's defaults)", yaml: merged, env: map[string]string{"MY_POD_IP": "127.0.0.1"}}
		for _, e := range k.ExtraEnvs {
			cfg.env[e.Name] = e.Value
			if e.ValueFrom != nil {
				cfg.env[e.Name] = "dummy"
			}
		}
		for _, ref := range envReferences(merged) {
			_, ok := cfg.env[ref]
			assert.True(t, ok, "%s: the config uses ${env:%s}; the chart sets MY_POD_IP, anything else must be in extraEnvs", rel, ref)
		}
		configs = append(configs, cfg)
	}
	for _, mode := range chartModes {
		assert.True(t, modes[mode], "a values file uses mode %s", mode)
	}

	binary := binaryPath(t)
	for _, cfg := range configs {
		t.Run(cfg.where, func(t *testing.T) { validate(t, binary, cfg) })
	}
}

// TestEnvReferences pins what counts as a variable a config needs.
func TestEnvReferences(t *testing.T) {
	got := envReferences([]byte(`a: ${env:B} c: ${env:A} d: ${env:B} e: ${env:WITH_DEFAULT:-x} f: ${env:EMPTY:-}`))
	assert.Equal(t, []string{"A", "B"}, got)
}
