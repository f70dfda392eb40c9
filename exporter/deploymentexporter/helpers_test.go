// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap/zaptest"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadata"
	"github.com/deploylens/deploylens/internal/deployevent"
)

// -update rewrites golden files from the current output: go test -run X -update
var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// t0 is when the test deployments start.
var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// fakeClock is the controllable clock of the tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testAlert is an alert signal as the processor writes it.
type testAlert struct {
	name, state, severity, fingerprint, recommendation string
	service, namespace, environment, version           string
	deploymentID, previousVersion, phase, revision     string
	indicator                                          string
	value, baseline, lower, upper, anomaly, confidence float64
	test                                               string
	startedAt, endedAt, at                             time.Time
	body                                               string
	// evidences is alert.evidence (an alert about a whole deployment); previousSeverity alert.previous_severity.
	evidences        []map[string]any
	previousSeverity string
}

// criticalAlert is the alert most tests use.
func criticalAlert() testAlert {
	return testAlert{
		name: "DeploymentErrorRateRegression", state: "firing", severity: "critical", fingerprint: "fp-err-1",
		recommendation: "rollback", service: "checkout", namespace: "shop", environment: "production", version: "1.4.2",
		deploymentID: "gh-1234", previousVersion: "1.4.1", phase: "during", revision: "9f8e7d6",
		indicator: "error_rate", value: 0.052, baseline: 0.01, lower: 0.004, upper: 0.016, anomaly: 0.97, confidence: 0.99,
		test: "two_proportion", startedAt: t0.Add(3 * time.Minute), at: t0.Add(3 * time.Minute),
		body: "checkout 1.4.2 fails 5.2% of requests against 1.0% before the deployment: roll back.",
	}
}

func (a testAlert) resolved(at time.Time) testAlert {
	a.state = "resolved"
	a.endedAt = at
	a.at = at
	return a
}

func (a testAlert) appendTo(ld plog.Logs) {
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr(deployevent.AttrServiceName, a.service)
	putIf(res, deployevent.AttrServiceNamespace, a.namespace)
	putIf(res, deployevent.AttrEnvironment, a.environment)
	putIf(res, deployevent.AttrServiceVersion, a.version)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/deploylens/deploylens/processor/deploymentprocessor")
	lr := sl.LogRecords().AppendEmpty()
	lr.SetEventName(deployevent.AlertEventName)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(a.at))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(a.at))
	switch a.severity {
	case "critical":
		lr.SetSeverityNumber(plog.SeverityNumberFatal)
	case "warning":
		lr.SetSeverityNumber(plog.SeverityNumberError)
	default:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	}
	lr.Body().SetStr(a.body)
	attrs := lr.Attributes()
	putIf(attrs, deployevent.AttrAlertName, a.name)
	putIf(attrs, deployevent.AttrAlertState, a.state)
	putIf(attrs, deployevent.AttrAlertSeverity, a.severity)
	putIf(attrs, deployevent.AttrAlertFingerprint, a.fingerprint)
	putIf(attrs, deployevent.AttrAlertRecommendation, a.recommendation)
	if !a.startedAt.IsZero() {
		attrs.PutStr(deployevent.AttrAlertStartedAt, a.startedAt.UTC().Format(time.RFC3339Nano))
	}
	if !a.endedAt.IsZero() {
		attrs.PutStr(deployevent.AttrAlertEndedAt, a.endedAt.UTC().Format(time.RFC3339Nano))
	}
	putIf(attrs, deployevent.AttrDeploymentID, a.deploymentID)
	putIf(attrs, deployevent.AttrPreviousVersion, a.previousVersion)
	putIf(attrs, deployevent.AttrDeploymentPhase, a.phase)
	putIf(attrs, deployevent.AttrRevision, a.revision)
	putIf(attrs, deployevent.AttrAlertPreviousSeverity, a.previousSeverity)
	if len(a.evidences) > 0 {
		list := attrs.PutEmptySlice(deployevent.AttrAlertEvidence)
		for _, ev := range a.evidences {
			if err := list.AppendEmpty().SetEmptyMap().FromRaw(ev); err != nil {
				panic(err)
			}
		}
	}
	if a.indicator != "" {
		attrs.PutStr(deployevent.AttrIndicatorName, a.indicator)
		attrs.PutDouble(deployevent.AttrIndicatorValue, a.value)
		attrs.PutDouble(deployevent.AttrIndicatorBaseline, a.baseline)
		attrs.PutDouble(deployevent.AttrIndicatorLower, a.lower)
		attrs.PutDouble(deployevent.AttrIndicatorUpper, a.upper)
		attrs.PutDouble(deployevent.AttrAnomalyScore, a.anomaly)
		attrs.PutDouble(deployevent.AttrAnomalyConfidence, a.confidence)
		attrs.PutStr(deployevent.AttrAnomalyTest, a.test)
	}
}

func putIf(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

func alertLogs(alerts ...testAlert) plog.Logs {
	ld := plog.NewLogs()
	for _, a := range alerts {
		a.appendTo(ld)
	}
	ld.MarkReadOnly()
	return ld
}

// lifecycleLogs is a deployment.lifecycle event as the receiver writes it.
func lifecycleLogs(state deployevent.State, at time.Time) plog.Logs {
	ev := deployevent.Event{
		Service: "checkout", Namespace: "shop", Environment: "production", Version: "1.4.2",
		ID: "gh-1234", State: state, PreviousVersion: "1.4.1", Strategy: deployevent.StrategyCanary,
		Source: deployevent.SourceGitHub, Revision: "9f8e7d6", Timestamp: at,
	}
	ld := plog.NewLogs()
	ev.AppendTo(ld, at)
	ld.MarkReadOnly()
	return ld
}

// healthMetrics is one evaluation as the processor emits it: the score (none
// while inconclusive), the verdict and recommendation state sets, and
// indicator points.
type testHealth struct {
	score          float64
	verdict        deployevent.Verdict
	recommendation deployevent.Recommendation
	phase          deployevent.Phase
	cohort         deployevent.Cohort
	at             time.Time
	indicators     map[string][2]float64 // value, baseline
}

func healthMetrics(h testHealth) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr(deployevent.AttrServiceName, "checkout")
	res.PutStr(deployevent.AttrServiceNamespace, "shop")
	res.PutStr(deployevent.AttrEnvironment, "production")
	res.PutStr(deployevent.AttrServiceVersion, "1.4.2")
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	putCohort := func(dp pmetric.NumberDataPoint) {
		dp.SetTimestamp(pcommon.NewTimestampFromTime(h.at))
		if h.cohort != "" {
			dp.Attributes().PutStr(deployevent.AttrDeploymentCohort, string(h.cohort))
		}
	}
	// A score only when something was judged, as the processor writes it.
	if h.verdict != deployevent.VerdictInconclusive && !math.IsNaN(h.score) {
		m := ms.AppendEmpty()
		m.SetName("deployment.health.score")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		putCohort(dp)
		dp.SetDoubleValue(h.score)
		dp.Attributes().PutStr(deployevent.AttrDeploymentPhase, string(h.phase))
	}
	// The verdict and recommendation state sets: 1 for the current value.
	for _, set := range []struct {
		name, attr, current string
		values              []string
	}{
		{"deployment.health.verdict", deployevent.AttrHealthVerdict, string(h.verdict), []string{"healthy", "degraded", "unhealthy", "inconclusive"}},
		{"deployment.health.recommendation", deployevent.AttrHealthRecommendation, string(h.recommendation), []string{"none", "investigate", "hold", "rollback"}},
	} {
		m := ms.AppendEmpty()
		m.SetName(set.name)
		g := m.SetEmptyGauge()
		for _, v := range set.values {
			dp := g.DataPoints().AppendEmpty()
			putCohort(dp)
			dp.Attributes().PutStr(set.attr, v)
			if v == set.current {
				dp.SetIntValue(1)
			} else {
				dp.SetIntValue(0)
			}
		}
	}
	if len(h.indicators) > 0 {
		value := ms.AppendEmpty()
		value.SetName("deployment.indicator.value")
		baseline := ms.AppendEmpty()
		baseline.SetName("deployment.indicator.baseline")
		vg, bg := value.SetEmptyGauge(), baseline.SetEmptyGauge()
		for name, vb := range h.indicators {
			for i, g := range []pmetric.Gauge{vg, bg} {
				p := g.DataPoints().AppendEmpty()
				p.SetTimestamp(pcommon.NewTimestampFromTime(h.at))
				p.SetDoubleValue(vb[i])
				p.Attributes().PutStr(deployevent.AttrIndicatorName, name)
				p.Attributes().PutStr(deployevent.AttrDeploymentPhase, string(h.phase))
			}
		}
	}
	md.MarkReadOnly()
	return md
}

// fastRetry retries quickly so tests do not wait for the default back-off.
func fastRetry() configretry.BackOffConfig {
	cfg := configretry.NewDefaultBackOffConfig()
	cfg.InitialInterval = 20 * time.Millisecond
	cfg.MaxInterval = 100 * time.Millisecond
	cfg.MaxElapsedTime = time.Minute
	cfg.RandomizationFactor = 0
	return cfg
}

// testConfig is the default config with the gate on a free port, fast
// retries, and edit applied.
func testConfig(edit func(*Config)) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Gate.Get().NetAddr.Endpoint = "127.0.0.1:0"
	cfg.BackOffConfig = fastRetry()
	if edit != nil {
		edit(cfg)
	}
	return cfg
}

type testHost struct {
	extensions map[component.ID]component.Component
}

func (h *testHost) GetExtensions() map[component.ID]component.Component { return h.extensions }

// newTestCore builds a core with cfg and clock (not started); it is shut
// down when the test ends.
func newTestCore(t *testing.T, cfg *Config, clock *fakeClock, tt *componenttest.Telemetry) *core {
	t.Helper()
	require.NoError(t, cfg.Validate())
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type) // stable: the persistent queue is found again after a restart
	if tt != nil {
		set.TelemetrySettings = tt.NewTelemetrySettings()
	}
	if os.Getenv("DEBUG_LOGS") != "" {
		set.Logger = zaptest.NewLogger(t)
	}
	c, err := newCore(cfg, set)
	require.NoError(t, err)
	if clock != nil {
		c.now = clock.Now
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { require.NoError(t, c.Shutdown(context.Background())) }) })
	return c
}

// startCore builds and starts a core.
func startCore(t *testing.T, cfg *Config, clock *fakeClock, tt *componenttest.Telemetry) *core {
	t.Helper()
	c := newTestCore(t, cfg, clock, tt)
	require.NoError(t, c.Start(context.Background(), &testHost{}))
	return c
}

// recorder is a fake HTTP endpoint (Alertmanager or a webhook) that records
// the bodies POSTed to it and answers with the status respond returns.
type recorder struct {
	mu      sync.Mutex
	bodies  [][]byte
	paths   []string
	headers []http.Header
	times   []time.Time
	respond func(n int, w http.ResponseWriter) // n counts requests from 1
	server  *httptest.Server
}

func newRecorder(t *testing.T, respond func(n int, w http.ResponseWriter)) *recorder {
	t.Helper()
	r := &recorder{respond: respond}
	r.server = httptest.NewServer(r)
	t.Cleanup(r.server.Close)
	return r
}

// newRecorderAt starts the recorder on addr (to bring a "down" endpoint up).
func newRecorderAt(t *testing.T, addr string, respond func(n int, w http.ResponseWriter)) *recorder {
	t.Helper()
	r := &recorder{respond: respond}
	var l net.Listener
	require.Eventually(t, func() bool {
		var err error
		l, err = net.Listen("tcp", addr)
		return err == nil
	}, 5*time.Second, 50*time.Millisecond)
	r.server = httptest.NewUnstartedServer(r)
	r.server.Listener = l
	r.server.Start()
	t.Cleanup(r.server.Close)
	return r
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, body)
	r.paths = append(r.paths, req.URL.Path)
	r.headers = append(r.headers, req.Header.Clone())
	r.times = append(r.times, time.Now())
	n := len(r.bodies)
	r.mu.Unlock()
	if r.respond != nil {
		r.respond(n, w)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

func (r *recorder) body(i int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bodies[i]
}

func (r *recorder) URL() string { return r.server.URL }

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// decodeJSON decodes b into a generic value.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

// assertGoldenJSON compares got with testdata/golden/name (rewritten with -update).
func assertGoldenJSON(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	var pretty any
	require.NoError(t, json.Unmarshal(got, &pretty))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(pretty))
	indented := buf.Bytes()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, indented, 0o600))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run the test with -update to create %s", path)
	require.JSONEq(t, string(want), string(indented))
}

// sinkExporter stands in for a target's queued exporter in tests that check
// which notifications are queued, synchronously.
type sinkExporter struct {
	component.StartFunc
	component.ShutdownFunc
	consumertest.LogsSink
}

// captureTargets replaces every target's exporter with a sink (before the
// core starts) and returns the sinks by target name.
func captureTargets(c *core) map[string]*sinkExporter {
	sinks := map[string]*sinkExporter{}
	for _, t := range c.targets {
		s := &sinkExporter{}
		t.exp = s
		sinks[t.name] = s
	}
	return sinks
}

// queued returns the alert signals queued on a sink, in order.
func (s *sinkExporter) queued(now time.Time) []alertSignal {
	var out []alertSignal
	for _, ld := range s.AllLogs() {
		out = append(out, alertsOf(ld, now)...)
	}
	return out
}

func clientAt(endpoint string) confighttp.ClientConfig {
	cc := confighttp.NewDefaultClientConfig()
	cc.Endpoint = endpoint
	return cc
}

func benchSettings() exporter.Settings {
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	return set
}
