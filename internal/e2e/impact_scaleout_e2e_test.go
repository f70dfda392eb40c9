// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

// TestE2EImpactAcrossGateways: payment's rollout fails only checkout's calls
// to it (the impact-endpoint topology), and the agent's load balancing puts
// checkout and payment on different gateways. Checkout's gateway judges its
// calls to payment as a steady edge (it never sees payment's lifecycle
// events); payment's gateway sees payment's own spans, which stay clean. The
// gate collector, which gets both judgement streams, counts checkout's calls
// against payment's deployment: payment's gate fails naming checkout, the
// graph marks the edge, and checkout's own gate does not fail.
func TestE2EImpactAcrossGateways(t *testing.T) {
	top := startTopology(t, resolverStatic)
	base := topologyScenario(t, scenario.TopologyImpactEndpoint, 50)
	require.Equal(t, scenario.ServicePayment, base.Label().Culprit)
	require.Equal(t, []string{scenario.ServiceCheckout}, base.Label().Harmed)

	// The ring decides who owns a name: try fresh suffixes until checkout and
	// payment land on different gateways. A probe trace in an environment of
	// its own finds a name's gateway (the routing key is service.name alone)
	// without giving the scenario's services any state first.
	var sc scenario.Scenario
	var owner [2]int // checkout's and payment's gateway
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 12, "no suffix put checkout and payment on different gateways")
		suffix := fmt.Sprintf("-%d", attempt)
		owner = [2]int{impactProbeGateway(t, top, scenario.ServiceCheckout+suffix), impactProbeGateway(t, top, scenario.ServicePayment+suffix)}
		if owner[0] != owner[1] {
			sc = impactRename(base, suffix)
			break
		}
	}
	label := sc.Label()
	checkout, payment := label.Harmed[0], label.Culprit
	require.Equal(t, payment, label.Service)

	// Warm-up as fast as the collectors take it, then the rollout in real
	// time: the caller's gateway reports a steady edge every
	// signals::steady_interval (60s) of wall-clock time.
	began := time.Now()
	paced, stop := impactReplayPaced(t, top.agentOTLP, top.agentWebhook, sc)
	defer stop()
	<-paced
	t.Logf("warm-up replayed in %s; %s's rollout %s began", time.Since(began).Round(time.Millisecond), payment, label.DeploymentID)
	rollout := time.Now()

	// Each service's spans are on its own gateway only.
	eventually(t, 30*time.Second, "checkout's and payment's spans on their gateways", func() bool {
		return len(spanTags(readTraces(t, top.gatewayTraces[owner[0]]), checkout)) > 0 &&
			len(spanTags(readTraces(t, top.gatewayTraces[owner[1]]), payment)) > 0
	})
	assert.Empty(t, spanTags(readTraces(t, top.gatewayTraces[owner[1]]), checkout), "checkout is judged on gateway %d only", owner[0]+1)
	assert.Empty(t, spanTags(readTraces(t, top.gatewayTraces[owner[0]]), payment), "payment is judged on gateway %d only", owner[1]+1)

	var v map[string]any
	var reason string
	eventually(t, 180*time.Second, "the gate to fail "+payment+" for "+checkout+"'s calls", func() bool {
		v = top.verdict(t, payment)
		if v["verdict"] != "fail" || v["deployment_id"] != label.DeploymentID {
			return false
		}
		for _, r := range v["reasons"].([]any) {
			if s := r.(string); strings.HasPrefix(s, checkout+"'s calls to "+payment+" ") {
				reason = s
				return true
			}
		}
		return false
	})
	t.Logf("%s fails %s after its rollout began: %q (recommendation %s)", payment, time.Since(rollout).Round(time.Second), reason, v["recommendation"])
	assert.Contains(t, reason, "after "+payment+"'s rollout began")
	assert.Contains(t, []any{"hold", "rollback"}, v["recommendation"])

	// The edge is marked on the graph as counted against the deployment.
	g := impactGraph(t, top, payment)
	var marked any = "edge not found"
	for _, e := range g.Edges {
		if e.Caller == "shop/"+checkout+"/production" && e.Dependency == payment {
			marked = e.ImpactOf
			if e.ImpactOf != nil {
				marked = *e.ImpactOf
			}
		}
	}
	assert.Equal(t, label.DeploymentID, marked, "checkout → payment counted against payment's rollout")

	// Checkout is not deploying: payment's rollout does not fail its gate,
	// but checkout's impact alert — raised by the gate tier, which alone
	// knows both ends — names payment's deployment, and the gate tells it.
	var cv map[string]any
	explained := "explained by " + payment + " " + label.Version + "'s rollout (deployment " + label.DeploymentID + ")"
	eventually(t, 30*time.Second, checkout+"'s impact alert naming "+payment+"'s deployment", func() bool {
		cv = top.verdict(t, checkout)
		for _, r := range cv["reasons"].([]any) {
			if s := r.(string); strings.Contains(s, "DependencyDeploymentImpact") && strings.Contains(s, explained) {
				return true
			}
		}
		return false
	})
	assert.NotEqual(t, "fail", cv["verdict"], "%v", cv)
	t.Logf("%s's gate: %v", checkout, cv["reasons"])

	// Checkout's own alert, if its gateway raised one, reached the gate collector.
	for _, a := range alertSignals(t, top.gateAlerts) {
		if a.Resource["service.name"] == checkout {
			t.Logf("checkout's alert: %s (%v)", a.Body, a.Attrs["alert.state"])
		}
	}
}

// impactRename gives every service of sc the suffix, wherever a service is
// named: the services, their calls' callees and the deployments.
func impactRename(base scenario.Scenario, suffix string) scenario.Scenario {
	sc := base
	sc.Services = slices.Clone(base.Services)
	for i := range sc.Services {
		s := &sc.Services[i]
		s.Name += suffix
		s.Calls = slices.Clone(s.Calls)
		for j := range s.Calls {
			s.Calls[j].Callee += suffix
		}
	}
	sc.Deployment.Service += suffix
	sc.Also = slices.Clone(base.Also)
	for i := range sc.Also {
		sc.Also[i].Service += suffix
	}
	return sc
}

// impactProbeGateway sends one trace of service in the environment "probe"
// and answers which gateway (0 or 1) its spans came out of.
func impactProbeGateway(t *testing.T, top *topology, service string) int {
	t.Helper()
	sendSpans(t, top.agentOTLP, service, 1, `deployment.environment.name="probe"`)
	gw := -1
	eventually(t, 30*time.Second, service+"'s probe spans on a gateway", func() bool {
		for i := range 2 {
			if len(spanTags(readTraces(t, top.gatewayTraces[i]), service)) > 0 {
				gw = i
				return true
			}
		}
		return false
	})
	return gw
}

// impactReplayPaced replays sc with its deployment starting now: the
// warm-up as fast as it is taken, then each step when its window closes, in
// the background. paced is closed when the warm-up is sent; stop ends the
// replay (lifecycle events of success are left out, so the rollout stays in
// progress, as replayScenario's keepRunning does).
func impactReplayPaced(t *testing.T, otlpPort, webhookPort int, sc scenario.Scenario) (paced <-chan struct{}, stop func()) {
	t.Helper()
	sc.Start = time.Now().Add(-sc.WarmUp).Truncate(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	sender, err := otlpsend.New(ctx, otlpsend.Config{
		Endpoint:       fmt.Sprintf("127.0.0.1:%d", otlpPort),
		DeploymentsURL: fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", webhookPort),
	})
	require.NoError(t, err)
	steps, err := sc.Steps()
	require.NoError(t, err)
	warm := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer close(done)
		warmed := false
		for st := range steps {
			if wait := time.Until(st.Time); wait > 0 {
				if !warmed {
					warmed = true
					close(warm)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			st.Events = slices.DeleteFunc(st.Events, func(e deployevent.Event) bool { return e.State == deployevent.StateSucceeded })
			if err := sender.Send(ctx, st); err != nil {
				if ctx.Err() == nil {
					done <- err
				}
				return
			}
		}
		if !warmed {
			close(warm)
		}
	}()
	var once bool
	return warm, func() {
		if once {
			return
		}
		once = true
		cancel()
		err := <-done
		assert.NoError(t, sender.Shutdown(context.Background()))
		assert.NoError(t, err, "replay")
	}
}

// impactGraphData is the part of GET /v1/graph this test reads.
type impactGraphData struct {
	Edges []struct {
		Caller     string  `json:"caller"`
		Dependency string  `json:"dependency"`
		ImpactOf   *string `json:"impact_of"`
	} `json:"edges"`
}

// impactGraph asks the gate for the neighbourhood of a service in production.
func impactGraph(t *testing.T, top *topology, service string) impactGraphData {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/graph?service=%s&environment=production", top.gatePort, service))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var g impactGraphData
	require.NoError(t, json.Unmarshal(body, &g), "%s", body)
	return g
}
