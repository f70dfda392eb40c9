// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"net/http"
	"testing"
)

// FuzzGitLab feeds arbitrary bodies and X-Gitlab-Event values to the GitLab
// parser, with the same contract as FuzzGitHub.
func FuzzGitLab(f *testing.F) {
	deployment := readTestdata(f, "gitlab/gitlab-deployment_hook-success.json")
	f.Add("Deployment Hook", deployment)
	f.Add("", deployment)
	f.Add("Deployment Hook", readTestdata(f, "gitlab/derived-deployment_hook-running-utc-tag.json"))
	f.Add("Pipeline Hook", readTestdata(f, "gitlab/gitlab-pipeline_hook-success-go-gitlab-testdata.json"))
	f.Add("", []byte(`{"object_kind":"deployment","status":"canceled","deployment_id":1,"project":{"path_with_namespace":"a/b"},"status_changed_at":"2021-04-28 19:50:00 UTC"}`))

	f.Fuzz(func(t *testing.T, event string, body []byte) {
		h := http.Header{}
		h.Set("X-Gitlab-Event", event)
		events, err := parseGitLab(h, body)
		gitCheckParsed(t, events, err, "gitlab-")
	})
}
