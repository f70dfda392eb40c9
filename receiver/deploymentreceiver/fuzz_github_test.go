// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// FuzzGitHub feeds arbitrary bodies, event types and content types to the
// GitHub parser: it must never panic, must answer bad input with a typed
// error, and must only emit events the processor can use.
func FuzzGitHub(f *testing.F) {
	for _, seed := range []struct{ file, event string }{
		{"github/github-deployment-created.json", "deployment"},
		{"github/github-deployment_status-success.json", "deployment_status"},
		{"github/derived-deployment_status-in_progress-payload-string.json", "deployment_status"},
		{"github/github-workflow_run-completed.json", "workflow_run"},
	} {
		body := readTestdata(f, seed.file)
		f.Add(seed.event, "application/json", body)
		f.Add(seed.event, "application/x-www-form-urlencoded", []byte("payload="+url.QueryEscape(string(body))))
	}
	f.Add("ping", "application/json", []byte(`{"zen":"Design for failure."}`))
	f.Add("deployment", "application/json", []byte(`{"deployment":{"id":1,"payload":"{\"service\":\"s\"}"}}`))
	f.Add("deployment_status", "application/json", []byte(`{"deployment":{"id":1},"deployment_status":{"state":"inactive"},"repository":{"name":"r"}}`))

	f.Fuzz(func(t *testing.T, event, contentType string, body []byte) {
		h := http.Header{}
		h.Set("X-GitHub-Event", event)
		h.Set("Content-Type", contentType)
		events, err := parseGitHub(h, body)
		gitCheckParsed(t, events, err, "github-")
	})
}

// gitCheckParsed asserts the parse contract the HTTP layer relies on (shared
// with FuzzGitLab).
func gitCheckParsed(t *testing.T, events []deployevent.Event, err error, idPrefix string) {
	t.Helper()
	if err != nil {
		var reqErr *requestError
		var ignored *ignoredError
		switch {
		case errors.As(err, &reqErr):
			if reqErr.status < 400 || reqErr.status > 499 {
				t.Fatalf("request error with status %d", reqErr.status)
			}
		case errors.As(err, &ignored):
			if ignored.status != http.StatusOK && ignored.status != http.StatusAccepted {
				t.Fatalf("ignored with status %d", ignored.status)
			}
		default:
			t.Fatalf("untyped error %T: %v", err, err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("message is not one line: %q", err.Error())
		}
		if len(events) != 0 {
			t.Fatalf("events returned with an error")
		}
		return
	}
	if len(events) == 0 {
		t.Fatalf("no events and no error")
	}
	for _, e := range events {
		if strings.TrimSpace(e.Service) == "" {
			t.Fatalf("empty service: %+v", e)
		}
		if !e.State.Valid() {
			t.Fatalf("invalid state %q", e.State)
		}
		if !strings.HasPrefix(e.ID, idPrefix) || len(e.ID) == len(idPrefix) {
			t.Fatalf("bad id %q", e.ID)
		}
		if e.Strategy != "" && !e.Strategy.Valid() {
			t.Fatalf("invalid strategy %q", e.Strategy)
		}
	}
}
