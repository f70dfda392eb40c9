// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

func TestAnomalyScore(t *testing.T) {
	const alpha = 1e-3
	for _, tt := range []struct {
		p    float64
		want float64
	}{
		{p: 1, want: 0},
		{p: math.NaN(), want: 0},
		{p: 0.1, want: AlphaScore / 3},
		{p: alpha, want: AlphaScore},
		{p: alpha / 1e2, want: AlphaScore + (1-AlphaScore)*2/DecadesPastAlpha},
		{p: alpha / 1e4, want: 1},
		{p: 1e-30, want: 1},
		{p: 0, want: 1},
	} {
		assert.InDelta(t, tt.want, AnomalyScore(tt.p, alpha), 1e-9, "p=%v", tt.p)
	}
}

func TestHealthScore(t *testing.T) {
	weights := DefaultConfig().Weights
	const errors, latency, saturation, logs = 0, 1, 3, 5
	judgedAll := [indicators.NumDimensions]bool{true, true, true, true, true, true}
	for _, tt := range []struct {
		name    string
		anomaly map[int]float64
		judged  [indicators.NumDimensions]bool
		want    float64
		ok      bool
	}{
		{name: "nothing judged", judged: [indicators.NumDimensions]bool{}, ok: false},
		{name: "all normal", judged: judgedAll, want: 100, ok: true},
		{name: "errors half anomalous: the heaviest dimension counts as it is", anomaly: map[int]float64{errors: 0.5}, judged: judgedAll, want: 50, ok: true},
		{name: "saturation half anomalous: a light dimension weighs less",
			anomaly: map[int]float64{saturation: 0.5}, judged: judgedAll, want: 100 * math.Pow(0.5, math.Sqrt(0.1/0.35)), ok: true},
		{name: "certain harm in logs alone is capped", anomaly: map[int]float64{logs: 1}, judged: judgedAll,
			want: 100 * math.Pow(1-MaxAnomaly, math.Sqrt(0.05/0.35)), ok: true},
		{name: "anomalies compound", anomaly: map[int]float64{errors: 0.5, latency: 0.5}, judged: judgedAll,
			want: 100 * 0.5 * math.Pow(0.5, math.Sqrt(0.3/0.35)), ok: true},
		{name: "weights are relative to the heaviest judged dimension",
			anomaly: map[int]float64{saturation: 0.5}, judged: [indicators.NumDimensions]bool{saturation: true}, want: 50, ok: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var anomaly [indicators.NumDimensions]float64
			for d, a := range tt.anomaly {
				anomaly[d] = a
			}
			got, ok := HealthScore(anomaly, tt.judged, weights)
			assert.Equal(t, tt.ok, ok)
			if ok {
				assert.InDelta(t, tt.want, got, 1e-9)
			}
		})
	}
}

func TestDimensionScores(t *testing.T) {
	ev := []Evidence{
		{Dimension: indicators.DimensionErrors, Score: 0.2, Judged: true},
		{Dimension: indicators.DimensionBusiness, Score: 0.9, Judged: true},
		{Dimension: indicators.DimensionBusiness, Score: 0.8, Judged: true},
		{Dimension: indicators.DimensionSaturation, Score: 1, Judged: false},
	}
	// The second business indicator weighs twice the first: 0.9·½ < 0.8.
	anomaly, judged := DimensionScores(ev, []float64{1, 1, 2, 1})
	assert.InDelta(t, 0.2, anomaly[indicators.DimensionErrors.Index()], 1e-9)
	assert.InDelta(t, 0.8, anomaly[indicators.DimensionBusiness.Index()], 1e-9)
	assert.False(t, judged[indicators.DimensionSaturation.Index()], "inconclusive indicators do not count")
	assert.Zero(t, anomaly[indicators.DimensionSaturation.Index()])
}

func TestVerdictOf(t *testing.T) {
	for _, tt := range []struct {
		score float64
		ok    bool
		want  deployevent.Verdict
	}{
		{score: 0, ok: false, want: deployevent.VerdictInconclusive},
		{score: 100, ok: true, want: deployevent.VerdictHealthy},
		{score: 70, ok: true, want: deployevent.VerdictHealthy},
		{score: 69.9, ok: true, want: deployevent.VerdictDegraded},
		{score: 40, ok: true, want: deployevent.VerdictDegraded},
		{score: 39.9, ok: true, want: deployevent.VerdictUnhealthy},
	} {
		assert.Equal(t, tt.want, VerdictOf(tt.score, tt.ok, 70, 40), "score %v", tt.score)
	}
}

func TestHysteresis(t *testing.T) {
	const (
		H = deployevent.VerdictHealthy
		D = deployevent.VerdictDegraded
		U = deployevent.VerdictUnhealthy
		I = deployevent.VerdictInconclusive
	)
	for _, tt := range []struct {
		name         string
		enter, leave int
		steps        []deployevent.Verdict
		want         []deployevent.Verdict
	}{
		{name: "inconclusive until the first healthy evaluation", enter: 2, leave: 3,
			steps: []deployevent.Verdict{I, I, H, H}, want: []deployevent.Verdict{I, I, H, H}},
		{name: "one bad evaluation is not enough to enter", enter: 2, leave: 3,
			steps: []deployevent.Verdict{H, U, H, U, H}, want: []deployevent.Verdict{H, H, H, H, H}},
		{name: "two consecutive enter, at the mildest of them", enter: 2, leave: 3,
			steps: []deployevent.Verdict{H, U, D, U, U}, want: []deployevent.Verdict{H, H, D, D, U}},
		{name: "leaving takes three, at the worst of them", enter: 2, leave: 3,
			steps: []deployevent.Verdict{H, U, U, H, D, H, H, H}, want: []deployevent.Verdict{H, H, U, U, U, D, D, D}},
		{name: "a relapse restarts the count", enter: 2, leave: 3,
			steps: []deployevent.Verdict{H, U, U, H, H, U, H, H, H}, want: []deployevent.Verdict{H, H, U, U, U, U, U, U, H}},
		{name: "inconclusive evaluations change nothing and break no streak", enter: 2, leave: 2,
			steps: []deployevent.Verdict{H, U, I, U, I, H, H}, want: []deployevent.Verdict{H, H, H, U, U, U, H}},
		{name: "from inconclusive, worse verdicts need enter evaluations too", enter: 2, leave: 3,
			steps: []deployevent.Verdict{I, D, D}, want: []deployevent.Verdict{I, I, D}},
		{name: "enter 1 takes a worse verdict at once", enter: 1, leave: 1,
			steps: []deployevent.Verdict{H, U, H}, want: []deployevent.Verdict{H, U, H}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h Hysteresis
			got := make([]deployevent.Verdict, len(tt.steps))
			for i, v := range tt.steps {
				got[i] = h.Step(v, tt.enter, tt.leave)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRecommend(t *testing.T) {
	const (
		H = deployevent.VerdictHealthy
		D = deployevent.VerdictDegraded
		U = deployevent.VerdictUnhealthy
		I = deployevent.VerdictInconclusive
	)
	for _, tt := range []struct {
		verdict deployevent.Verdict
		phase   deployevent.Phase
		strong  bool
		want    deployevent.Recommendation
	}{
		{H, deployevent.PhaseDuring, true, deployevent.RecommendNone},
		{I, deployevent.PhaseDuring, true, deployevent.RecommendNone},
		{U, deployevent.PhaseDuring, true, deployevent.RecommendRollback},
		{U, deployevent.PhasePost, true, deployevent.RecommendRollback},
		{U, deployevent.PhaseDuring, false, deployevent.RecommendHold},
		{U, deployevent.PhasePost, false, deployevent.RecommendHold},
		{D, deployevent.PhaseDuring, true, deployevent.RecommendHold},
		{D, deployevent.PhasePost, true, deployevent.RecommendInvestigate},
		{U, deployevent.PhaseSteady, true, deployevent.RecommendInvestigate},
		{D, deployevent.PhasePre, false, deployevent.RecommendInvestigate},
	} {
		assert.Equal(t, tt.want, Recommend(tt.verdict, tt.phase, tt.strong), "%s in %s, strong=%v", tt.verdict, tt.phase, tt.strong)
	}
}

func TestHolm(t *testing.T) {
	ev := []Evidence{
		{PValue: 0.01, Judged: true},
		{PValue: 0.04, Judged: true},
		{PValue: 0.03, Judged: true},
		{PValue: 0.001, Judged: false}, // inconclusive: not in the family
	}
	holm(ev, nil)
	assert.InDelta(t, 0.03, ev[0].PValue, 1e-12)
	assert.InDelta(t, 0.06, ev[1].PValue, 1e-12)
	assert.InDelta(t, 0.06, ev[2].PValue, 1e-12, "made monotone")
	assert.Equal(t, 1.0, ev[3].PValue)
}

func TestJudgedScoreAgreesWithTheVerdict(t *testing.T) {
	const healthy, unhealthy = 70.0, 40.0
	tests := []struct {
		name    string
		score   float64
		ok      bool
		verdict deployevent.Verdict
		want    float64 // NaN: no score is written
	}{
		{name: "inconclusive writes nothing", score: 100, ok: true, verdict: deployevent.VerdictInconclusive, want: math.NaN()},
		{name: "no verdict yet writes nothing", score: 100, ok: true, verdict: "", want: math.NaN()},
		{name: "evaluation that judged nothing", score: 0, ok: false, verdict: deployevent.VerdictHealthy, want: math.NaN()},
		{name: "healthy as computed", score: 93.5, ok: true, verdict: deployevent.VerdictHealthy, want: 93.5},
		{name: "unconfirmed dip of a healthy service", score: 62, ok: true, verdict: deployevent.VerdictHealthy, want: healthy},
		{name: "degraded as computed", score: 55, ok: true, verdict: deployevent.VerdictDegraded, want: 55},
		{name: "degraded not yet left", score: 99, ok: true, verdict: deployevent.VerdictDegraded, want: math.Nextafter(healthy, 0)},
		{name: "degraded not yet worse", score: 10, ok: true, verdict: deployevent.VerdictDegraded, want: unhealthy},
		{name: "unhealthy as computed", score: 12, ok: true, verdict: deployevent.VerdictUnhealthy, want: 12},
		{name: "unhealthy not yet left", score: 90, ok: true, verdict: deployevent.VerdictUnhealthy, want: math.Nextafter(unhealthy, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := JudgedScore(tt.score, tt.ok, tt.verdict, healthy, unhealthy)
			if math.IsNaN(tt.want) {
				assert.True(t, math.IsNaN(got), "got %v", got)
				return
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.verdict, VerdictOf(got, true, healthy, unhealthy), "the score reads as its verdict")
		})
	}
}

func TestDefaultWeightsAreFresh(t *testing.T) {
	w := DefaultWeights()
	w[indicators.DimensionErrors] = 0
	assert.InDelta(t, 0.35, DefaultWeights()[indicators.DimensionErrors], 1e-12, "a caller's change does not reach the defaults")
	assert.InDelta(t, 0.35, DefaultConfig().Weights[indicators.DimensionErrors.Index()], 1e-12)
}
