// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"net/http"
	"strconv"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// argoRolloutsNotification is the body the deploylens templates for Argo
// Rollouts notifications render
// (testdata/argo-rollouts/deploylens-rollouts-notification-cm.yaml). Like
// Argo CD, Rollouts has no wire format of its own: this is the contract.
type argoRolloutsNotification struct {
	Event       string         `json:"event"`
	Rollout     string         `json:"rollout"`
	Namespace   string         `json:"namespace"`
	Strategy    string         `json:"strategy"`
	Revision    renderedScalar `json:"revision"`
	PodHash     string         `json:"pod_hash"`
	StableHash  string         `json:"stable_hash"`
	Step        renderedScalar `json:"step"`
	Phase       string         `json:"phase"`
	Message     string         `json:"message"`
	Image       string         `json:"image"`
	Service     string         `json:"service"`
	Environment string         `json:"environment"`
	Version     string         `json:"version"`
	Time        string         `json:"time"`
}

// argoRolloutsEventStates maps the triggers' names: Rollouts names a trigger
// after the controller event reason ("RolloutAborted" → on-rollout-aborted).
var argoRolloutsEventStates = map[string]deployevent.State{
	"on-rollout-updated":        deployevent.StateStarted,
	"on-rollout-step-completed": deployevent.StateProgressing,
	"on-rollout-paused":         deployevent.StateProgressing,
	"on-analysis-run-running":   deployevent.StateProgressing,
	// An analysis error is retried; only too many errors abort the rollout.
	"on-analysis-run-error": deployevent.StateProgressing,
	"on-rollout-completed":  deployevent.StateSucceeded,
	// An aborted rollout goes back to the stable ReplicaSet.
	"on-rollout-aborted":     deployevent.StateRolledBack,
	"on-analysis-run-failed": deployevent.StateFailed,
}

const (
	argoRolloutsEventList = "on-rollout-updated, on-rollout-step-completed, on-rollout-paused, on-analysis-run-running, " +
		"on-analysis-run-error, on-rollout-completed, on-rollout-aborted, on-analysis-run-failed, on-scaling-replica-set"
	// Scaling a rollout changes no version.
	argoRolloutsEventScaling = "on-scaling-replica-set"
)

func newArgoRolloutsSource(cfg *ArgoRolloutsConfig) *source {
	return &source{
		name: deployevent.SourceArgoRollouts,
		path: pathArgoRollouts,
		// notifications-engine sends only the headers configured on the service.
		mediaTypes: []string{"", "application/json"},
		authorize:  bearerAuthorizer(string(cfg.BearerToken)),
		parse:      parseArgoRollouts,
	}
}

func parseArgoRollouts(_ http.Header, body []byte) ([]deployevent.Event, error) {
	var n argoRolloutsNotification
	if err := decodeNotification(body, &n); err != nil {
		return nil, err
	}
	rollout := renderedString(n.Rollout)
	if rollout == "" {
		return nil, badRequest(`missing field "rollout"`)
	}
	event := renderedString(n.Event)
	state, known := argoRolloutsEventStates[event]
	switch {
	case event == "":
		return nil, badRequest(`missing field "event"`)
	case event == argoRolloutsEventScaling:
		return nil, &ignoredError{status: http.StatusAccepted, msg: event + ": scaling is not a deployment event"}
	case !known:
		return nil, badRequest(`field "event": %q is not one of %s`, event, argoRolloutsEventList)
	}
	// The revision annotation is bumped when the update starts and kept until
	// the next one, so every event of one update carries it. currentPodHash
	// is only a fallback: on-rollout-updated is sent before the status names
	// the new ReplicaSet, so it still carries the previous hash.
	revision := renderedString(string(n.Revision))
	idPart := revision
	if idPart == "" {
		idPart = renderedString(n.PodHash)
	}
	if idPart == "" {
		return nil, badRequest(`missing field "revision" (or "pod_hash"): one tells one rollout update from the next`)
	}
	var strategy deployevent.Strategy
	if raw := renderedString(n.Strategy); raw != "" {
		if strategy = normalizeStrategy(raw); !strategy.Valid() {
			return nil, badRequest(`field "strategy": %q is not one of canary, blue_green, rolling, recreate, unknown`, raw)
		}
	}
	var step int64
	hasStep := false
	if raw := renderedString(string(n.Step)); raw != "" {
		var err error
		if step, err = strconv.ParseInt(raw, 10, 64); err != nil {
			return nil, badRequest(`field "step": %q is not a step index`, raw)
		}
		hasStep = true
	}
	timestamp, err := renderedTime("time", n.Time)
	if err != nil {
		return nil, err
	}

	namespace := renderedString(n.Namespace)
	service := renderedString(n.Service)
	if service == "" {
		service = rollout
	}
	version := renderedString(n.Version)
	if version == "" {
		version = containerImageTag(renderedString(n.Image))
	}
	// The rollout revision counts updates; it is not a VCS revision.
	attrs := renderedAttributes(
		"argo_rollouts.revision", revision,
		"argo_rollouts.rollout.phase", n.Phase,
		"argo_rollouts.rollout.message", n.Message,
	)
	if hasStep {
		if attrs == nil {
			attrs = map[string]any{}
		}
		attrs["argo_rollouts.step.index"] = step
	}
	e := deployevent.Event{
		Service:     service,
		Namespace:   namespace,
		Environment: renderedString(n.Environment),
		Version:     version,
		ID:          deployevent.DeriveID(deployevent.SourceArgoRollouts, namespace, rollout, idPart),
		Name:        rollout,
		State:       state,
		SourceState: event,
		Strategy:    strategy,
		Source:      deployevent.SourceArgoRollouts,
		Timestamp:   timestamp,
		Attributes:  attrs,
	}
	return []deployevent.Event{e}, nil
}
