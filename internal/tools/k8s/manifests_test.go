// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package k8s

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// imageRepository is the deploylens image every collector container runs.
const imageRepository = "ghcr.io/deploylens/otelcol-deploylens"

// object is one decoded manifest document and where it came from.
type object struct {
	file  string // relative to the repository root
	index int    // document number in the file, from 1
	obj   metav1.Object
	kind  string
	raw   any // the typed object (*appsv1.Deployment, …)
}

func (o object) String() string {
	return fmt.Sprintf("%s (document %d, %s %s/%s)", o.file, o.index, o.kind, o.obj.GetNamespace(), o.obj.GetName())
}

// Kinds the manifests may hold, and whether they are namespaced.
var allowedKinds = map[string]bool{
	"Namespace":           false,
	"ServiceAccount":      true,
	"Role":                true,
	"RoleBinding":         true,
	"ConfigMap":           true,
	"Service":             true,
	"Deployment":          true,
	"DaemonSet":           true,
	"StatefulSet":         true,
	"PodDisruptionBudget": true,
}

func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// distribution is builder-config.yaml's dist: the binary's name and the image tag.
func distribution(t testing.TB) (name, version string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "builder-config.yaml"))
	require.NoError(t, err)
	var cfg struct {
		Dist struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"dist"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	require.NotEmpty(t, cfg.Dist.Name)
	require.NotEmpty(t, cfg.Dist.Version)
	return cfg.Dist.Name, cfg.Dist.Version
}

// splitDocuments cuts a multi-document YAML file into its non-empty documents.
func splitDocuments(data []byte) ([][]byte, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out.Write(line)
		}
	}
	return out.Bytes()
}

// loadManifests decodes every document of deploy/kubernetes/*.yaml strictly: YAML to JSON
// refusing duplicate keys, then the client-go scheme's strict decoder, for which a field the
// API type does not have is an error.
func loadManifests(t *testing.T) []object {
	t.Helper()
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "deploy", "kubernetes", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "deploy/kubernetes holds manifests")
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var objects []object
	for _, path := range files {
		rel, _ := filepath.Rel(root, path)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		docs, err := splitDocuments(data)
		require.NoError(t, err, rel)
		require.NotEmpty(t, docs, "%s holds no object", rel)
		for i, doc := range docs {
			where := fmt.Sprintf("%s (document %d)", rel, i+1)
			js, err := yaml.YAMLToJSONStrict(doc)
			if !assert.NoError(t, err, "%s: not strict YAML", where) {
				continue
			}
			decoded, gvk, err := decoder.Decode(js, nil, nil)
			if !assert.NoError(t, err, "%s: does not decode strictly into the Kubernetes API types", where) {
				continue
			}
			namespaced, ok := allowedKinds[gvk.Kind]
			if !assert.True(t, ok, "%s: unexpected kind %s (allowed: %v)", where, gvk.Kind, slices.Sorted(maps.Keys(allowedKinds))) {
				continue
			}
			meta, ok := decoded.(metav1.Object)
			require.True(t, ok, "%s: no object metadata", where)
			o := object{file: rel, index: i + 1, obj: meta, kind: gvk.Kind, raw: decoded}
			assert.NotEmpty(t, meta.GetName(), "%s: metadata.name", o)
			if namespaced {
				assert.NotEmpty(t, meta.GetNamespace(), "%s: a namespaced object names its namespace", o)
			}
			objects = append(objects, o)
		}
	}
	return objects
}

// workload is a Deployment, DaemonSet or StatefulSet: what the checks need of it.
type workload struct {
	object
	selector *metav1.LabelSelector
	template corev1.PodTemplateSpec
	claims   []string // StatefulSet volumeClaimTemplates
}

func workloads(objects []object) []workload {
	var out []workload
	for _, o := range objects {
		switch w := o.raw.(type) {
		case *appsv1.Deployment:
			out = append(out, workload{object: o, selector: w.Spec.Selector, template: w.Spec.Template})
		case *appsv1.DaemonSet:
			out = append(out, workload{object: o, selector: w.Spec.Selector, template: w.Spec.Template})
		case *appsv1.StatefulSet:
			wl := workload{object: o, selector: w.Spec.Selector, template: w.Spec.Template}
			for _, c := range w.Spec.VolumeClaimTemplates {
				wl.claims = append(wl.claims, c.Name)
			}
			out = append(out, wl)
		}
	}
	return out
}

func find[T any](objects []object, namespace, name string) (T, bool) {
	for _, o := range objects {
		if v, ok := o.raw.(T); ok && o.obj.GetNamespace() == namespace && o.obj.GetName() == name {
			return v, true
		}
	}
	var zero T
	return zero, false
}

// TestManifestsFitTogether checks references between the objects: what a mistake in one
// file would break without any decoder noticing.
func TestManifestsFitTogether(t *testing.T) {
	objects := loadManifests(t)
	wls := workloads(objects)
	require.NotEmpty(t, wls)

	kinds := map[string]int{}
	for _, o := range objects {
		kinds[o.kind]++
	}
	for _, kind := range []string{"DaemonSet", "StatefulSet", "Deployment"} {
		assert.Positive(t, kinds[kind], "the manifests have a %s (agent, gateway and gate, sidecar example)", kind)
	}

	for _, w := range wls {
		selector, err := metav1.LabelSelectorAsSelector(w.selector)
		require.NoError(t, err, w.String())
		assert.True(t, selector.Matches(labels.Set(w.template.Labels)), "%s: the selector does not match the pod template's labels", w)

		volumes := map[string]corev1.Volume{}
		for _, v := range w.template.Spec.Volumes {
			volumes[v.Name] = v
			if v.ConfigMap != nil && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional) {
				_, ok := find[*corev1.ConfigMap](objects, w.obj.GetNamespace(), v.ConfigMap.Name)
				assert.True(t, ok, "%s: volume %q: no ConfigMap %q in the manifests", w, v.Name, v.ConfigMap.Name)
			}
		}
		for _, c := range allContainers(w.template.Spec) {
			for _, m := range c.VolumeMounts {
				_, isVolume := volumes[m.Name]
				assert.True(t, isVolume || slices.Contains(w.claims, m.Name),
					"%s: container %s mounts %q, which is neither a volume nor a volume claim template", w, c.Name, m.Name)
			}
		}
		if sa := w.template.Spec.ServiceAccountName; sa != "" {
			_, ok := find[*corev1.ServiceAccount](objects, w.obj.GetNamespace(), sa)
			assert.True(t, ok, "%s: no ServiceAccount %q in the manifests", w, sa)
		}
		if sts, ok := w.raw.(*appsv1.StatefulSet); ok {
			svc, ok := find[*corev1.Service](objects, w.obj.GetNamespace(), sts.Spec.ServiceName)
			if assert.True(t, ok, "%s: serviceName %q: no such Service", w, sts.Spec.ServiceName) {
				assert.Equal(t, corev1.ClusterIPNone, svc.Spec.ClusterIP, "%s: the governing Service %s is headless (stable pod DNS names)", w, svc.Name)
			}
		}
	}

	for _, o := range objects {
		switch v := o.raw.(type) {
		case *corev1.Service:
			pods := matching(wls, o.obj.GetNamespace(), labels.SelectorFromSet(v.Spec.Selector))
			if !assert.NotEmpty(t, pods, "%s: the selector matches no workload", o) {
				continue
			}
			for _, port := range v.Spec.Ports {
				if port.TargetPort.StrVal == "" {
					continue
				}
				for _, w := range pods {
					assert.True(t, hasNamedPort(w.template.Spec, port.TargetPort.StrVal),
						"%s: port %s targets %q, which %s does not declare", o, port.Name, port.TargetPort.StrVal, w)
				}
			}
		case *policyv1.PodDisruptionBudget:
			selector, err := metav1.LabelSelectorAsSelector(v.Spec.Selector)
			require.NoError(t, err)
			assert.NotEmpty(t, matching(wls, o.obj.GetNamespace(), selector), "%s: the selector matches no workload", o)
		case *rbacv1.RoleBinding:
			if v.RoleRef.Kind == "Role" {
				_, ok := find[*rbacv1.Role](objects, o.obj.GetNamespace(), v.RoleRef.Name)
				assert.True(t, ok, "%s: no Role %q", o, v.RoleRef.Name)
			}
			for _, s := range v.Subjects {
				if s.Kind == rbacv1.ServiceAccountKind {
					_, ok := find[*corev1.ServiceAccount](objects, s.Namespace, s.Name)
					assert.True(t, ok, "%s: no ServiceAccount %s/%s", o, s.Namespace, s.Name)
				}
			}
		}
	}
}

func matching(wls []workload, namespace string, selector labels.Selector) []workload {
	var out []workload
	for _, w := range wls {
		if w.obj.GetNamespace() == namespace && !selector.Empty() && selector.Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func allContainers(spec corev1.PodSpec) []corev1.Container {
	return append(slices.Clone(spec.InitContainers), spec.Containers...)
}

func hasNamedPort(spec corev1.PodSpec, name string) bool {
	for _, c := range allContainers(spec) {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// collectorConfig is a collector config found in the manifests or the Helm values.
type collectorConfig struct {
	where string // manifest and key, for messages
	yaml  []byte
	// env is what the config's ${env:…} references get when validated: the container's
	// literal values, "dummy" for values from the downward API or a Secret.
	env map[string]string
}

var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}`)

// envReferences are the variables a config needs: ${env:NAME} without a default.
func envReferences(config []byte) []string {
	var names []string
	for _, m := range envRef.FindAllSubmatch(config, -1) {
		if len(m[2]) == 0 && !slices.Contains(names, string(m[1])) {
			names = append(names, string(m[1]))
		}
	}
	sort.Strings(names)
	return names
}

// isCollectorConfig says whether a ConfigMap value is a collector config: a YAML document
// with service::pipelines.
func isCollectorConfig(value string) bool {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		return false
	}
	service, _ := doc["service"].(map[string]any)
	_, ok := service["pipelines"]
	return ok
}

// manifestConfigs finds every collector config of the manifests, and checks how the
// collector containers use them: our image at the distribution's version, --config naming
// a key of a mounted ConfigMap, every variable the config needs set, probes on the
// health_check port.
func manifestConfigs(t *testing.T, objects []object) []collectorConfig {
	t.Helper()
	_, version := distribution(t)
	var configs []collectorConfig
	var keys []string // namespace/configmap/key of each config
	for _, o := range objects {
		cm, ok := o.raw.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		for _, key := range slices.Sorted(maps.Keys(cm.Data)) {
			if !strings.HasSuffix(key, ".yaml") || !isCollectorConfig(cm.Data[key]) {
				continue
			}
			configs = append(configs, collectorConfig{
				where: fmt.Sprintf("%s: ConfigMap %s/%s key %s", o.file, cm.Namespace, cm.Name, key),
				yaml:  []byte(cm.Data[key]),
				env:   map[string]string{},
			})
			keys = append(keys, cm.Namespace+"/"+cm.Name+"/"+key)
		}
	}
	byKey := map[string]*collectorConfig{}
	for i := range configs {
		byKey[keys[i]] = &configs[i]
	}
	require.NotEmpty(t, configs, "the ConfigMaps hold collector configs")

	collectors := 0
	for _, w := range workloads(objects) {
		for _, c := range allContainers(w.template.Spec) {
			repo, tag, _ := strings.Cut(c.Image, ":")
			if repo != imageRepository {
				continue
			}
			collectors++
			assert.Equal(t, version, tag, "%s: container %s runs %s at the distribution's version (builder-config.yaml dist::version)", w, c.Name, imageRepository)
			configPath := configArg(c.Args)
			if !assert.NotEmpty(t, configPath, "%s: container %s passes --config", w, c.Name) {
				continue
			}
			cfg := mountedConfig(t, objects, byKey, w, c, configPath)
			if cfg == nil {
				continue
			}
			for _, name := range envReferences(cfg.yaml) {
				env, ok := findEnv(c.Env, name)
				if !assert.True(t, ok, "%s: container %s: %s uses ${env:%s}, which the container does not set", w, c.Name, cfg.where, name) {
					continue
				}
				if env.ValueFrom != nil {
					cfg.env[name] = "dummy"
				} else {
					cfg.env[name] = env.Value
				}
			}
			healthPort := healthCheckPort(t, cfg)
			for _, probe := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
				if probe == nil || probe.HTTPGet == nil {
					continue
				}
				port := probe.HTTPGet.Port.IntValue()
				if name := probe.HTTPGet.Port.StrVal; name != "" {
					port = 0
					for _, p := range c.Ports {
						if p.Name == name {
							port = int(p.ContainerPort)
						}
					}
				}
				assert.Equal(t, healthPort, port, "%s: container %s probes port %d, the health_check extension is on %d", w, c.Name, port, healthPort)
			}
		}
	}
	assert.Positive(t, collectors, "the manifests run %s", imageRepository)
	return configs
}

func configArg(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if a == "--config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func findEnv(env []corev1.EnvVar, name string) (corev1.EnvVar, bool) {
	for _, e := range env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// mountedConfig finds the config a container's --config names: the ConfigMap key under
// the mount of a ConfigMap volume.
func mountedConfig(t *testing.T, objects []object, byKey map[string]*collectorConfig, w workload, c corev1.Container, path string) *collectorConfig {
	t.Helper()
	dir, key := filepath.Dir(path), filepath.Base(path)
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) != dir {
			continue
		}
		for _, v := range w.template.Spec.Volumes {
			if v.Name != m.Name || v.ConfigMap == nil {
				continue
			}
			if _, ok := find[*corev1.ConfigMap](objects, w.obj.GetNamespace(), v.ConfigMap.Name); !ok {
				return nil // reported by TestManifestsFitTogether
			}
			cfg, ok := byKey[w.obj.GetNamespace()+"/"+v.ConfigMap.Name+"/"+key]
			assert.True(t, ok, "%s: container %s: --config %s: ConfigMap %s has no collector config under key %s", w, c.Name, path, v.ConfigMap.Name, key)
			return cfg
		}
	}
	t.Errorf("%s: container %s: --config %s is not in a mounted ConfigMap", w, c.Name, path)
	return nil
}

// healthCheckPort is the port of the config's health_check extension.
func healthCheckPort(t *testing.T, cfg *collectorConfig) int {
	t.Helper()
	var doc struct {
		Extensions map[string]struct {
			Endpoint string `json:"endpoint"`
		} `json:"extensions"`
	}
	require.NoError(t, yaml.Unmarshal(cfg.yaml, &doc), cfg.where)
	hc, ok := doc.Extensions["health_check"]
	require.True(t, ok, "%s: the health_check extension (the probes need it)", cfg.where)
	colon := strings.LastIndex(hc.Endpoint, ":")
	require.Positive(t, colon, "%s: health_check::endpoint %q has no port", cfg.where, hc.Endpoint)
	var n int
	_, err := fmt.Sscan(hc.Endpoint[colon+1:], &n)
	require.NoError(t, err, "%s: health_check::endpoint %q", cfg.where, hc.Endpoint)
	return n
}
