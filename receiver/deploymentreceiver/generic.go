// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// genericEvent is the body of POST /v1/deployments: deploylens' own JSON, the
// public contract documented in the README.
type genericEvent struct {
	Service         string         `json:"service"`
	Namespace       string         `json:"namespace"`
	Environment     string         `json:"environment"`
	Version         string         `json:"version"`
	PreviousVersion string         `json:"previous_version"`
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	State           string         `json:"state"`
	Strategy        string         `json:"strategy"`
	Revision        string         `json:"revision"`
	Ref             string         `json:"ref"`
	Repository      string         `json:"repository"`
	PipelineRunID   string         `json:"pipeline_run_id"`
	PipelineRunURL  string         `json:"pipeline_run_url"`
	CommitTime      string         `json:"commit_time"`
	Actor           string         `json:"actor"`
	Timestamp       string         `json:"timestamp"`
	Attributes      map[string]any `json:"attributes"`
}

// maxGenericEvents bounds the events one request may carry.
const maxGenericEvents = 1000

func newGenericSource(cfg *GenericConfig) *source {
	return &source{
		name:       deployevent.SourceGeneric,
		path:       pathGeneric,
		mediaTypes: []string{"application/json"},
		authorize:  bearerAuthorizer(string(cfg.BearerToken)),
		parse:      parseGeneric,
	}
}

// parseGeneric accepts one event object or an array of them.
func parseGeneric(_ http.Header, body []byte) ([]deployevent.Event, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, badRequest("empty body: send a deployment event object or an array of them")
	}
	var raw []genericEvent
	if trimmed[0] == '[' {
		if err := strictUnmarshal(trimmed, &raw); err != nil {
			return nil, badRequest("invalid JSON: %s", jsonErrorMessage(err))
		}
		if len(raw) == 0 {
			return nil, badRequest("empty array: send at least one deployment event")
		}
		if len(raw) > maxGenericEvents {
			return nil, badRequest("too many events in one request: %d (at most %d)", len(raw), maxGenericEvents)
		}
	} else {
		var one genericEvent
		if err := strictUnmarshal(trimmed, &one); err != nil {
			return nil, badRequest("invalid JSON: %s", jsonErrorMessage(err))
		}
		raw = []genericEvent{one}
	}
	events := make([]deployevent.Event, 0, len(raw))
	for i := range raw {
		e, err := raw[i].toEvent()
		if err != nil {
			if len(raw) > 1 {
				return nil, badRequest("event %d: %s", i, err)
			}
			return nil, badRequest("%s", err)
		}
		events = append(events, e)
	}
	return events, nil
}

func (g *genericEvent) toEvent() (deployevent.Event, error) {
	e := deployevent.Event{
		Service:         strings.TrimSpace(g.Service),
		Namespace:       g.Namespace,
		Environment:     g.Environment,
		Version:         g.Version,
		PreviousVersion: g.PreviousVersion,
		ID:              g.ID,
		Name:            g.Name,
		State:           deployevent.State(strings.ToLower(strings.TrimSpace(g.State))),
		Source:          deployevent.SourceGeneric,
		Revision:        g.Revision,
		RefName:         g.Ref,
		RepositoryURL:   g.Repository,
		PipelineRunID:   g.PipelineRunID,
		PipelineRunURL:  g.PipelineRunURL,
		Actor:           g.Actor,
		Attributes:      g.Attributes,
	}
	if e.Service == "" {
		return e, errors.New(`missing required field "service"`)
	}
	if g.State == "" {
		return e, errors.New(`missing required field "state"`)
	}
	if !e.State.Valid() {
		return e, fmt.Errorf(`field "state": %q is not one of %s`, g.State, joinStates())
	}
	if g.Strategy != "" {
		e.Strategy = deployevent.Strategy(strings.ToLower(g.Strategy))
		if !e.Strategy.Valid() {
			return e, fmt.Errorf(`field "strategy": %q is not one of rolling, canary, blue_green, recreate, unknown`, g.Strategy)
		}
	}
	var err error
	if e.Timestamp, err = parseTime("timestamp", g.Timestamp); err != nil {
		return e, err
	}
	if e.CommitTime, err = parseTime("commit_time", g.CommitTime); err != nil {
		return e, err
	}
	if e.ID == "" {
		// One deployment is one version of one service in one place: its
		// events share the derived id whatever order they arrive in.
		e.ID = deployevent.DeriveID(deployevent.SourceGeneric, e.Namespace, e.Service, e.Environment, e.Version, e.Revision)
	}
	return e, nil
}

func parseTime(field, value string) (time.Time, error) {
	if value == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		return time.Time{}, fmt.Errorf("field %q: %q is not an RFC 3339 time", field, value)
	}
	return t, nil
}

func joinStates() string {
	names := make([]string, len(deployevent.States))
	for i, s := range deployevent.States {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// strictUnmarshal decodes one JSON value and refuses trailing data, so a
// truncated or concatenated body is a 400 rather than half an event.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// jsonErrorMessage makes encoding/json's errors name the field, on one line.
func jsonErrorMessage(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field != "" {
			return fmt.Sprintf("field %q: expected %s, got JSON %s", typeErr.Field, typeErr.Type.String(), typeErr.Value)
		}
		return fmt.Sprintf("expected %s, got JSON %s", typeErr.Type.String(), typeErr.Value)
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Sprintf("%s (at byte %d)", syntaxErr.Error(), syntaxErr.Offset)
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
