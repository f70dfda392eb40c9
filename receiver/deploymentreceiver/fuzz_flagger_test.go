// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import "testing"

func FuzzFlagger(f *testing.F) {
	for _, name := range []string{"flagger/flagger-event-progressing.json", "flagger/flagger-webhook-gate-progressing.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add(flaggerEvent("Finalising", "85d557f47b", "Promotion completed! Scaling down podinfo.test", nil))
	f.Add(flaggerEvent("Failed", "85d557f47b", "Canary failed! Scaling down podinfo.test", map[string]string{"strategy": "blue-green"}))
	f.Add(flaggerHook("Succeeded", "85d557f47b"))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := parseFlagger(nil, body)
		checkNotificationParse(t, events, err)
	})
}
