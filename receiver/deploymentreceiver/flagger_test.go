// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"encoding/json"
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

func withFlagger(token string) func(*Config) {
	return func(c *Config) {
		c.Flagger = configoptional.Some(FlaggerConfig{BearerToken: configopaque.String(token)})
	}
}

// flaggerEvent is an event-hook body as Flagger builds it (CallEventWebhook).
func flaggerEvent(phase, checksum, message string, extra map[string]string) []byte {
	meta := map[string]string{"eventMessage": message, "eventType": "Normal", "timestamp": "1764072000000"}
	for k, v := range extra {
		meta[k] = v
	}
	out, _ := json.Marshal(map[string]any{"name": "podinfo", "namespace": "test", "phase": phase, "checksum": checksum, "metadata": meta})
	return out
}

// flaggerHook is a gate/rollout/post-rollout hook body (CallWebhook).
func flaggerHook(phase, checksum string) []byte {
	out, _ := json.Marshal(map[string]any{"name": "podinfo", "namespace": "test", "phase": phase, "checksum": checksum, "metadata": map[string]string{"test": "all"}})
	return out
}

func TestFlaggerRealPayloadsGolden(t *testing.T) {
	for _, tt := range []struct {
		input, golden string
		wantState     deployevent.State
	}{
		// Flagger's docs example: the first event of a rollout, from before checksums.
		{"flagger/flagger-event-progressing.json", "flagger/flagger-event-progressing_expected.yaml", deployevent.StateStarted},
		// Flagger's docs example of a gate/rollout hook body (no event metadata).
		{"flagger/flagger-webhook-gate-progressing.json", "flagger/flagger-webhook-gate-progressing_expected.yaml", deployevent.StateProgressing},
	} {
		t.Run(tt.input, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withFlagger(""), sink)
			rec := post(t, r, pathFlagger, readTestdata(t, tt.input), jsonHeaders)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			logs := allLogs(sink)
			_, lr := onlyRecord(t, logs)
			assert.Equal(t, string(tt.wantState), recordAttr(lr, deployevent.AttrDeploymentState))
			assertGoldenLogs(t, tt.golden, logs)
		})
	}
}

func TestFlaggerHookMetadataIsNotCopied(t *testing.T) {
	// The docs' gate example carries a token in its metadata.
	events, err := parseFlagger(nil, readTestdata(t, "flagger/flagger-webhook-gate-progressing.json"))
	require.NoError(t, err)
	for k, v := range events[0].Attributes {
		assert.NotContains(t, v, "16688eb5e9f289f1991c", k)
	}
	assert.Empty(t, events[0].Attributes)
}

func TestFlaggerMapping(t *testing.T) {
	const checksum = "85d557f47b"
	for _, tt := range []struct {
		name        string
		body        []byte
		wantState   deployevent.State
		wantIgnored bool
	}{
		// Event hooks: the message decides where the phase sent with it lags.
		{"starting analysis", flaggerEvent("Progressing", checksum, "Starting canary analysis for podinfo.test", nil), deployevent.StateStarted, false},
		{"advance weight", flaggerEvent("Progressing", checksum, "Advance podinfo.test canary weight 10", nil), deployevent.StateProgressing, false},
		{"halt on metrics", flaggerEvent("Progressing", checksum, "Halt advancement no values found for istio metric request-success-rate", nil), deployevent.StateProgressing, false},
		{"waiting promotion", flaggerEvent("WaitingPromotion", checksum, "Halt podinfo.test advancement waiting for promotion approval gate", nil), deployevent.StateProgressing, false},
		{"promoting", flaggerEvent("Promoting", checksum, "Routing all traffic to primary", nil), deployevent.StateProgressing, false},
		{"promotion completed arrives as Finalising", flaggerEvent("Finalising", checksum, "Promotion completed! Scaling down podinfo.test", nil), deployevent.StateSucceeded, false},
		{"promotion completed, analysis skipped, arrives as Progressing", flaggerEvent("Progressing", checksum, "Promotion completed! Canary analysis was skipped for podinfo.test", nil), deployevent.StateSucceeded, false},
		{"rolling back", flaggerEvent("Progressing", checksum, "Rolling back podinfo.test failed checks threshold reached 5", nil), deployevent.StateProgressing, false},
		{"canary failed", flaggerEvent("Failed", checksum, "Canary failed! Scaling down podinfo.test", nil), deployevent.StateRolledBack, false},
		{"restarted by a newer revision", flaggerEvent("Progressing", checksum, "New revision detected! Restarting analysis for podinfo.test", nil), deployevent.StateCancelled, false},
		{"scaling up carries the previous checksum", flaggerEvent("Progressing", checksum, "New revision detected! Scaling up podinfo.test", nil), "", true},
		{"scaling up without a checksum", flaggerEvent("Progressing", "", "New revision detected! Scaling up podinfo.test", nil), deployevent.StateStarted, false},
		{"waiting carries the previous checksum", flaggerEvent("Waiting", checksum, "Confirm-rollout check gate passed", nil), "", true},
		{"waiting without a checksum", flaggerEvent("Waiting", "", "Halt podinfo.test advancement waiting for approval gate", nil), deployevent.StateQueued, false},
		{"post-rollout hook notice", flaggerEvent("Progressing", checksum, "Post-rollout check notify passed", nil), "", true},
		{"initialization", flaggerEvent("Initialized", checksum, "Initialization done! podinfo.test", nil), "", true},
		{"initializing", flaggerEvent("Initializing", checksum, "all the metrics providers are available!", nil), "", true},
		{"notice about a finished canary", flaggerEvent("Succeeded", checksum, "skipping canary run as object is suspended", nil), "", true},
		{"gate halt sent with the finished phase", flaggerEvent("Failed", checksum, "Halt podinfo.test advancement waiting for approval gate", nil), "", true},
		{"terminating", flaggerEvent("Terminating", checksum, "Terminating canary podinfo.test", nil), "", true},
		{"terminated", flaggerEvent("Terminated", checksum, "Canary podinfo.test terminated", nil), "", true},
		{"no phase yet", flaggerEvent("", "", "Error checking metric providers: x", nil), "", true},
		// Gate, rollout and post-rollout hooks: the phase Flagger passes is right.
		{"rollout hook", flaggerHook("Progressing", checksum), deployevent.StateProgressing, false},
		{"post-rollout succeeded", flaggerHook("Succeeded", checksum), deployevent.StateSucceeded, false},
		{"post-rollout failed: Flagger rolled back", flaggerHook("Failed", checksum), deployevent.StateRolledBack, false},
		{"confirm-rollout hook while waiting", flaggerHook("Waiting", checksum), "", true},
		{"hook while initialized", flaggerHook("Initialized", checksum), "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			events, err := parseFlagger(nil, tt.body)
			if tt.wantIgnored {
				var ignored *ignoredError
				require.ErrorAs(t, err, &ignored)
				assert.Equal(t, http.StatusAccepted, ignored.status)
				return
			}
			require.NoError(t, err)
			require.Len(t, events, 1)
			assert.Equal(t, tt.wantState, events[0].State)
			assert.Equal(t, deployevent.StrategyCanary, events[0].Strategy)
			assert.Equal(t, deployevent.SourceFlagger, events[0].Source)
		})
	}
}

func TestFlaggerOneRolloutOneID(t *testing.T) {
	const previous, current = "7c9d8e6f5b", "85d557f47b"
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, withFlagger(""), sink)
	// One rollout as Flagger reports it, in order.
	for _, tt := range []struct {
		body       []byte
		wantStatus int
	}{
		{flaggerEvent("Progressing", previous, "New revision detected! Scaling up podinfo.test", nil), http.StatusAccepted},
		{flaggerEvent("Progressing", current, "Starting canary analysis for podinfo.test", nil), http.StatusOK},
		{flaggerEvent("Progressing", current, "Advance podinfo.test canary weight 10", nil), http.StatusOK},
		{flaggerEvent("Promoting", current, "Routing all traffic to primary", nil), http.StatusOK},
		{flaggerEvent("Finalising", current, "Promotion completed! Scaling down podinfo.test", nil), http.StatusOK},
		{flaggerHook("Succeeded", current), http.StatusOK},
	} {
		rec := post(t, r, pathFlagger, tt.body, jsonHeaders)
		require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
	}
	var states []string
	ids := map[string]bool{}
	logs := allLogs(sink)
	for i := 0; i < logs.ResourceLogs().Len(); i++ {
		lr := logs.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords().At(0)
		states = append(states, recordAttr(lr, deployevent.AttrDeploymentState))
		ids[recordAttr(lr, deployevent.AttrDeploymentID)] = true
	}
	assert.Equal(t, []string{"started", "progressing", "progressing", "succeeded", "succeeded"}, states)
	assert.Equal(t, map[string]bool{deployevent.DeriveID("flagger", "test", "podinfo", current): true}, ids)
}

func TestFlaggerMetadata(t *testing.T) {
	body := flaggerEvent("Progressing", "85d557f47b", "Advance podinfo.test canary weight 10", map[string]string{
		"service": "podinfo-api", "environment": "staging", "version": "6.5.0", "strategy": "blueGreen", "token": "s3cret",
	})
	events, err := parseFlagger(nil, body)
	require.NoError(t, err)
	e := events[0]
	assert.Equal(t, "podinfo-api", e.Service)
	assert.Equal(t, "podinfo", e.Name)
	assert.Equal(t, "test", e.Namespace)
	assert.Equal(t, "staging", e.Environment)
	assert.Equal(t, "6.5.0", e.Version)
	assert.Equal(t, deployevent.StrategyBlueGreen, e.Strategy)
	assert.Equal(t, "Progressing", e.SourceState)
	assert.Equal(t, time.UnixMilli(1764072000000), e.Timestamp)
	assert.Equal(t, map[string]any{"flagger.event.type": "Normal", "flagger.event.message": "Advance podinfo.test canary weight 10"}, e.Attributes)
	assert.Equal(t, deployevent.DeriveID("flagger", "test", "podinfo", "85d557f47b"), e.ID)

	// Without a checksum (Flagger before checksums) the version tells rollouts apart.
	withVersion, err := parseFlagger(nil, flaggerEvent("Progressing", "", "x", map[string]string{"version": "6.5.0"}))
	require.NoError(t, err)
	assert.Equal(t, deployevent.DeriveID("flagger", "test", "podinfo", "6.5.0"), withVersion[0].ID)
}

func TestFlaggerHTTP(t *testing.T) {
	valid := readTestdata(t, "flagger/flagger-event-progressing.json")
	for _, tt := range []struct {
		name       string
		method     string
		headers    map[string]string
		body       []byte
		token      string
		wantStatus int
		wantMsg    string
	}{
		{name: "json", body: valid, headers: jsonHeaders, wantStatus: 200, wantMsg: `"accepted":1`},
		{name: "ignored phase answers 202, which Flagger counts as success", body: flaggerEvent("Initialized", "x", "Initialization done! podinfo.test", nil), headers: jsonHeaders, wantStatus: 202, wantMsg: "not a deployment event"},
		{name: "wrong content type", body: valid, headers: map[string]string{"Content-Type": "text/plain"}, wantStatus: 415},
		{name: "no content type (Flagger always sends one)", body: valid, wantStatus: 415},
		{name: "GET", method: http.MethodGet, headers: jsonHeaders, wantStatus: 405},
		{name: "bearer token missing", body: valid, headers: jsonHeaders, token: "s3cret", wantStatus: 401, wantMsg: "unauthorized"},
		{name: "bearer token wrong", body: valid, headers: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer x"}, token: "s3cret", wantStatus: 401},
		{name: "bearer token right", body: valid, headers: map[string]string{"Content-Type": "application/json", "Authorization": "Bearer s3cret"}, token: "s3cret", wantStatus: 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newTestReceiver(t, withFlagger(tt.token), nil)
			rec := notificationRequest(t, r, tt.method, pathFlagger, tt.body, tt.headers)
			assert.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), tt.wantMsg)
		})
	}
}

func TestFlaggerBadRequests(t *testing.T) {
	for _, tt := range []struct{ name, body, wantMsg string }{
		{"empty", ``, "empty body"},
		{"not JSON", `{"name":`, "invalid JSON"},
		{"the docs' payload sketch, which is not JSON", string(readTestdata(t, "flagger/flagger-event-schema.txt")), "invalid JSON"},
		{"metadata value not a string", `{"name":"p","namespace":"n","phase":"Progressing","metadata":{"x":1}}`, `field "metadata": expected string`},
		{"missing name", `{"namespace":"n","phase":"Progressing"}`, `missing field "name"`},
		{"missing namespace", `{"name":"p","phase":"Progressing"}`, `missing field "namespace"`},
		{"missing phase", `{"name":"p","namespace":"n"}`, `missing field "phase"`},
		{"unknown phase", `{"name":"p","namespace":"n","phase":"Paused"}`, `field "phase": "Paused" is not a Flagger canary phase`},
		{"bad timestamp", `{"name":"p","namespace":"n","phase":"Progressing","metadata":{"eventMessage":"m","timestamp":"2026-01-01"}}`, `field "metadata.timestamp"`},
		{"bad strategy", `{"name":"p","namespace":"n","phase":"Progressing","metadata":{"strategy":"yolo"}}`, `field "metadata.strategy"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFlagger(nil, []byte(tt.body))
			var reqErr *requestError
			require.ErrorAs(t, err, &reqErr)
			assert.Equal(t, http.StatusBadRequest, reqErr.status)
			assert.Contains(t, reqErr.msg, tt.wantMsg)
		})
	}
}

func TestFlaggerCanarySnippet(t *testing.T) {
	var canary struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Analysis struct {
				Webhooks []struct {
					Type     string            `yaml:"type"`
					URL      string            `yaml:"url"`
					Metadata map[string]string `yaml:"metadata"`
				} `yaml:"webhooks"`
			} `yaml:"analysis"`
		} `yaml:"spec"`
	}
	require.NoError(t, yaml.Unmarshal(readTestdata(t, "flagger/deploylens-canary-webhook.yaml"), &canary))
	assert.Equal(t, "Canary", canary.Kind)
	require.Len(t, canary.Spec.Analysis.Webhooks, 2)
	for _, hook := range canary.Spec.Analysis.Webhooks {
		assert.Contains(t, []string{"event", "post-rollout"}, hook.Type, "never a gate or rollback hook")
		assert.True(t, strings.HasSuffix(hook.URL, ":8088"+pathFlagger), hook.URL)
		for k := range hook.Metadata {
			assert.Contains(t, []string{"service", "environment", "version", "strategy"}, k)
		}
	}
}
