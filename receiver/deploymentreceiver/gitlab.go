// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// GitLab delivery headers and the values that mark a deployment event.
const (
	headerGitLabEvent    = "X-Gitlab-Event"
	headerGitLabToken    = "X-Gitlab-Token"
	gitlabDeploymentHook = "Deployment Hook"
	gitlabDeploymentKind = "deployment"
	// attrGitLabEnvironmentTier keeps the environment's tier (production,
	// staging …), which the contract has no attribute for.
	attrGitLabEnvironmentTier = "gitlab.environment.tier"
)

// gitlabDeploymentEvent holds the fields of a Deployment Hook body that the
// mapping reads.
type gitlabDeploymentEvent struct {
	ObjectKind      string        `json:"object_kind"`
	Status          string        `json:"status"`
	StatusChangedAt string        `json:"status_changed_at"`
	DeploymentID    int64         `json:"deployment_id"`
	DeployableID    int64         `json:"deployable_id"`
	DeployableURL   string        `json:"deployable_url"`
	Environment     string        `json:"environment"`
	EnvironmentTier string        `json:"environment_tier"`
	Project         gitlabProject `json:"project"`
	ShortSHA        string        `json:"short_sha"`
	User            gitlabUser    `json:"user"`
	CommitURL       string        `json:"commit_url"`
	Ref             string        `json:"ref"`
}

type gitlabProject struct {
	Name              string `json:"name"`
	PathWithNamespace string `json:"path_with_namespace"`
	WebURL            string `json:"web_url"`
}

type gitlabUser struct {
	Username string `json:"username"`
}

// gitlabStates maps the Deployment Hook status to the contract's states.
var gitlabStates = map[string]deployevent.State{
	"running":  deployevent.StateStarted,
	"success":  deployevent.StateSucceeded,
	"failed":   deployevent.StateFailed,
	"canceled": deployevent.StateCancelled,
}

func newGitLabSource(cfg *GitLabConfig) *source {
	return &source{
		name:       deployevent.SourceGitLab,
		path:       pathGitLab,
		mediaTypes: []string{"application/json"},
		authorize:  gitlabAuthorizer(string(cfg.Token)),
		parse:      parseGitLab,
	}
}

// gitlabAuthorizer compares X-Gitlab-Token with the configured token; no
// token accepts every request. Comparing digests keeps the token's length secret too.
func gitlabAuthorizer(token string) func(http.Header, []byte) error {
	if token == "" {
		return func(http.Header, []byte) error { return nil }
	}
	want := sha256.Sum256([]byte(token))
	return func(h http.Header, _ []byte) error {
		got := sha256.Sum256([]byte(h.Get(headerGitLabToken)))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return errUnauthorized
		}
		return nil
	}
}

// parseGitLab turns a Deployment Hook delivery into one event.
func parseGitLab(h http.Header, body []byte) ([]deployevent.Event, error) {
	hook := strings.TrimSpace(h.Get(headerGitLabEvent))
	// Other hooks (Pipeline, Push …) are answered without reading their body.
	if hook != "" && hook != gitlabDeploymentHook {
		return nil, &ignoredError{status: http.StatusAccepted,
			msg: fmt.Sprintf("%q ignored: only %q carries deployments", hook, gitlabDeploymentHook)}
	}
	var ev gitlabDeploymentEvent
	if err := strictUnmarshal(body, &ev); err != nil {
		return nil, badRequest("invalid JSON: %s", jsonErrorMessage(err))
	}
	switch {
	case ev.ObjectKind == gitlabDeploymentKind:
	case ev.ObjectKind != "" && hook == "":
		return nil, &ignoredError{status: http.StatusAccepted,
			msg: fmt.Sprintf("object_kind %q ignored: only %q carries deployments", ev.ObjectKind, gitlabDeploymentKind)}
	case ev.ObjectKind != "":
		return nil, badRequest("field %q: %q does not match %s %q", "object_kind", ev.ObjectKind, headerGitLabEvent, hook)
	case hook == "":
		return nil, badRequest("missing header %q and field %q", headerGitLabEvent, "object_kind")
	}
	e, err := ev.toEvent()
	if err != nil {
		return nil, err
	}
	return []deployevent.Event{e}, nil
}

func (ev *gitlabDeploymentEvent) toEvent() (deployevent.Event, error) {
	if ev.DeploymentID <= 0 {
		return deployevent.Event{}, badRequest("missing field %q", "deployment_id")
	}
	e := deployevent.Event{
		Service:        gitFirstNonEmpty(strings.TrimSpace(ev.Project.Name), strings.TrimSpace(gitlabLastPathSegment(ev.Project.PathWithNamespace))),
		Environment:    ev.Environment,
		Version:        gitRefVersion(ev.Ref, ev.ShortSHA),
		ID:             "gitlab-" + strconv.FormatInt(ev.DeploymentID, 10),
		Name:           ev.Environment,
		Source:         deployevent.SourceGitLab,
		SourceState:    ev.Status,
		Revision:       gitFirstNonEmpty(gitlabCommitFromURL(ev.CommitURL), ev.ShortSHA),
		RefName:        gitRefName(ev.Ref),
		RepositoryURL:  ev.Project.WebURL,
		PipelineRunURL: ev.DeployableURL,
		Actor:          ev.User.Username,
	}
	if e.Service == "" {
		return e, badRequest("missing field %q", "project.name")
	}
	if ev.Status == "" {
		return e, badRequest("missing field %q", "status")
	}
	state, ok := gitlabStates[ev.Status]
	if !ok {
		// EE also fires the hook on approvals (status "approved", "rejected"): not lifecycle steps.
		return e, &ignoredError{status: http.StatusAccepted,
			msg: fmt.Sprintf("deployment status %q ignored: not a lifecycle status", ev.Status)}
	}
	e.State = state
	if ev.DeployableID > 0 {
		e.PipelineRunID = strconv.FormatInt(ev.DeployableID, 10)
	}
	if ev.EnvironmentTier != "" {
		e.Attributes = map[string]any{attrGitLabEnvironmentTier: ev.EnvironmentTier}
	}
	var err error
	if e.Timestamp, err = parseGitLabTime("status_changed_at", ev.StatusChangedAt); err != nil {
		return e, err
	}
	return e, nil
}

// parseGitLabTime reads GitLab's hook times: Ruby's "2021-04-28 21:50:00 +0200",
// its UTC form "2021-04-28 19:50:00 UTC", or RFC 3339.
func parseGitLabTime(field, value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02 15:04:05 -0700", value); err == nil {
		return t, nil
	}
	// Not the "MST" layout: Go would accept any zone abbreviation at offset 0.
	if local, ok := strings.CutSuffix(value, " UTC"); ok {
		if t, err := time.ParseInLocation(time.DateTime, local, time.UTC); err == nil {
			return t, nil
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, value); err == nil {
		return t, nil
	}
	return time.Time{}, badRequest(`field %q: %q is not a time like "2021-04-28 21:50:00 +0200"`, field, value)
}

// gitlabCommitFromURL takes the full sha from commit_url (…/-/commit/<sha>): the
// hook carries no other full sha.
func gitlabCommitFromURL(commitURL string) string {
	i := strings.LastIndex(commitURL, "/commit/")
	if i < 0 {
		return ""
	}
	sha := commitURL[i+len("/commit/"):]
	if len(sha) != 40 && len(sha) != 64 {
		return ""
	}
	for _, c := range sha {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return ""
		}
	}
	return sha
}

func gitlabLastPathSegment(path string) string {
	return path[strings.LastIndexByte(path, '/')+1:]
}
