// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// GitHub delivery headers and the media types GitHub can send.
const (
	headerGitHubEvent     = "X-GitHub-Event"
	headerGitHubSignature = "X-Hub-Signature-256"
	githubSignaturePrefix = "sha256="
	githubMediaTypeJSON   = "application/json"
	githubMediaTypeForm   = "application/x-www-form-urlencoded"
)

// githubEvent holds the fields of a deployment or deployment_status delivery
// that the mapping reads; everything else in the body is skipped.
type githubEvent struct {
	Action           string                  `json:"action"`
	Deployment       *githubDeployment       `json:"deployment"`
	DeploymentStatus *githubDeploymentStatus `json:"deployment_status"`
	Repository       githubRepository        `json:"repository"`
	Sender           githubUser              `json:"sender"`
	WorkflowRun      *githubWorkflowRun      `json:"workflow_run"`
}

type githubDeployment struct {
	ID          int64           `json:"id"`
	SHA         string          `json:"sha"`
	Ref         string          `json:"ref"`
	Task        string          `json:"task"`
	Environment string          `json:"environment"`
	Payload     json.RawMessage `json:"payload"`
	CreatedAt   string          `json:"created_at"`
	Creator     githubUser      `json:"creator"`
}

type githubDeploymentStatus struct {
	State       string     `json:"state"`
	Environment string     `json:"environment"`
	TargetURL   string     `json:"target_url"`
	LogURL      string     `json:"log_url"`
	CreatedAt   string     `json:"created_at"`
	UpdatedAt   string     `json:"updated_at"`
	Creator     githubUser `json:"creator"`
}

type githubRepository struct {
	Name    string `json:"name"`
	HTMLURL string `json:"html_url"`
}

type githubUser struct {
	Login string `json:"login"`
}

type githubWorkflowRun struct {
	ID      int64  `json:"id"`
	HTMLURL string `json:"html_url"`
}

// githubDeploymentPayload is the part of the user-defined deployment.payload
// that may override the mapping.
type githubDeploymentPayload struct {
	Service         githubPayloadString `json:"service"`
	Namespace       githubPayloadString `json:"namespace"`
	Version         githubPayloadString `json:"version"`
	PreviousVersion githubPayloadString `json:"previous_version"`
	Strategy        githubPayloadString `json:"strategy"`
}

// githubPayloadString reads a JSON string or number and ignores any other type, so a
// free-form payload can never make a valid delivery fail.
type githubPayloadString string

func (s *githubPayloadString) UnmarshalJSON(data []byte) error {
	switch {
	case len(data) == 0:
	case data[0] == '"':
		var v string
		if err := json.Unmarshal(data, &v); err != nil {
			return err
		}
		*s = githubPayloadString(strings.TrimSpace(v))
	case data[0] == '-' || (data[0] >= '0' && data[0] <= '9'):
		*s = githubPayloadString(data)
	}
	return nil
}

// githubStates maps deployment_status.state to the contract's states.
var githubStates = map[string]deployevent.State{
	"pending":     deployevent.StateQueued,
	"queued":      deployevent.StateQueued,
	"waiting":     deployevent.StateQueued,
	"in_progress": deployevent.StateStarted,
	"success":     deployevent.StateSucceeded,
	"failure":     deployevent.StateFailed,
	"error":       deployevent.StateFailed,
}

func newGitHubSource(cfg *GitHubConfig) *source {
	return &source{
		name:       deployevent.SourceGitHub,
		path:       pathGitHub,
		mediaTypes: []string{githubMediaTypeJSON, githubMediaTypeForm},
		authorize:  githubAuthorizer(string(cfg.Secret), cfg.InsecureSkipVerify),
		parse:      parseGitHub,
	}
}

// githubAuthorizer checks X-Hub-Signature-256 over the raw body. An empty
// secret refuses everything unless insecureSkipVerify: a secret lost from the
// config must not open the endpoint.
func githubAuthorizer(secret string, insecureSkipVerify bool) func(http.Header, []byte) error {
	if secret == "" {
		if insecureSkipVerify {
			return func(http.Header, []byte) error { return nil }
		}
		return func(http.Header, []byte) error { return errUnauthorized }
	}
	key := []byte(secret)
	return func(h http.Header, body []byte) error {
		sig, ok := strings.CutPrefix(h.Get(headerGitHubSignature), githubSignaturePrefix)
		if !ok {
			return errUnauthorized
		}
		got, err := hex.DecodeString(sig)
		if err != nil {
			return errUnauthorized
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(body)
		if !hmac.Equal(got, mac.Sum(nil)) {
			return errUnauthorized
		}
		return nil
	}
}

// parseGitHub turns a deployment or deployment_status delivery into one event.
func parseGitHub(h http.Header, body []byte) ([]deployevent.Event, error) {
	eventType := strings.ToLower(strings.TrimSpace(h.Get(headerGitHubEvent)))
	switch eventType {
	case "deployment", "deployment_status":
	case "":
		return nil, badRequest("missing header %q", headerGitHubEvent)
	case "ping":
		return nil, &ignoredError{status: http.StatusOK, msg: "pong"}
	default:
		return nil, &ignoredError{status: http.StatusAccepted,
			msg: fmt.Sprintf("event %q ignored: only deployment and deployment_status carry deployments", eventType)}
	}
	payload, err := githubPayload(h.Get("Content-Type"), body)
	if err != nil {
		return nil, err
	}
	var ev githubEvent
	if err = strictUnmarshal(payload, &ev); err != nil {
		return nil, badRequest("invalid JSON: %s", jsonErrorMessage(err))
	}
	// Both events only have the "created" action; a new one is not ours to guess.
	if ev.Action != "" && ev.Action != "created" {
		return nil, &ignoredError{status: http.StatusAccepted,
			msg: fmt.Sprintf("%s action %q ignored", eventType, ev.Action)}
	}
	e, err := ev.toEvent(eventType == "deployment_status")
	if err != nil {
		return nil, err
	}
	return []deployevent.Event{e}, nil
}

// githubPayload returns the JSON of a delivery: the body itself, or the
// `payload` field of a form-encoded one.
func githubPayload(contentType string, body []byte) ([]byte, error) {
	mediaType, _, _ := mime.ParseMediaType(contentType)
	if mediaType != githubMediaTypeForm {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, badRequest("invalid form body: %s", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, badRequest("missing form field %q", "payload")
	}
	return []byte(payload), nil
}

func (ev *githubEvent) toEvent(isStatus bool) (deployevent.Event, error) {
	d := ev.Deployment
	if d == nil {
		return deployevent.Event{}, badRequest("missing field %q", "deployment")
	}
	if d.ID <= 0 {
		return deployevent.Event{}, badRequest("missing field %q", "deployment.id")
	}
	payload := decodeGitHubPayload(d.Payload)
	e := deployevent.Event{
		Service:         gitFirstNonEmpty(string(payload.Service), strings.TrimSpace(ev.Repository.Name)),
		Namespace:       string(payload.Namespace),
		Environment:     d.Environment,
		Version:         gitFirstNonEmpty(string(payload.Version), gitRefVersion(d.Ref, gitShortSHA(d.SHA, 7))),
		PreviousVersion: string(payload.PreviousVersion),
		ID:              "github-" + strconv.FormatInt(d.ID, 10),
		Name:            gitFirstNonEmpty(d.Task, d.Environment),
		Strategy:        githubPayloadStrategy(string(payload.Strategy)),
		Source:          deployevent.SourceGitHub,
		Revision:        d.SHA,
		RefName:         gitRefName(d.Ref),
		RepositoryURL:   ev.Repository.HTMLURL,
		Actor:           gitFirstNonEmpty(ev.Sender.Login, d.Creator.Login),
	}
	if e.Service == "" {
		return e, badRequest("missing field %q", "repository.name")
	}
	if run := ev.WorkflowRun; run != nil {
		if run.ID > 0 {
			e.PipelineRunID = strconv.FormatInt(run.ID, 10)
		}
		e.PipelineRunURL = run.HTMLURL
	}
	var err error
	if !isStatus {
		e.State = deployevent.StateQueued
		e.SourceState = "created"
		if e.Timestamp, err = parseTime("deployment.created_at", d.CreatedAt); err != nil {
			return e, badRequest("%s", err)
		}
		return e, nil
	}

	st := ev.DeploymentStatus
	if st == nil {
		return e, badRequest("missing field %q", "deployment_status")
	}
	if st.State == "" {
		return e, badRequest("missing field %q", "deployment_status.state")
	}
	state, ok := githubStates[st.State]
	switch {
	case st.State == "inactive":
		// A newer deployment replaced this one: not a step of this deployment's lifecycle.
		return e, &ignoredError{status: http.StatusAccepted, msg: `deployment_status "inactive" ignored: a newer deployment replaced this one`}
	case !ok:
		return e, &ignoredError{status: http.StatusAccepted,
			msg: fmt.Sprintf("deployment_status state %q ignored: not a known GitHub deployment state", st.State)}
	}
	e.State = state
	e.SourceState = st.State
	if e.Environment == "" {
		e.Environment = st.Environment
		e.Name = gitFirstNonEmpty(d.Task, st.Environment)
	}
	e.Actor = gitFirstNonEmpty(ev.Sender.Login, st.Creator.Login, d.Creator.Login)
	e.PipelineRunURL = gitFirstNonEmpty(st.LogURL, st.TargetURL, e.PipelineRunURL)
	if st.UpdatedAt != "" {
		e.Timestamp, err = parseTime("deployment_status.updated_at", st.UpdatedAt)
	} else {
		e.Timestamp, err = parseTime("deployment_status.created_at", st.CreatedAt)
	}
	if err != nil {
		return e, badRequest("%s", err)
	}
	return e, nil
}

// decodeGitHubPayload reads deployment.payload: an object, a string holding
// one, or empty. It is free-form user data, so anything else is ignored.
func decodeGitHubPayload(raw json.RawMessage) githubDeploymentPayload {
	var p githubDeploymentPayload
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return p
		}
		raw = bytes.TrimSpace([]byte(s))
	}
	if len(raw) == 0 || raw[0] != '{' {
		return p
	}
	if json.Unmarshal(raw, &p) != nil {
		return githubDeploymentPayload{}
	}
	return p
}

// githubPayloadStrategy reads a user-given strategy leniently ("blue-green" is
// blue_green); anything unrecognised is unknown rather than a refused delivery.
func githubPayloadStrategy(s string) deployevent.Strategy {
	if s == "" {
		return ""
	}
	norm := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "-", "_")
	if norm == "bluegreen" {
		norm = string(deployevent.StrategyBlueGreen)
	}
	if st := deployevent.Strategy(norm); st.Valid() {
		return st
	}
	return deployevent.StrategyUnknown
}

// gitVersionTag matches refs that name a release (v1.2.3, 1.4.0-rc.1, 2024.05.01).
var gitVersionTag = regexp.MustCompile(`^[vV]?[0-9]+(\.[0-9]+)+([-+.][0-9A-Za-z.+_-]*)?$`)

// gitRefVersion is the version a deployment of ref ships. A release tag names it;
// a branch does not (every deploy of main would be "main"), so the short
// commit sha stands in: what builds from a branch usually report as version.
func gitRefVersion(ref, shortSHA string) string {
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok && tag != "" {
		return tag
	}
	if gitVersionTag.MatchString(ref) {
		return ref
	}
	if shortSHA != "" {
		return shortSHA
	}
	return gitRefName(ref)
}

// gitRefName is the branch or tag name of a ref, without refs/heads/ or refs/tags/.
func gitRefName(ref string) string {
	if name, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return name
	}
	return strings.TrimPrefix(ref, "refs/tags/")
}

// gitShortSHA abbreviates a commit sha the way the tool's UI shows it.
func gitShortSHA(sha string, n int) string {
	if len(sha) > n {
		return sha[:n]
	}
	return sha
}

func gitFirstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}
