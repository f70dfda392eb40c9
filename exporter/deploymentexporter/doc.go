// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

//go:generate mdatagen metadata.yaml

// Package deploymentexporter delivers deploylens alert signals to
// Alertmanager (API v2) and webhook channels (generic JSON, Slack, PagerDuty)
// with routing and escalation, and serves the rollout gate (Argo Rollouts web
// metric, Flagger webhooks) and a live status page from the lifecycle events,
// health metrics and alerts it consumes.
package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"
