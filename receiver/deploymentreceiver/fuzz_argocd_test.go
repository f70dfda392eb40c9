// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"errors"
	"testing"

	"github.com/deploylens/deploylens/internal/deployevent"
)

func FuzzArgoCD(f *testing.F) {
	cm := readNotificationsConfig(f, argoCDConfigMapFile)
	for _, seed := range [][2]string{
		{"deploylens-sync-running", "argocd/app-sync-running.json"},
		{"deploylens-deployed", "argocd/app-deployed.json"},
		{"deploylens-health-degraded", "argocd/app-health-degraded.json"},
		{"deploylens-sync-failed", "argocd/app-sync-failed.json"},
		{"deploylens-deployed", "argocd/app-no-labels-deployed.json"},
	} {
		f.Add(cm.render(f, seed[0], map[string]any{"app": readObject(f, seed[1])}))
	}
	f.Add([]byte(`{"event":"on-deployed","app":"a","service":"<no value>","images":["r:5000/a:1"]}`))
	f.Add([]byte(`{"app":"a","operation_phase":"Terminating","started_at":"2026-01-02T03:04:05Z"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := parseArgoCD(nil, body)
		checkNotificationParse(t, events, err)
	})
}

// checkNotificationParse is what the Argo CD, Argo Rollouts and Flagger
// parsers promise for any input: a client error or an ignored delivery, or
// complete events whose extra attributes are bounded scalars.
func checkNotificationParse(t *testing.T, events []deployevent.Event, err error) {
	t.Helper()
	if err != nil {
		var reqErr *requestError
		var ignored *ignoredError
		if !errors.As(err, &reqErr) && !errors.As(err, &ignored) {
			t.Fatalf("error is not a client error: %T %v", err, err)
		}
		return
	}
	checkFuzzedEvents(t, events)
	for _, e := range events {
		for k, v := range e.Attributes {
			switch v := v.(type) {
			case string:
				if v == "" || len(v) > maxNotificationAttribute {
					t.Fatalf("attribute %s has %d bytes", k, len(v))
				}
			case int64:
			default:
				t.Fatalf("attribute %s is a %T", k, v)
			}
		}
	}
}
