// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// argoCDNotification is the body the deploylens templates for Argo CD
// notifications render (testdata/argocd/deploylens-notifications-cm.yaml).
// Argo CD has no wire format of its own: this struct and those templates are
// the contract. Optional fields may arrive as null, "" or "<no value>".
type argoCDNotification struct {
	Event             string   `json:"event"`
	App               string   `json:"app"`
	Namespace         string   `json:"namespace"`
	Project           string   `json:"project"`
	Revision          string   `json:"revision"`
	OperationRevision string   `json:"operation_revision"`
	SyncRevision      string   `json:"sync_revision"`
	SyncStatus        string   `json:"sync_status"`
	HealthStatus      string   `json:"health_status"`
	HealthChangedAt   string   `json:"health_changed_at"`
	OperationPhase    string   `json:"operation_phase"`
	OperationMessage  string   `json:"operation_message"`
	StartedAt         string   `json:"started_at"`
	FinishedAt        string   `json:"finished_at"`
	InitiatedBy       string   `json:"initiated_by"`
	RepoURL           string   `json:"repo_url"`
	TargetRevision    string   `json:"target_revision"`
	Images            []string `json:"images"`
	Service           string   `json:"service"`
	Environment       string   `json:"environment"`
	Version           string   `json:"version"`
	Time              string   `json:"time"`
}

// Event names the deploylens Argo CD templates send, one per trigger.
const (
	argoCDEventSyncRunning    = "on-sync-running"
	argoCDEventDeployed       = "on-deployed"
	argoCDEventSyncFailed     = "on-sync-failed"
	argoCDEventHealthDegraded = "on-health-degraded"
)

var argoCDEventStates = map[string]deployevent.State{
	argoCDEventSyncRunning: deployevent.StateStarted,
	argoCDEventDeployed:    deployevent.StateSucceeded,
	argoCDEventSyncFailed:  deployevent.StateFailed,
	// A deployment that leaves the application Degraded is a failed change (DORA).
	argoCDEventHealthDegraded: deployevent.StateFailed,
}

// argoCDPhaseStates maps operationState.phase when the event is not one of
// ours (a user's own trigger pointed at the same body).
var argoCDPhaseStates = map[string]deployevent.State{
	"Running":     deployevent.StateStarted,
	"Succeeded":   deployevent.StateSucceeded,
	"Failed":      deployevent.StateFailed,
	"Error":       deployevent.StateFailed,
	"Terminating": deployevent.StateCancelled,
}

const (
	argoCDEventList = "on-sync-running, on-deployed, on-sync-failed, on-health-degraded"
	argoCDPhaseList = "Running, Succeeded, Failed, Error, Terminating"
)

func newArgoCDSource(cfg *ArgoCDConfig) *source {
	return &source{
		name: deployevent.SourceArgoCD,
		path: pathArgoCD,
		// notifications-engine sends only the headers configured on the service.
		mediaTypes: []string{"", "application/json"},
		authorize:  bearerAuthorizer(string(cfg.BearerToken)),
		parse:      parseArgoCD,
	}
}

func parseArgoCD(_ http.Header, body []byte) ([]deployevent.Event, error) {
	var n argoCDNotification
	if err := decodeNotification(body, &n); err != nil {
		return nil, err
	}
	app := renderedString(n.App)
	if app == "" {
		return nil, badRequest(`missing field "app"`)
	}
	event := renderedString(n.Event)
	phase := renderedString(n.OperationPhase)
	state, known := argoCDEventStates[event]
	sourceState := event
	if !known {
		var ok bool
		if state, ok = argoCDPhaseStates[phase]; !ok {
			if event == "" && phase == "" {
				return nil, badRequest(`missing field "event"`)
			}
			return nil, badRequest(`field "event": %q is not one of %s, and field "operation_phase": %q is not one of %s`,
				event, argoCDEventList, phase, argoCDPhaseList)
		}
		if sourceState == "" {
			sourceState = phase
		}
	}

	startedAt, err := renderedTime("started_at", n.StartedAt)
	if err != nil {
		return nil, err
	}
	finishedAt, err := renderedTime("finished_at", n.FinishedAt)
	if err != nil {
		return nil, err
	}
	healthChangedAt, err := renderedTime("health_changed_at", n.HealthChangedAt)
	if err != nil {
		return nil, err
	}
	sentAt, err := renderedTime("time", n.Time)
	if err != nil {
		return nil, err
	}

	namespace := renderedString(n.Namespace)
	service := renderedString(n.Service)
	if service == "" {
		service = app
	}
	revision := firstRendered(n.Revision, n.OperationRevision, n.SyncRevision)
	version := renderedString(n.Version)
	// summary.images shows the live images, which are the new ones only once
	// the sync has succeeded.
	if version == "" && phase == "Succeeded" && state != deployevent.StateStarted {
		version = versionFromImages(n.Images, service, app)
	}

	e := deployevent.Event{
		Service:       service,
		Namespace:     namespace,
		Environment:   renderedString(n.Environment),
		Version:       version,
		ID:            argoCDDeploymentID(namespace, app, renderedString(n.OperationRevision), startedAt, revision),
		Name:          app,
		State:         state,
		SourceState:   sourceState,
		Source:        deployevent.SourceArgoCD,
		Revision:      revision,
		RepositoryURL: renderedString(n.RepoURL),
		Actor:         renderedString(n.InitiatedBy),
		Timestamp:     argoCDTimestamp(event, state, startedAt, finishedAt, healthChangedAt, sentAt),
		Attributes: renderedAttributes(
			"argocd.app.project", n.Project,
			"argocd.app.sync.status", n.SyncStatus,
			"argocd.app.health.status", n.HealthStatus,
			"argocd.app.operation.phase", n.OperationPhase,
			"argocd.app.operation.message", n.OperationMessage,
		),
	}
	// "HEAD" and a pinned commit are not branch or tag names.
	if target := renderedString(n.TargetRevision); target != "HEAD" && target != revision {
		e.RefName = target
	}
	return []deployevent.Event{e}, nil
}

// argoCDDeploymentID identifies one sync operation. Every notification about
// it renders the same operationState, so startedAt and the requested revision
// (fixed when the operation starts) are equal in all of them, including a
// later on-health-degraded; syncResult.revision is not used because it is
// not yet written when on-sync-running may fire.
func argoCDDeploymentID(namespace, app, operationRevision string, startedAt time.Time, revision string) string {
	if !startedAt.IsZero() {
		return deployevent.DeriveID(deployevent.SourceArgoCD, namespace, app, operationRevision, startedAt.UTC().Format(time.RFC3339Nano))
	}
	// No operation (an application that degrades before any sync).
	return deployevent.DeriveID(deployevent.SourceArgoCD, namespace, app, revision)
}

// argoCDTimestamp picks when the event happened from the operation's own times.
func argoCDTimestamp(event string, state deployevent.State, startedAt, finishedAt, healthChangedAt, sentAt time.Time) time.Time {
	switch {
	case event == argoCDEventHealthDegraded:
		// The operation finished earlier; the health change is the event.
		return firstTime(healthChangedAt, sentAt)
	case event == argoCDEventDeployed:
		// Deployed means synced and healthy: whichever came last.
		if !finishedAt.IsZero() && healthChangedAt.After(finishedAt) {
			return healthChangedAt
		}
		return firstTime(finishedAt, startedAt, sentAt)
	case state == deployevent.StateStarted:
		return firstTime(startedAt, sentAt)
	}
	return firstTime(finishedAt, startedAt, sentAt)
}

// The helpers below serve both notifications-engine sources (Argo CD and
// Argo Rollouts), whose bodies are rendered by Go text/template.

// maxNotificationAttribute bounds free-text attributes (status messages).
const maxNotificationAttribute = 512

// decodeNotification decodes a rendered template body: one JSON object.
func decodeNotification(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return badRequest("empty body: send the JSON object the deploylens template renders")
	}
	if trimmed[0] != '{' {
		return badRequest("invalid JSON: expected an object")
	}
	if err := strictUnmarshal(trimmed, v); err != nil {
		return badRequest("invalid JSON: %s", jsonErrorMessage(err))
	}
	return nil
}

// renderedString normalises a templated value: Go templates print a missing
// map key as "<no value>" (and a nil pointer as "<nil>"), which means unset.
func renderedString(s string) string {
	s = strings.TrimSpace(s)
	if s == "<no value>" || s == "<nil>" {
		return ""
	}
	return s
}

func firstRendered(values ...string) string {
	for _, v := range values {
		if r := renderedString(v); r != "" {
			return r
		}
	}
	return ""
}

func renderedTime(field, value string) (time.Time, error) {
	t, err := parseTime(field, renderedString(value))
	if err != nil {
		return time.Time{}, badRequest("%s", err)
	}
	return t, nil
}

func firstTime(times ...time.Time) time.Time {
	for _, t := range times {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// renderedAttributes builds the extra record attributes from key, value
// pairs, leaving out unset values and bounding each one's length.
func renderedAttributes(pairs ...string) map[string]any {
	var out map[string]any
	for i := 0; i+1 < len(pairs); i += 2 {
		v := boundedText(renderedString(pairs[i+1]), maxNotificationAttribute)
		if v == "" {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		out[pairs[i]] = v
	}
	return out
}

// boundedText cuts s to at most maxBytes without splitting a UTF-8 sequence.
func boundedText(s string, maxBytes int) string {
	if len(s) <= maxBytes {
		return s
	}
	cut := maxBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// renderedScalar accepts a JSON string, number or null: hand-written
// templates often print annotations and counters unquoted.
type renderedScalar string

func (s *renderedScalar) UnmarshalJSON(data []byte) error {
	switch {
	case bytes.Equal(data, []byte("null")):
		*s = ""
	case len(data) > 0 && data[0] == '"':
		var str string
		if err := json.Unmarshal(data, &str); err != nil {
			return err
		}
		*s = renderedScalar(str)
	case len(data) > 0 && (data[0] == '-' || (data[0] >= '0' && data[0] <= '9')):
		*s = renderedScalar(data)
	default:
		kind := "object"
		switch data[0] {
		case '[':
			kind = "array"
		case 't', 'f':
			kind = "bool"
		}
		return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[string]()}
	}
	return nil
}

// versionFromImages takes the version from an image tag: the only image, or
// the one whose repository is named like the service.
func versionFromImages(images []string, names ...string) string {
	var distinct []string
	for _, image := range images {
		image = renderedString(image)
		if image != "" && !slices.Contains(distinct, image) {
			distinct = append(distinct, image)
		}
	}
	if len(distinct) == 1 {
		return containerImageTag(distinct[0])
	}
	for _, image := range distinct {
		if slices.Contains(names, containerImageName(image)) {
			return containerImageTag(image)
		}
	}
	return ""
}

// containerImageTag returns the tag of an image reference: the text after the
// last ':' of the part after the last '/', so a registry port is not a tag; a
// digest is dropped. "" when the reference has no tag.
func containerImageTag(ref string) string {
	ref = strings.TrimSpace(ref)
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		ref = ref[:at]
	}
	slash := strings.LastIndexByte(ref, '/')
	if colon := strings.LastIndexByte(ref, ':'); colon > slash {
		return ref[colon+1:]
	}
	return ""
}

// containerImageName returns the last path element of an image reference,
// without tag or digest ("ghcr.io/acme/checkout:1.2" → "checkout").
func containerImageName(ref string) string {
	ref = strings.TrimSpace(ref)
	if at := strings.IndexByte(ref, '@'); at >= 0 {
		ref = ref[:at]
	}
	slash := strings.LastIndexByte(ref, '/')
	if colon := strings.LastIndexByte(ref, ':'); colon > slash {
		ref = ref[:colon]
	}
	return ref[slash+1:]
}
