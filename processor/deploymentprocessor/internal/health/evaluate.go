// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"math"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// An evaluation, in three steps:
//
//  1. gather: each indicator's tests — its detector's judgement of the
//     intervals since the last evaluation, and the comparisons of the
//     deployment's windows (compare.go) — as a testSet;
//  2. combine: one piece of Evidence per indicator from its tests;
//  3. decide: scores from the family's evidence, and the verdict and the
//     recommendation from the scores. decide is where a verdict is decided.

// testSet is an indicator's tests within one evaluation, each with the
// comparison it made.
type testSet struct {
	tests       [4]testResult
	comparisons [4]Comparison
	n           int
}

func (ts *testSet) add(t testResult, c Comparison) {
	ts.tests[ts.n], ts.comparisons[ts.n] = t, c
	ts.n++
}

func (ts *testSet) addAll(o *testSet) {
	for k := 0; k < o.n; k++ {
		ts.add(o.tests[k], o.comparisons[k])
	}
}

func (ts *testSet) all() ([]testResult, []Comparison) {
	return ts.tests[:ts.n], ts.comparisons[:ts.n]
}

// windows are the comparison windows of one evaluation and which of their
// comparisons apply.
type windows struct {
	// deploying: a deployment is judged against the window before it.
	deploying bool
	// cohorts: both versions serve (a rollout under way) and are compared.
	cohorts                     bool
	ref, post, baseline, canary view
}

func (s *Series) windows(phase deployevent.Phase) windows {
	return windows{
		deploying: s.frozen && !s.recent.empty(),
		cohorts:   s.frozen && s.cohortsSeen && phase == deployevent.PhaseDuring,
		ref:       s.recent.view(true),
		post:      s.post.view(true),
		baseline:  s.cohorts[0].view(false),
		canary:    s.cohorts[1].view(false),
	}
}

// evaluate judges the key (and its cohorts) as of the interval ending at end.
func (s *Series) evaluate(st Status, end int64) {
	e := s.engine
	s.lastEval = end
	w := s.windows(st.Phase)

	keyEv := make([]Evidence, len(e.specs))
	var canaryEv, baselineEv []Evidence
	if w.cohorts {
		canaryEv = make([]Evidence, len(e.specs))
		baselineEv = make([]Evidence, len(e.specs))
	}
	for i := range e.specs {
		s.describe(&keyEv[i], i)
		key := s.keyTests(i, &w)
		if w.cohorts {
			canary, baseline := s.cohortTests(i, &w)
			// The key's family holds the canary's tests too: a canary's harm
			// is the deployment's.
			key.addAll(&canary)
			s.describeCohort(&canaryEv[i], i, &canary)
			s.describeCohort(&baselineEv[i], i, &baseline)
		}
		combine(&keyEv[i], &key)
		s.inds[i].judged, s.inds[i].harmful = false, false
	}
	rel := s.relations(st, end)
	keyEv = rel.apply(keyEv, st.Phase)
	rel.mask(canaryEv, st.Phase)
	rel.mask(baselineEv, st.Phase)

	snap := &Snapshot{
		Key:          s.key,
		Time:         time.Unix(0, end).UTC(),
		EvaluatedAt:  e.now().UTC(),
		Phase:        st.Phase,
		DeploymentID: st.DeploymentID,
		Subject:      st.Subject,
		Frozen:       s.frozen,
		Health:       s.decide(keyEv, &s.keyVerdict, st.Phase),
	}
	snap.Health.Impact, snap.Health.ExplainedBy = rel.impact, rel.explained
	if w.cohorts {
		snap.Cohorts = []CohortHealth{
			{Cohort: deployevent.CohortBaseline, Health: s.decide(baselineEv, &s.cohortVerdict[0], st.Phase)},
			{Cohort: deployevent.CohortCanary, Health: s.decide(canaryEv, &s.cohortVerdict[1], st.Phase)},
		}
	}
	s.snapshot.Store(snap)
	e.generation.Add(1)
	e.evaluations.Add(1)
}

// keyTests gathers indicator i's tests of the whole key: its detector's
// strongest judgement since the last evaluation (against the rolling
// baseline), and the deployment's before/after comparison.
func (s *Series) keyTests(i int, w *windows) testSet {
	var ts testSet
	ind := &s.inds[i]
	if ind.judged {
		t := testResult{test: ind.last.Test, pvalue: 1, conclusive: true, observed: ind.last.Observed, expected: ind.last.Baseline}
		if ind.harmful {
			t = testResult{test: ind.worst.Test, pvalue: ind.worst.PValue, conclusive: true, harmful: true,
				observed: ind.worst.Observed, expected: ind.worst.Baseline}
		}
		ts.add(t, CompareBaseline)
	}
	if w.deploying {
		if t, ok := s.compare(i, w.ref, w.post, CompareBeforeAfter); ok {
			ts.add(t, CompareBeforeAfter)
		}
	}
	return ts
}

// cohortTests gathers indicator i's tests of the cohorts during a rollout:
// the canary against the baseline cohort (concurrent, Kayenta's way) and
// against the window before the deployment (a larger sample of the old
// version); the baseline cohort against the window before.
func (s *Series) cohortTests(i int, w *windows) (canary, baseline testSet) {
	if t, ok := s.compare(i, w.baseline, w.canary, CompareCohorts); ok {
		canary.add(t, CompareCohorts)
	}
	if !w.deploying {
		return canary, baseline
	}
	if t, ok := s.compare(i, w.ref, w.canary, CompareCanaryBefore); ok {
		canary.add(t, CompareCanaryBefore)
	}
	if t, ok := s.compare(i, w.ref, w.baseline, CompareBeforeAfter); ok {
		baseline.add(t, CompareBeforeAfter)
	}
	return canary, baseline
}

// describe fills an indicator's identity and its last interval's value and band.
func (s *Series) describe(ev *Evidence, i int) {
	s.blank(ev, i)
	ev.PValue = 1
	if ind := &s.inds[i]; ind.lastValid {
		ev.Value, ev.Baseline, ev.Lower, ev.Upper = ind.last.Observed, ind.last.Baseline, ind.last.Lower, ind.last.Upper
	}
}

// blank gives ev indicator i's identity and no values yet.
func (s *Series) blank(ev *Evidence, i int) {
	sp := &s.engine.specs[i]
	ev.Indicator, ev.Dimension, ev.Direction = sp.name, sp.dim, sp.dir
	ev.Value, ev.Baseline, ev.Lower, ev.Upper = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	ev.Observed, ev.Expected = math.NaN(), math.NaN()
}

// describeCohort fills a cohort's evidence of indicator i from its tests:
// the compared values of the first, the band its tolerance allows, and the
// combined p-value.
func (s *Series) describeCohort(ev *Evidence, i int, ts *testSet) {
	s.blank(ev, i)
	if ts.n > 0 {
		sp := &s.engine.specs[i]
		t := ts.tests[0]
		margin := sp.tolerance * math.Abs(t.expected)
		ev.Value, ev.Baseline, ev.Lower, ev.Upper = t.observed, t.expected, t.expected-margin, t.expected+margin
	}
	combine(ev, ts)
}

// combine makes an indicator's evidence from its tests: the smallest p-value
// among the harmful ones, times the number of conclusive tests (Bonferroni
// within the indicator); the test that gave it is the evidence.
func combine(ev *Evidence, ts *testSet) {
	tests, comparisons := ts.all()
	best := -1
	for k, t := range tests {
		if !t.conclusive {
			continue
		}
		ev.Judged = true
		switch {
		case best < 0:
			best = k
		case t.harmful && (!tests[best].harmful || t.pvalue < tests[best].pvalue):
			best = k
		case !t.harmful && !tests[best].harmful && t.pvalue < tests[best].pvalue:
			best = k
		}
	}
	ev.PValue = 1
	if best < 0 {
		return
	}
	t := tests[best]
	ev.Test, ev.Comparison, ev.Observed, ev.Expected = t.test, comparisons[best], t.observed, t.expected
	if t.harmful {
		ev.PValue = math.Min(1, t.pvalue*float64(len(tests)))
	}
}

// decide is where a verdict is decided. It adjusts a family's p-values
// (Holm), scores its indicators, dimensions and health, and steps the
// family's verdict (with hysteresis h) from the candidate the score gives;
// the recommendation follows from the verdict.
func (s *Series) decide(ev []Evidence, h *Hysteresis, phase deployevent.Phase) Health {
	e := s.engine
	var order [32]int
	holm(ev, order[:0])
	strong := false
	for i := range ev {
		ev[i].Score = AnomalyScore(ev[i].PValue, e.cfg.Alpha)
		ev[i].Confidence = 1 - ev[i].PValue
		if ev[i].Score >= StrongScore {
			strong = true
		}
	}
	anomaly, judged := DimensionScores(ev, e.weights)
	out := Health{Indicators: ev}
	score, ok := HealthScore(anomaly, judged, e.cfg.Weights)
	out.CandidateScore = math.NaN()
	if ok {
		out.CandidateScore = score
	}
	for d, dim := range indicators.Dimensions {
		if dim == indicators.DimensionDependencies && e.cfg.Relations == nil {
			continue // judges no edges
		}
		if e.cfg.Weights[d] > 0 {
			out.Dimensions = append(out.Dimensions, DimensionScore{Dimension: dim, Score: 100 * (1 - anomaly[d]), Judged: judged[d]})
		}
	}
	out.Candidate = VerdictOf(score, ok, e.cfg.HealthyAbove, e.cfg.UnhealthyBelow)
	out.Verdict = h.Step(out.Candidate, e.cfg.Enter, e.cfg.Leave)
	out.Score = JudgedScore(score, ok, out.Verdict, e.cfg.HealthyAbove, e.cfg.UnhealthyBelow)
	out.Recommendation = Recommend(out.Verdict, phase, strong)
	return out
}
