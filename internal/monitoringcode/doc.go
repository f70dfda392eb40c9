// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package monitoringcode checks the monitoring shipped as code: the Prometheus rules in
// deploy/prometheus and the Grafana dashboard in deploy/grafana.
//
// Its tests derive the Prometheus series the collector's prometheus exporter writes for the
// deployment processor's metrics (processor/deploymentprocessor/metadata.yaml) with the
// exporter's own name translator, then load the rules with Prometheus' rulefmt, parse every
// PromQL expression (rules, dashboard targets, variables, annotations) and check that every
// metric, label and label value they use exists. A renamed metric or attribute breaks them.
//
// It holds only tests, and this file, on purpose. What it checks is not Go code of one
// component but YAML and JSON under deploy/ against the metadata of the components, so it
// belongs to none of them; and as tests it pulls Prometheus' rule, PromQL and engine packages
// into `go test` only, never into the collector binary. Under internal/ nothing imports it.
package monitoringcode // import "github.com/deploylens/deploylens/internal/monitoringcode"
