// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import "testing"

func FuzzArgoRollouts(f *testing.F) {
	cm := readNotificationsConfig(f, argoRolloutsConfigMapFile)
	for _, seed := range [][2]string{
		{"deploylens-rollout-updated", "argo-rollouts/rollout-updated.json"},
		{"deploylens-rollout-paused", "argo-rollouts/rollout-paused.json"},
		{"deploylens-rollout-completed", "argo-rollouts/rollout-completed.json"},
		{"deploylens-rollout-aborted", "argo-rollouts/rollout-aborted.json"},
		{"deploylens-analysis-run-failed", "argo-rollouts/rollout-bluegreen-no-labels.json"},
	} {
		f.Add(cm.render(f, seed[0], rolloutVars(f, seed[1])))
	}
	f.Add([]byte(`{"event":"on-rollout-completed","rollout":"r","revision":3,"step":-1}`))
	f.Add([]byte(`{"event":"on-rollout-paused","rollout":"r","pod_hash":"5f8c7d9b6c","strategy":"BlueGreen"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := parseArgoRollouts(nil, body)
		checkNotificationParse(t, events, err)
	})
}
