// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/detector"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"
)

// instanceLoad is what one instance of checkout serves in 10 s.
type instanceLoad struct {
	svc        service
	instance   string
	rps        float64
	errorRatio float64
	latency    float64 // median, seconds
	cpu        float64
}

// serveInterval sends 10 s of checkout's telemetry ending at end: SERVER
// spans, an ERROR log per failed request, and a CPU reading per instance.
func (ps *pipelines) serveInterval(t testing.TB, rng *rand.Rand, end time.Time, loads ...instanceLoad) {
	t.Helper()
	td, ld, md := ptrace.NewTraces(), plog.NewLogs(), pmetric.NewMetrics()
	for _, l := range loads {
		rs := td.ResourceSpans().AppendEmpty()
		l.svc.putResource(rs.Resource().Attributes())
		rs.Resource().Attributes().PutStr("service.instance.id", l.instance)
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		rl := ld.ResourceLogs().AppendEmpty()
		rs.Resource().CopyTo(rl.Resource())
		records := rl.ScopeLogs().AppendEmpty().LogRecords()
		n := int(l.rps * 10)
		for i := range n {
			at := end.Add(-10 * time.Second).Add(time.Duration(float64(i)+0.5) * 10 * time.Second / time.Duration(n))
			latency := time.Duration(l.latency * math.Exp(0.6*rng.NormFloat64()) * float64(time.Second))
			sp := spans.AppendEmpty()
			sp.SetName("POST /api/checkout")
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-latency)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
			status := int64(200)
			if rng.Float64() < l.errorRatio {
				status = 503
				lr := records.AppendEmpty()
				lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
				lr.SetSeverityNumber(plog.SeverityNumberError)
				lr.Body().SetStr("POST /api/checkout failed: 503")
			}
			sp.Attributes().PutInt("http.response.status_code", status)
		}
		rm := md.ResourceMetrics().AppendEmpty()
		rs.Resource().CopyTo(rm.Resource())
		m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
		m.SetName("process.cpu.utilization")
		dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(end))
		dp.SetDoubleValue(l.cpu + 0.01*rng.NormFloat64())
	}
	ctx := context.Background()
	ps.clock.Set(end)
	require.NoError(t, ps.traces.ConsumeTraces(ctx, td))
	require.NoError(t, ps.logs.ConsumeLogs(ctx, ld))
	require.NoError(t, ps.metrics.ConsumeMetrics(ctx, md))
	// The sweep judges the interval once the close delay has passed.
	ps.clock.Set(end.Add(5 * time.Second))
	if ps.proc.health != nil {
		ps.proc.health.Sweep(ps.clock.Now())
	}
}

func checkoutHealth(ps *pipelines) *health.Snapshot { return ps.proc.HealthSnapshot(checkoutKey()) }

func v1(instance string) instanceLoad {
	return instanceLoad{svc: checkoutV1, instance: instance, rps: 25, errorRatio: 0.01, latency: 0.04, cpu: 0.3}
}

func v2(instance string) instanceLoad {
	l := v1(instance)
	l.svc = checkoutV2
	return l
}

// rollout runs 20 minutes of checkout 1.4.0 on two instances, then starts a
// rolling deployment to 1.5.0 and runs it for `during` with one instance of
// each version. It returns the pipelines, the RNG and the time reached.
func rollout(t *testing.T, opts pipelineOptions, canary instanceLoad, during time.Duration) (*pipelines, *rand.Rand, time.Time) {
	t.Helper()
	ps := newPipelines(t, opts)
	rng := rand.New(rand.NewPCG(7, 11)) //nolint:gosec // test data
	at := t0
	for range 6 * 20 {
		at = at.Add(10 * time.Second)
		ps.serveInterval(t, rng, at, v1("pod-a"), v1("pod-b"))
	}
	ev := deployEvent("rollout-1", deployevent.StateStarted, at.Sub(t0))
	ev.Strategy = deployevent.StrategyRolling
	ps.consumeEvents(t, ev)
	for range int(during / (10 * time.Second)) {
		at = at.Add(10 * time.Second)
		ps.serveInterval(t, rng, at, v1("pod-a"), canary)
	}
	return ps, rng, at
}

// TestHealthGolden runs fixed deployments through the three pipelines and
// compares the service's health snapshot with testdata/health/<case>.json
// (rewrite with -update).
func TestHealthGolden(t *testing.T) {
	slowErrors := v2("pod-c")
	slowErrors.errorRatio, slowErrors.latency = 0.06, 0.08
	for _, tt := range []struct {
		name   string
		canary instanceLoad
	}{
		{name: "clean_rollout", canary: v2("pod-c")},
		{name: "canary_errors_and_latency", canary: slowErrors},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps, _, _ := rollout(t, pipelineOptions{}, tt.canary, 2*time.Minute)
			snap := checkoutHealth(ps)
			require.NotNil(t, snap)
			got, err := json.MarshalIndent(goldenOf(snap), "", "  ")
			require.NoError(t, err)
			path := filepath.Join("testdata", "health", tt.name+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o600))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(got))
		})
	}
}

// The golden form of a snapshot: what a user acts on, rounded so that the
// file reads well and survives harmless floating-point changes.
type goldenSnapshot struct {
	Phase        string                  `json:"phase"`
	DeploymentID string                  `json:"deployment_id"`
	Frozen       bool                    `json:"frozen"`
	Health       goldenHealth            `json:"health"`
	Cohorts      map[string]goldenHealth `json:"cohorts,omitempty"`
}

type goldenHealth struct {
	Score          int                       `json:"score"`
	Verdict        string                    `json:"verdict"`
	Recommendation string                    `json:"recommendation"`
	Dimensions     map[string]int            `json:"dimensions"`
	Indicators     map[string]goldenEvidence `json:"indicators"`
}

type goldenEvidence struct {
	Judged     bool    `json:"judged"`
	Score      float64 `json:"score"`
	Test       string  `json:"test,omitempty"`
	Comparison string  `json:"comparison,omitempty"`
	Observed   string  `json:"observed,omitempty"`
	Expected   string  `json:"expected,omitempty"`
}

func goldenOf(s *health.Snapshot) goldenSnapshot {
	g := goldenSnapshot{Phase: string(s.Phase), DeploymentID: s.DeploymentID, Frozen: s.Frozen, Health: goldenHealthOf(&s.Health)}
	for i := range s.Cohorts {
		if g.Cohorts == nil {
			g.Cohorts = map[string]goldenHealth{}
		}
		g.Cohorts[string(s.Cohorts[i].Cohort)] = goldenHealthOf(&s.Cohorts[i].Health)
	}
	return g
}

func goldenHealthOf(h *health.Health) goldenHealth {
	g := goldenHealth{
		Score: int(math.Round(h.Score)), Verdict: string(h.Verdict), Recommendation: string(h.Recommendation),
		Dimensions: map[string]int{}, Indicators: map[string]goldenEvidence{},
	}
	for _, d := range h.Dimensions {
		if d.Judged {
			g.Dimensions[string(d.Dimension)] = int(math.Round(d.Score))
		}
	}
	for _, ev := range h.Indicators {
		ge := goldenEvidence{Judged: ev.Judged, Score: math.Round(ev.Score*100) / 100}
		if ev.Judged {
			ge.Test, ge.Comparison = ev.Test, string(ev.Comparison)
			ge.Observed, ge.Expected = fmt.Sprintf("%.2g", ev.Observed), fmt.Sprintf("%.2g", ev.Expected)
		}
		g.Indicators[ev.Indicator] = ge
	}
	return g
}

func TestHealthJudgesRollout(t *testing.T) {
	bad := v2("pod-c")
	bad.errorRatio = 0.08
	ps, _, _ := rollout(t, pipelineOptions{}, bad, 90*time.Second)
	snap := checkoutHealth(ps)
	require.NotNil(t, snap)
	assert.Equal(t, deployevent.PhaseDuring, snap.Phase)
	assert.Equal(t, "rollout-1", snap.DeploymentID)
	assert.True(t, snap.Frozen)
	require.Len(t, snap.Cohorts, 2, "both versions serve: baseline and canary are judged apart")
	assert.Equal(t, deployevent.VerdictHealthy, snap.Cohorts[0].Verdict)
	assert.Equal(t, deployevent.VerdictUnhealthy, snap.Cohorts[1].Verdict)
	assert.Equal(t, deployevent.RecommendRollback, snap.Cohorts[1].Recommendation)
	assert.True(t, snap.Alarm())
	// Untracked and unknown services have no snapshot.
	assert.Nil(t, ps.proc.HealthSnapshot(tracker.Key{Namespace: "shop", Service: "cart", Environment: "prod"}))
}

// TestHealthBaselinesSurviveRestart: baselines learned before a restart judge
// a deployment after it at once; without them, the same deployment is
// inconclusive while the baselines warm up.
func TestHealthBaselinesSurviveRestart(t *testing.T) {
	store := newMemStorage()
	ps := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: hostWith(store)})
	rng := rand.New(rand.NewPCG(7, 11)) //nolint:gosec // test data
	at := t0
	for range 6 * 20 {
		at = at.Add(10 * time.Second)
		ps.serveInterval(t, rng, at, v1("pod-a"), v1("pod-b"))
	}
	ps.shutdown(t)
	require.Equal(t, 1, store.setCountOf(healthKey))

	deployAndBreak := func(ps *pipelines) *health.Snapshot {
		ps.clock.Set(at)
		ev := deployEvent("rollout-1", deployevent.StateStarted, at.Sub(t0))
		ev.Strategy = deployevent.StrategyRecreate
		ps.consumeEvents(t, ev)
		bad := v2("pod-c")
		bad.errorRatio = 0.08
		end := at
		for range 6 {
			end = end.Add(10 * time.Second)
			ps.serveInterval(t, rng, end, bad, func() instanceLoad { l := bad; l.instance = "pod-d"; return l }())
		}
		return checkoutHealth(ps)
	}

	restarted := newPipelines(t, pipelineOptions{edit: withStorage(time.Hour), host: hostWith(store)})
	snap := deployAndBreak(restarted)
	require.NotNil(t, snap)
	assert.True(t, snap.Alarm(), "restored baselines judge at once: %+v", snap.Health)
	assert.Equal(t, deployevent.RecommendRollback, snap.Health.Recommendation)

	fresh := newPipelines(t, pipelineOptions{})
	snap = deployAndBreak(fresh)
	require.NotNil(t, snap)
	assert.False(t, snap.Alarm(), "without baselines a minute of data is not enough to judge")
}

// TestHealthAllocatesNothingPerSpan: in steady state, extracting indicators
// from spans (with tagging), a service's own and its dependencies', allocates nothing.
func TestHealthAllocatesNothingPerSpan(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{})
	rng := rand.New(rand.NewPCG(1, 1)) //nolint:gosec // test data
	ps.serveInterval(t, rng, t0.Add(10*time.Second), v1("pod-a"))
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	checkoutV1.putResource(rs.Resource().Attributes())
	rs.Resource().Attributes().PutStr("service.instance.id", "pod-a")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 500 {
		sp := spans.AppendEmpty()
		sp.SetKind(ptrace.SpanKindServer)
		at := t0.Add(12*time.Second + time.Duration(i)*time.Millisecond)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-30 * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at))
		sp.Attributes().PutInt("http.response.status_code", 200)
		if i%2 == 1 {
			// An outgoing call: counted on the edge of its dependency.
			sp.SetKind(ptrace.SpanKindClient)
			sp.Attributes().PutStr("peer.service", []string{"payment", "inventory", "pricing"}[i%3])
		}
	}
	ctx := context.Background()
	ps.clock.Set(t0.Add(13 * time.Second))
	_, _ = ps.proc.processTraces(ctx, td)
	allocs := testing.AllocsPerRun(20, func() { _, _ = ps.proc.processTraces(ctx, td) })
	assert.Zero(t, allocs)
}

func TestHealthDisabled(t *testing.T) {
	ps := newPipelines(t, pipelineOptions{edit: func(c *Config) { c.Health.Enabled = false }})
	ps.serveInterval(t, rand.New(rand.NewPCG(1, 1)), t0.Add(10*time.Second), v1("pod-a")) //nolint:gosec // test data
	assert.Nil(t, ps.proc.health)
	assert.Nil(t, checkoutHealth(ps))
}

func TestHealthConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*HealthConfig)
		want []string
	}{
		{name: "defaults", edit: func(*HealthConfig) {}},
		{name: "disabled skips checks", edit: func(h *HealthConfig) { h.Enabled = false; h.MinRequests = -1 }},
		{name: "interval", edit: func(h *HealthConfig) { h.Evaluation.IntervalActive = 0 },
			want: []string{"health::evaluation::interval_active: must be at least 1s"}},
		{name: "steady interval", edit: func(h *HealthConfig) { h.Evaluation.IntervalSteady = 25 * time.Second },
			want: []string{"health::evaluation::interval_steady: must be a multiple of interval_active (10s), got 25s"}},
		{name: "span kinds", edit: func(h *HealthConfig) { h.SpanKinds = []string{"server", "edge"} },
			want: []string{`health::span_kinds: unknown span kind "edge"`}},
		{name: "hysteresis", edit: func(h *HealthConfig) { h.Hysteresis.Enter, h.Hysteresis.Leave = 0, -1 },
			want: []string{"health::hysteresis::enter: must be at least 1, got 0", "health::hysteresis::leave: must be at least 1, got -1"}},
		{name: "alpha", edit: func(h *HealthConfig) { h.Alpha = 0 }, want: []string{"health::alpha: must be in (0, 1), got 0"}},
		{name: "thresholds", edit: func(h *HealthConfig) { h.Thresholds.Unhealthy = 80 },
			want: []string{"health::thresholds: must satisfy 0 ≤ unhealthy ≤ healthy ≤ 100, got unhealthy 80, healthy 70"}},
		{name: "weights", edit: func(h *HealthConfig) { h.Weights = WeightsConfig{Errors: -1} },
			want: []string{"health::weights::errors: must not be negative, got -1", "health::weights: at least one dimension needs a positive weight"}},
		{name: "min requests", edit: func(h *HealthConfig) { h.MinRequests = 0 }, want: []string{"health::min_requests: must be positive, got 0"}},
		{name: "compare window", edit: func(h *HealthConfig) { h.CompareWindow = time.Second },
			want: []string{"health::compare_window: must be at least interval_active, got 1s"}},
		{name: "indicator errors name the entry", edit: func(h *HealthConfig) {
			h.Indicators = append(h.Indicators,
				IndicatorConfig{Name: "orders", Kind: "rate", Metric: "orders.completed", Direction: "down"},
				IndicatorConfig{Name: "cpu_utilization", Kind: "gauge", Metric: "x"},
				IndicatorConfig{Name: "queue", Kind: "ratio", Numerator: "a"},
				IndicatorConfig{Name: "error_ratio", Kind: "gauge", Metric: "x"},
			)
		}, want: []string{
			`health::indicators[1]::direction: direction must be both, higher_is_worse or lower_is_worse, got "down"`,
			`health::indicators[2]::name: "cpu_utilization" is declared twice`,
			"health::indicators[3]: numerator, denominator: a ratio needs both metrics",
			`health::indicators[4]: name: "error_ratio" is a built-in indicator`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig().(*Config)
			tt.edit(&cfg.Health)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, want := range tt.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestHealthDefaults(t *testing.T) {
	h := createDefaultConfig().(*Config).Health
	assert.True(t, h.Enabled)
	assert.Equal(t, 10*time.Second, h.Evaluation.IntervalActive)
	assert.Equal(t, 60*time.Second, h.Evaluation.IntervalSteady)
	assert.Equal(t, []string{"server", "consumer"}, h.SpanKinds)
	assert.Equal(t, 20, h.MinRequests)
	assert.Equal(t, HysteresisConfig{Enter: 2, Leave: 3}, h.Hysteresis)
	assert.Equal(t, WeightsConfig{Errors: 0.35, Latency: 0.3, Throughput: 0.15, Saturation: 0.1, Business: 0.05, Logs: 0.05, Dependencies: 0.25}, h.Weights)
	assert.Equal(t, DependenciesConfig{Enabled: true, SpanKinds: []string{"client", "producer"}, MaxPerService: 32, MaxEdges: 50_000}, h.Dependencies)
	names := []string{}
	for _, ic := range h.Indicators {
		names = append(names, ic.Name)
	}
	sort.Strings(names)
	assert.Equal(t, []string{"cpu_utilization"}, names)
}

// BenchmarkHealthTraces is the default configuration (tagging at resource
// level, health on) on the tagging benchmarks' batch of 10 000 spans, moved
// 2 s forward in data time per batch (timer stopped), so that every fifth
// batch closes an interval of each service and evaluates it.
func BenchmarkHealthTraces(b *testing.B) {
	ps := newPipelines(b, pipelineOptions{})
	ps.consumeEvents(b, deployEvent("rollout-1", deployevent.StateStarted, 0))
	td := benchTraces()
	restamp := func(start time.Time) {
		for _, rs := range td.ResourceSpans().All() {
			for _, ss := range rs.ScopeSpans().All() {
				spans := ss.Spans()
				for k, sp := range spans.All() {
					sp.SetKind(ptrace.SpanKindServer)
					end := start.Add(time.Duration(k) * time.Second / time.Duration(spans.Len()))
					sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-30 * time.Millisecond)))
					sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
				}
			}
		}
	}
	ctx := context.Background()
	restamp(t0)
	ps.clock.Set(t0.Add(time.Second))
	_, _ = ps.proc.processTraces(ctx, td)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		at := t0.Add(time.Duration(i+1) * 2 * time.Second)
		restamp(at)
		ps.clock.Set(at.Add(time.Second))
		b.StartTimer()
		_, _ = ps.proc.processTraces(ctx, td)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchData, "ns/span")
}

func TestIndicatorConfigDefinitionFillsOmittedFields(t *testing.T) {
	def, err := IndicatorConfig{
		Name: "orders", Kind: "rate", Metric: "orders.completed",
		Attributes: map[string]string{"region": "eu", "channel": "web"},
	}.definition()
	require.NoError(t, err)
	assert.Equal(t, indicators.Definition{
		Name: "orders", Kind: indicators.KindRate, Metric: "orders.completed",
		Direction: detector.HigherIsWorse, Dimension: indicators.DimensionBusiness, Weight: 1,
		Attributes: []indicators.AttributeFilter{{Key: "channel", Value: "web"}, {Key: "region", Value: "eu"}},
	}, def)
}
