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

	"github.com/deploylens/deploylens/internal/deployevent"
)

const gitlabTestToken = "s3cr3t-gitlab-token"

func withGitLab(token string) func(*Config) {
	return func(cfg *Config) {
		cfg.GitLab = configoptional.Some(GitLabConfig{Token: configopaque.String(token)})
	}
}

func gitlabHeaders(event string) map[string]string {
	return map[string]string{
		"Content-Type":          "application/json",
		"User-Agent":            "GitLab/17.0.0",
		"X-Gitlab-Event":        event,
		"X-Gitlab-Token":        gitlabTestToken,
		"X-Gitlab-Instance":     "https://gitlab.example",
		"X-Gitlab-Webhook-UUID": "0f6b5b0e-3c47-4d0a-9a52-7c0e0b8f1a11",
	}
}

func gitlabParseOne(t *testing.T, body []byte) deployevent.Event {
	t.Helper()
	events, err := parseGitLab(http.Header{"X-Gitlab-Event": {"Deployment Hook"}}, body)
	require.NoError(t, err)
	require.Len(t, events, 1)
	return events[0]
}

func TestGitLabRealPayloadsGolden(t *testing.T) {
	for _, file := range []string{
		"gitlab-deployment_hook-success.json",
		// Hand-made, compact: a running deployment of a tag, with the UTC time form.
		"derived-deployment_hook-running-utc-tag.json",
	} {
		t.Run(file, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitLab(gitlabTestToken), sink)
			rec := post(t, r, pathGitLab, readTestdata(t, "gitlab/"+file), gitlabHeaders("Deployment Hook"))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.Equal(t, 1, sink.LogRecordCount())
			assertGoldenLogs(t, "gitlab/"+strings.TrimSuffix(file, ".json")+"_expected.yaml", allLogs(sink))
		})
	}
}

func TestGitLabMapping(t *testing.T) {
	e := gitlabParseOne(t, readTestdata(t, "gitlab/gitlab-deployment_hook-success.json"))
	assert.Equal(t, "test-deployment-webhooks", e.Service)
	assert.Empty(t, e.Namespace, "project.namespace is a display name, not service.namespace")
	assert.Equal(t, "staging", e.Environment)
	assert.Equal(t, "279484c0", e.Version, "no tag ref: the short sha is the version")
	assert.Equal(t, "279484c09fbe69ededfced8c1bb6e6d24616b468", e.Revision, "full sha from commit_url")
	assert.Empty(t, e.RefName, "the docs example predates the ref field")
	assert.Equal(t, "gitlab-15", e.ID)
	assert.Equal(t, "796", e.PipelineRunID)
	assert.Equal(t, "http://10.126.0.2:3000/root/test-deployment-webhooks/-/jobs/796", e.PipelineRunURL)
	assert.Equal(t, "http://10.126.0.2:3000/root/test-deployment-webhooks", e.RepositoryURL)
	assert.Equal(t, "root", e.Actor)
	assert.Equal(t, deployevent.StateSucceeded, e.State)
	assert.Equal(t, "success", e.SourceState)
	assert.True(t, time.Date(2021, 4, 28, 19, 50, 0, 0, time.UTC).Equal(e.Timestamp), e.Timestamp)
	assert.Equal(t, map[string]any{"gitlab.environment.tier": "staging"}, e.Attributes)
}

func TestGitLabStatuses(t *testing.T) {
	base := readTestdata(t, "gitlab/gitlab-deployment_hook-success.json")
	tests := []struct {
		status     string
		wantStatus int
		wantState  deployevent.State
	}{
		{"running", http.StatusOK, deployevent.StateStarted},
		{"success", http.StatusOK, deployevent.StateSucceeded},
		{"failed", http.StatusOK, deployevent.StateFailed},
		{"canceled", http.StatusOK, deployevent.StateCancelled},
		// EE approval notifications are not lifecycle steps.
		{"approved", http.StatusAccepted, ""},
		{"rejected", http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			body := gitEditJSON(t, base, func(m map[string]any) { m["status"] = tt.status })
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitLab(gitlabTestToken), sink)
			rec := post(t, r, pathGitLab, body, gitlabHeaders("Deployment Hook"))
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			if tt.wantState == "" {
				assert.Zero(t, sink.LogRecordCount())
				return
			}
			require.Equal(t, 1, sink.LogRecordCount())
			attrs := sink.AllLogs()[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes()
			state, _ := attrs.Get(deployevent.AttrDeploymentState)
			assert.Equal(t, string(tt.wantState), state.Str())
			sourceState, _ := attrs.Get(deployevent.AttrSourceState)
			assert.Equal(t, tt.status, sourceState.Str())
		})
	}
}

func TestGitLabVersionAndRevision(t *testing.T) {
	base := readTestdata(t, "gitlab/gitlab-deployment_hook-success.json")
	tests := []struct {
		name         string
		edit         func(m map[string]any)
		wantVersion  string
		wantRevision string
		wantRef      string
	}{
		{"tag ref", func(m map[string]any) { m["ref"] = "v3.1.0" }, "v3.1.0", "279484c09fbe69ededfced8c1bb6e6d24616b468", "v3.1.0"},
		{"branch ref", func(m map[string]any) { m["ref"] = "main" }, "279484c0", "279484c09fbe69ededfced8c1bb6e6d24616b468", "main"},
		{"no commit url", func(m map[string]any) { m["commit_url"] = nil }, "279484c0", "279484c0", ""},
		{"commit url without a sha", func(m map[string]any) { m["commit_url"] = "http://x/-/commit/main" }, "279484c0", "279484c0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := gitlabParseOne(t, gitEditJSON(t, base, tt.edit))
			assert.Equal(t, tt.wantVersion, e.Version)
			assert.Equal(t, tt.wantRevision, e.Revision)
			assert.Equal(t, tt.wantRef, e.RefName)
		})
	}
}

func TestGitLabTimeFormats(t *testing.T) {
	want := time.Date(2021, 4, 28, 19, 50, 0, 0, time.UTC)
	for _, value := range []string{
		"2021-04-28 21:50:00 +0200",
		"2021-04-28 19:50:00 UTC",
		"2021-04-28 19:50:00.000 UTC",
		"2021-04-28T19:50:00Z",
		"2021-04-28T21:50:00.000+02:00",
	} {
		got, err := parseGitLabTime("status_changed_at", value)
		require.NoError(t, err, value)
		assert.True(t, want.Equal(got), "%s: got %s", value, got)
	}
	for _, value := range []string{"2021-04-28 21:50:00 CEST", "yesterday", "2021-04-28"} {
		_, err := parseGitLabTime("status_changed_at", value)
		assert.ErrorContains(t, err, `field "status_changed_at"`, value)
	}
}

func TestGitLabAuthorization(t *testing.T) {
	body := readTestdata(t, "gitlab/gitlab-deployment_hook-success.json")
	tests := []struct {
		name  string
		token string // configured
		sent  string // "" sends no header
		want  int
	}{
		{"right token", gitlabTestToken, gitlabTestToken, http.StatusOK},
		{"wrong token", gitlabTestToken, "not-the-token", http.StatusUnauthorized},
		{"token prefix", gitlabTestToken, gitlabTestToken[:4], http.StatusUnauthorized},
		{"missing token", gitlabTestToken, "", http.StatusUnauthorized},
		{"no token configured accepts", "", "", http.StatusOK},
		{"no token configured ignores one sent", "", "anything", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitLab(tt.token), sink)
			headers := gitlabHeaders("Deployment Hook")
			delete(headers, "X-Gitlab-Token")
			if tt.sent != "" {
				headers["X-Gitlab-Token"] = tt.sent
			}
			rec := post(t, r, pathGitLab, body, headers)
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			if tt.want == http.StatusUnauthorized {
				assert.JSONEq(t, `{"error":"unauthorized"}`, rec.Body.String())
				assert.Zero(t, sink.LogRecordCount())
				return
			}
			assert.Equal(t, 1, sink.LogRecordCount())
		})
	}
}

func TestGitLabEventTypes(t *testing.T) {
	deployment := readTestdata(t, "gitlab/gitlab-deployment_hook-success.json")
	pipeline := readTestdata(t, "gitlab/gitlab-pipeline_hook-success-go-gitlab-testdata.json")
	tests := []struct {
		name       string
		header     string
		body       []byte
		want       int
		wantEvents int
		message    string
	}{
		{"deployment hook", "Deployment Hook", deployment, http.StatusOK, 1, ""},
		{"object_kind alone", "", deployment, http.StatusOK, 1, ""},
		{"header alone", "Deployment Hook", gitEditJSON(t, deployment, func(m map[string]any) { delete(m, "object_kind") }), http.StatusOK, 1, ""},
		{"pipeline hook", "Pipeline Hook", pipeline, http.StatusAccepted, 0, `"Pipeline Hook" ignored`},
		{"pipeline body without header", "", pipeline, http.StatusAccepted, 0, `object_kind "pipeline" ignored`},
		{"push hook with any body", "Push Hook", []byte(`not json`), http.StatusAccepted, 0, `"Push Hook" ignored`},
		{"header and body disagree", "Deployment Hook", pipeline, http.StatusBadRequest, 0, `field "object_kind": "pipeline" does not match`},
		{"neither", "", gitEditJSON(t, deployment, func(m map[string]any) { delete(m, "object_kind") }), http.StatusBadRequest, 0, `missing header "X-Gitlab-Event" and field "object_kind"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitLab(gitlabTestToken), sink)
			headers := gitlabHeaders(tt.header)
			if tt.header == "" {
				delete(headers, "X-Gitlab-Event")
			}
			rec := post(t, r, pathGitLab, tt.body, headers)
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			assert.Contains(t, gitResponseMessage(t, rec.Body.Bytes()), tt.message)
			assert.Equal(t, tt.wantEvents, sink.LogRecordCount())
		})
	}
}

func TestGitLabBadRequests(t *testing.T) {
	base := readTestdata(t, "gitlab/gitlab-deployment_hook-success.json")
	edit := func(f func(m map[string]any)) []byte { return gitEditJSON(t, base, f) }
	tests := []struct {
		name        string
		contentType string
		body        []byte
		want        int
		message     string
	}{
		{"wrong content type", "text/plain", base, http.StatusUnsupportedMediaType, "not supported"},
		{"bad JSON", "application/json", []byte(`{"object_kind":`), http.StatusBadRequest, "invalid JSON"},
		{"wrong type", "application/json", []byte(`{"object_kind":"deployment","deployment_id":"15"}`), http.StatusBadRequest, `invalid JSON: field "deployment_id"`},
		{"no deployment_id", "application/json", edit(func(m map[string]any) { delete(m, "deployment_id") }), http.StatusBadRequest, `missing field "deployment_id"`},
		{"no project", "application/json", edit(func(m map[string]any) { delete(m, "project") }), http.StatusBadRequest, `missing field "project.name"`},
		{"no status", "application/json", edit(func(m map[string]any) { delete(m, "status") }), http.StatusBadRequest, `missing field "status"`},
		{"bad time", "application/json", edit(func(m map[string]any) { m["status_changed_at"] = "soon" }), http.StatusBadRequest, `field "status_changed_at"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitLab(gitlabTestToken), sink)
			headers := gitlabHeaders("Deployment Hook")
			headers["Content-Type"] = tt.contentType
			rec := post(t, r, pathGitLab, tt.body, headers)
			assert.Equal(t, tt.want, rec.Code)
			assert.Contains(t, gitResponseMessage(t, rec.Body.Bytes()), tt.message)
			assert.Zero(t, sink.LogRecordCount())
		})
	}
}

// The project's path names the service when a hook has no project name.
func TestGitLabServiceFromPath(t *testing.T) {
	body := gitEditJSON(t, readTestdata(t, "gitlab/gitlab-deployment_hook-success.json"), func(m map[string]any) {
		m["project"].(map[string]any)["name"] = " "
	})
	assert.Equal(t, "test-deployment-webhooks", gitlabParseOne(t, body).Service)
}
