// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.yaml.in/yaml/v3"

	"github.com/deploylens/deploylens/internal/deployevent"
)

func withArgoRollouts(token string) func(*Config) {
	return func(c *Config) {
		c.ArgoRollouts = configoptional.Some(ArgoRolloutsConfig{BearerToken: configopaque.String(token)})
	}
}

// rolloutVars are the variables Argo Rollouts gives a template.
func rolloutVars(t testing.TB, object string) map[string]any {
	return map[string]any{
		"rollout": readObject(t, object),
		"time":    map[string]any{"Now": func() time.Time { return renderTime }},
	}
}

func TestArgoRolloutsServiceConfig(t *testing.T) {
	cm := readNotificationsConfig(t, argoRolloutsConfigMapFile)
	url, headers := cm.serviceHeaders(t, map[string]string{"deploylens-token": "tkn"})
	assert.True(t, strings.HasSuffix(url, ":8088"+pathArgoRollouts), url)
	assert.Equal(t, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer tkn"}, headers)

	var defaults []string
	require.NoError(t, yaml.Unmarshal([]byte(cm["defaultTriggers.deploylens"]), &defaults))
	assert.Equal(t, []string{"on-rollout-updated", "on-rollout-step-completed", "on-rollout-paused",
		"on-rollout-completed", "on-rollout-aborted", "on-analysis-run-failed"}, defaults)

	// Rollouts fires only triggers named after its event reasons: the
	// built-in ones. Each of ours must be one, send a POST template, and map.
	builtIn := readNotificationsConfig(t, "argo-rollouts/argo-rollouts-notifications-install.yaml")
	for _, name := range defaults {
		t.Run(name, func(t *testing.T) {
			builtIn.trigger(t, name)
			conditions := cm.trigger(t, name)
			require.Len(t, conditions, 1)
			assert.Empty(t, conditions[0].When, "Rollouts triggers fire on the event, with no condition")
			require.Len(t, conditions[0].Send, 1)
			hook := cm.webhookTemplate(t, conditions[0].Send[0])
			assert.Equal(t, http.MethodPost, hook.Method, "notifications-engine defaults to GET")
			assert.Contains(t, hook.Body, `"event": "`+name+`"`)
			assert.Contains(t, argoRolloutsEventStates, name)
		})
	}
}

func TestArgoRolloutsTemplatesGolden(t *testing.T) {
	cm := readNotificationsConfig(t, argoRolloutsConfigMapFile)
	_, headers := cm.serviceHeaders(t, map[string]string{"deploylens-token": notificationToken})
	for _, tt := range []struct {
		template, object, golden string
		wantState                deployevent.State
	}{
		{"deploylens-rollout-updated", "argo-rollouts/rollout-updated.json", "argo-rollouts/rollout-updated_expected.yaml", deployevent.StateStarted},
		{"deploylens-rollout-step-completed", "argo-rollouts/rollout-paused.json", "argo-rollouts/rollout-step-completed_expected.yaml", deployevent.StateProgressing},
		{"deploylens-rollout-paused", "argo-rollouts/rollout-paused.json", "argo-rollouts/rollout-paused_expected.yaml", deployevent.StateProgressing},
		{"deploylens-rollout-completed", "argo-rollouts/rollout-completed.json", "argo-rollouts/rollout-completed_expected.yaml", deployevent.StateSucceeded},
		{"deploylens-rollout-aborted", "argo-rollouts/rollout-aborted.json", "argo-rollouts/rollout-aborted_expected.yaml", deployevent.StateRolledBack},
		{"deploylens-analysis-run-failed", "argo-rollouts/rollout-aborted.json", "argo-rollouts/analysis-run-failed_expected.yaml", deployevent.StateFailed},
		// Blue-green, two containers, no label at all: service falls back to the rollout name.
		{"deploylens-rollout-paused", "argo-rollouts/rollout-bluegreen-no-labels.json", "argo-rollouts/bluegreen-no-labels-paused_expected.yaml", deployevent.StateProgressing},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			body := cm.render(t, tt.template, rolloutVars(t, tt.object))
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withArgoRollouts(notificationToken), sink)
			rec := post(t, r, pathArgoRollouts, body, headers)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			logs := allLogs(sink)
			_, lr := onlyRecord(t, logs)
			assert.Equal(t, string(tt.wantState), recordAttr(lr, deployevent.AttrDeploymentState))
			assertGoldenLogs(t, tt.golden, logs)
		})
	}
}

func TestArgoRolloutsOneUpdateOneID(t *testing.T) {
	cm := readNotificationsConfig(t, argoRolloutsConfigMapFile)
	idOf := func(templateName, object string) string {
		events, err := parseArgoRollouts(nil, cm.render(t, templateName, rolloutVars(t, object)))
		require.NoError(t, err)
		return events[0].ID
	}
	// on-rollout-updated still carries the previous pod hash; the revision
	// annotation is what all events of the update share.
	updated := idOf("deploylens-rollout-updated", "argo-rollouts/rollout-updated.json")
	for _, tt := range [][2]string{
		{"deploylens-rollout-step-completed", "argo-rollouts/rollout-paused.json"},
		{"deploylens-rollout-paused", "argo-rollouts/rollout-paused.json"},
		{"deploylens-rollout-completed", "argo-rollouts/rollout-completed.json"},
		{"deploylens-rollout-aborted", "argo-rollouts/rollout-aborted.json"},
		{"deploylens-analysis-run-failed", "argo-rollouts/rollout-aborted.json"},
	} {
		assert.Equal(t, updated, idOf(tt[0], tt[1]), tt[0])
	}

	next := readObject(t, "argo-rollouts/rollout-completed.json")
	next["metadata"].(map[string]any)["annotations"].(map[string]any)["rollout.argoproj.io/revision"] = "5"
	events, err := parseArgoRollouts(nil, cm.render(t, "deploylens-rollout-updated", map[string]any{"rollout": next}))
	require.NoError(t, err)
	assert.NotEqual(t, updated, events[0].ID, "the next update is another deployment")
}

func TestArgoRolloutsMapping(t *testing.T) {
	for _, tt := range []struct {
		name         string
		body         string
		wantState    deployevent.State
		wantService  string
		wantVersion  string
		wantStrategy deployevent.Strategy
		wantID       string
	}{
		{
			name:      "updated",
			body:      `{"event":"on-rollout-updated","rollout":"r","namespace":"n","revision":"3","image":"ghcr.io/x/r:1.2.3","strategy":"canary"}`,
			wantState: deployevent.StateStarted, wantService: "r", wantVersion: "1.2.3", wantStrategy: deployevent.StrategyCanary,
			wantID: deployevent.DeriveID("argo_rollouts", "n", "r", "3"),
		},
		{
			name:      "revision printed as a number",
			body:      `{"event":"on-rollout-completed","rollout":"r","namespace":"n","revision":3,"step":8}`,
			wantState: deployevent.StateSucceeded, wantService: "r", wantID: deployevent.DeriveID("argo_rollouts", "n", "r", "3"),
		},
		{
			name:      "pod hash when there is no revision",
			body:      `{"event":"on-rollout-paused","rollout":"r","namespace":"n","revision":"<no value>","pod_hash":"5f8c7d9b6c"}`,
			wantState: deployevent.StateProgressing, wantService: "r", wantID: deployevent.DeriveID("argo_rollouts", "n", "r", "5f8c7d9b6c"),
		},
		{
			name:      "labels override service and version",
			body:      `{"event":"on-rollout-aborted","rollout":"r","namespace":"n","revision":"3","service":"svc","version":"v7","image":"ghcr.io/x/r:1.2.3","strategy":"blue_green"}`,
			wantState: deployevent.StateRolledBack, wantService: "svc", wantVersion: "v7", wantStrategy: deployevent.StrategyBlueGreen,
			wantID: deployevent.DeriveID("argo_rollouts", "n", "r", "3"),
		},
		{
			// What quoted `{{index …}}` templates render for missing labels.
			name:      "quoted values that rendered <no value>",
			body:      `{"event":"on-analysis-run-failed","rollout":"r","namespace":"n","revision":"3","service":"<no value>","environment":"<no value>","version":"<no value>","strategy":"","step":"<no value>","time":"<no value>","image":"registry:5000/r"}`,
			wantState: deployevent.StateFailed, wantService: "r", wantID: deployevent.DeriveID("argo_rollouts", "n", "r", "3"),
		},
		{
			name:      "the rollouts' own strategy spelling",
			body:      `{"event":"on-rollout-step-completed","rollout":"r","revision":"1","strategy":"BlueGreen"}`,
			wantState: deployevent.StateProgressing, wantService: "r", wantStrategy: deployevent.StrategyBlueGreen,
			wantID: deployevent.DeriveID("argo_rollouts", "", "r", "1"),
		},
		{
			name:      "analysis run error is retried, not a failure",
			body:      `{"event":"on-analysis-run-error","rollout":"r","revision":"1"}`,
			wantState: deployevent.StateProgressing, wantService: "r", wantID: deployevent.DeriveID("argo_rollouts", "", "r", "1"),
		},
		{
			name:      "analysis run running",
			body:      `{"event":"on-analysis-run-running","rollout":"r","revision":"1"}`,
			wantState: deployevent.StateProgressing, wantService: "r", wantID: deployevent.DeriveID("argo_rollouts", "", "r", "1"),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			events, err := parseArgoRollouts(nil, []byte(tt.body))
			require.NoError(t, err)
			require.Len(t, events, 1)
			e := events[0]
			assert.Equal(t, tt.wantState, e.State)
			assert.Equal(t, tt.wantService, e.Service)
			assert.Equal(t, "r", e.Name)
			assert.Equal(t, tt.wantVersion, e.Version)
			assert.Equal(t, tt.wantStrategy, e.Strategy)
			assert.Equal(t, tt.wantID, e.ID)
			assert.Empty(t, e.Environment)
			assert.Equal(t, deployevent.SourceArgoRollouts, e.Source)
		})
	}
}

func TestArgoRolloutsHTTP(t *testing.T) {
	valid := `{"event":"on-rollout-updated","rollout":"r","revision":"1"}`
	auth := map[string]string{"Authorization": "Bearer " + notificationToken}
	for _, tt := range []struct {
		name       string
		method     string
		headers    map[string]string
		body       string
		wantStatus int
		wantMsg    string
	}{
		{name: "no content type", body: valid, headers: auth, wantStatus: 200, wantMsg: `"accepted":1`},
		{name: "json", body: valid, headers: map[string]string{"Content-Type": "application/json; charset=utf-8", "Authorization": "Bearer " + notificationToken}, wantStatus: 200},
		{name: "scaling is ignored with 202", body: `{"event":"on-scaling-replica-set","rollout":"r","revision":"1"}`, headers: auth, wantStatus: 202, wantMsg: "not a deployment event"},
		{name: "wrong content type", body: valid, headers: map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + notificationToken}, wantStatus: 415},
		{name: "no token", body: valid, wantStatus: 401},
		{name: "wrong token", body: valid, headers: map[string]string{"Authorization": "Bearer " + notificationToken + "x"}, wantStatus: 401, wantMsg: "unauthorized"},
		{name: "GET", method: http.MethodGet, headers: auth, wantStatus: 405, wantMsg: "use POST"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReceiver(t, withArgoRollouts(notificationToken), nil)
			rec := notificationRequest(t, r, tt.method, pathArgoRollouts, []byte(tt.body), tt.headers)
			assert.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tt.wantMsg)
		})
	}
}

func TestArgoRolloutsBadRequests(t *testing.T) {
	for _, tt := range []struct{ name, body, wantMsg string }{
		{"empty", ``, "empty body"},
		{"not JSON", `{"event":"on-rollout-updated",`, "invalid JSON"},
		{"the built-in message template", `Rollout rollouts-demo has been updated.`, "expected an object"},
		{"missing rollout", `{"event":"on-rollout-updated","revision":"1"}`, `missing field "rollout"`},
		{"missing event", `{"rollout":"r","revision":"1"}`, `missing field "event"`},
		{"unknown event", `{"event":"on-rollout-created","rollout":"r","revision":"1"}`, `field "event": "on-rollout-created" is not one of`},
		{"no revision nor pod hash", `{"event":"on-rollout-updated","rollout":"r","revision":null,"pod_hash":"<no value>"}`, `missing field "revision"`},
		{"revision an object", `{"event":"on-rollout-updated","rollout":"r","revision":{}}`, `field "revision"`},
		{"step not an index", `{"event":"on-rollout-updated","rollout":"r","revision":"1","step":"two"}`, `field "step"`},
		{"step a bool", `{"event":"on-rollout-updated","rollout":"r","revision":"1","step":true}`, `field "step"`},
		{"bad strategy", `{"event":"on-rollout-updated","rollout":"r","revision":"1","strategy":"yolo"}`, `field "strategy"`},
		{"bad time", `{"event":"on-rollout-updated","rollout":"r","revision":"1","time":"now"}`, `field "time"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseArgoRollouts(nil, []byte(tt.body))
			var reqErr *requestError
			require.ErrorAs(t, err, &reqErr)
			assert.Equal(t, http.StatusBadRequest, reqErr.status)
			assert.Contains(t, reqErr.msg, tt.wantMsg)
		})
	}
}
