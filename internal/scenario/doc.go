// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package scenario generates deployment scenarios: realistic telemetry for a
// few services (noisy diurnal request rates, long-tailed latencies, background
// errors, CPU saturation), a deployment driven through deployment.lifecycle
// events, and optionally a labelled regression, all in simulated time.
//
// A Scenario is plain data and deterministic: the same Seed gives the same
// telemetry. It knows nothing of the processor, so the same scenarios feed an
// in-process harness (Scenario.Steps) and a running collector (package
// otlpsend). Library returns the standard set the detection benchmark scores;
// Topologies returns multi-service scenarios whose services call each other
// (Service.Calls), to attribute harm to the deploying callee.
package scenario // import "github.com/deploylens/deploylens/internal/scenario"
