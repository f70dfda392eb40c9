// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loadRules loads rules.yaml as Prometheus does, with classic (legacy) name validation so that
// older Prometheus servers accept it too.
func loadRules(t testing.TB) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(rulesPath, false, model.LegacyValidation, promqlParser, slog.New(slog.DiscardHandler))
	require.Empty(t, errs, "rulefmt: %v", errs)
	require.NotNil(t, groups)
	return groups
}

// checkedRules is the outcome of checking rules.yaml in file order.
type checkedRules struct {
	// catalog is the processor's series plus every recorded series and ALERTS.
	catalog catalog
	// alertLabels holds each alert's labels: its expression's result labels and its static ones.
	alertLabels map[string]labelSet
	problems    []string
}

// checkRules checks every expression of rules.yaml in file order. A recording rule's series may be
// used by the rules after it (Prometheus evaluates a group's rules in order) and by the dashboard.
func checkRules(t testing.TB, groups *rulefmt.RuleGroups) checkedRules {
	t.Helper()
	out := checkedRules{catalog: processorCatalog(t), alertLabels: map[string]labelSet{}}
	checker := &exprChecker{catalog: out.catalog}
	alerts := labelSet{"alertname": nil, "alertstate": {"firing", "pending"}}
	var alertNames []string
	for _, g := range groups.Groups {
		for i, r := range g.Rules {
			what := fmt.Sprintf("group %s, rule %d (%s%s)", g.Name, i, r.Record, r.Alert)
			result, problems := checker.check(r.Expr)
			for _, p := range problems {
				out.problems = append(out.problems, what+": "+p)
			}
			static := labelSet{}
			for l, v := range r.Labels {
				static[l] = []string{v}
			}
			if r.Record != "" {
				if prev, ok := out.catalog[r.Record]; ok && !strings.HasPrefix(prev.source, "recording rule") {
					out.problems = append(out.problems, what+": records under the name of "+prev.source)
					continue
				}
				recorded := maps.Clone(result)
				maps.Copy(recorded, static)
				if prev, ok := out.catalog[r.Record]; ok {
					recorded = union(prev.labels, recorded)
				}
				out.catalog[r.Record] = &series{source: "recording rule " + r.Record, enabled: true, labels: recorded}
				continue
			}
			labels := maps.Clone(result)
			maps.Copy(labels, static)
			out.alertLabels[r.Alert] = labels
			alerts = union(alerts, labels)
			alertNames = append(alertNames, r.Alert)
		}
	}
	alerts["alertname"] = sortedUnique(alertNames)
	out.catalog["ALERTS"] = &series{source: "Prometheus' ALERTS series for rules.yaml", enabled: true, labels: alerts}
	return out
}

func TestRulesLoadWithRulefmt(t *testing.T) {
	groups := loadRules(t)
	var names []string
	for _, g := range groups.Groups {
		names = append(names, g.Name)
	}
	require.Equal(t, []string{"deploylens-dora", "deploylens-alert-accuracy", "deploylens-deployments"}, names)
	var records, alerts int
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records++
			} else {
				alerts++
			}
		}
	}
	assert.GreaterOrEqual(t, records, 10)
	assert.GreaterOrEqual(t, alerts, 6)
}

// TestRulesUseOnlyEmittedSeries is the contract: every expression parses, and every metric, label
// and label value it uses is one the processor emits (as the exporter names it) or one a recording
// rule defined before it produces.
func TestRulesUseOnlyEmittedSeries(t *testing.T) {
	checked := checkRules(t, loadRules(t))
	assert.Empty(t, checked.problems)
}

func TestRulesCoverTheProcessorMetricsTheyAreAbout(t *testing.T) {
	groups := loadRules(t)
	used := map[string]bool{}
	cat := processorCatalog(t)
	checker := &exprChecker{catalog: cat}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			for _, name := range metricNames(t, checker, r.Expr) {
				used[name] = true
			}
		}
	}
	for _, name := range []string{
		"deployment_count_total", "deployment_lead_time_seconds", "deployment_recovery_time_seconds",
		"deployment_health_score", "deployment_anomaly_score", "deployment_active", "deployment_detection_time_seconds",
	} {
		assert.Contains(t, cat, name, "the processor no longer emits %s", name)
		assert.True(t, used[name], "rules.yaml does not use %s", name)
	}
}

var recordingRuleName = regexp.MustCompile(`^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`)

func TestRecordingRulesFollowNamingConvention(t *testing.T) {
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			// level:metric:operations, the Prometheus convention, keeps recorded series apart from raw ones.
			assert.Regexp(t, recordingRuleName, r.Record)
			// promtool and the Go unit tests flatten expressions to one line: a # comment would swallow the rest.
			assert.NotContains(t, r.Expr, "#", r.Record)
		}
	}
}

var labelRef = regexp.MustCompile(`\$labels\.([A-Za-z_][A-Za-z0-9_]*)`)

func TestAlertsHaveSeverityAnnotationsAndRunbooks(t *testing.T) {
	groups := loadRules(t)
	checked := checkRules(t, groups)
	readme, err := os.ReadFile(rulesReadmePath)
	require.NoError(t, err)
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if title, ok := strings.CutPrefix(line, "### "); ok {
			anchors[strings.ToLower(strings.TrimSpace(title))] = true
		}
	}
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			assert.False(t, seen[r.Alert], "alert %s defined twice", r.Alert)
			seen[r.Alert] = true
			// The dashboard counts firing alerts with alertname=~"Deployment.*".
			assert.True(t, strings.HasPrefix(r.Alert, "Deployment"), "alert %s: names start with Deployment", r.Alert)
			assert.Contains(t, []string{"info", "warning", "critical"}, r.Labels["severity"], "alert %s: severity", r.Alert)
			for _, a := range []string{"summary", "description", "runbook_url"} {
				assert.NotEmpty(t, r.Annotations[a], "alert %s: annotation %s", r.Alert, a)
			}
			runbook := r.Annotations["runbook_url"]
			anchor, ok := strings.CutPrefix(runbook, "https://github.com/deploylens/deploylens/blob/main/deploy/prometheus/README.md#")
			if assert.True(t, ok, "alert %s: runbook_url %s points at deploy/prometheus/README.md", r.Alert, runbook) {
				assert.Equal(t, strings.ToLower(r.Alert), anchor, "alert %s: runbook anchor", r.Alert)
				assert.True(t, anchors[anchor], "alert %s: README.md has no section ### %s", r.Alert, r.Alert)
			}
			// Every $labels.x an annotation prints is a label the alert has.
			have := checked.alertLabels[r.Alert]
			for name, text := range r.Annotations {
				for _, m := range labelRef.FindAllStringSubmatch(text, -1) {
					_, ok := have[m[1]]
					assert.True(t, ok, "alert %s: annotation %s uses $labels.%s; the alert has %v",
						r.Alert, name, m[1], slices.Sorted(maps.Keys(have)))
				}
			}
			// A service is named by its resource labels, never by job/instance (the collector).
			for _, l := range []string{"service_name", "deployment_environment_name"} {
				_, ok := have[l]
				assert.True(t, ok, "alert %s: result has no %s label", r.Alert, l)
			}
		}
	}
}

// TestCheckerCatchesMistakes makes sure the checks above can fail.
func TestCheckerCatchesMistakes(t *testing.T) {
	checker := &exprChecker{catalog: processorCatalog(t)}
	for expr, want := range map[string]string{
		`deployment_health_scor`:                                              "no such series",
		`deployment_count`:                                                    "no such series",
		`deployment_lead_time`:                                                "no such series",
		`deployment_health_score{service="x"}`:                                `no label "service"`,
		`deployment_count_total{deployment_status="rollback"}`:                `never has the value "rollback"`,
		`deployment_active{deployment_phase=~"during|psot"}`:                  `never has the value "psot"`,
		`sum by (indicator_name) (deployment_health_score)`:                   `no label "indicator_name"`,
		`deployment_active and on (deployment_status) deployment_count_total`: `not on both sides`,
		`{service_name="x"}`:                                                  "names no metric",
		`{__name__=~"deployment_x.*"}`:                                        "no such series",
		`rate(deployment_count_total[5m]`:                                     "does not parse",
		`service:deployment_frequency_per_day:7d`:                             "no such series",
	} {
		_, problems := checker.check(expr)
		if assert.NotEmpty(t, problems, expr) {
			assert.Contains(t, strings.Join(problems, "\n"), want, expr)
		}
	}
	labels, problems := checker.check(`sum by (service_name, deployment_status) (increase(deployment_count_total{deployment_status=~"failed|rolled_back"}[1d]))`)
	assert.Empty(t, problems)
	assert.Equal(t, []string{"deployment_status", "service_name"}, slices.Sorted(maps.Keys(labels)))
	assert.ElementsMatch(t, []string{"cancelled", "failed", "rolled_back", "succeeded"}, labels["deployment_status"])
}
