// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
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

// githubTestSecret is the secret of GitHub's published test vector, also used
// for the signatures listed in the payloads README.
const githubTestSecret = "It's a Secret to Everybody"

func signGitHub(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func githubHeaders(event string, body []byte) map[string]string {
	return map[string]string{
		"Content-Type":        "application/json",
		"X-GitHub-Event":      event,
		"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"User-Agent":          "GitHub-Hookshot/044aadd",
		"X-Hub-Signature-256": signGitHub(githubTestSecret, body),
	}
}

func withGitHub(secret string, insecure bool) func(*Config) {
	return func(cfg *Config) {
		cfg.GitHub = configoptional.Some(GitHubConfig{Secret: configopaque.String(secret), InsecureSkipVerify: insecure})
	}
}

// gitEditJSON (shared with gitlab_test.go) decodes body, applies edit and encodes it again: the way
// tests derive variants from the real payloads.
func gitEditJSON(t testing.TB, body []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	edit(m)
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}

// gitResponseMessage is the "error" or "message" of a JSON answer.
func gitResponseMessage(t testing.TB, body []byte) string {
	t.Helper()
	var resp struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(body, &resp), string(body))
	return resp.Error + resp.Message
}

func githubParseOne(t *testing.T, event string, body []byte) deployevent.Event {
	t.Helper()
	events, err := parseGitHub(http.Header{"X-Github-Event": {event}, "Content-Type": {"application/json"}}, body)
	require.NoError(t, err)
	require.Len(t, events, 1)
	return events[0]
}

func TestGitHubSignatureVectors(t *testing.T) {
	authorize := githubAuthorizer(githubTestSecret, false)
	tests := []struct {
		name      string
		body      []byte
		signature string
	}{
		// GitHub docs' published test vector.
		{"docs test vector", []byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
		// Signatures listed in the payloads README over the stored files.
		{"deployment created", readTestdata(t, "github/github-deployment-created.json"), "sha256=db2987f41c869b876c9c900d205cccaa4ae49edd1d55819e1639bcec886d7403"},
		{"deployment_status success", readTestdata(t, "github/github-deployment_status-success.json"), "sha256=efe7586dcc11d04e2fede9b6d439cbf70ed76da9ec3478dc184eac26f89471f1"},
		{"workflow_run completed", readTestdata(t, "github/github-workflow_run-completed.json"), "sha256=54e36d3495c5dcb94038f73113b6de077b7d27120cc921718077a00abcafca42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.signature, signGitHub(githubTestSecret, tt.body))
			assert.NoError(t, authorize(http.Header{"X-Hub-Signature-256": {tt.signature}}, tt.body))
			// One changed byte of the body must fail the check.
			tampered := append([]byte(nil), tt.body...)
			tampered[0] ^= 1
			assert.ErrorIs(t, authorize(http.Header{"X-Hub-Signature-256": {tt.signature}}, tampered), errUnauthorized)
		})
	}
}

func TestGitHubRealPayloadsGolden(t *testing.T) {
	tests := []struct {
		file  string
		event string
	}{
		{"github-deployment-created.json", "deployment"},
		{"github-deployment-created-with-installation.json", "deployment"},
		{"github-deployment_status-success.json", "deployment_status"},
		{"github-deployment_status-success-with-installation.json", "deployment_status"},
		// Hand-made, compact: a status with payload overrides given as a JSON string.
		{"derived-deployment_status-in_progress-payload-string.json", "deployment_status"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitHub(githubTestSecret, false), sink)
			body := readTestdata(t, "github/"+tt.file)
			rec := post(t, r, pathGitHub, body, githubHeaders(tt.event, body))
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			var resp struct {
				Accepted      int      `json:"accepted"`
				DeploymentIDs []string `json:"deployment_ids"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &resp))
			assert.Equal(t, 1, resp.Accepted)
			assert.Len(t, resp.DeploymentIDs, 1)
			assert.Equal(t, 1, sink.LogRecordCount())
			assertGoldenLogs(t, "github/"+strings.TrimSuffix(tt.file, ".json")+"_expected.yaml", allLogs(sink))
		})
	}
}

// A deployment and all its statuses share one deployment.id.
func TestGitHubDeploymentAndStatusShareID(t *testing.T) {
	created := githubParseOne(t, "deployment", readTestdata(t, "github/github-deployment-created.json"))
	status := githubParseOne(t, "deployment_status", readTestdata(t, "github/github-deployment_status-success.json"))
	assert.Equal(t, "github-145988746", created.ID)
	assert.Equal(t, created.ID, status.ID)
	assert.Equal(t, created.Service, status.Service)
	assert.Equal(t, created.Version, status.Version)
	assert.Equal(t, deployevent.StateQueued, created.State)
	assert.Equal(t, deployevent.StateSucceeded, status.State)
}

func TestGitHubDeploymentStatusStates(t *testing.T) {
	base := readTestdata(t, "github/github-deployment_status-success.json")
	tests := []struct {
		state      string
		wantStatus int
		wantState  deployevent.State
	}{
		{"pending", http.StatusOK, deployevent.StateQueued},
		{"queued", http.StatusOK, deployevent.StateQueued},
		{"waiting", http.StatusOK, deployevent.StateQueued},
		{"in_progress", http.StatusOK, deployevent.StateStarted},
		{"success", http.StatusOK, deployevent.StateSucceeded},
		{"failure", http.StatusOK, deployevent.StateFailed},
		{"error", http.StatusOK, deployevent.StateFailed},
		// Replaced by a newer deployment: not a step of this deployment.
		{"inactive", http.StatusAccepted, ""},
		// A state GitHub may add later: answered, counted, not guessed.
		{"paused", http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			body := gitEditJSON(t, base, func(m map[string]any) {
				m["deployment_status"].(map[string]any)["state"] = tt.state
			})
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitHub(githubTestSecret, false), sink)
			rec := post(t, r, pathGitHub, body, githubHeaders("deployment_status", body))
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
			assert.Equal(t, tt.state, sourceState.Str())
		})
	}
}

func TestGitHubMapping(t *testing.T) {
	status := readTestdata(t, "github/github-deployment_status-success.json")
	created := readTestdata(t, "github/github-deployment-created.json")
	deployment := func(m map[string]any) map[string]any { return m["deployment"].(map[string]any) }
	tests := []struct {
		name  string
		event string
		base  []byte
		edit  func(m map[string]any)
		check func(t *testing.T, e deployevent.Event)
	}{
		{
			name: "real payload defaults", event: "deployment_status", base: status,
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, "Hello-World", e.Service)
				assert.Empty(t, e.Namespace)
				assert.Equal(t, "production", e.Environment)
				assert.Equal(t, "f95f852", e.Version, "branch ref: short sha is the version")
				assert.Equal(t, "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", e.Revision)
				assert.Equal(t, "master", e.RefName)
				assert.Equal(t, "https://github.com/Codertocat/Hello-World", e.RepositoryURL)
				assert.Equal(t, "deploy", e.Name)
				assert.Equal(t, "Codertocat", e.Actor)
				assert.Empty(t, e.PipelineRunURL, "target_url is empty in the real payload")
				assert.Equal(t, time.Date(2019, 5, 15, 15, 20, 55, 0, time.UTC), e.Timestamp)
				assert.Empty(t, e.Strategy)
			},
		},
		{
			name: "payload object overrides", event: "deployment", base: created,
			edit: func(m map[string]any) {
				deployment(m)["payload"] = map[string]any{
					"service": "checkout", "namespace": "shop", "version": "2.4.1",
					"previous_version": "2.4.0", "strategy": "canary", "unrelated": []any{1, 2},
				}
			},
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, "checkout", e.Service)
				assert.Equal(t, "shop", e.Namespace)
				assert.Equal(t, "2.4.1", e.Version)
				assert.Equal(t, "2.4.0", e.PreviousVersion)
				assert.Equal(t, deployevent.StrategyCanary, e.Strategy)
				assert.Equal(t, time.Date(2019, 5, 15, 15, 20, 53, 0, time.UTC), e.Timestamp)
			},
		},
		{
			name: "payload as a string holding JSON", event: "deployment", base: created,
			edit: func(m map[string]any) {
				deployment(m)["payload"] = `{"service":"checkout","version":3,"strategy":"Blue-Green"}`
			},
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, "checkout", e.Service)
				assert.Equal(t, "3", e.Version, "numbers are read as their literal")
				assert.Equal(t, deployevent.StrategyBlueGreen, e.Strategy)
			},
		},
		{
			name: "payload empty string", event: "deployment", base: created,
			edit: func(m map[string]any) { deployment(m)["payload"] = "" },
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, "Hello-World", e.Service)
				assert.Equal(t, "f95f852", e.Version)
			},
		},
		{
			name: "payload free text is ignored", event: "deployment", base: created,
			edit:  func(m map[string]any) { deployment(m)["payload"] = "deploy it {" },
			check: func(t *testing.T, e deployevent.Event) { assert.Equal(t, "Hello-World", e.Service) },
		},
		{
			name: "payload with odd types and unknown strategy", event: "deployment", base: created,
			edit: func(m map[string]any) {
				deployment(m)["payload"] = map[string]any{"service": map[string]any{"x": 1}, "version": nil, "strategy": "shadow"}
			},
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, "Hello-World", e.Service)
				assert.Equal(t, "f95f852", e.Version)
				assert.Equal(t, deployevent.StrategyUnknown, e.Strategy)
			},
		},
		{
			name: "tag ref is the version", event: "deployment", base: created,
			edit: func(m map[string]any) { deployment(m)["ref"] = "v1.2.3" },
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, "v1.2.3", e.Version)
				assert.Equal(t, "v1.2.3", e.RefName)
			},
		},
		{
			name: "no task: name is the environment", event: "deployment", base: created,
			edit:  func(m map[string]any) { delete(deployment(m), "task") },
			check: func(t *testing.T, e deployevent.Event) { assert.Equal(t, "production", e.Name) },
		},
		{
			name: "workflow run and log url", event: "deployment_status", base: status,
			edit: func(m map[string]any) {
				m["workflow_run"] = map[string]any{"id": 30433642, "html_url": "https://github.com/Codertocat/Hello-World/actions/runs/30433642"}
				st := m["deployment_status"].(map[string]any)
				st["target_url"] = "https://ci.example/target"
				st["log_url"] = "https://ci.example/log"
			},
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, "30433642", e.PipelineRunID)
				assert.Equal(t, "https://ci.example/log", e.PipelineRunURL)
			},
		},
		{
			name: "workflow run url when the status has none", event: "deployment", base: created,
			edit: func(m map[string]any) {
				m["workflow_run"] = map[string]any{"id": 7, "html_url": "https://github.com/Codertocat/Hello-World/actions/runs/7"}
			},
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, "7", e.PipelineRunID)
				assert.Equal(t, "https://github.com/Codertocat/Hello-World/actions/runs/7", e.PipelineRunURL)
			},
		},
		{
			name: "status without updated_at uses created_at; actor falls back to the status creator", event: "deployment_status", base: status,
			edit: func(m map[string]any) {
				delete(m, "sender")
				st := m["deployment_status"].(map[string]any)
				delete(st, "updated_at")
				st["created_at"] = "2019-05-15T15:21:00Z"
				st["creator"] = map[string]any{"login": "octobot"}
			},
			check: func(t *testing.T, e deployevent.Event) {
				assert.Equal(t, time.Date(2019, 5, 15, 15, 21, 0, 0, time.UTC), e.Timestamp)
				assert.Equal(t, "octobot", e.Actor)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.base
			if tt.edit != nil {
				body = gitEditJSON(t, body, tt.edit)
			}
			tt.check(t, githubParseOne(t, tt.event, body))
		})
	}
}

func TestGitHubRefVersion(t *testing.T) {
	tests := []struct{ ref, short, want string }{
		{"v1.2.3", "abc1234", "v1.2.3"},
		{"1.4.0-rc.1", "abc1234", "1.4.0-rc.1"},
		{"2024.05.01", "abc1234", "2024.05.01"},
		{"refs/tags/release-7", "abc1234", "release-7"},
		{"main", "abc1234", "abc1234"},
		{"refs/heads/main", "abc1234", "abc1234"},
		{"feature/v1.2", "abc1234", "abc1234"},
		{"main", "", "main"},
		{"refs/heads/main", "", "main"},
		{"", "", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, gitRefVersion(tt.ref, tt.short), "ref %q", tt.ref)
	}
}

func TestGitHubAuthorization(t *testing.T) {
	body := readTestdata(t, "github/github-deployment-created.json")
	signed := signGitHub(githubTestSecret, body)
	tests := []struct {
		name      string
		secret    string
		insecure  bool
		signature string // "" sends no header
		want      int
	}{
		{"valid signature", githubTestSecret, false, signed, http.StatusOK},
		{"valid signature with insecure flag still verified", githubTestSecret, true, signed, http.StatusOK},
		{"bad signature", githubTestSecret, false, signGitHub("another secret", body), http.StatusUnauthorized},
		{"bad signature with insecure flag", githubTestSecret, true, signGitHub("another secret", body), http.StatusUnauthorized},
		{"missing signature", githubTestSecret, false, "", http.StatusUnauthorized},
		{"missing signature with insecure flag and a secret", githubTestSecret, true, "", http.StatusUnauthorized},
		{"legacy sha1 header form", githubTestSecret, false, "sha1=" + strings.TrimPrefix(signed, "sha256="), http.StatusUnauthorized},
		{"not hex", githubTestSecret, false, "sha256=zz", http.StatusUnauthorized},
		{"truncated", githubTestSecret, false, signed[:len(signed)-2], http.StatusUnauthorized},
		{"empty secret fails closed", "", false, signed, http.StatusUnauthorized},
		{"empty secret fails closed unsigned", "", false, "", http.StatusUnauthorized},
		{"insecure flag accepts unsigned", "", true, "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitHub(tt.secret, tt.insecure), sink)
			headers := githubHeaders("deployment", body)
			delete(headers, "X-Hub-Signature-256")
			if tt.signature != "" {
				headers["X-Hub-Signature-256"] = tt.signature
			}
			rec := post(t, r, pathGitHub, body, headers)
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			if tt.want != http.StatusUnauthorized {
				assert.Equal(t, 1, sink.LogRecordCount())
				return
			}
			assert.Zero(t, sink.LogRecordCount())
			assert.JSONEq(t, `{"error":"unauthorized"}`, rec.Body.String())
			if tt.signature != "" {
				assert.NotContains(t, rec.Body.String(), strings.TrimPrefix(tt.signature, "sha256="))
			}
			assert.NotContains(t, rec.Body.String(), "Hello-World")
		})
	}
}

func TestGitHubEventTypes(t *testing.T) {
	tests := []struct {
		name    string
		event   string
		file    string
		want    int
		message string
	}{
		{"ping", "ping", "github-deployment-created.json", http.StatusOK, "pong"},
		{"workflow_run", "workflow_run", "github-workflow_run-completed.json", http.StatusAccepted, `event "workflow_run" ignored`},
		{"push", "push", "github-deployment-created.json", http.StatusAccepted, `event "push" ignored`},
		{"missing header", "", "github-deployment-created.json", http.StatusBadRequest, `missing header "X-GitHub-Event"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitHub(githubTestSecret, false), sink)
			body := readTestdata(t, "github/"+tt.file)
			headers := githubHeaders(tt.event, body)
			if tt.event == "" {
				delete(headers, "X-GitHub-Event")
			}
			rec := post(t, r, pathGitHub, body, headers)
			assert.Equal(t, tt.want, rec.Code)
			assert.Contains(t, gitResponseMessage(t, rec.Body.Bytes()), tt.message)
			assert.Zero(t, sink.LogRecordCount())
		})
	}
}

func TestGitHubFormEncoded(t *testing.T) {
	payload := readTestdata(t, "github/github-deployment_status-success.json")
	form := []byte("payload=" + url.QueryEscape(string(payload)))
	tests := []struct {
		name      string
		body      []byte
		signature string
		want      int
		message   string
	}{
		{"signed over the form bytes", form, signGitHub(githubTestSecret, form), http.StatusOK, ""},
		{"signed over the JSON inside", form, signGitHub(githubTestSecret, payload), http.StatusUnauthorized, "unauthorized"},
		{"no payload field", []byte("other=1"), signGitHub(githubTestSecret, []byte("other=1")), http.StatusBadRequest, `missing form field "payload"`},
		{"bad escape", []byte("payload=%zz"), signGitHub(githubTestSecret, []byte("payload=%zz")), http.StatusBadRequest, "invalid form body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitHub(githubTestSecret, false), sink)
			rec := post(t, r, pathGitHub, tt.body, map[string]string{
				"Content-Type":        "application/x-www-form-urlencoded",
				"X-GitHub-Event":      "deployment_status",
				"X-Hub-Signature-256": tt.signature,
			})
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			assert.Contains(t, gitResponseMessage(t, rec.Body.Bytes()), tt.message)
			if tt.want != http.StatusOK {
				assert.Zero(t, sink.LogRecordCount())
				return
			}
			// The same event as the JSON delivery of the same payload.
			assertGoldenLogs(t, "github/github-deployment_status-success_expected.yaml", allLogs(sink))
		})
	}
}

func TestGitHubBadRequests(t *testing.T) {
	created := readTestdata(t, "github/github-deployment-created.json")
	status := readTestdata(t, "github/github-deployment_status-success.json")
	edit := func(base []byte, f func(m map[string]any)) []byte { return gitEditJSON(t, base, f) }
	tests := []struct {
		name        string
		event       string
		contentType string
		body        []byte
		want        int
		message     string
	}{
		{"wrong content type", "deployment", "text/plain", created, http.StatusUnsupportedMediaType, "not supported"},
		{"no content type", "deployment", "", created, http.StatusUnsupportedMediaType, "not supported"},
		{"bad JSON", "deployment", "application/json", []byte(`{"deployment": {`), http.StatusBadRequest, "invalid JSON"},
		{"wrong type", "deployment", "application/json", []byte(`{"deployment": {"id": "x"}}`), http.StatusBadRequest, `invalid JSON: field "deployment.id"`},
		{"empty body", "deployment", "application/json", []byte(``), http.StatusBadRequest, "invalid JSON"},
		{"trailing data", "deployment", "application/json", append(append([]byte(nil), created...), []byte(`{}`)...), http.StatusBadRequest, "invalid JSON"},
		{"no deployment", "deployment", "application/json", edit(created, func(m map[string]any) { delete(m, "deployment") }), http.StatusBadRequest, `missing field "deployment"`},
		{"no deployment id", "deployment", "application/json", edit(created, func(m map[string]any) { delete(m["deployment"].(map[string]any), "id") }), http.StatusBadRequest, `missing field "deployment.id"`},
		{"no repository name", "deployment", "application/json", edit(created, func(m map[string]any) { delete(m, "repository") }), http.StatusBadRequest, `missing field "repository.name"`},
		{"no deployment_status", "deployment_status", "application/json", edit(status, func(m map[string]any) { delete(m, "deployment_status") }), http.StatusBadRequest, `missing field "deployment_status"`},
		{"no state", "deployment_status", "application/json", edit(status, func(m map[string]any) { delete(m["deployment_status"].(map[string]any), "state") }), http.StatusBadRequest, `missing field "deployment_status.state"`},
		{"bad time", "deployment", "application/json", edit(created, func(m map[string]any) { m["deployment"].(map[string]any)["created_at"] = "yesterday" }), http.StatusBadRequest, `field "deployment.created_at"`},
		{"other action", "deployment", "application/json", edit(created, func(m map[string]any) { m["action"] = "deleted" }), http.StatusAccepted, `action "deleted" ignored`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, withGitHub(githubTestSecret, false), sink)
			headers := githubHeaders(tt.event, tt.body)
			headers["Content-Type"] = tt.contentType
			rec := post(t, r, pathGitHub, tt.body, headers)
			assert.Equal(t, tt.want, rec.Code)
			assert.Contains(t, gitResponseMessage(t, rec.Body.Bytes()), tt.message)
			assert.NotContains(t, strings.TrimSpace(rec.Body.String()), "\n", "one-line message")
			assert.Zero(t, sink.LogRecordCount())
		})
	}
}
