// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package loadtest holds what the load and cost commands (cmd/soak,
// cmd/bench-e2e, cmd/bench-receiver) share: the collector process's CPU
// time and RSS from /proc, the collector's own telemetry scraped from its
// Prometheus endpoint, percentiles and growth.
package loadtest // import "github.com/deploylens/deploylens/internal/loadtest"
