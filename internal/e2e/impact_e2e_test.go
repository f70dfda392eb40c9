// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/scenario"
)

// topologyScenario is the first scenario of Topologies(1) of a topology at rps.
func topologyScenario(t *testing.T, topology string, rps float64) scenario.Scenario {
	t.Helper()
	for _, sc := range scenario.Topologies(1) {
		if l := sc.Label(); l.Topology == topology && l.TrafficRPS == rps {
			return sc
		}
	}
	t.Fatalf("no topology scenario %s at %g req/s", topology, rps)
	return scenario.Scenario{}
}

// TestE2EImpactOneCollector: payment's rollout fails only checkout's calls
// to it (payment's own telemetry stays clean). Through the built
// distribution with a real Alertmanager, payment's gate fails with checkout
// named in its reasons, payment's alert in Alertmanager words checkout's
// calls, checkout's alert (DependencyDeploymentImpact) names payment's
// deployment, and the service graph holds the edge.
func TestE2EImpactOneCollector(t *testing.T) {
	requireDebianBinary(t, alertmanagerBinary, "prometheus-alertmanager")
	otlpPort, webhookPort, amPort, gatePort := freePort(t), freePort(t), freePort(t), freePort(t)
	am := startAlertmanager(t, amPort)
	startCollector(t, collectorConfig{YAML: fmt.Sprintf(gateConfig, otlpPort, webhookPort, amPort, gatePort)})
	label := replayScenario(t, otlpPort, webhookPort, topologyScenario(t, "impact-endpoint", 50), 0, true)
	require.Equal(t, "payment", label.Culprit)
	require.Equal(t, []string{"checkout"}, label.Harmed)

	var v map[string]any
	eventually(t, 90*time.Second, "the gate to fail payment's rollout, naming checkout", func() bool {
		v = gateVerdict(t, gatePort, label)
		return v["verdict"] == "fail" && strings.Contains(fmt.Sprint(v["reasons"]), "checkout's calls to payment")
	})
	assert.Equal(t, label.DeploymentID, v["deployment_id"])
	t.Logf("payment's gate: %v", v["reasons"])

	summaries := func(service string) []string {
		var out []string
		for _, a := range alertmanagerAlerts(t, am) {
			if a.Labels["service"] == service {
				out = append(out, a.Annotations["summary"])
			}
		}
		return out
	}
	eventually(t, 60*time.Second, "payment's alert in Alertmanager to word checkout's calls", func() bool {
		return strings.Contains(strings.Join(summaries("payment"), "\n"), "checkout's calls to payment fail")
	})
	want := "explained by payment " + label.Version + "'s rollout (deployment " + label.DeploymentID + ")"
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(strings.Join(summaries("checkout"), "\n"), want) {
		if time.Now().After(deadline) {
			t.Fatalf("checkout's alert does not name payment's deployment (%q): %q", want, summaries("checkout"))
		}
		time.Sleep(time.Second)
	}
	t.Logf("alerts: payment %q; checkout %q", summaries("payment"), summaries("checkout"))
	// frontend calls payment on a route the rollout does not break.
	assert.Empty(t, summaries("frontend"))

	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/graph?service=payment&environment=%s&namespace=%s", gatePort, label.Environment, label.Namespace))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var graph struct {
		Edges []struct {
			Caller, Callee, Dependency string
			RequestRate                *float64 `json:"request_rate"`
		} `json:"edges"`
	}
	require.NoError(t, json.Unmarshal(body, &graph), "%s", body)
	callers := map[string]bool{}
	for _, e := range graph.Edges {
		if e.Dependency == "payment" && e.RequestRate != nil && *e.RequestRate > 0 {
			callers[e.Caller] = true
		}
	}
	assert.Len(t, callers, 2, "checkout and frontend call payment: %s", body)
}
