// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package alerts

import (
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestSignalsGolden pins the deployment.alert records of one alert's life:
// fired, re-sent, resolved.
func TestSignalsGolden(t *testing.T) {
	e := New(Config{ResendInterval: time.Minute})
	logs := plog.NewLogs()
	for _, step := range []struct {
		at     time.Duration
		active bool
	}{{3 * time.Minute, true}, {3*time.Minute + 30*time.Second, true}, {4 * time.Minute, true}, {5 * time.Minute, false}} {
		for _, s := range e.Evaluate(ctx, []Condition{regression(step.active)}, t0.Add(step.at)) {
			s.AppendTo(logs)
		}
	}
	require.Equal(t, 3, logs.LogRecordCount(), "fired, re-sent once, resolved")
	path := filepath.Join("testdata", "signals_expected.yaml")
	if *update {
		require.NoError(t, golden.WriteLogs(t, path, logs))
	}
	expected, err := golden.ReadLogs(path)
	require.NoError(t, err)
	require.NoError(t, plogtest.CompareLogs(expected, logs))
}
