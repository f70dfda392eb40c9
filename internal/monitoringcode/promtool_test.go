// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The rules' unit tests: the alerts' (evaluated every minute) and the alert accuracy recording
// rules' (windows of days, evaluated every hour so that promtool takes seconds, not minutes).
var rulesUnitTestsPaths = []string{
	filepath.Join(repoRoot, "deploy", "prometheus", "rules_test.yaml"),
	filepath.Join(repoRoot, "deploy", "prometheus", "rules_accuracy_test.yaml"),
}

// promtool finds promtool (Debian package prometheus); without it the test is skipped, except in
// CI, which installs it.
func promtool(t *testing.T) string {
	t.Helper()
	for _, candidate := range []string{"promtool", "/usr/bin/promtool"} {
		if path, err := exec.LookPath(candidate); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("promtool not found; CI installs it with the Debian package prometheus")
	}
	t.Skip("promtool not found: install the Debian package prometheus to check the rules with it")
	return ""
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", rulesPath).CombinedOutput()
	require.NoError(t, err, "promtool check rules:\n%s", out)
}

// TestPromtoolTestRules runs the rules' unit tests: each alert fires when it should, with the
// labels and rendered annotations expected; each alert accuracy ratio has its hand-computed value.
func TestPromtoolTestRules(t *testing.T) {
	out, err := exec.Command(promtool(t), append([]string{"test", "rules"}, rulesUnitTestsPaths...)...).CombinedOutput()
	require.NoError(t, err, "promtool test rules:\n%s", out)
}

// TestRuleUnitTestsUseEmittedSeries keeps the unit tests' input honest: series the processor
// emits, with labels and values it writes. And every alert, and every alert accuracy recording
// rule, is tested.
func TestRuleUnitTestsUseEmittedSeries(t *testing.T) {
	checked := checkRules(t, loadRules(t))
	checker := &exprChecker{catalog: processorCatalog(t)}
	recorded := &exprChecker{catalog: checked.catalog}
	tested := map[string]bool{}
	for _, path := range rulesUnitTestsPaths {
		raw, err := os.ReadFile(path)
		require.NoError(t, err)
		var unitTests struct {
			RuleFiles []string `yaml:"rule_files"`
			Tests     []struct {
				InputSeries []struct {
					Series string `yaml:"series"`
				} `yaml:"input_series"`
				AlertRuleTests []struct {
					Alertname string `yaml:"alertname"`
				} `yaml:"alert_rule_test"`
				PromQLExprTests []struct {
					Expr string `yaml:"expr"`
				} `yaml:"promql_expr_test"`
			} `yaml:"tests"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &unitTests), path)
		assert.Equal(t, []string{"rules.yaml"}, unitTests.RuleFiles, path)
		for _, ut := range unitTests.Tests {
			for _, in := range ut.InputSeries {
				lbls, err := promqlParser.ParseMetric(in.Series)
				if !assert.NoError(t, err, in.Series) {
					continue
				}
				// {__name__="…", label="…", …} is a selector for exactly this series.
				_, problems := checker.check(lbls.String())
				assert.Empty(t, problems, in.Series)
			}
			for _, a := range ut.AlertRuleTests {
				tested[a.Alertname] = true
			}
			for _, e := range ut.PromQLExprTests {
				_, problems := recorded.check(e.Expr)
				assert.Empty(t, problems, e.Expr)
				for _, name := range metricNames(t, recorded, e.Expr) {
					tested[name] = true
				}
			}
		}
	}
	for alert := range checked.alertLabels {
		assert.True(t, tested[alert], "no unit test of alert %s", alert)
	}
	for _, g := range loadRules(t).Groups {
		if g.Name != "deploylens-alert-accuracy" {
			continue
		}
		for _, r := range g.Rules {
			assert.True(t, tested[r.Record], "no unit test of recording rule %s", r.Record)
		}
	}
}
