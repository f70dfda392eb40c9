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

var rulesUnitTestsPath = filepath.Join(repoRoot, "deploy", "prometheus", "rules_test.yaml")

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

// TestPromtoolTestRules runs the alerts' unit tests: each alert fires when it should, with the
// labels and rendered annotations expected.
func TestPromtoolTestRules(t *testing.T) {
	out, err := exec.Command(promtool(t), "test", "rules", rulesUnitTestsPath).CombinedOutput()
	require.NoError(t, err, "promtool test rules:\n%s", out)
}

// TestRuleUnitTestsUseEmittedSeries keeps the unit tests' input honest: series the processor
// emits, with labels and values it writes.
func TestRuleUnitTestsUseEmittedSeries(t *testing.T) {
	raw, err := os.ReadFile(rulesUnitTestsPath)
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
		} `yaml:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &unitTests))
	assert.Equal(t, []string{"rules.yaml"}, unitTests.RuleFiles)

	checked := checkRules(t, loadRules(t))
	checker := &exprChecker{catalog: processorCatalog(t)}
	tested := map[string]bool{}
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
	}
	for alert := range checked.alertLabels {
		assert.True(t, tested[alert], "rules_test.yaml does not test alert %s", alert)
	}
}
