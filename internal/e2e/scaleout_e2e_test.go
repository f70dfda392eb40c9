// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/scenario"
)

// topology is the three tiers of DESIGN.md on loopback, every process the
// built binary: one agent (loadbalancing by service), two gateways (the
// deployment processor), one gate collector (the deployment exporter).
type topology struct {
	agentOTLP, agentWebhook int
	gatePort                int
	gatewayTraces           [2]string
	gatewayLogs             [2]string
	gateAlerts              string
	gateways                [2]*collector
	hostsFile               string
}

const gatewayConfig = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  deployment: {}
  filter/judgement:
    error_mode: ignore
    metrics:
      metric:
        - 'not IsMatch(name, "^deployment\\.")'
    logs:
      log_record:
        - 'event_name != "deployment.alert" and event_name != "deployment.lifecycle"'
connectors:
  forward/judgement_logs: {}
  forward/judgement_metrics: {}
exporters:
  file/traces: {path: %[2]s, flush_interval: 100ms}
  file/logs: {path: %[3]s, flush_interval: 100ms}
  debug: {}
  otlp_grpc/gate:
    endpoint: 127.0.0.1:%[4]d
    tls: {insecure: true}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [deployment]
      exporters: [file/traces]
    metrics:
      receivers: [otlp]
      processors: [deployment]
      exporters: [debug, forward/judgement_metrics]
    logs:
      receivers: [otlp]
      processors: [deployment]
      exporters: [file/logs, forward/judgement_logs]
    metrics/judgement:
      receivers: [forward/judgement_metrics]
      processors: [filter/judgement]
      exporters: [otlp_grpc/gate]
    logs/judgement:
      receivers: [forward/judgement_logs]
      processors: [filter/judgement]
      exporters: [otlp_grpc/gate]
`

// resolverStatic lists the gateways by address; resolverDNS resolves a name
// from a hosts file the agent alone sees (a private mount namespace), so a
// test can take a gateway out of "DNS" as Kubernetes does with a gone pod.
type resolverKind int

const (
	resolverStatic resolverKind = iota
	resolverDNS
)

const gatewaysHostname = "deploylens-gateways"

func startTopology(t *testing.T, resolver resolverKind) *topology {
	t.Helper()
	dir := t.TempDir()
	top := &topology{agentOTLP: freePort(t), agentWebhook: freePort(t), gatePort: freePort(t),
		gateAlerts: filepath.Join(dir, "gate-alerts.json")}
	gateOTLP := freePort(t)
	startCollector(t, collectorConfig{YAML: fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  deployment:
    gate:
      endpoint: 127.0.0.1:%d
  file/alerts: {path: %s, flush_interval: 100ms}
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [deployment, file/alerts]
    metrics:
      receivers: [otlp]
      exporters: [deployment]
`, gateOTLP, top.gatePort, top.gateAlerts)})

	// Static: two ports on 127.0.0.1. DNS: one port on 127.0.0.1 and 127.0.0.2.
	var gatewayAddrs [2]string
	dnsPort := freePort(t)
	for i := range 2 {
		gatewayAddrs[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		if resolver == resolverDNS {
			gatewayAddrs[i] = fmt.Sprintf("127.0.0.%d:%d", i+1, dnsPort)
		}
		top.gatewayTraces[i] = filepath.Join(dir, fmt.Sprintf("gateway%d-traces.json", i+1))
		top.gatewayLogs[i] = filepath.Join(dir, fmt.Sprintf("gateway%d-logs.json", i+1))
		top.gateways[i] = startCollector(t, collectorConfig{YAML: fmt.Sprintf(gatewayConfig,
			gatewayAddrs[i], top.gatewayTraces[i], top.gatewayLogs[i], gateOTLP)})
	}

	resolverYAML := fmt.Sprintf("static:\n        hostnames: [%s, %s]", gatewayAddrs[0], gatewayAddrs[1])
	var wrap []string
	if resolver == resolverDNS {
		top.hostsFile = filepath.Join(dir, "hosts")
		top.setGateways(t, "127.0.0.1", "127.0.0.2")
		resolverYAML = fmt.Sprintf("dns:\n        hostname: %s\n        port: \"%d\"\n        interval: 1s\n        timeout: 1s", gatewaysHostname, dnsPort)
		// The agent alone sees the test's hosts file, bind-mounted over
		// /etc/hosts in a mount namespace of its own.
		wrap = []string{"unshare", "--mount", "--propagation", "private",
			"sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, top.hostsFile}
	}

	startCollector(t, collectorConfig{YAML: fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
  deployment:
    endpoint: 127.0.0.1:%d
exporters:
  load_balancing:
    # Not routing_key: service — in v0.161.0 traces hash "service.name=<svc>|"
    # but logs and metrics hash "<svc>", so a service's spans and its deployment
    # events can land on different gateways. routing_attributes: [service.name]
    # builds the same key for all three signals.
    routing_key: attributes
    routing_attributes: [service.name]
    protocol:
      otlp:
        tls: {insecure: true}
        timeout: 2s
    resolver:
      %s
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [load_balancing]
    logs:
      receivers: [otlp, deployment]
      exporters: [load_balancing]
    metrics:
      receivers: [otlp]
      exporters: [load_balancing]
`, top.agentOTLP, top.agentWebhook, resolverYAML), Wrap: wrap, Env: map[string]string{"GODEBUG": "netdns=go"}})
	return top
}

// setGateways writes the agent's hosts file in place (the bind mount follows
// the inode): gatewaysHostname resolves to these addresses.
func (top *topology) setGateways(t *testing.T, addrs ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n")
	for _, a := range addrs {
		b.WriteString(a + " " + gatewaysHostname + "\n")
	}
	f, err := os.OpenFile(top.hostsFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	require.NoError(t, err)
	_, err = f.WriteString(b.String())
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

// verdict asks the gate about a service in production.
func (top *topology) verdict(t *testing.T, service string) map[string]any {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/verdict?service=%s&environment=production", top.gatePort, service))
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	var v map[string]any
	require.NoError(t, json.Unmarshal(body, &v), "%s", body)
	return v
}

// TestE2EScaleOutByService: 20 services' telemetry and lifecycle events go
// through one agent; each service lands on exactly one of two gateways with
// its events, deploying services are tagged during with their id (none is
// steady), and the gate answers for services judged on either gateway.
func TestE2EScaleOutByService(t *testing.T) {
	top := startTopology(t, resolverStatic)
	const services = 20
	name := func(i int) string { return "svc-" + strconv.Itoa(i) }
	deploying := func(i int) bool { return i%2 == 0 }
	env := `deployment.environment.name="production"`

	webhook := fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", top.agentWebhook)
	for i := range services {
		if !deploying(i) {
			continue
		}
		status, answer := postHTTP(t, webhook, fmt.Appendf(nil,
			`{"service":%q,"environment":"production","version":"2.0.0","previous_version":"1.9.0","id":"deploy-%d","state":"started","strategy":"rolling"}`,
			name(i), i), map[string]string{"Content-Type": "application/json"})
		require.Equal(t, http.StatusOK, status, answer)
	}

	var wg sync.WaitGroup
	for i := range services {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sendSpans(t, top.agentOTLP, name(i), 2, env)
		}()
	}
	wg.Wait()

	// Wait until every service's spans have come out of some gateway.
	spansOn := func(gw, i int) []map[string]any {
		return spanTags(readTraces(t, top.gatewayTraces[gw]), name(i))
	}
	eventually(t, 30*time.Second, "the spans of all 20 services on the gateways", func() bool {
		for i := range services {
			if len(spansOn(0, i))+len(spansOn(1, i)) < 2*spansPerTrace {
				return false
			}
		}
		return true
	})

	owner := map[int]int{}
	perGateway := [2]int{}
	for i := range services {
		on0, on1 := len(spansOn(0, i)), len(spansOn(1, i))
		require.Truef(t, (on0 == 0) != (on1 == 0), "%s's spans are on exactly one gateway (gateway 1: %d, gateway 2: %d)", name(i), on0, on1)
		gw := 0
		if on1 > 0 {
			gw = 1
		}
		owner[i] = gw
		perGateway[gw]++
		for _, tag := range spansOn(gw, i) {
			if deploying(i) {
				assert.Equal(t, "during", tag["deployment.phase"], "%s is deploying", name(i))
				assert.Equal(t, "deploy-"+strconv.Itoa(i), tag["deployment.id"])
			} else {
				assert.Equal(t, "steady", tag["deployment.phase"], "%s is not deploying", name(i))
			}
		}
	}
	assert.Positive(t, perGateway[0], "gateway 1 owns some services")
	assert.Positive(t, perGateway[1], "gateway 2 owns some services")

	// A deploying service's lifecycle event landed on the gateway that owns its spans.
	for i := range services {
		if !deploying(i) {
			continue
		}
		for gw := range 2 {
			found := false
			for _, r := range lifecycleRecords(readLogs(t, top.gatewayLogs[gw])) {
				if r.Resource["service.name"] == name(i) {
					found = true
				}
			}
			assert.Equalf(t, owner[i] == gw, found, "%s's event on gateway %d", name(i), gw+1)
		}
	}

	// The gate, fed by both gateways' judgement streams, knows the deployments judged on either.
	for gw := range 2 {
		for i := range services {
			if !deploying(i) || owner[i] != gw {
				continue
			}
			var v map[string]any
			eventually(t, 15*time.Second, "the gate to know "+name(i), func() bool {
				v = top.verdict(t, name(i))
				return v["deployment_id"] == "deploy-"+strconv.Itoa(i)
			})
			assert.Equal(t, "during", v["phase"], "%s (gateway %d)", name(i), gw+1)
			assert.Equal(t, "2.0.0", v["version"])
			assert.Contains(t, []any{"pass", "fail", "inconclusive"}, v["verdict"])
			break
		}
	}
}

// TestE2EScaleOutGatewayLoss: with the DNS resolver, a gateway that goes away
// (and out of DNS, as a gone pod leaves a headless Service) hands its services
// to the other gateway; the survivor's own services stay where they were.
// The moved services start afresh on the survivor: it has not seen their
// deployments, so their telemetry is steady until their next lifecycle event
// (the README states this cost).
func TestE2EScaleOutGatewayLoss(t *testing.T) {
	if _, err := exec.LookPath("unshare"); err != nil || os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatalf("this test needs root and unshare (util-linux) to give the agent its own /etc/hosts: euid %d, %v", os.Geteuid(), err)
		}
		t.Skip("needs root and unshare (util-linux) to give the agent its own /etc/hosts")
	}
	top := startTopology(t, resolverDNS)
	const services = 20
	name := func(i int) string { return "svc-" + strconv.Itoa(i) }
	env := `deployment.environment.name="production"`
	webhook := fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", top.agentWebhook)
	event := func(i int, state string) {
		status, answer := postHTTP(t, webhook, fmt.Appendf(nil,
			`{"service":%q,"environment":"production","version":"2.0.0","previous_version":"1.9.0","id":"deploy-%d","state":%q}`,
			name(i), i, state), map[string]string{"Content-Type": "application/json"})
		require.Equal(t, http.StatusOK, status, answer)
	}
	for i := range services {
		event(i, "started")
	}
	spansOn := func(gw, i int) []map[string]any {
		return spanTags(readTraces(t, top.gatewayTraces[gw]), name(i))
	}
	sendAll := func() {
		var wg sync.WaitGroup
		for i := range services {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sendSpans(t, top.agentOTLP, name(i), 1, env)
			}()
		}
		wg.Wait()
	}
	sendAll()
	eventually(t, 30*time.Second, "the spans of all 20 services on the gateways", func() bool {
		for i := range services {
			if len(spansOn(0, i))+len(spansOn(1, i)) < spansPerTrace {
				return false
			}
		}
		return true
	})
	owner := map[int]int{}
	var moved, stayed []int
	for i := range services {
		require.Truef(t, (len(spansOn(0, i)) == 0) != (len(spansOn(1, i)) == 0), "%s on exactly one gateway", name(i))
		if len(spansOn(1, i)) > 0 {
			owner[i] = 1
			moved = append(moved, i)
		} else {
			stayed = append(stayed, i)
		}
		for _, tag := range append(spansOn(0, i), spansOn(1, i)...) {
			require.Equal(t, "during", tag["deployment.phase"], name(i))
		}
	}
	require.NotEmpty(t, moved, "gateway 2 owns some services")
	require.NotEmpty(t, stayed, "gateway 1 owns some services")

	// Gateway 2 goes away, and out of the agent's DNS.
	top.gateways[1].Stop()
	top.setGateways(t, "127.0.0.1")
	before := map[int]int{}
	for _, i := range stayed {
		before[i] = len(spansOn(0, i))
	}
	eventually(t, 60*time.Second, "gateway 2's services to reach gateway 1", func() bool {
		for _, i := range moved {
			if len(spansOn(0, i)) == 0 {
				sendAll()
				time.Sleep(time.Second)
				return false
			}
		}
		return true
	})
	for _, i := range moved {
		for _, tag := range spansOn(0, i) {
			assert.Equal(t, "steady", tag["deployment.phase"], "%s starts afresh on gateway 1", name(i))
		}
	}
	for _, i := range stayed {
		assert.Greater(t, len(spansOn(0, i)), before[i], "%s stays on gateway 1", name(i))
		tags := spansOn(0, i)
		assert.Equal(t, "during", tags[len(tags)-1]["deployment.phase"], "%s keeps its state", name(i))
	}

	// The next lifecycle event of a moved service restores its deployment on gateway 1.
	i := moved[0]
	event(i, "progressing")
	n := len(spansOn(0, i))
	sendSpans(t, top.agentOTLP, name(i), 1, env)
	eventually(t, 20*time.Second, name(i)+"'s spans after its event", func() bool { return len(spansOn(0, i)) > n })
	tags := spansOn(0, i)
	assert.Equal(t, "during", tags[len(tags)-1]["deployment.phase"])
	assert.Equal(t, "deploy-"+strconv.Itoa(i), tags[len(tags)-1]["deployment.id"])
}

// TestE2EScaleOutRegressionOnGateway2: a regressing deployment of a service
// that gateway 2 owns, driven through the agent (OTLP and the webhook), is
// judged on gateway 2; its verdict reaches the gate collector, which fails it,
// and its alert reaches the gate collector's alert output.
func TestE2EScaleOutRegressionOnGateway2(t *testing.T) {
	top := startTopology(t, resolverStatic)
	base := libraryScenario(t, scenario.KindErrorRatio, 50)
	var label scenario.Label
	found := false
	// The ring decides who owns a name: replay under fresh names until gateway 2 owns one.
	for attempt := 0; attempt < 8 && !found; attempt++ {
		sc := base
		name := fmt.Sprintf("payments-%d", attempt)
		sc.Services = slices.Clone(base.Services)
		for i := range sc.Services {
			if sc.Services[i].Name == base.Deployment.Service {
				sc.Services[i].Name = name
			}
		}
		sc.Deployment.Service = name
		label = replayScenario(t, top.agentOTLP, top.agentWebhook, sc, 0, true)
		eventually(t, 30*time.Second, name+"'s spans on a gateway", func() bool {
			return len(spanTags(readTraces(t, top.gatewayTraces[0]), name))+len(spanTags(readTraces(t, top.gatewayTraces[1]), name)) > 0
		})
		found = len(spanTags(readTraces(t, top.gatewayTraces[1]), name)) > 0
	}
	require.True(t, found, "no fresh name landed on gateway 2 in 8 tries")
	assert.Empty(t, spanTags(readTraces(t, top.gatewayTraces[0]), label.Service), "gateway 1 saw none of it")

	var v map[string]any
	eventually(t, 60*time.Second, "the gate to fail "+label.Service, func() bool {
		v = top.verdict(t, label.Service)
		return v["verdict"] == "fail"
	})
	assert.Equal(t, label.DeploymentID, v["deployment_id"])
	eventually(t, 60*time.Second, "a firing alert for "+label.Service+" in the gate collector's alert output", func() bool {
		for _, a := range alertSignals(t, top.gateAlerts) {
			if a.Resource["service.name"] == label.Service && a.Attrs["alert.state"] == "firing" && a.Attrs["deployment.id"] == label.DeploymentID {
				return true
			}
		}
		return false
	})
}
