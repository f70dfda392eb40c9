// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/pmetrictest"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/ptracetest"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// TestGolden feeds each testdata/golden/<case> through the three pipelines:
// before.yaml (optional, the case's signal) at t0, events.yaml (optional,
// deployment.lifecycle logs) at t0+1m, input.yaml at t0+5m; the output of
// input.yaml must equal expected.yaml. Rewrite expectations with -update.
func TestGolden(t *testing.T) {
	tests := []struct {
		name   string
		signal string
		edit   func(*Config)
	}{
		{name: "traces_during", signal: "traces"},
		{name: "traces_span_level", signal: "traces", edit: func(c *Config) {
			c.Tagging.Traces = SignalTagging{
				Attributes: []string{deployevent.AttrDeploymentPhase, deployevent.AttrDeploymentID, deployevent.AttrDeploymentCohort, deployevent.AttrServiceVersion},
				Level:      levelSpan,
			}
		}},
		{name: "traces_inferred", signal: "traces"},
		{name: "metrics_during", signal: "metrics"},
		{name: "metrics_datapoint_level", signal: "metrics", edit: func(c *Config) {
			c.Tagging.Metrics = SignalTagging{
				Attributes: []string{deployevent.AttrDeploymentPhase, deployevent.AttrDeploymentID, deployevent.AttrDeploymentCohort},
				Level:      levelDatapoint,
			}
		}},
		{name: "logs_events_and_app_logs", signal: "logs"},
		{name: "logs_post", signal: "logs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "golden", tt.name)
			ps := newPipelines(t, pipelineOptions{edit: tt.edit})
			ctx := context.Background()

			if path := filepath.Join(dir, "before.yaml"); exists(path) {
				ps.consumeFile(t, tt.signal, path)
			}
			ps.clock.Set(t0.Add(time.Minute))
			if path := filepath.Join(dir, "events.yaml"); exists(path) {
				events, err := golden.ReadLogs(path)
				require.NoError(t, err)
				require.NoError(t, ps.logs.ConsumeLogs(ctx, events))
			}
			ps.clock.Set(t0.Add(5 * time.Minute))
			ps.consumeFile(t, tt.signal, filepath.Join(dir, "input.yaml"))

			expectedPath := filepath.Join(dir, "expected.yaml")
			switch tt.signal {
			case "traces":
				all := ps.tracesSink.AllTraces()
				got := all[len(all)-1]
				if *update {
					require.NoError(t, golden.WriteTracesToFile(expectedPath, got))
				}
				want, err := golden.ReadTraces(expectedPath)
				require.NoError(t, err)
				require.NoError(t, ptracetest.CompareTraces(want, got))
			case "metrics":
				all := ps.metricsSink.AllMetrics()
				got := all[len(all)-1]
				if *update {
					require.NoError(t, golden.WriteMetricsToFile(expectedPath, got, golden.SkipMetricTimestampNormalization()))
				}
				want, err := golden.ReadMetrics(expectedPath)
				require.NoError(t, err)
				// The golden writer sorts metrics; order is not what is tested.
				require.NoError(t, pmetrictest.CompareMetrics(want, got,
					pmetrictest.IgnoreResourceMetricsOrder(), pmetrictest.IgnoreMetricsOrder(), pmetrictest.IgnoreMetricDataPointsOrder()))
			case "logs":
				all := ps.logsSink.AllLogs()
				got := all[len(all)-1]
				if *update {
					require.NoError(t, golden.WriteLogsToFile(expectedPath, got))
				}
				want, err := golden.ReadLogs(expectedPath)
				require.NoError(t, err)
				require.NoError(t, plogtest.CompareLogs(want, got))
			}
		})
	}
}

func (ps *pipelines) consumeFile(t *testing.T, signal, path string) {
	t.Helper()
	ctx := context.Background()
	switch signal {
	case "traces":
		td, err := golden.ReadTraces(path)
		require.NoError(t, err)
		require.NoError(t, ps.traces.ConsumeTraces(ctx, td))
	case "metrics":
		md, err := golden.ReadMetrics(path)
		require.NoError(t, err)
		require.NoError(t, ps.metrics.ConsumeMetrics(ctx, md))
	case "logs":
		ld, err := golden.ReadLogs(path)
		require.NoError(t, err)
		require.NoError(t, ps.logs.ConsumeLogs(ctx, ld))
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
