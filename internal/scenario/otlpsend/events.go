// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package otlpsend // import "github.com/deploylens/deploylens/internal/scenario/otlpsend"

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// GenericEvent is the body of the deployment receiver's POST /v1/deployments
// (the README's "generic deployment event").
type GenericEvent struct {
	Service         string         `json:"service"`
	State           string         `json:"state"`
	Namespace       string         `json:"namespace,omitempty"`
	Environment     string         `json:"environment,omitempty"`
	Version         string         `json:"version,omitempty"`
	PreviousVersion string         `json:"previous_version,omitempty"`
	ID              string         `json:"id,omitempty"`
	Name            string         `json:"name,omitempty"`
	Strategy        string         `json:"strategy,omitempty"`
	Revision        string         `json:"revision,omitempty"`
	Ref             string         `json:"ref,omitempty"`
	Repository      string         `json:"repository,omitempty"`
	PipelineRunID   string         `json:"pipeline_run_id,omitempty"`
	PipelineRunURL  string         `json:"pipeline_run_url,omitempty"`
	CommitTime      string         `json:"commit_time,omitempty"`
	Actor           string         `json:"actor,omitempty"`
	Timestamp       string         `json:"timestamp,omitempty"`
	Attributes      map[string]any `json:"attributes,omitempty"`
}

// ToGeneric converts a lifecycle event to the generic JSON event.
func ToGeneric(e *deployevent.Event) GenericEvent {
	g := GenericEvent{
		Service:         e.Service,
		State:           string(e.State),
		Namespace:       e.Namespace,
		Environment:     e.Environment,
		Version:         e.Version,
		PreviousVersion: e.PreviousVersion,
		ID:              e.ID,
		Name:            e.Name,
		Strategy:        string(e.Strategy),
		Revision:        e.Revision,
		Ref:             e.RefName,
		Repository:      e.RepositoryURL,
		PipelineRunID:   e.PipelineRunID,
		PipelineRunURL:  e.PipelineRunURL,
		Actor:           e.Actor,
		Attributes:      e.Attributes,
	}
	if !e.CommitTime.IsZero() {
		g.CommitTime = e.CommitTime.UTC().Format(time.RFC3339Nano)
	}
	if !e.Timestamp.IsZero() {
		g.Timestamp = e.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	return g
}

// maxPostAttempts bounds the tries of one POST; waits between them double.
const maxPostAttempts = 8

// postEvents sends the events as one JSON array, retrying what a retry can
// fix (no connection yet, 429, 502–504) for up to RetryFor.
func (s *Sender) postEvents(ctx context.Context, events []deployevent.Event) error {
	body := make([]GenericEvent, len(events))
	for i := range events {
		body[i] = ToGeneric(&events[i])
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("otlpsend: encode events: %w", err)
	}
	deadline := s.now().Add(s.cfg.RetryFor)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retryAfter, err := s.postOnce(ctx, payload)
		if err == nil {
			return nil
		}
		if retryAfter < 0 || attempt == maxPostAttempts || s.now().Add(wait).After(deadline) {
			return err
		}
		if retryAfter > 0 {
			wait = retryAfter
		}
		if err := s.sleep(ctx, wait); err != nil {
			return err
		}
		wait *= 2
	}
}

// postOnce POSTs once. retryAfter is negative when retrying is pointless, 0
// for the default backoff, positive when the server named a wait.
func (s *Sender) postOnce(ctx context.Context, payload []byte) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.DeploymentsURL, bytes.NewReader(payload))
	if err != nil {
		return -1, fmt.Errorf("otlpsend: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.cfg.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.BearerToken)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		return 0, fmt.Errorf("otlpsend: post events: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	message, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if resp.StatusCode/100 == 2 {
		return 0, nil
	}
	err = fmt.Errorf("otlpsend: post events: %s: %s", resp.Status, strings.TrimSpace(string(message)))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if seconds, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && seconds > 0 {
			return min(time.Duration(seconds)*time.Second, 5*time.Second), err
		}
		return 0, err
	}
	return -1, err
}
