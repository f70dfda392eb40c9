// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestAlertAccuracyRulesWithThisEngine evaluates the deploylens-alert-accuracy group on the input
// series of rules_accuracy_test.yaml with this module's Prometheus engine and checks the values
// computed by hand there: they hold without promtool, and with Prometheus 3's ranges (open on the
// left) as well as with the Debian promtool's.
func TestAlertAccuracyRulesWithThisEngine(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "prometheus", "rules_accuracy_test.yaml"))
	require.NoError(t, err)
	var unitTests struct {
		Tests []struct {
			Interval    model.Duration `yaml:"interval"`
			InputSeries []struct {
				Series string `yaml:"series"`
				Values string `yaml:"values"`
			} `yaml:"input_series"`
			PromQLExprTests []struct {
				Expr       string         `yaml:"expr"`
				EvalTime   model.Duration `yaml:"eval_time"`
				ExpSamples []struct {
					Labels string  `yaml:"labels"`
					Value  float64 `yaml:"value"`
				} `yaml:"exp_samples"`
			} `yaml:"promql_expr_test"`
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &unitTests))
	require.NotEmpty(t, unitTests.Tests)

	for _, ut := range unitTests.Tests {
		require.NotEmpty(t, ut.PromQLExprTests)
		st := newMemStorage()
		for _, in := range ut.InputSeries {
			lbls, values, err := promqlParser.ParseSeriesDesc(in.Series + " " + in.Values)
			require.NoError(t, err, in.Series)
			for i, v := range values {
				if !v.Omitted {
					st.add(lbls, int64(i)*time.Duration(ut.Interval).Milliseconds(), v.Value)
				}
			}
		}
		// The rules are evaluated once: at the one time the expectations are for.
		evalTime := ut.PromQLExprTests[0].EvalTime
		query := evalGroup(t, st, "deploylens-alert-accuracy", time.UnixMilli(time.Duration(evalTime).Milliseconds()).UTC())
		for _, et := range ut.PromQLExprTests {
			require.Equal(t, evalTime, et.EvalTime, "%s: one evaluation time per test", et.Expr)
			want := map[string]float64{}
			for _, s := range et.ExpSamples {
				lbls, err := promqlParser.ParseMetric(s.Labels)
				require.NoError(t, err, s.Labels)
				want[lbls.String()] = s.Value
			}
			got := map[string]float64{}
			for _, s := range query(et.Expr) {
				got[s.Metric.String()] = s.F
			}
			assertValues(t, want, got, et.Expr)
		}
	}
}
