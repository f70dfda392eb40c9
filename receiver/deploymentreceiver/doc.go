// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

//go:generate mdatagen metadata.yaml

// Package deploymentreceiver receives deployment events from CI/CD tools over
// HTTP webhooks (GitHub, GitLab, Argo CD, Flagger, Argo Rollouts and a generic
// JSON API) and turns them into deployment.lifecycle log records.
package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"
