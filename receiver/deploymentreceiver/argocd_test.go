// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.yaml.in/yaml/v3"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// The tests below prove the shipped notification templates work: they render
// each webhook body the way notifications-engine does (text/template with
// sprig's functions) from a realistic object, send it with the headers the
// service is configured with, and compare what the receiver emits with a
// golden file.

const (
	argoCDConfigMapFile       = "argocd/deploylens-notifications-cm.yaml"
	argoRolloutsConfigMapFile = "argo-rollouts/deploylens-rollouts-notification-cm.yaml"
	notificationToken         = "notifications-test-token"
)

// renderTime is what the templates' `now` returns: before the receipt time
// (fixedNow), so a golden file shows which of the two an event used.
var renderTime = time.Date(2026, 11, 25, 11, 59, 30, 500_000_000, time.UTC)

// notificationTemplateFuncs are the sprig functions (sprig.TxtFuncMap, which
// notifications-engine gives every template) that the shipped templates use,
// written here with sprig's behaviour. A template calling any other function
// fails to parse in these tests.
func notificationTemplateFuncs() template.FuncMap {
	return template.FuncMap{
		// sprig toJson: json.Marshal, errors ignored.
		"toJson": func(v any) string {
			out, _ := json.Marshal(v)
			return string(out)
		},
		// sprig get: "" for a missing key, and a nil map is empty.
		"get": func(d map[string]any, key string) any {
			if v, ok := d[key]; ok {
				return v
			}
			return ""
		},
		// sprig hasKey.
		"hasKey": func(d map[string]any, key string) bool {
			_, ok := d[key]
			return ok
		},
		// sprig now is time.Now; fixed so the golden files are stable.
		"now": func() time.Time { return renderTime },
	}
}

// notificationsConfig is the data of a notifications-engine ConfigMap.
type notificationsConfig map[string]string

func readNotificationsConfig(t testing.TB, name string) notificationsConfig {
	t.Helper()
	var cm struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Data       map[string]string `yaml:"data"`
	}
	require.NoError(t, yaml.Unmarshal(readTestdata(t, name), &cm))
	require.Equal(t, "ConfigMap", cm.Kind)
	require.NotEmpty(t, cm.Data)
	return cm.Data
}

// webhookTemplate is a template's webhook section (services.WebhookNotification).
type webhookTemplate struct {
	Method string `yaml:"method"`
	Path   string `yaml:"path"`
	Body   string `yaml:"body"`
}

func (c notificationsConfig) webhookTemplate(t testing.TB, templateName string) webhookTemplate {
	t.Helper()
	raw, ok := c["template."+templateName]
	require.True(t, ok, "no template.%s", templateName)
	var tpl struct {
		Webhook map[string]webhookTemplate `yaml:"webhook"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(raw), &tpl))
	hook, ok := tpl.Webhook["deploylens"]
	require.True(t, ok, "template.%s has no webhook.deploylens", templateName)
	return hook
}

type triggerCondition struct {
	When    string   `yaml:"when"`
	OncePer string   `yaml:"oncePer"`
	Send    []string `yaml:"send"`
}

func (c notificationsConfig) trigger(t *testing.T, name string) []triggerCondition {
	t.Helper()
	raw, ok := c["trigger."+name]
	require.True(t, ok, "no trigger.%s", name)
	var conditions []triggerCondition
	require.NoError(t, yaml.Unmarshal([]byte(raw), &conditions))
	require.NotEmpty(t, conditions)
	return conditions
}

// serviceHeaders returns the headers service.webhook.deploylens sends, with
// $secret references replaced as notifications-engine does, and its url.
func (c notificationsConfig) serviceHeaders(t *testing.T, secrets map[string]string) (string, map[string]string) {
	t.Helper()
	var svc struct {
		URL     string `yaml:"url"`
		Headers []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"headers"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(c["service.webhook.deploylens"]), &svc))
	headers := map[string]string{}
	for _, h := range svc.Headers {
		value := h.Value
		for k, v := range secrets {
			value = strings.ReplaceAll(value, "$"+k, v)
		}
		headers[h.Name] = value
	}
	return svc.URL, headers
}

// render executes a webhook body template as notifications-engine does.
func (c notificationsConfig) render(t testing.TB, templateName string, vars map[string]any) []byte {
	t.Helper()
	hook := c.webhookTemplate(t, templateName)
	tpl, err := template.New(templateName).Funcs(notificationTemplateFuncs()).Parse(hook.Body)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, tpl.Execute(&out, vars))
	require.True(t, json.Valid(out.Bytes()), "template.%s rendered invalid JSON:\n%s", templateName, out.String())
	return out.Bytes()
}

// readObject reads a Kubernetes object fixture as the unstructured map the
// controllers hand to notifications-engine.
func readObject(t testing.TB, name string) map[string]any {
	t.Helper()
	var obj map[string]any
	require.NoError(t, json.Unmarshal(readTestdata(t, name), &obj))
	return obj
}

func withArgoCD(token string) func(*Config) {
	return func(c *Config) { c.ArgoCD = configoptional.Some(ArgoCDConfig{BearerToken: configopaque.String(token)}) }
}

// onlyRecord returns the resource attributes and record of logs holding one
// record. (allLogs moves the records out of a sink: call it once.)
func onlyRecord(t *testing.T, logs plog.Logs) (map[string]any, plog.LogRecord) {
	t.Helper()
	require.Equal(t, 1, logs.LogRecordCount())
	rl := logs.ResourceLogs().At(0)
	return rl.Resource().Attributes().AsRaw(), rl.ScopeLogs().At(0).LogRecords().At(0)
}

func recordAttr(lr plog.LogRecord, key string) string {
	v, ok := lr.Attributes().Get(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

// notificationRequest is post with a method of choice (POST when empty).
func notificationRequest(t *testing.T, r http.Handler, method, path string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec
}

func TestArgoCDServiceConfig(t *testing.T) {
	cm := readNotificationsConfig(t, argoCDConfigMapFile)
	url, headers := cm.serviceHeaders(t, map[string]string{"deploylens-token": "tkn"})
	assert.True(t, strings.HasSuffix(url, ":8088"+pathArgoCD), url)
	assert.Equal(t, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer tkn"}, headers)

	var defaults []string
	require.NoError(t, yaml.Unmarshal([]byte(cm["defaultTriggers.deploylens"]), &defaults))
	assert.Equal(t, []string{"deploylens-on-sync-running", "deploylens-on-deployed", "deploylens-on-sync-failed", "deploylens-on-health-degraded"}, defaults)

	// Each trigger has the catalog's condition (so it fires when Argo CD users
	// expect), fires once per sync operation, and sends a POST template.
	catalog := readNotificationsConfig(t, "argocd/argocd-notifications-catalog-install.yaml")
	for _, name := range defaults {
		t.Run(name, func(t *testing.T) {
			conditions := cm.trigger(t, name)
			require.Len(t, conditions, 1)
			catalogName := strings.TrimPrefix(name, "deploylens-")
			assert.Equal(t, catalog.trigger(t, catalogName)[0].When, conditions[0].When)
			assert.Equal(t, "app.status.operationState?.startedAt", conditions[0].OncePer)
			require.Len(t, conditions[0].Send, 1)
			hook := cm.webhookTemplate(t, conditions[0].Send[0])
			assert.Equal(t, http.MethodPost, hook.Method, "notifications-engine defaults to GET")
			assert.Contains(t, hook.Body, `"event": "`+catalogName+`"`)
		})
	}
}

func TestArgoCDTemplatesGolden(t *testing.T) {
	cm := readNotificationsConfig(t, argoCDConfigMapFile)
	_, headers := cm.serviceHeaders(t, map[string]string{"deploylens-token": notificationToken})
	for _, tt := range []struct {
		template, object, golden string
		wantState                deployevent.State
	}{
		{"deploylens-sync-running", "argocd/app-sync-running.json", "argocd/sync-running_expected.yaml", deployevent.StateStarted},
		{"deploylens-deployed", "argocd/app-deployed.json", "argocd/deployed_expected.yaml", deployevent.StateSucceeded},
		{"deploylens-health-degraded", "argocd/app-health-degraded.json", "argocd/health-degraded_expected.yaml", deployevent.StateFailed},
		{"deploylens-sync-failed", "argocd/app-sync-failed.json", "argocd/sync-failed_expected.yaml", deployevent.StateFailed},
		// No label at all: get renders "", and service falls back to the app name.
		{"deploylens-deployed", "argocd/app-no-labels-deployed.json", "argocd/no-labels-deployed_expected.yaml", deployevent.StateSucceeded},
	} {
		t.Run(tt.object, func(t *testing.T) {
			body := cm.render(t, tt.template, map[string]any{
				"app":              readObject(t, tt.object),
				"context":          map[string]any{"argocdUrl": "https://argocd.acme.example"},
				"notificationType": "webhook",
			})
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withArgoCD(notificationToken), sink)
			rec := post(t, r, pathArgoCD, body, headers)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			logs := allLogs(sink)
			_, lr := onlyRecord(t, logs)
			assert.Equal(t, string(tt.wantState), recordAttr(lr, deployevent.AttrDeploymentState))
			assertGoldenLogs(t, tt.golden, logs)
		})
	}
}

func TestArgoCDOneOperationOneID(t *testing.T) {
	cm := readNotificationsConfig(t, argoCDConfigMapFile)
	idOf := func(templateName, object string) string {
		body := cm.render(t, templateName, map[string]any{"app": readObject(t, object)})
		events, err := parseArgoCD(nil, body)
		require.NoError(t, err)
		return events[0].ID
	}
	running := idOf("deploylens-sync-running", "argocd/app-sync-running.json")
	assert.Equal(t, running, idOf("deploylens-deployed", "argocd/app-deployed.json"))
	assert.Equal(t, running, idOf("deploylens-health-degraded", "argocd/app-health-degraded.json"),
		"a degradation after the sync belongs to that sync's deployment")
	assert.NotEqual(t, running, idOf("deploylens-sync-failed", "argocd/app-sync-failed.json"), "a later operation is another deployment")
}

func TestArgoCDMapping(t *testing.T) {
	for _, tt := range []struct {
		name        string
		body        string
		wantState   deployevent.State
		wantService string
		wantVersion string
		wantTime    time.Time
	}{
		{
			name:      "on-sync-running",
			body:      `{"event":"on-sync-running","app":"a","operation_phase":"Running","started_at":"2026-01-02T03:04:05Z"}`,
			wantState: deployevent.StateStarted, wantService: "a", wantTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		},
		{
			name:      "on-deployed with the later health change",
			body:      `{"event":"on-deployed","app":"a","operation_phase":"Succeeded","started_at":"2026-01-02T03:04:05Z","finished_at":"2026-01-02T03:04:15Z","health_changed_at":"2026-01-02T03:05:00Z","images":["ghcr.io/x/a:2.0.0"]}`,
			wantState: deployevent.StateSucceeded, wantService: "a", wantVersion: "2.0.0", wantTime: time.Date(2026, 1, 2, 3, 5, 0, 0, time.UTC),
		},
		{
			name:      "on-deployed healthy before the sync uses finished_at",
			body:      `{"event":"on-deployed","app":"a","operation_phase":"Succeeded","started_at":"2026-01-02T03:04:05Z","finished_at":"2026-01-02T03:04:15Z","health_changed_at":"2025-12-01T00:00:00Z"}`,
			wantState: deployevent.StateSucceeded, wantService: "a", wantTime: time.Date(2026, 1, 2, 3, 4, 15, 0, time.UTC),
		},
		{
			name:      "on-sync-failed",
			body:      `{"event":"on-sync-failed","app":"a","operation_phase":"Error","started_at":"2026-01-02T03:04:05Z","finished_at":"2026-01-02T03:04:15Z","images":["ghcr.io/x/a:1.0.0"]}`,
			wantState: deployevent.StateFailed, wantService: "a", wantTime: time.Date(2026, 1, 2, 3, 4, 15, 0, time.UTC),
		},
		{
			name:      "on-health-degraded uses the health change time",
			body:      `{"event":"on-health-degraded","app":"a","operation_phase":"Succeeded","finished_at":"2026-01-02T03:04:15Z","health_changed_at":"2026-01-02T04:00:00Z"}`,
			wantState: deployevent.StateFailed, wantService: "a", wantTime: time.Date(2026, 1, 2, 4, 0, 0, 0, time.UTC),
		},
		{
			name:      "unknown event falls back to the operation phase",
			body:      `{"event":"on-sync-succeeded","app":"a","operation_phase":"Succeeded"}`,
			wantState: deployevent.StateSucceeded, wantService: "a",
		},
		{name: "no event, phase Running", body: `{"app":"a","operation_phase":"Running"}`, wantState: deployevent.StateStarted, wantService: "a"},
		{name: "no event, phase Failed", body: `{"app":"a","operation_phase":"Failed"}`, wantState: deployevent.StateFailed, wantService: "a"},
		{name: "no event, phase Terminating", body: `{"app":"a","operation_phase":"Terminating"}`, wantState: deployevent.StateCancelled, wantService: "a"},
		{
			name:      "labels override service and version",
			body:      `{"event":"on-deployed","app":"a","operation_phase":"Succeeded","service":"svc","version":"v9","images":["ghcr.io/x/a:2.0.0"]}`,
			wantState: deployevent.StateSucceeded, wantService: "svc", wantVersion: "v9",
		},
		{
			// What `"service":"{{index .app.metadata.labels "..."}}"` renders for a missing label.
			name:      "quoted template values that rendered <no value>",
			body:      `{"event":"on-deployed","app":"a","namespace":"<no value>","service":"<no value>","environment":"<no value>","version":"<no value>","revision":"<no value>","started_at":"<no value>","finished_at":"<no value>","health_changed_at":"<no value>","operation_phase":"Succeeded","images":["ghcr.io/x/a:3.1.4"]}`,
			wantState: deployevent.StateSucceeded, wantService: "a", wantVersion: "3.1.4",
		},
		{
			name:      "empty strings are unset too",
			body:      `{"event":"on-deployed","app":"a","service":"","version":"","started_at":"","operation_phase":""}`,
			wantState: deployevent.StateSucceeded, wantService: "a",
		},
		{
			name:      "several images: the one named like the service",
			body:      `{"event":"on-deployed","app":"shop","service":"checkout","operation_phase":"Succeeded","images":["redis:7","ghcr.io/acme/checkout:1.2.3@sha256:abc","envoy:1.30"]}`,
			wantState: deployevent.StateSucceeded, wantService: "checkout", wantVersion: "1.2.3",
		},
		{
			name:      "several images, none named like the service: no version",
			body:      `{"event":"on-deployed","app":"shop","operation_phase":"Succeeded","images":["redis:7","envoy:1.30"]}`,
			wantState: deployevent.StateSucceeded, wantService: "shop",
		},
		{
			name:      "a running sync takes no version from the old images",
			body:      `{"event":"on-sync-running","app":"a","operation_phase":"Running","images":["ghcr.io/x/a:1.0.0"]}`,
			wantState: deployevent.StateStarted, wantService: "a",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			events, err := parseArgoCD(nil, []byte(tt.body))
			require.NoError(t, err)
			require.Len(t, events, 1)
			e := events[0]
			assert.Equal(t, tt.wantState, e.State)
			assert.Equal(t, tt.wantService, e.Service)
			assert.Equal(t, tt.wantVersion, e.Version)
			assert.Equal(t, tt.wantTime, e.Timestamp)
			assert.Equal(t, deployevent.SourceArgoCD, e.Source)
			assert.NotEmpty(t, e.ID)
			assert.Empty(t, e.Namespace, "<no value> must not reach an attribute")
			assert.Empty(t, e.Environment)
		})
	}
}

func TestArgoCDRefName(t *testing.T) {
	for target, want := range map[string]string{"main": "main", "HEAD": "", "abc123": "", "v1.2.0": "v1.2.0"} {
		events, err := parseArgoCD(nil, []byte(`{"event":"on-deployed","app":"a","revision":"abc123","target_revision":"`+target+`"}`))
		require.NoError(t, err)
		assert.Equal(t, want, events[0].RefName, target)
	}
}

func TestArgoCDHTTP(t *testing.T) {
	valid := `{"event":"on-deployed","app":"a"}`
	for _, tt := range []struct {
		name       string
		method     string
		headers    map[string]string
		body       string
		wantStatus int
		wantMsg    string
	}{
		{name: "no content type (notifications-engine default)", body: valid, headers: map[string]string{"Authorization": "Bearer " + notificationToken}, wantStatus: 200},
		{name: "json", body: valid, headers: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + notificationToken}, wantStatus: 200},
		{name: "wrong content type", body: valid, headers: map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + notificationToken}, wantStatus: 415},
		{name: "no token", body: valid, wantStatus: 401, wantMsg: "unauthorized"},
		{name: "wrong token", body: valid, headers: map[string]string{"Authorization": "Bearer nope"}, wantStatus: 401, wantMsg: "unauthorized"},
		{name: "GET, notifications-engine's default method", method: http.MethodGet, headers: map[string]string{"Authorization": "Bearer " + notificationToken}, wantStatus: 405, wantMsg: "use POST"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReceiver(t, withArgoCD(notificationToken), nil)
			rec := notificationRequest(t, r, tt.method, pathArgoCD, []byte(tt.body), tt.headers)
			assert.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tt.wantMsg)
		})
	}
}

func TestArgoCDBadRequests(t *testing.T) {
	for _, tt := range []struct{ name, body, wantMsg string }{
		{"empty", ``, "empty body"},
		{"not JSON", `{"event":`, "invalid JSON"},
		{"not an object", `["on-deployed"]`, "expected an object"},
		{"a message template instead of a webhook body", `Application checkout is now running new version.`, "expected an object"},
		{"trailing data", `{"event":"on-deployed","app":"a"} {}`, "invalid JSON"},
		{"wrong type names the field", `{"event":"on-deployed","app":"a","images":"nginx:1"}`, `field "images"`},
		{"missing app", `{"event":"on-deployed"}`, `missing field "app"`},
		{"app rendered <no value>", `{"event":"on-deployed","app":"<no value>"}`, `missing field "app"`},
		{"missing event and phase", `{"app":"a"}`, `missing field "event"`},
		{"unknown event and phase", `{"app":"a","event":"on-created","operation_phase":"<no value>"}`, `field "event": "on-created" is not one of`},
		{"bad started_at", `{"event":"on-deployed","app":"a","started_at":"yesterday"}`, `field "started_at"`},
		{"bad finished_at", `{"event":"on-deployed","app":"a","finished_at":"1700000000"}`, `field "finished_at"`},
		{"bad health_changed_at", `{"event":"on-deployed","app":"a","health_changed_at":"x"}`, `field "health_changed_at"`},
		{"bad time", `{"event":"on-deployed","app":"a","time":"x"}`, `field "time"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArgoCD(nil, []byte(tt.body))
			var reqErr *requestError
			require.ErrorAs(t, err, &reqErr)
			assert.Equal(t, http.StatusBadRequest, reqErr.status)
			assert.Contains(t, reqErr.msg, tt.wantMsg)

			r := newTestReceiver(t, withArgoCD(""), nil)
			rec := post(t, r, pathArgoCD, []byte(tt.body), nil)
			assert.Equal(t, http.StatusBadRequest, rec.Code)
			assert.Contains(t, rec.Body.String(), strings.ReplaceAll(tt.wantMsg, `"`, `\"`))
		})
	}
}

func TestContainerImageTag(t *testing.T) {
	for ref, want := range map[string]string{
		"nginx:1.27.1":                    "1.27.1",
		"nginx":                           "",
		"ghcr.io/acme/checkout:1.28.0":    "1.28.0",
		"registry.acme.example:5000/api":  "",
		"registry.acme.example:5000/a:v2": "v2",
		"ghcr.io/acme/api@sha256:0123abc": "",
		"ghcr.io/acme/api:1.0@sha256:0a1": "1.0",
		"localhost:5000/team/app:latest":  "latest",
		" argoproj/rollouts-demo:yellow ": "yellow", //nolint:gocritic // surrounding whitespace is the case under test
		"":                                "",
	} {
		assert.Equal(t, want, containerImageTag(ref), ref)
	}
	assert.Equal(t, "api", containerImageName("registry.acme.example:5000/payments/api:3.4.1"))
	assert.Equal(t, "redis", containerImageName("redis"))
}

func TestBoundedText(t *testing.T) {
	assert.Equal(t, "abc", boundedText("abc", 3))
	assert.Equal(t, "ab", boundedText("abc", 2))
	assert.Equal(t, "a", boundedText("aé", 2), "é is two bytes and is not split")
	long := strings.Repeat("x", 2*maxNotificationAttribute)
	assert.Len(t, renderedAttributes("k", long)["k"], maxNotificationAttribute)
}

// The README shows the template files verbatim, so what users paste is what these tests render.
func TestReadmeShowsTheShippedTemplates(t *testing.T) {
	var readmes []byte
	for _, name := range []string{"README.md"} {
		if b, err := os.ReadFile(name); err == nil {
			readmes = append(readmes, b...)
		}
	}
	for _, name := range []string{argoCDConfigMapFile, argoRolloutsConfigMapFile, "flagger/deploylens-canary-webhook.yaml"} {
		assert.True(t, bytes.Contains(readmes, readTestdata(t, name)), "the README does not show testdata/%s as it is", name)
	}
}
