// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const githubSecret = "It's a Secret to Everybody"

func signGitHub(body []byte) string {
	mac := hmac.New(sha256.New, []byte(githubSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// postHTTP sends body and returns the status and the answer's body.
func postHTTP(t *testing.T, url string, body []byte, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	answer, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(answer)
}

// TestE2EReceiverToFileExporter: the built distribution receives a signed
// GitHub deployment_status, refuses an unsigned one, accepts a generic event,
// and the file exporter gets the deployment.lifecycle records.
func TestE2EReceiverToFileExporter(t *testing.T) {
	port := freePort(t)
	out := filepath.Join(t.TempDir(), "events.json")
	c := startCollector(t, collectorConfig{
		YAML: fmt.Sprintf(`
receivers:
  deployment:
    endpoint: 127.0.0.1:%d
    generic: {bearer_token: "${env:DEPLOY_TOKEN}"}
    github: {secret: "${env:GITHUB_WEBHOOK_SECRET}"}
exporters:
  file:
    path: %s
    flush_interval: 100ms
service:
  pipelines:
    logs:
      receivers: [deployment]
      exporters: [file]
`, port, out),
		Env: map[string]string{"DEPLOY_TOKEN": "deploy-token", "GITHUB_WEBHOOK_SECRET": githubSecret},
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	payload, err := os.ReadFile(filepath.Join(repoRoot(t), "receiver", "deploymentreceiver", "testdata", "github", "github-deployment_status-success.json"))
	require.NoError(t, err)
	githubHeaders := map[string]string{
		"Content-Type":      "application/json",
		"X-GitHub-Event":    "deployment_status",
		"X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"User-Agent":        "GitHub-Hookshot/044aadd",
	}

	// Unsigned: 401, and nothing emitted.
	status, answer := postHTTP(t, base+"/webhooks/github", payload, githubHeaders)
	assert.Equal(t, http.StatusUnauthorized, status, answer)
	assert.NotContains(t, answer, "deployment_status", "the body is not echoed")

	// Signed with the wrong secret: 401.
	githubHeaders["X-Hub-Signature-256"] = "sha256=" + strings.Repeat("0", 64)
	status, _ = postHTTP(t, base+"/webhooks/github", payload, githubHeaders)
	assert.Equal(t, http.StatusUnauthorized, status)

	// Signed: 200.
	githubHeaders["X-Hub-Signature-256"] = signGitHub(payload)
	status, answer = postHTTP(t, base+"/webhooks/github", payload, githubHeaders)
	require.Equal(t, http.StatusOK, status, answer)

	// Generic event with the bearer token, and one without it (401).
	generic := []byte(`{"service":"checkout","namespace":"shop","environment":"production","version":"1.4.2",
		"previous_version":"1.4.1","id":"deploy-123","state":"started","strategy":"canary",
		"revision":"9f2c1e7","commit_time":"2026-11-25T11:40:00Z","timestamp":"2026-11-25T11:58:30Z","actor":"alice"}`)
	status, _ = postHTTP(t, base+"/v1/deployments", generic, map[string]string{"Content-Type": "application/json"})
	assert.Equal(t, http.StatusUnauthorized, status)
	status, answer = postHTTP(t, base+"/v1/deployments", generic, map[string]string{
		"Content-Type": "application/json", "Authorization": "Bearer deploy-token",
	})
	require.Equal(t, http.StatusOK, status, answer)
	assert.Contains(t, answer, "deploy-123")

	var records []lifecycleRecord
	eventually(t, 15*time.Second, "two lifecycle records in the file exporter output", func() bool {
		records = lifecycleRecords(readLogs(t, out))
		return len(records) >= 2
	})
	require.Len(t, records, 2, "the refused requests emitted nothing")

	byService := map[string]lifecycleRecord{}
	for _, r := range records {
		byService[r.Resource["service.name"].(string)] = r
	}
	gh, ok := byService["Hello-World"]
	require.True(t, ok, "GitHub event names the repository as the service: %v", records)
	assert.Equal(t, "production", gh.Resource["deployment.environment.name"])
	assert.Equal(t, "succeeded", gh.Attrs["deployment.state"])
	assert.Equal(t, "succeeded", gh.Attrs["deployment.status"])
	assert.Equal(t, "github", gh.Attrs["deployment.source"])
	assert.Equal(t, "github-145988746", gh.Attrs["deployment.id"])
	assert.Equal(t, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", gh.Attrs["vcs.ref.head.revision"])

	gen, ok := byService["checkout"]
	require.True(t, ok)
	assert.Equal(t, "shop", gen.Resource["service.namespace"])
	assert.Equal(t, "production", gen.Resource["deployment.environment.name"])
	assert.Equal(t, "1.4.2", gen.Resource["service.version"])
	assert.Equal(t, "deploy-123", gen.Attrs["deployment.id"])
	assert.Equal(t, "started", gen.Attrs["deployment.state"])
	assert.Equal(t, "1.4.1", gen.Attrs["deployment.previous_version"])
	assert.Equal(t, "canary", gen.Attrs["deployment.strategy"])
	assert.Equal(t, "2026-11-25T11:40:00Z", gen.Attrs["deployment.commit_time"])
	assert.Equal(t, "alice", gen.Attrs["enduser.id"])
	assert.Equal(t, time.Date(2026, 11, 25, 11, 58, 30, 0, time.UTC), gen.Time.UTC(), "the tool's timestamp, not receipt time")

	// The refusals and acceptances are counted in the collector's own metrics.
	metrics := c.SelfMetrics()
	assert.Regexp(t, `otelcol_receiver_deployment_requests_refused(_total)?\{[^}]*reason="unauthorized"[^}]*source="github"[^}]*\} 2`, metrics)
	assert.Regexp(t, `otelcol_receiver_deployment_requests_refused(_total)?\{[^}]*reason="unauthorized"[^}]*source="generic"[^}]*\} 1`, metrics)
	assert.Regexp(t, `otelcol_receiver_deployment_events_emitted(_total)?\{[^}]*source="github"[^}]*\} 1`, metrics)
	assert.NotContains(t, c.Output(), "error\t", "no error logged while serving")

	c.Stop()
}

// TestE2EIssueConfigAsWritten: the receiver config from its README works
// exactly as written, with its environment variables set or unset.
func TestE2EIssueConfigAsWritten(t *testing.T) {
	port := freePort(t)
	yaml := fmt.Sprintf(`
receivers:
  deployment:
    endpoint: 127.0.0.1:%d
    generic: {bearer_token: "${env:DEPLOY_TOKEN}"}      # optional
    github: {secret: "${env:GITHUB_WEBHOOK_SECRET}"}
    gitlab: {token: "${env:GITLAB_WEBHOOK_TOKEN}"}
    argocd: {bearer_token: "${env:ARGOCD_TOKEN}"}
    flagger: {}
    argo_rollouts: {}
exporters:
  debug: {}
service:
  pipelines:
    logs:
      receivers: [deployment]
      exporters: [debug]
`, port)
	for _, env := range []map[string]string{
		{"DEPLOY_TOKEN": "a", "GITHUB_WEBHOOK_SECRET": "b", "GITLAB_WEBHOOK_TOKEN": "c", "ARGOCD_TOKEN": "d"},
		{},
	} {
		c := startCollector(t, collectorConfig{YAML: yaml, Env: env})
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		for _, path := range []string{"/v1/deployments", "/webhooks/github", "/webhooks/gitlab", "/webhooks/argocd", "/webhooks/flagger", "/webhooks/argo-rollouts"} {
			resp, err := http.Get(base + path)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "%s is served", path)
		}
		resp, err := http.Get(base + "/webhooks/jenkins")
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		c.Stop()
	}
}

// TestE2EDefaultConfigIsValid: the config `make run` starts is valid for the
// built distribution (validated, not started: its ports are fixed).
func TestE2EDefaultConfigIsValid(t *testing.T) {
	out, err := exec.Command(binaryPath(t), "validate", "--config", filepath.Join(repoRoot(t), "deploy", "default-config.yaml")).CombinedOutput()
	require.NoError(t, err, "%s", out)
}
