// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// flaggerPayload is Flagger's webhook body (CanaryWebhookPayload), the same
// for event hooks and for gate/rollout hooks. Event hooks add eventMessage,
// eventType and timestamp (Unix ms, as a string) to the hook's metadata.
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// Flagger canary phases (CanaryPhase), in the order a rollout goes through them.
const (
	flaggerPhaseInitializing     = "Initializing"
	flaggerPhaseInitialized      = "Initialized"
	flaggerPhaseWaiting          = "Waiting"
	flaggerPhaseProgressing      = "Progressing"
	flaggerPhaseWaitingPromotion = "WaitingPromotion"
	flaggerPhasePromoting        = "Promoting"
	flaggerPhaseFinalising       = "Finalising"
	flaggerPhaseSucceeded        = "Succeeded"
	flaggerPhaseFailed           = "Failed"
	flaggerPhaseTerminating      = "Terminating"
	flaggerPhaseTerminated       = "Terminated"
)

var flaggerPhases = []string{
	flaggerPhaseInitializing, flaggerPhaseInitialized, flaggerPhaseWaiting, flaggerPhaseProgressing,
	flaggerPhaseWaitingPromotion, flaggerPhasePromoting, flaggerPhaseFinalising, flaggerPhaseSucceeded,
	flaggerPhaseFailed, flaggerPhaseTerminating, flaggerPhaseTerminated,
}

// Beginnings of the event messages that say more than the phase sent with
// them (pkg/controller/scheduler.go). Flagger sends an event with the phase
// the canary had when its analysis tick began, so "Promotion completed!"
// arrives as Finalising (Progressing when analysis is skipped), never Succeeded.
const (
	flaggerMsgStarting    = "Starting canary analysis"
	flaggerMsgScalingUp   = "New revision detected! Scaling up"
	flaggerMsgRestarting  = "New revision detected! Restarting analysis"
	flaggerMsgPromoted    = "Promotion completed!"
	flaggerMsgFailed      = "Canary failed!"
	flaggerMsgPostRollout = "Post-rollout"
)

// Hook metadata keys deploylens reads. No other key is copied: hook metadata
// often carries credentials (Flagger's own example has a "token").
const (
	flaggerMetaMessage     = "eventMessage"
	flaggerMetaType        = "eventType"
	flaggerMetaTimestamp   = "timestamp"
	flaggerMetaService     = "service"
	flaggerMetaEnvironment = "environment"
	flaggerMetaVersion     = "version"
	flaggerMetaStrategy    = "strategy"
)

func newFlaggerSource(cfg *FlaggerConfig) *source {
	return &source{
		name:       deployevent.SourceFlagger,
		path:       pathFlagger,
		mediaTypes: []string{"application/json"},
		authorize:  bearerAuthorizer(string(cfg.BearerToken)),
		parse:      parseFlagger,
	}
}

func parseFlagger(_ http.Header, body []byte) ([]deployevent.Event, error) {
	var p flaggerPayload
	if err := decodeNotification(body, &p); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(p.Name)
	if name == "" {
		return nil, badRequest(`missing field "name"`)
	}
	namespace := strings.TrimSpace(p.Namespace)
	if namespace == "" {
		return nil, badRequest(`missing field "namespace"`)
	}
	message, isEvent := p.Metadata[flaggerMetaMessage]
	phase := strings.TrimSpace(p.Phase)
	switch {
	case phase == "" && isEvent:
		// Events about a canary Flagger has not initialised yet.
		return nil, &ignoredError{status: http.StatusAccepted, msg: "canary has no phase yet: not a deployment event"}
	case phase == "":
		return nil, badRequest(`missing field "phase"`)
	case !slices.Contains(flaggerPhases, phase):
		return nil, badRequest(`field "phase": %q is not a Flagger canary phase (%s)`, p.Phase, strings.Join(flaggerPhases, ", "))
	}

	var timestamp time.Time
	if raw := strings.TrimSpace(p.Metadata[flaggerMetaTimestamp]); raw != "" {
		ms, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return nil, badRequest(`field "metadata.timestamp": %q is not a Unix time in milliseconds`, raw)
		}
		timestamp = time.UnixMilli(ms)
	}
	strategy := deployevent.StrategyCanary
	if raw := strings.TrimSpace(p.Metadata[flaggerMetaStrategy]); raw != "" {
		if strategy = normalizeStrategy(raw); !strategy.Valid() {
			return nil, badRequest(`field "metadata.strategy": %q is not one of rolling, canary, blue_green, recreate, unknown`, raw)
		}
	}

	checksum := strings.TrimSpace(p.Checksum)
	state, ignored := flaggerState(phase, message, isEvent, checksum != "")
	if ignored != "" {
		return nil, &ignoredError{status: http.StatusAccepted, msg: ignored}
	}

	version := strings.TrimSpace(p.Metadata[flaggerMetaVersion])
	service := strings.TrimSpace(p.Metadata[flaggerMetaService])
	if service == "" {
		service = name
	}
	// The checksum (of the canary's last applied spec and tracked configs)
	// names one revision; without it (Flagger before checksums) a given
	// version stands in, else every rollout of the canary shares one id.
	idPart := checksum
	if idPart == "" {
		idPart = version
	}
	e := deployevent.Event{
		Service:     service,
		Namespace:   namespace,
		Environment: strings.TrimSpace(p.Metadata[flaggerMetaEnvironment]),
		Version:     version,
		ID:          deployevent.DeriveID(deployevent.SourceFlagger, namespace, name, idPart),
		Name:        name,
		State:       state,
		SourceState: phase,
		Strategy:    strategy,
		Source:      deployevent.SourceFlagger,
		Timestamp:   timestamp,
		Attributes: renderedAttributes(
			"flagger.event.type", p.Metadata[flaggerMetaType],
			"flagger.event.message", message,
		),
	}
	return []deployevent.Event{e}, nil
}

// flaggerState maps one Flagger payload to a lifecycle state, or returns why
// it is ignored. Flagger writes a new revision's checksum only when that
// revision starts progressing, so what it sends before (a confirm-rollout
// wait, "New revision detected! Scaling up") carries the previous
// revision's checksum and would land on the previous deployment.
func flaggerState(phase, message string, isEvent, hasChecksum bool) (deployevent.State, string) {
	const staleChecksum = "sent before Flagger records the new revision: its checksum names the previous revision"
	if isEvent {
		switch {
		case strings.HasPrefix(message, flaggerMsgPromoted):
			return deployevent.StateSucceeded, ""
		case strings.HasPrefix(message, flaggerMsgFailed):
			return deployevent.StateRolledBack, ""
		case strings.HasPrefix(message, flaggerMsgRestarting):
			// The in-flight revision (whose checksum this carries) is superseded.
			return deployevent.StateCancelled, ""
		case strings.HasPrefix(message, flaggerMsgStarting):
			return deployevent.StateStarted, ""
		case strings.HasPrefix(message, flaggerMsgScalingUp):
			if hasChecksum {
				return "", staleChecksum
			}
			return deployevent.StateStarted, ""
		case strings.HasPrefix(message, flaggerMsgPostRollout):
			// About the hook, and sent after the final event with a stale phase.
			return "", "post-rollout hook outcome: not a deployment event"
		}
	}
	switch phase {
	case flaggerPhaseProgressing, flaggerPhaseWaitingPromotion, flaggerPhasePromoting, flaggerPhaseFinalising:
		return deployevent.StateProgressing, ""
	case flaggerPhaseWaiting:
		if hasChecksum {
			return "", staleChecksum
		}
		return deployevent.StateQueued, ""
	case flaggerPhaseSucceeded, flaggerPhaseFailed:
		if isEvent {
			// The tick began with the canary at rest: a notice (suspended
			// canary, a gate halt) about no rollout in progress.
			return "", "canary " + phase + " and not rolling out: not a deployment event"
		}
		// A post-rollout hook reports the outcome; Flagger has rolled back a failure.
		if phase == flaggerPhaseSucceeded {
			return deployevent.StateSucceeded, ""
		}
		return deployevent.StateRolledBack, ""
	}
	// Initializing/Initialized bootstrap the primary; Terminating/Terminated
	// follow the Canary's deletion. Neither deploys a version.
	return "", "canary " + phase + ": not a deployment event"
}

// normalizeStrategy maps a strategy name in the spellings tools use
// ("blueGreen", "BlueGreen", "blue-green") to the contract's.
func normalizeStrategy(s string) deployevent.Strategy {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "bluegreen", "blue-green":
		return deployevent.StrategyBlueGreen
	}
	return deployevent.Strategy(s)
}
