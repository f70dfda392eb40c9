// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package emit

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/kpi"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestMetricsGolden pins one emission for a fixed snapshot and KPI book:
// every name, unit, type, temporality and attribute the processor writes.
func TestMetricsGolden(t *testing.T) {
	m := NewMetrics(processortest.NewNopSettings(metadata.Type), metadata.NewDefaultMetricsBuilderConfig())
	values := kpi.Values{StartTime: counted, Counts: [4][3]int64{{1, 4, 2}, {1, 0, 0}, {2, 0, 0}, {0, 0, 0}}, Duration: 600, DurationOutcome: kpi.RolledBack, HasDuration: true,
		Interval: 86400, HasInterval: true, LeadTime: 4800, HasLeadTime: true, ChangeFailureRatio: 0.3, HasChangeFailureRatio: true,
		RecoveryTime: 720, HasRecoveryTime: true, DetectionTime: 180, HasDetectionTime: true}
	snap := unhealthySnapshot()
	snap.Health.Impact = []health.Relation{{Peer: health.Key{Service: "frontend", Environment: "production"}, DeploymentID: "deploy-123",
		Evidence: health.Evidence{Indicator: "error_ratio", Value: 0.061, Baseline: 0.004, Score: 0.9, Judged: true}}}
	m.Append(Service{Key: key, Phase: deployevent.PhaseDuring, Snapshot: snap, KPI: values, HasKPI: true,
		Edges: []*health.Snapshot{edgeSnapshot()}, EdgeServices: []string{"payment"}}, ts)
	actual := m.Emit()
	path := filepath.Join("testdata", "metrics_expected.yaml")
	if *update {
		require.NoError(t, golden.WriteMetrics(t, path, actual))
	}
	expected, err := golden.ReadMetrics(path)
	require.NoError(t, err)
	// The golden writer normalises timestamps; the counter's start is checked below.
	require.NoError(t, pmetrictest.CompareMetrics(expected, actual, pmetrictest.IgnoreStartTimestamp(), pmetrictest.IgnoreTimestamp(),
		pmetrictest.IgnoreMetricsOrder(), pmetrictest.IgnoreMetricDataPointsOrder()))
	counts := points(t, actual, "deployment.count")
	for _, c := range counts {
		require.Equal(t, counted, c["start"])
	}
}
