// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package loadtest holds what the load and cost commands (cmd/soak,
// cmd/bench-e2e, cmd/bench-receiver) share: the collector process's CPU
// time and RSS from /proc, the collector's own telemetry scraped from its
// Prometheus endpoint, percentiles and growth, and the shape of
// cmd/bench-e2e's load (also the processor's BenchmarkE2EShape).
package loadtest // import "github.com/deploylens/deploylens/internal/loadtest"
