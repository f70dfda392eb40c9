// Package monitoringcode checks the monitoring shipped as code: the Prometheus rules in
// deploy/prometheus and the Grafana dashboard in deploy/grafana.
//
// Its tests derive the Prometheus series the collector's prometheus exporter writes for the
// deployment processor's metrics (processor/deploymentprocessor/metadata.yaml) with the
// exporter's own name translator, then load the rules with Prometheus' rulefmt, parse every
// PromQL expression (rules, dashboard targets, variables, annotations) and check that every
// metric, label and label value they use exists. A renamed metric or attribute breaks them.
package monitoringcode // import "github.com/deploylens/deploylens/internal/monitoringcode"
