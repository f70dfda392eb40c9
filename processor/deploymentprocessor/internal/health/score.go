// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"math"
	"sort"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// DecadesPastAlpha is how many decades of p-value past Alpha take an indicator's
// anomaly score from AlphaScore to 1.
const DecadesPastAlpha = 4

// AlphaScore is the anomaly score of an indicator whose adjusted p-value is
// exactly Alpha: evidence of harm starts there. Below it the score rises
// linearly in -log10(p) to 1 at Alpha/10^DecadesPastAlpha; above it, it falls
// linearly to 0 at p = 1.
const AlphaScore = 0.3

// AnomalyScore maps an indicator's (Holm-adjusted) p-value to [0, 1].
func AnomalyScore(p, alpha float64) float64 {
	if !(p < 1) {
		return 0
	}
	decades := -math.Log10(math.Max(p, 1e-300))
	alphaDecades := -math.Log10(alpha)
	if decades <= alphaDecades {
		return AlphaScore * decades / alphaDecades
	}
	return math.Min(1, AlphaScore+(1-AlphaScore)*(decades-alphaDecades)/DecadesPastAlpha)
}

// DimensionScores combines indicator scores into dimension anomalies: each
// dimension's anomaly is the largest of its judged indicators' scores, each
// scaled by its weight relative to the dimension's heaviest. judged tells
// which dimensions had a judged indicator.
func DimensionScores(ev []Evidence, weights []float64) (anomaly [indicators.NumDimensions]float64, judged [indicators.NumDimensions]bool) {
	var heaviest [indicators.NumDimensions]float64
	for i := range ev {
		d := ev[i].Dimension.Index()
		if d >= 0 && ev[i].Judged {
			heaviest[d] = math.Max(heaviest[d], weights[i])
		}
	}
	for i := range ev {
		d := ev[i].Dimension.Index()
		if d < 0 || !ev[i].Judged || heaviest[d] == 0 {
			continue
		}
		judged[d] = true
		anomaly[d] = math.Max(anomaly[d], ev[i].Score*weights[i]/heaviest[d])
	}
	return anomaly, judged
}

// HealthScore is 100 × Π (1 − A_d)^√(W_d/W_max) over the judged dimensions
// d, A_d their anomaly (at most MaxAnomaly) and W_d their weight. The
// heaviest dimension's health counts as it is; a dimension of a quarter of
// its weight needs about twice the evidence (in decades of p-value past
// Alpha) to take the score as low, so a light dimension alarms on strong
// evidence only, and anomalies in several dimensions compound. ok is false
// when no dimension was judged.
func HealthScore(anomaly [indicators.NumDimensions]float64, judged [indicators.NumDimensions]bool, weights [indicators.NumDimensions]float64) (score float64, ok bool) {
	maxWeight := 0.0
	for d, w := range weights {
		if judged[d] {
			maxWeight = math.Max(maxWeight, w)
		}
	}
	if maxWeight == 0 {
		return 0, false
	}
	score = 100
	for d, w := range weights {
		if judged[d] && w > 0 {
			score *= math.Pow(1-math.Min(MaxAnomaly, math.Max(0, anomaly[d])), math.Sqrt(w/maxWeight))
		}
	}
	return score, true
}

// MaxAnomaly caps a dimension's anomaly in the health score, so that a
// dimension of a seventh of the heaviest's weight (logs, business) alone
// takes the score to about 18 at most.
const MaxAnomaly = 0.99

// VerdictOf cuts a health score into a verdict.
func VerdictOf(score float64, ok bool, healthyAbove, unhealthyBelow float64) deployevent.Verdict {
	switch {
	case !ok:
		return deployevent.VerdictInconclusive
	case score >= healthyAbove:
		return deployevent.VerdictHealthy
	case score < unhealthyBelow:
		return deployevent.VerdictUnhealthy
	}
	return deployevent.VerdictDegraded
}

// JudgedScore is the score a person and a dashboard see: the evaluation's
// score brought into the band of the stable verdict, so that the score and
// the verdict never disagree — one evaluation on partial windows that the
// hysteresis has not confirmed cannot pull a healthy service's score below
// healthyAbove, and a service is not shown healthy while its verdict is
// still degraded. NaN while the verdict is inconclusive: nothing is judged,
// and 0 would read as "dead".
func JudgedScore(score float64, ok bool, verdict deployevent.Verdict, healthyAbove, unhealthyBelow float64) float64 {
	lo, hi := 0.0, 100.0
	switch verdict {
	case deployevent.VerdictHealthy:
		lo = healthyAbove
	case deployevent.VerdictDegraded:
		lo, hi = unhealthyBelow, math.Nextafter(healthyAbove, 0)
	case deployevent.VerdictUnhealthy:
		hi = math.Nextafter(unhealthyBelow, 0)
	default:
		return math.NaN()
	}
	if !ok {
		return math.NaN() // this evaluation judged nothing, even if the verdict holds
	}
	return math.Min(hi, math.Max(lo, score))
}

func severity(v deployevent.Verdict) int {
	switch v {
	case deployevent.VerdictHealthy:
		return 1
	case deployevent.VerdictDegraded:
		return 2
	case deployevent.VerdictUnhealthy:
		return 3
	}
	return 0 // inconclusive or none
}

// Hysteresis turns each evaluation's verdict into a stable one: a worse
// verdict is taken after Enter consecutive worse evaluations (the mildest of
// them), a better one after Leave consecutive better ones (the worst of
// them). Inconclusive evaluations change nothing and interrupt no streak;
// the first conclusive healthy evaluation is taken at once.
type Hysteresis struct {
	Verdict deployevent.Verdict
	// streak counts consecutive evaluations on one side of Verdict;
	// worse tells which side; bound is the verdict they agree on so far.
	streak int
	worse  bool
	bound  deployevent.Verdict
}

// Step applies one evaluation's verdict and returns the stable one.
func (h *Hysteresis) Step(v deployevent.Verdict, enter, leave int) deployevent.Verdict {
	if h.Verdict == "" {
		h.Verdict = deployevent.VerdictInconclusive
	}
	cur, next := severity(h.Verdict), severity(v)
	switch {
	case next == 0:
		// Too little data says nothing either way: the streak waits.
	case next == cur:
		h.streak = 0
	case cur == 0 && v == deployevent.VerdictHealthy:
		h.Verdict, h.streak = v, 0
	case next > cur:
		if h.streak == 0 || !h.worse {
			h.streak, h.worse, h.bound = 0, true, v
		}
		h.streak++
		if next < severity(h.bound) {
			h.bound = v
		}
		if h.streak >= enter {
			h.Verdict, h.streak = h.bound, 0
		}
	default:
		if h.streak == 0 || h.worse {
			h.streak, h.worse, h.bound = 0, false, v
		}
		h.streak++
		if next > severity(h.bound) {
			h.bound = v
		}
		if h.streak >= leave {
			h.Verdict, h.streak = h.bound, 0
		}
	}
	return h.Verdict
}

// Recommend advises what to do: during a deployment (or its post window) an
// unhealthy service with strong evidence is rolled back, otherwise held; a
// degraded rollout is held, a degraded post window investigated; outside a
// deployment anything but healthy is investigated.
func Recommend(v deployevent.Verdict, phase deployevent.Phase, strong bool) deployevent.Recommendation {
	deploying := phase == deployevent.PhaseDuring || phase == deployevent.PhasePost
	switch {
	case v != deployevent.VerdictDegraded && v != deployevent.VerdictUnhealthy:
		return deployevent.RecommendNone
	case !deploying:
		return deployevent.RecommendInvestigate
	case v == deployevent.VerdictUnhealthy && strong:
		return deployevent.RecommendRollback
	case v == deployevent.VerdictUnhealthy, phase == deployevent.PhaseDuring:
		return deployevent.RecommendHold
	}
	return deployevent.RecommendInvestigate
}

// StrongScore is the anomaly score from which evidence is strong enough to
// advise a rollback: a p-value two decades past Alpha.
const StrongScore = AlphaScore + (1-AlphaScore)*2/DecadesPastAlpha

// holm adjusts the p-values of the judged evidence in place (Holm's step-down
// method across the family), leaving the others at 1.
func holm(ev []Evidence, order []int) {
	order = order[:0]
	for i := range ev {
		if ev[i].Judged {
			order = append(order, i)
		} else {
			ev[i].PValue = 1
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return ev[order[a]].PValue < ev[order[b]].PValue })
	m := len(order)
	running := 0.0
	for rank, i := range order {
		running = math.Max(running, math.Min(1, float64(m-rank)*ev[i].PValue))
		ev[i].PValue = running
	}
}
