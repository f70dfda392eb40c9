// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

// readMetrics decodes the file exporter's metrics output into one pmetric.Metrics.
func readMetrics(t testing.TB, path string) pmetric.Metrics {
	t.Helper()
	out := pmetric.NewMetrics()
	var u pmetric.JSONUnmarshaler
	decodeLines(t, path, u.UnmarshalMetrics, func(m pmetric.Metrics) { m.ResourceMetrics().MoveAndAppendTo(out.ResourceMetrics()) })
	return out
}

// metricPoint is one number data point of a named metric, flattened.
type metricPoint struct {
	Service string
	Attrs   map[string]any
	Start   pcommon.Timestamp
	Time    pcommon.Timestamp
	Value   float64
}

// metricPoints lists the points of metric name for service, in arrival order.
func metricPoints(metrics pmetric.Metrics, name, service string) []metricPoint {
	var out []metricPoint
	for i := 0; i < metrics.ResourceMetrics().Len(); i++ {
		rm := metrics.ResourceMetrics().At(i)
		svc, _ := rm.Resource().Attributes().Get(deployevent.AttrServiceName)
		if svc.AsString() != service {
			continue
		}
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				if m.Name() != name {
					continue
				}
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				default:
					continue
				}
				for l := 0; l < dps.Len(); l++ {
					dp := dps.At(l)
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					out = append(out, metricPoint{Service: service, Attrs: dp.Attributes().AsRaw(), Start: dp.StartTimestamp(), Time: dp.Timestamp(), Value: v})
				}
			}
		}
	}
	return out
}

// lastBaselines returns, per indicator, the last deployment.indicator.baseline
// of service in phase `during` (cohort-less).
func lastBaselines(metrics pmetric.Metrics, service string) map[string]float64 {
	out := map[string]float64{}
	for _, p := range metricPoints(metrics, "deployment.indicator.baseline", service) {
		if p.Attrs["deployment.phase"] == "during" && (p.Attrs["deployment.cohort"] == nil || p.Attrs["deployment.cohort"] == "") {
			out[p.Attrs["indicator.name"].(string)] = p.Value
		}
	}
	return out
}

// succeededCount returns the last deployment.count point of service with
// status succeeded (any judgement) and whether there was one.
func succeededCount(metrics pmetric.Metrics, service string) (metricPoint, bool) {
	var last metricPoint
	found := false
	for _, p := range metricPoints(metrics, "deployment.count", service) {
		if p.Attrs["deployment.status"] == "succeeded" && p.Value > 0 {
			last, found = p, true
		}
	}
	return last, found
}

// TestE2EFaultKilledMidDeployment: with file_storage for the processor, a
// deployment is running and its baselines are frozen; the collector is
// SIGKILLed (no shutdown flush) and restarted on the same storage directory.
// After it: spans of the service are still tagged `during` with the
// deployment's id, the frozen baselines are the same values, and the KPI
// counter of an earlier (GitHub) deployment keeps its value and its start
// timestamp.
func TestE2EFaultKilledMidDeployment(t *testing.T) {
	webhookPort, grpcPort := freePort(t), freePort(t)
	dir := t.TempDir()
	storageDir := filepath.Join(dir, "storage")
	require.NoError(t, os.MkdirAll(storageDir, 0o700))
	tracesOut, metricsOut := filepath.Join(dir, "traces.json"), filepath.Join(dir, "metrics.json")
	const flushInterval = time.Second
	env := map[string]string{"GITHUB_WEBHOOK_SECRET": githubSecret}
	c := startCollector(t, collectorConfig{YAML: fmt.Sprintf(`
extensions:
  file_storage:
    directory: %s
receivers:
  deployment:
    endpoint: 127.0.0.1:%d
    github: {secret: "${env:GITHUB_WEBHOOK_SECRET}"}
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
processors:
  deployment:
    storage: file_storage
    flush_interval: %s
    signals:
      interval: 1s
      steady_interval: 1s
exporters:
  file/traces: {path: %s, flush_interval: 100ms}
  file/metrics: {path: %s, flush_interval: 100ms}
  debug: {}
service:
  pipelines:
    logs:
      receivers: [deployment, otlp]
      processors: [deployment]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      processors: [deployment]
      exporters: [file/metrics]
    traces:
      receivers: [otlp]
      processors: [deployment]
      exporters: [file/traces]
`, storageDir, webhookPort, grpcPort, flushInterval, tracesOut, metricsOut),
		Extensions: []string{"file_storage"},
		Env:        env,
	})

	// An earlier deployment, finished: the real GitHub payloads, in_progress then success.
	github := fmt.Sprintf("http://127.0.0.1:%d/webhooks/github", webhookPort)
	for _, state := range []string{"in_progress", "success"} {
		body, headers := githubStatus(t, state)
		status, answer := postHTTP(t, github, body, headers)
		require.Equal(t, http.StatusOK, status, answer)
	}

	// A clean deployment replayed up to 30 s (simulated) before its end: its
	// baselines learned in the warm-up and froze at its start.
	sc := libraryScenario(t, scenario.KindNone, 50)
	sc.Start = time.Now().Add(-sc.WarmUp - sc.Observe).Truncate(time.Second)
	label := sc.Label()
	cut := label.DeploymentStart.Add(sc.Observe - 30*time.Second)
	ctx := context.Background()
	newSender := func() *otlpsend.Sender {
		s, err := otlpsend.New(ctx, otlpsend.Config{
			Endpoint:       fmt.Sprintf("127.0.0.1:%d", grpcPort),
			DeploymentsURL: fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", webhookPort),
		})
		require.NoError(t, err)
		return s
	}
	steps, err := sc.Steps()
	require.NoError(t, err)
	var tail []scenario.Step
	sender := newSender()
	for st := range steps {
		// The deployment keeps running: its end is not this test's subject.
		st.Events = slices.DeleteFunc(st.Events, func(e deployevent.Event) bool { return e.State == deployevent.StateSucceeded })
		if st.Time.After(cut) {
			tail = append(tail, st)
			continue
		}
		require.NoError(t, sender.Send(ctx, st))
	}
	require.NoError(t, sender.Shutdown(ctx))
	require.NotEmpty(t, tail)

	var before map[string]float64
	var countBefore metricPoint
	eventually(t, 30*time.Second, "frozen baselines of "+label.Service+" and the GitHub deployment counted", func() bool {
		m := readMetrics(t, metricsOut)
		before = lastBaselines(m, label.Service)
		var ok bool
		countBefore, ok = succeededCount(m, "Hello-World")
		return len(before) > 0 && ok
	})
	t.Logf("baselines before the kill: %v; deployment.count{Hello-World,succeeded}=%g since %s", before, countBefore.Value, countBefore.Start.AsTime())

	// Everything is older than a flush interval: it must be on disk.
	time.Sleep(3 * flushInterval)
	c.Kill()
	require.NoError(t, os.Remove(tracesOut))
	require.NoError(t, os.Remove(metricsOut))
	c.Restart(env)
	require.Contains(t, c.Output(), "Restored deployment state")

	// The deployment is still running, with its id.
	sendSpans(t, grpcPort, label.Service, 1,
		fmt.Sprintf("service.namespace=%q", label.Namespace), fmt.Sprintf("deployment.environment.name=%q", label.Environment))
	after := waitForSpans(t, tracesOut, label.Service, 1)
	assert.Equal(t, "during", after[len(after)-1]["deployment.phase"], "the phase survived SIGKILL")
	assert.Equal(t, label.DeploymentID, after[len(after)-1]["deployment.id"], "the deployment id survived SIGKILL")

	// The rest of the deployment's traffic: it is judged against the same frozen baselines.
	sender = newSender()
	for _, st := range tail {
		require.NoError(t, sender.Send(ctx, st))
	}
	require.NoError(t, sender.Shutdown(ctx))
	var got map[string]float64
	var countAfter metricPoint
	eventually(t, 30*time.Second, "baselines and the KPI counter after the restart", func() bool {
		m := readMetrics(t, metricsOut)
		got = lastBaselines(m, label.Service)
		var ok bool
		countAfter, ok = succeededCount(m, "Hello-World")
		return len(got) >= len(before) && ok
	})
	t.Logf("baselines after the restart: %v", got)
	for indicator, value := range before {
		assert.InDelta(t, value, got[indicator], 1e-9*max(1, value), "the frozen baseline of %s survived SIGKILL", indicator)
	}
	assert.Equal(t, countBefore.Value, countAfter.Value, "deployment.count kept its value")
	assert.Equal(t, countBefore.Start, countAfter.Start, "deployment.count kept its start timestamp: %s vs %s", countBefore.Start.AsTime(), countAfter.Start.AsTime())
}

// resolvedSignal is alertSignal resolved at endedAt.
func resolvedSignal(service, deploymentID string, startedAt, endedAt time.Time) plog.Logs {
	logs := alertSignal(service, deploymentID, startedAt)
	lr := logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.Attributes().PutStr(deployevent.AttrAlertState, deployevent.AlertResolved)
	lr.Attributes().PutStr(deployevent.AttrAlertEndedAt, endedAt.UTC().Format(time.RFC3339Nano))
	return logs
}

// hookAlert is the part of a webhook channel's alert we check.
type hookAlert struct {
	Status       string    `json:"status"`
	Fingerprint  string    `json:"fingerprint"`
	DeploymentID string    `json:"deployment_id"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
}

// hookServer records the alerts POSTed to a webhook channel, on a fixed port.
type hookServer struct {
	mu     sync.Mutex
	alerts []hookAlert
}

func startHookServer(t *testing.T, port int) *hookServer {
	t.Helper()
	h := &hookServer{}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Alerts []hookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.alerts = append(h.alerts, body.Alerts...)
		h.mu.Unlock()
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return h
}

func (h *hookServer) received() []hookAlert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.alerts)
}

// alertmanagerReceived is Alertmanager's own count of alerts received with status.
func alertmanagerReceived(t *testing.T, base, status string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^alertmanager_alerts_received_total\{status="` + status + `",version="v2"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	require.NoError(t, err)
	return v
}

// TestE2EFaultAlertsQueuedAcrossKill: Alertmanager and a webhook channel are
// down; a firing alert, and another alert that fires then resolves, are
// signalled and queued (persistent sending queues on file_storage); the
// collector is SIGKILLed with them queued; Alertmanager and the webhook
// come up and the collector restarts on the same storage: the firing alert
// arrives with its original startsAt, the resolve arrives too.
func TestE2EFaultAlertsQueuedAcrossKill(t *testing.T) {
	requireDebianBinary(t, alertmanagerBinary, "prometheus-alertmanager")
	amPort, hookPort, otlpPort := freePort(t), freePort(t), freePort(t)
	c := startQueuedAlertsCollector(t, otlpPort, amPort, fmt.Sprintf(`    channels:
      audit:
        type: webhook
        endpoint: http://127.0.0.1:%d/hook
        timeout: 2s
    routes:
      - channels: [audit]
`, hookPort))
	startedAt := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	endedAt := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	sendLogs(t, otlpPort,
		alertSignal("checkout", "deploy-kill-firing", startedAt),
		alertSignal("cart", "deploy-kill-resolved", startedAt),
		resolvedSignal("cart", "deploy-kill-resolved", startedAt, endedAt))

	// Let every target try (and fail) at least once, then kill the collector with it all queued.
	time.Sleep(2 * time.Second)
	c.Kill()
	base := startAlertmanager(t, amPort)
	hook := startHookServer(t, hookPort)
	c.Restart(nil)

	var alerts []amAlert
	eventually(t, 30*time.Second, "the queued firing alert and the resolve in Alertmanager after the kill", func() bool {
		alerts = alertmanagerAlerts(t, base)
		return len(alerts) > 0 && alertmanagerReceived(t, base, "resolved") >= 1
	})
	require.Len(t, alerts, 1, "the resolved alert is not active: %v", alerts)
	got := alerts[0]
	assert.Equal(t, "deploy-kill-firing", got.Labels["deployment_id"])
	assert.Equal(t, "checkout", got.Labels["service"])
	assert.True(t, got.StartsAt.Equal(startedAt), "startsAt is when the alert began: %s vs %s", got.StartsAt, startedAt)
	assert.Equal(t, "active", got.Status.State)

	var notes []hookAlert
	eventually(t, 30*time.Second, "three notifications on the webhook channel after the kill", func() bool {
		notes = hook.received()
		return len(notes) >= 3
	})
	t.Logf("Alertmanager received firing=%g resolved=%g; the webhook got %+v", alertmanagerReceived(t, base, "firing"), alertmanagerReceived(t, base, "resolved"), notes)
	byKey := map[string]hookAlert{}
	for _, n := range notes {
		byKey[n.DeploymentID+"/"+n.Status] = n
	}
	firing, ok := byKey["deploy-kill-firing/firing"]
	require.True(t, ok, "%+v", notes)
	assert.True(t, firing.StartsAt.Equal(startedAt), "starts_at: %s vs %s", firing.StartsAt, startedAt)
	resolved, ok := byKey["deploy-kill-resolved/resolved"]
	require.True(t, ok, "the resolve sent while the channel was down arrives: %+v", notes)
	assert.True(t, resolved.StartsAt.Equal(startedAt), "starts_at: %s vs %s", resolved.StartsAt, startedAt)
	assert.True(t, resolved.EndsAt.Equal(endedAt), "ends_at: %s vs %s", resolved.EndsAt, endedAt)
	order := slices.IndexFunc(notes, func(n hookAlert) bool { return n.DeploymentID == "deploy-kill-resolved" && n.Status == "firing" })
	assert.GreaterOrEqual(t, order, 0, "the firing notification of the resolved alert arrives: %+v", notes)
	assert.Less(t, order, slices.IndexFunc(notes, func(n hookAlert) bool { return n.DeploymentID == "deploy-kill-resolved" && n.Status == "resolved" }),
		"the firing notification before the resolve: %+v", notes)
	c.Stop()
}

// floodPayload is one real webhook body with the headers that make the
// receiver accept it.
type floodPayload struct {
	path    string
	body    []byte
	headers map[string]string
}

// floodPayloads are real GitHub and GitLab deliveries and a generic batch from the
// receiver's testdata, signed or carrying the tokens of floodReceiverYAML.
func floodPayloads(t *testing.T) []floodPayload {
	t.Helper()
	read := func(parts ...string) []byte {
		body, err := os.ReadFile(filepath.Join(append([]string{repoRoot(t), "receiver", "deploymentreceiver", "testdata"}, parts...)...))
		require.NoError(t, err)
		return body
	}
	github := read("github", "github-deployment_status-success.json")
	return []floodPayload{
		{"/webhooks/github", github, map[string]string{
			"Content-Type": "application/json", "X-GitHub-Event": "deployment_status", "X-Hub-Signature-256": signGitHub(github),
		}},
		{"/webhooks/gitlab", read("gitlab", "gitlab-deployment_hook-success.json"), map[string]string{
			"Content-Type": "application/json", "X-Gitlab-Event": "Deployment Hook", "X-Gitlab-Token": "flood-gitlab-token",
		}},
		{"/v1/deployments", read("generic", "array.json"), map[string]string{
			"Content-Type": "application/json", "Authorization": "Bearer flood-generic-token",
		}},
	}
}

// floodTally is what the flooding clients were answered.
type floodTally struct {
	mu         sync.Mutex
	requests   int
	ok         int
	accepted   int // events the 200 answers say were accepted
	refused    int // 503 with Retry-After
	unexpected []string
}

func (f *floodTally) add(status int, retryAfter, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	switch {
	case status == http.StatusOK:
		var answer struct {
			Accepted int `json:"accepted"`
		}
		if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.Accepted < 1 {
			f.unexpected = append(f.unexpected, "200 without accepted events: "+body)
			return
		}
		f.ok++
		f.accepted += answer.Accepted
	case status == http.StatusServiceUnavailable && retryAfter != "":
		f.refused++
	default:
		if len(f.unexpected) < 20 {
			f.unexpected = append(f.unexpected, fmt.Sprintf("%d (Retry-After %q): %s", status, retryAfter, body))
		}
	}
}

// vmRSS reads the resident set size of process pid from /proc, in bytes.
func vmRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`(?m)^VmRSS:\s+(\d+) kB$`).FindSubmatch(data)
	if m == nil {
		return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	kb, err := strconv.ParseInt(string(m[1]), 10, 64)
	return kb * 1024, err
}

// lifecycleCount counts the deployment.lifecycle records in the file
// exporter's output (one per accepted event) without decoding every line.
func lifecycleCount(t *testing.T, path string) int {
	t.Helper()
	n := 0
	for _, line := range fileLines(t, path) {
		n += bytes.Count(line, []byte(`"eventName":"deployment.lifecycle"`))
	}
	return n
}

// TestE2EFaultReceiverFlood: 32 concurrent clients post real, signed webhook
// deliveries for 20 s (5 s with -short) to a receiver whose pipeline has a
// tight memory_limiter. Every answer is 200, or 503 with Retry-After when the
// limiter refuses; every accepted event comes out of the file exporter; the
// collector's RSS stays bounded. The collector runs with GOGC=off, so its heap
// grows until the limiter steps in (refusing, and collecting at its hard
// limit): refusal is certain, not a matter of the machine's speed.
func TestE2EFaultReceiverFlood(t *testing.T) {
	const clients = 32
	const rssBound = 512 << 20
	duration := 20 * time.Second
	if testing.Short() {
		duration = 5 * time.Second
	}
	port := freePort(t)
	out := filepath.Join(t.TempDir(), "events.json")
	c := startCollector(t, collectorConfig{YAML: fmt.Sprintf(`
receivers:
  deployment:
    endpoint: 127.0.0.1:%d
    github: {secret: "${env:GITHUB_WEBHOOK_SECRET}"}
    gitlab: {token: flood-gitlab-token}
    generic: {bearer_token: flood-generic-token}
    retry_after: 1s
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: 64
    spike_limit_mib: 16
  deployment: {}
exporters:
  file: {path: %s, flush_interval: 100ms}
service:
  pipelines:
    logs:
      receivers: [deployment]
      processors: [memory_limiter, deployment]
      exporters: [file]
`, port, out), Env: map[string]string{"GITHUB_WEBHOOK_SECRET": githubSecret, "GOGC": "off"}})

	payloads := floodPayloads(t)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()

	var peakRSS int64
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := vmRSS(c.PID()); err == nil && rss > peakRSS {
				peakRSS = rss
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	var tally floodTally
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; ctx.Err() == nil; n++ {
				p := payloads[n%len(payloads)]
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, base+p.path, bytes.NewReader(p.body))
				if err != nil {
					tally.add(0, "", err.Error())
					return
				}
				for k, v := range p.headers {
					req.Header.Set(k, v)
				}
				resp, err := client.Do(req)
				if err != nil {
					tally.add(0, "", err.Error())
					continue
				}
				body, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if err != nil {
					tally.add(0, "", err.Error())
					continue
				}
				tally.add(resp.StatusCode, resp.Header.Get("Retry-After"), string(body))
			}
		}()
	}
	wg.Wait()
	<-sampled

	t.Logf("%d clients for %s: %d requests, %d answered 200 (%d events accepted), %d answered 503 with Retry-After; peak RSS %.1f MiB",
		clients, duration, tally.requests, tally.ok, tally.accepted, tally.refused, float64(peakRSS)/(1<<20))
	assert.Empty(t, tally.unexpected, "every answer is 200, or 503 with Retry-After")
	require.Positive(t, tally.ok)
	assert.Positive(t, tally.refused, "the memory limiter refused some: the 503 path was exercised")
	var got int
	eventually(t, 30*time.Second, fmt.Sprintf("%d lifecycle records in the file exporter's output", tally.accepted), func() bool {
		got = lifecycleCount(t, out)
		return got >= tally.accepted
	})
	// The collector counted the same refusals.
	refusedCounted := 0.0
	for _, m := range regexp.MustCompile(`(?m)^otelcol_receiver_deployment_requests_refused(?:_total)?\{[^}]*reason="pipeline_refused"[^}]*\} (\S+)$`).FindAllStringSubmatch(c.SelfMetrics(), -1) {
		v, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		refusedCounted += v
	}
	assert.InDelta(t, float64(tally.refused), refusedCounted, 0.5, "otelcol_receiver_deployment_requests_refused{reason=pipeline_refused} counts the 503s")
	c.Stop()
	got = lifecycleCount(t, out)
	assert.Equal(t, tally.accepted, got, "every accepted event came out, and nothing refused did")
	assert.Less(t, peakRSS, int64(rssBound), "RSS stays bounded")
}
