// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

var (
	t0       = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	checkout = Key{Namespace: "shop", Service: "checkout", Environment: "prod"}
)

// world is what the engine is told: the tracker's status of each key and the clock.
type world struct {
	mu     sync.Mutex
	status map[Key]Status
	now    time.Time
}

func newWorld() *world { return &world{status: map[Key]Status{}, now: t0} }

func (w *world) Status(k Key) Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status[k]
}

func (w *world) set(k Key, phase deployevent.Phase, id string, strategy deployevent.Strategy) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status[k] = Status{Tracked: true, Phase: phase, DeploymentID: id, Strategy: string(strategy)}
}

func (w *world) Now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func newEngine(t testing.TB, w *world, edit func(*Config)) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Now = w.Now
	if edit != nil {
		edit(&cfg)
	}
	e, err := New(cfg, w.Status)
	require.NoError(t, err)
	return e
}

// traffic sends a key's requests as SERVER spans, interval by interval.
type traffic struct {
	e   *Engine
	w   *world
	key Key
	rng *rand.Rand
	at  time.Duration // simulated time since t0
}

func newTraffic(e *Engine, w *world, key Key) *traffic {
	w.set(key, deployevent.PhaseSteady, "", "")
	return &traffic{e: e, w: w, key: key, rng: rand.New(rand.NewPCG(1, 2))} //nolint:gosec // test data
}

// cohortLoad is what one cohort serves in an interval.
type cohortLoad struct {
	cohort     indicators.Cohort
	instance   uint64
	rps        float64
	errorRatio float64
	latency    float64 // median, seconds
}

// step sends one interval (10 s) of requests and runs the sweep.
func (tr *traffic) step(loads ...cohortLoad) {
	for _, l := range loads {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		n := int(l.rps * 10)
		for i := range n {
			end := t0.Add(tr.at + time.Duration(float64(i)+0.5)*10*time.Second/time.Duration(n))
			latency := l.latency * math.Exp(0.5*tr.rng.NormFloat64())
			sp := spans.AppendEmpty()
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Duration(latency * float64(time.Second)))))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
			if tr.rng.Float64() < l.errorRatio {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
		s := tr.e.Series(tr.key)
		src := &indicators.Source{Cohort: l.cohort, Instance: l.instance, Identity: l.instance, Now: t0.Add(tr.at + 10*time.Second).UnixNano()}
		s.Lock()
		s.AddSpans(src, td.ResourceSpans().At(0).ScopeSpans())
		s.Unlock()
	}
	tr.at += 10 * time.Second
	tr.w.mu.Lock()
	tr.w.now = t0.Add(tr.at + 5*time.Second)
	tr.w.mu.Unlock()
	tr.e.Sweep(t0.Add(tr.at + 5*time.Second))
}

func (tr *traffic) steps(n int, loads ...cohortLoad) {
	for range n {
		tr.step(loads...)
	}
}

func (tr *traffic) snapshot(t testing.TB) *Snapshot {
	t.Helper()
	snap := tr.e.Snapshot(tr.key)
	require.NotNil(t, snap)
	return snap
}

func steady(rps float64) cohortLoad {
	return cohortLoad{cohort: indicators.CohortNone, instance: 1, rps: rps, errorRatio: 0.01, latency: 0.05}
}

func evidence(h *Health, name string) Evidence {
	for _, ev := range h.Indicators {
		if ev.Indicator == name {
			return ev
		}
	}
	return Evidence{}
}

func TestSteadyKeyIsHealthyAndEvaluatedEveryMinute(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	tr := newTraffic(e, w, checkout)
	tr.steps(6*30, steady(50))
	snap := tr.snapshot(t)
	assert.Equal(t, deployevent.PhaseSteady, snap.Phase)
	assert.False(t, snap.Frozen)
	assert.Equal(t, deployevent.VerdictHealthy, snap.Health.Verdict)
	assert.Equal(t, deployevent.RecommendNone, snap.Health.Recommendation)
	assert.Greater(t, snap.Health.Score, 90.0)
	assert.Zero(t, snap.Time.Unix()%60, "steady keys are evaluated on the minute")
	assert.Equal(t, uint64(1+30), e.Evaluations(), "the first interval, then one evaluation a minute for 30 minutes")
	ratio := evidence(&snap.Health, indicators.ErrorRatio)
	assert.True(t, ratio.Judged)
	assert.InDelta(t, 0.01, ratio.Baseline, 0.005)
	rate := evidence(&snap.Health, indicators.RequestRate)
	assert.InDelta(t, 50, rate.Value, 1)
	assert.Less(t, rate.Lower, 50.0)
	assert.Greater(t, rate.Upper, 50.0)
	assert.Len(t, snap.Health.Dimensions, 6)
	assert.Empty(t, snap.Cohorts)
}

func TestErrorRegressionIsRolledBack(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	tr := newTraffic(e, w, checkout)
	tr.steps(6*30, steady(50))
	w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyRecreate)
	bad := steady(50)
	bad.errorRatio = 0.05
	alarmAt := -1
	for i := range 12 {
		tr.step(bad)
		if snap := tr.snapshot(t); snap.Alarm() && alarmAt < 0 {
			alarmAt = i
		}
	}
	require.GreaterOrEqual(t, alarmAt, 0, "an error ratio ×5 alarms")
	assert.LessOrEqual(t, alarmAt, 5, "within a minute")
	snap := tr.snapshot(t)
	assert.True(t, snap.Frozen)
	assert.Equal(t, "deploy-1", snap.DeploymentID)
	assert.Equal(t, deployevent.VerdictUnhealthy, snap.Health.Verdict)
	assert.Equal(t, deployevent.RecommendRollback, snap.Health.Recommendation)
	ratio := evidence(&snap.Health, indicators.ErrorRatio)
	assert.Equal(t, 1.0, ratio.Score)
	assert.Contains(t, []string{"two_proportion_z", "fisher_exact", "robust_z", "window_shift", "step_change"}, ratio.Test)
	assert.Greater(t, ratio.Observed, ratio.Expected)
	assert.Greater(t, ratio.Confidence, 0.999)
	// The frozen baseline still says what was normal before the deployment.
	assert.InDelta(t, 0.01, ratio.Baseline, 0.005)

	// Back to steady: the baselines learn again, the verdict starts afresh.
	w.set(checkout, deployevent.PhaseSteady, "", "")
	tr.steps(6, steady(50))
	snap = tr.snapshot(t)
	assert.False(t, snap.Frozen)
	assert.NotEqual(t, deployevent.RecommendRollback, snap.Health.Recommendation)
}

func TestCleanDeploymentStaysHealthy(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	tr := newTraffic(e, w, checkout)
	tr.steps(6*30, steady(50))
	w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyRolling)
	for range 6 * 10 {
		tr.step(steady(50))
		snap := tr.snapshot(t)
		require.False(t, snap.Alarm(), "a deployment that changes nothing never alarms: %+v", snap.Health)
	}
	assert.Equal(t, deployevent.VerdictHealthy, tr.snapshot(t).Health.Verdict)
}

func TestCanaryWorseThanBaseline(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	tr := newTraffic(e, w, checkout)
	tr.steps(6*30, cohortLoad{cohort: indicators.CohortNone, instance: 1, rps: 40, errorRatio: 0.01, latency: 0.05},
		cohortLoad{cohort: indicators.CohortNone, instance: 2, rps: 40, errorRatio: 0.01, latency: 0.05})
	w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyCanary)
	baseline := cohortLoad{cohort: indicators.CohortBaseline, instance: 1, rps: 60, errorRatio: 0.01, latency: 0.05}
	canary := cohortLoad{cohort: indicators.CohortCanary, instance: 3, rps: 20, errorRatio: 0.01, latency: 0.1}
	tr.steps(12, baseline, canary)
	snap := tr.snapshot(t)
	require.Len(t, snap.Cohorts, 2)
	assert.Equal(t, deployevent.CohortBaseline, snap.Cohorts[0].Cohort)
	assert.Equal(t, deployevent.CohortCanary, snap.Cohorts[1].Cohort)
	assert.Equal(t, deployevent.VerdictHealthy, snap.Cohorts[0].Verdict, "the baseline cohort serves as before")
	assert.Equal(t, deployevent.VerdictUnhealthy, snap.Cohorts[1].Verdict, "the canary is twice as slow")
	assert.Equal(t, deployevent.RecommendRollback, snap.Cohorts[1].Recommendation)
	latency := evidence(&snap.Cohorts[1].Health, indicators.LatencyP95)
	assert.Equal(t, "mann_whitney_u", latency.Test)
	assert.True(t, snap.Alarm())
	// Rates are not compared between a canary and the baseline: the router sets their shares.
	assert.False(t, evidence(&snap.Cohorts[1].Health, indicators.RequestRate).Judged)
}

func TestLowTrafficIsInconclusive(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	tr := newTraffic(e, w, checkout)
	tr.steps(6*30, steady(0.5))
	snap := tr.snapshot(t)
	assert.Equal(t, deployevent.VerdictInconclusive, snap.Health.Verdict, "5 requests an interval are too few to judge")
	for _, ev := range snap.Health.Indicators {
		assert.False(t, ev.Judged, ev.Indicator)
	}
	w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyRolling)
	tr.step(steady(0.5))
	assert.Equal(t, deployevent.VerdictInconclusive, tr.snapshot(t).Health.Verdict, "nor is one interval of the deployment")
	bad := steady(0.5)
	bad.errorRatio = 0.03
	for range 6 * 10 {
		tr.step(bad)
		require.False(t, tr.snapshot(t).Alarm())
	}
}

func TestThroughputDrop(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	tr := newTraffic(e, w, checkout)
	tr.steps(6*30, steady(100))
	w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyRecreate)
	tr.steps(6, steady(40))
	snap := tr.snapshot(t)
	assert.True(t, snap.Alarm())
	rate := evidence(&snap.Health, indicators.RequestRate)
	assert.Greater(t, rate.Score, 0.5)
	assert.Less(t, rate.Observed, rate.Expected)
}

func TestStateRoundTrip(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	tr := newTraffic(e, w, checkout)
	tr.steps(6*30, steady(50))
	w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyRecreate)
	tr.steps(3, steady(50))
	before := tr.snapshot(t)
	data := e.MarshalState(w.Now())

	// A new engine (a restarted collector) with one indicator more.
	restored := newEngine(t, w, func(c *Config) {
		c.Indicators = append(c.Indicators, indicators.Definition{
			Name: "queue_depth", Kind: indicators.KindGauge, Metric: "queue.depth", Dimension: indicators.DimensionSaturation, Weight: 1,
		})
	})
	n, err := restored.RestoreState(data, w.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	s := restored.Series(checkout)
	require.NotNil(t, s)
	assert.True(t, s.frozen)
	assert.Equal(t, "deploy-1", s.judged)
	for i, sp := range restored.specs {
		assert.True(t, s.inds[i].det.Frozen(), sp.name)
		ready := s.inds[i].det.Expect(w.Now()).Ready
		assert.Equal(t, sp.name != "queue_depth" && sp.name != "cpu_utilization" && sp.name != indicators.LogErrorRate, ready,
			"%s: restored baselines are ready, a new indicator has learned nothing", sp.name)
	}
	// The restored engine judges at once: no warm-up, the same frozen baseline.
	tr.e = restored
	bad := steady(50)
	bad.errorRatio = 0.05
	tr.steps(4, bad)
	snap := tr.snapshot(t)
	assert.True(t, snap.Alarm())
	assert.InDelta(t, evidence(&before.Health, indicators.ErrorRatio).Baseline, evidence(&snap.Health, indicators.ErrorRatio).Baseline, 1e-12)

	// Garbage is refused and changes nothing.
	_, err = restored.RestoreState([]byte("DLHS\x01garbage"), w.Now())
	require.Error(t, err)
	_, err = restored.RestoreState(data[:len(data)/2], w.Now())
	require.Error(t, err)
	assert.Equal(t, 1, restored.Len())
}

func TestBounds(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, func(c *Config) { c.MaxKeys = 1; c.IdleTTL = time.Hour })
	tr := newTraffic(e, w, checkout)
	tr.step(steady(5))
	other := Key{Service: "cart"}
	assert.Nil(t, e.Series(other), "the engine is full")
	assert.Equal(t, uint64(1), e.Refused())

	// A key the tracker forgot is forgotten at the next sweep.
	w.mu.Lock()
	delete(w.status, checkout)
	w.mu.Unlock()
	e.Sweep(w.Now())
	assert.Zero(t, e.Len())
	assert.Equal(t, uint64(1), e.Evicted())

	// So is a key without data for IdleTTL.
	tr = newTraffic(e, w, checkout)
	tr.step(steady(5))
	require.Equal(t, 1, e.Len())
	e.Sweep(w.Now().Add(2 * time.Hour))
	assert.Zero(t, e.Len())
}

func TestSweepClosesIntervalsWithoutLaterData(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyRolling)
	// One metric export (a gauge) and nothing after it.
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("process.cpu.utilization")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(10 * time.Second)))
	dp.SetDoubleValue(0.3)
	s := e.Series(checkout)
	s.Lock()
	s.AddMetrics(&indicators.Source{Now: t0.Add(10 * time.Second).UnixNano()}, md.ResourceMetrics().At(0).ScopeMetrics())
	s.Unlock()
	assert.Nil(t, e.Snapshot(checkout))
	e.Sweep(t0.Add(12 * time.Second))
	assert.Nil(t, e.Snapshot(checkout), "late data may still come")
	e.Sweep(t0.Add(15 * time.Second))
	snap := e.Snapshot(checkout)
	require.NotNil(t, snap, "evaluated CloseDelay after the interval's end")
	assert.Equal(t, t0.Add(10*time.Second), snap.Time)
	assert.InDelta(t, 0.3, evidence(&snap.Health, "cpu_utilization").Value, 1e-9)
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	require.NoError(t, ok.Validate())
	for _, tt := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.IntervalActive = time.Millisecond }, "interval_active must be at least 1s"},
		{func(c *Config) { c.IntervalSteady = 15 * time.Second }, "interval_steady must be a multiple of interval_active"},
		{func(c *Config) { c.Enter = 0 }, "hysteresis must be at least 1 evaluation"},
		{func(c *Config) { c.MinRequests = 0 }, "min_requests must be positive"},
		{func(c *Config) { c.Alpha = 1 }, "alpha must be in (0, 1)"},
		{func(c *Config) { c.CompareWindow = time.Second }, "compare_window must be at least interval_active"},
		{func(c *Config) { c.HealthyAbove, c.UnhealthyBelow = 30, 60 }, "thresholds must satisfy"},
		{func(c *Config) { c.Weights = [indicators.NumDimensions]float64{} }, "at least one dimension needs a positive weight"},
	} {
		c := DefaultConfig()
		tt.edit(&c)
		assert.ErrorContains(t, c.Validate(), tt.want)
	}
}

// cpuStep sends one interval of spans at rps and a CPU reading that follows
// the load (0.05 + 0.005 per request per second) plus extra.
func (tr *traffic) cpuStep(rps, extra float64) {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("process.cpu.utilization")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(tr.at + 10*time.Second)))
	dp.SetDoubleValue(0.05 + 0.005*rps + extra + 0.005*tr.rng.NormFloat64())
	s := tr.e.Series(tr.key)
	s.Lock()
	s.AddMetrics(&indicators.Source{Instance: 1, Identity: 1, Now: t0.Add(tr.at + 10*time.Second).UnixNano()}, md.ResourceMetrics().At(0).ScopeMetrics())
	s.Unlock()
	tr.step(cohortLoad{cohort: indicators.CohortNone, instance: 1, rps: rps, errorRatio: 0.01, latency: 0.05})
}

// TestSaturationIsJudgedNetOfLoad: CPU that rises with the traffic is no
// regression; CPU that rises at the same traffic is.
func TestSaturationIsJudgedNetOfLoad(t *testing.T) {
	for _, tt := range []struct {
		name  string
		rps   func(i int) float64
		extra float64
		alarm bool
	}{
		{name: "more traffic, more CPU", rps: func(i int) float64 { return 60 + float64(i) }, alarm: false},
		{name: "same traffic, more CPU", rps: func(int) float64 { return 60 }, extra: 0.15, alarm: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			e := newEngine(t, w, nil)
			tr := newTraffic(e, w, checkout)
			// The load wanders before the deployment, so the fit can learn the slope.
			for i := range 6 * 30 {
				tr.cpuStep(60+15*math.Sin(float64(i)/8), 0)
			}
			w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyRolling)
			alarm := false
			for i := range 6 * 3 {
				tr.cpuStep(tt.rps(i), tt.extra)
				alarm = alarm || tr.snapshot(t).Alarm()
			}
			assert.Equal(t, tt.alarm, alarm, "%+v", evidence(&tr.snapshot(t).Health, "cpu_utilization"))
			if tt.alarm {
				assert.Equal(t, TestLoadAdjusted, evidence(&tr.snapshot(t).Health, "cpu_utilization").Test)
			}
		})
	}
}

// A backfill (an agent's queue draining after an outage) brings old data
// faster than real time; the sweep between its exports must not close the
// intervals it is still filling, so their rates stay whole.
func TestBackfillIsNotChoppedByTheSweep(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	w.set(checkout, deployevent.PhaseSteady, "", "")
	live := t0.Add(2 * time.Hour) // the clock: an hour past the newest data
	w.now = live
	const rps = 100
	rates := map[int64]float64{}
	for half := range 2 * 6 * 60 { // an hour in exports of 5 s
		from := t0.Add(time.Duration(half) * 5 * time.Second)
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for i := range rps * 5 {
			end := from.Add(time.Duration(float64(i)+0.5) * 5 * time.Second / (rps * 5))
			sp := spans.AppendEmpty()
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-50 * time.Millisecond)))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		}
		s := e.Series(checkout)
		s.Lock()
		s.AddSpans(&indicators.Source{Instance: 1, Identity: 1, Now: live.UnixNano()}, td.ResourceSpans().At(0).ScopeSpans())
		s.Unlock()
		e.Sweep(live) // the collector's sweep runs between the exports
		if snap := e.Snapshot(checkout); snap != nil {
			rates[snap.Time.UnixNano()] = evidence(&snap.Health, indicators.RequestRate).Value
		}
	}
	require.NotEmpty(t, rates)
	for at, v := range rates {
		if !math.IsNaN(v) {
			assert.InDelta(t, rps, v, 1, "interval ending %s", time.Unix(0, at).UTC())
		}
	}
	// Once the backfill pauses, the sweep closes its last interval.
	w.now = live.Add(10 * time.Second)
	e.Sweep(w.now)
	snap := e.Snapshot(checkout)
	require.NotNil(t, snap)
	assert.Equal(t, t0.Add(time.Hour), snap.Time)
}

// Traffic wanders (with the hour, with its callers): in a rolling deployment
// both versions' rate per instance follow it alike. Across time that is the
// load, not the new version; the concurrent comparison of the cohorts still
// tells a version that serves less than its peers.
func TestWanderingLoadDuringRolloutIsNotARegression(t *testing.T) {
	w := newWorld()
	e := newEngine(t, w, nil)
	tr := newTraffic(e, w, checkout)
	// ±35 % over twenty minutes.
	rate := func(k int) float64 { return 50 * (1 + 0.35*math.Sin(2*math.Pi*float64(k)/120)) }
	two := func(k int, a, b indicators.Cohort) []cohortLoad {
		return []cohortLoad{
			{cohort: a, instance: 1, rps: rate(k), errorRatio: 0.01, latency: 0.05},
			{cohort: b, instance: 2, rps: rate(k), errorRatio: 0.01, latency: 0.05},
		}
	}
	k := 0
	for ; k < 6*60*2+60; k++ { // two hours and ten minutes: falling through the mean
		tr.step(two(k, indicators.CohortNone, indicators.CohortNone)...)
	}
	w.set(checkout, deployevent.PhaseDuring, "deploy-1", deployevent.StrategyRolling)
	for end := k + 60; k < end; k++ { // ten minutes: down to the trough and back
		tr.step(two(k, indicators.CohortBaseline, indicators.CohortCanary)...)
		snap := tr.snapshot(t)
		require.False(t, snap.Alarm(), "%s: %s", snap.Time, describe(snap))
	}
	for range 36 {
		tr.step(cohortLoad{cohort: indicators.CohortBaseline, instance: 1, rps: 50, errorRatio: 0.01, latency: 0.05},
			cohortLoad{cohort: indicators.CohortCanary, instance: 2, rps: 20, errorRatio: 0.01, latency: 0.05})
	}
	assert.True(t, tr.snapshot(t).Alarm(), describe(tr.snapshot(t)))
}

func describe(s *Snapshot) string {
	var b strings.Builder
	for _, h := range append([]Health{s.Health}, func() (out []Health) {
		for _, c := range s.Cohorts {
			out = append(out, c.Health)
		}
		return out
	}()...) {
		fmt.Fprintf(&b, "[%s %s %.0f]", s.Time.Format(time.TimeOnly), h.Verdict, h.Score)
		for _, ev := range h.Indicators {
			if ev.PValue < 1 || ev.Indicator == indicators.RequestRate {
				fmt.Fprintf(&b, " %s:%s p=%.1e obs=%.4g exp=%.4g", ev.Indicator, ev.Comparison, ev.PValue, ev.Observed, ev.Expected)
			}
		}
	}
	return b.String()
}
