// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"math"
	"slices"

	"github.com/deploylens/deploylens/internal/detector"
	"github.com/deploylens/deploylens/internal/stats"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// sums holds what a comparison window knows: counts, exposures and
// distributions summed over its intervals.
type sums struct {
	requests, errors uint64
	// exposure is the seconds of request data (rate = requests/exposure);
	// instanceSeconds the instance-seconds (rate per instance).
	exposure, instanceSeconds float64
	logErrors                 uint64
	logSeconds                float64
	latency                   *stats.Sketch
	custom                    []customSums
}

type customSums struct {
	// sum and total as in indicators.CustomAccumulator; exposure is the
	// seconds of a rate's events.
	sum, total, exposure float64
	values               *stats.Sketch
}

func (s *sums) reset() {
	s.requests, s.errors, s.exposure, s.instanceSeconds = 0, 0, 0, 0
	s.logErrors, s.logSeconds = 0, 0
	if s.latency != nil {
		s.latency.Reset()
	}
	for i := range s.custom {
		c := &s.custom[i]
		c.sum, c.total, c.exposure = 0, 0, 0
		if c.values != nil {
			c.values.Reset()
		}
	}
}

func (s *sums) empty() bool {
	return s.requests == 0 && s.exposure == 0 && s.logSeconds == 0 && !s.hasCustom()
}

func (s *sums) hasCustom() bool {
	for i := range s.custom {
		if s.custom[i].total > 0 || s.custom[i].exposure > 0 {
			return true
		}
	}
	return false
}

// intervalInfo is what an interval's data means, beyond its counts.
type intervalInfo struct {
	tickSeconds float64
	// spans: the request data came from spans (an interval without any is a
	// zero rate); else from histograms (an interval without points is no data).
	spans bool
	// logs: the key sends logs (an interval without errors is a zero rate).
	logs bool
}

// tally is an interval's counts over some cohorts' accumulators.
type tally struct {
	requests, errors, logErrors uint64
	// exposure is the seconds of request data, instanceSeconds the
	// instance-seconds; both 0 when the interval has none.
	exposure, instanceSeconds float64
}

func tallyOf(accs []*indicators.Accumulator, info *intervalInfo) tally {
	var t tally
	var metricRate, spanInstanceSeconds, metricInstanceSeconds float64
	metricPoints := 0
	tick := int64(info.tickSeconds * 1e9)
	for _, a := range accs {
		t.requests += a.Requests
		t.errors += a.Errors
		t.logErrors += a.LogErrors
		metricRate += a.MetricRate
		metricPoints += a.MetricPoints
		if a.Active != nil {
			spanInstanceSeconds += a.Active.Seconds(tick)
		} else {
			spanInstanceSeconds += a.Instances.Count() * info.tickSeconds
		}
		metricInstanceSeconds += a.InstanceSeconds
	}
	switch {
	case info.spans:
		t.exposure, t.instanceSeconds = info.tickSeconds, spanInstanceSeconds
	case metricPoints > 0 && metricRate > 0:
		t.exposure, t.instanceSeconds = float64(t.requests)/metricRate, metricInstanceSeconds
	}
	return t
}

// add sums the accumulators of one interval (one cohort or all) into s.
func (s *sums) add(accs []*indicators.Accumulator, info *intervalInfo, defs []indicators.Definition) {
	t := tallyOf(accs, info)
	for _, a := range accs {
		if a.Latency != nil && !a.Latency.Empty() {
			if s.latency == nil {
				s.latency = indicators.NewLatencySketch()
			}
			_ = s.latency.Merge(a.Latency)
		}
	}
	s.requests += t.requests
	s.errors += t.errors
	s.exposure += t.exposure
	s.instanceSeconds += t.instanceSeconds
	if info.logs {
		s.logErrors += t.logErrors
		s.logSeconds += info.tickSeconds
	}
	if len(defs) == 0 {
		return
	}
	if s.custom == nil {
		s.custom = make([]customSums, len(defs))
	}
	for i := range defs {
		c := &s.custom[i]
		var sum, total float64
		points := 0
		for _, a := range accs {
			ca := &a.Custom[i]
			sum += ca.Sum
			total += ca.Total
			points += ca.Points
			if ca.Values != nil && !ca.Values.Empty() {
				if c.values == nil {
					c.values = indicators.NewGaugeSketch()
				}
				_ = c.values.Merge(ca.Values)
			}
		}
		if points == 0 {
			continue
		}
		c.sum += sum
		c.total += total
		if defs[i].Kind == indicators.KindRate && sum > 0 {
			c.exposure += total / sum
		}
	}
}

// rolling is a comparison window: the sums of the current and the previous
// period of CompareWindow, so that it always holds between one and two
// periods of the most recent data.
type rolling struct {
	since        int64 // start of `newer`, unix ns; 0 when empty
	older, newer sums
}

func (r *rolling) reset() {
	r.since = 0
	r.older.reset()
	r.newer.reset()
}

// roll starts a new period when the current one is full.
func (r *rolling) roll(start, end, period int64) {
	switch {
	case r.since == 0:
		r.since = start
	case end-r.since > period:
		r.older, r.newer = r.newer, r.older
		r.newer.reset()
		r.since = start
	}
}

func (r *rolling) empty() bool { return r.older.empty() && r.newer.empty() }

// view is the two periods of a rolling window seen as one; whole tells that
// it holds all of the service's traffic (not one cohort's).
type view struct {
	a, b  *sums
	whole bool
}

func (r *rolling) view(whole bool) view { return view{&r.older, &r.newer, whole} }

// tolerance picks the concurrent (cohorts) or the across-time tolerance.
func tolerance(c Comparison, concurrent, acrossTime float64) float64 {
	if c == CompareCohorts {
		return concurrent
	}
	return acrossTime
}

func (v view) requests() uint64    { return v.a.requests + v.b.requests }
func (v view) errors() uint64      { return v.a.errors + v.b.errors }
func (v view) exposure() float64   { return v.a.exposure + v.b.exposure }
func (v view) instances() float64  { return v.a.instanceSeconds + v.b.instanceSeconds }
func (v view) logErrors() uint64   { return v.a.logErrors + v.b.logErrors }
func (v view) logSeconds() float64 { return v.a.logSeconds + v.b.logSeconds }
func (v view) custom(i int) (sum, total, exposure float64) {
	if v.a.custom != nil {
		sum, total, exposure = v.a.custom[i].sum, v.a.custom[i].total, v.a.custom[i].exposure
	}
	if v.b.custom != nil {
		sum, total, exposure = sum+v.b.custom[i].sum, total+v.b.custom[i].total, exposure+v.b.custom[i].exposure
	}
	return sum, total, exposure
}

// values returns the two periods' value sketches of custom indicator i (nil when none).
func (v view) values(i int) (*stats.Sketch, *stats.Sketch) {
	var a, b *stats.Sketch
	if v.a.custom != nil {
		a = v.a.custom[i].values
	}
	if v.b.custom != nil {
		b = v.b.custom[i].values
	}
	return a, b
}

// appendBins appends the sorted bins of the sketches picked from the view.
func appendBins(dst []stats.Bin, sketches ...*stats.Sketch) ([]stats.Bin, float64) {
	start := len(dst)
	floor := math.Inf(-1)
	for _, s := range sketches {
		if s != nil {
			at := len(dst)
			dst = s.AppendBins(dst)
			if len(dst) > at {
				floor = math.Max(floor, dst[at].Value) // a sketch's bins come lowest first
			}
		}
	}
	slices.SortStableFunc(dst[start:], func(x, y stats.Bin) int {
		switch {
		case x.Value < y.Value:
			return -1
		case x.Value > y.Value:
			return 1
		}
		return 0
	})
	return dst, floor
}

// quantileOfBins is the value at quantile q of sorted bins.
// foldBelow merges the bins below floor into one bin at floor. A sketch
// keeps a bounded range of bins and folds its lowest ones into one when a
// window's values span more (a long tail, many samples): merged with an
// unfolded sketch, or compared with one, the fold reads as the low end
// moving up, and Mann-Whitney calls a clean window slower. Folding every
// sketch of a comparison at the highest of their lowest values compares what
// all of them still resolve; harm (a slower or higher distribution) is
// never in the folded low end.
func foldBelow(bins []stats.Bin, floor float64) []stats.Bin {
	n := 0
	folded := 0.0
	for n < len(bins) && bins[n].Value < floor {
		folded += bins[n].Count
		n++
	}
	if n == 0 {
		return bins
	}
	if n < len(bins) && bins[n].Value == floor {
		bins[n].Count += folded
		return bins[n:]
	}
	bins[n-1] = stats.Bin{Value: floor, Count: folded}
	return bins[n-1:]
}

func quantileOfBins(bins []stats.Bin, q float64) float64 {
	total := 0.0
	for _, b := range bins {
		total += b.Count
	}
	if total == 0 {
		return math.NaN()
	}
	rank, seen := q*(total-1), 0.0
	for _, b := range bins {
		seen += b.Count
		if seen > rank {
			return b.Value
		}
	}
	return bins[len(bins)-1].Value
}

// testResult is one comparison's outcome.
type testResult struct {
	test               string
	pvalue             float64
	conclusive         bool
	harmful            bool
	observed, expected float64
}

// decideAlpha makes a stats test decide on the tolerance alone: Fail means a
// harmful effect past the tolerance with enough data; the p-value is weighed
// afterwards, across the family.
const decideAlpha = 1 - 1e-12

func alternative(d detector.Direction) stats.Alternative {
	switch d {
	case detector.HigherIsWorse:
		return stats.Greater
	case detector.LowerIsWorse:
		return stats.Less
	}
	return stats.TwoSided
}

func fromStats(r stats.TestResult, observed, expected float64) testResult {
	return testResult{
		test: r.Test, pvalue: r.PValue,
		conclusive: r.Verdict != stats.VerdictInconclusive, harmful: r.Verdict == stats.VerdictFail,
		observed: observed, expected: expected,
	}
}

func ratio(num, den float64) float64 {
	if den <= 0 {
		return math.NaN()
	}
	return num / den
}

// Tolerances: how far in the harmful direction an indicator must move before
// a significant change counts as harm. Relative to the reference value, except
// Mann-Whitney's (a rank-biserial correlation) and the floor of error ratios.
//
// Comparisons across time (before/after) also face the drift of the
// service's own level (error ratios wander by tens of percent over minutes,
// traffic by several): their tolerances are wider than those of the
// concurrent cohorts, which share every drift.
const (
	tolRatioRelative   = 0.5  // error ratios and ratios between cohorts: ×1.5
	tolRatioAbsolute   = 1e-3 // …and at least 0.1 percentage point
	tolRate            = 0.2  // rates: ±20%
	tolEventRate       = 0.5  // error log rate between cohorts: ×1.5
	tolDrift           = 1.0  // error ratios and error log rates before/after: ×2
	tolRateDrift       = 0.25 // rates before/after: ±25%
	tolGaugeDrift      = 0.2  // gauges' means before/after: ±20%
	tolRankBiserial    = 0.05 // latency and gauges: a 52.5% chance of being worse
	tolGaugeRelative   = 0.1  // gauges against their baseline: ±10%
	tolLatencyRelative = 0.1  // latency against its baseline: ±10%
	minGaugePoints     = 5
)

// proportionTest compares ratios of counts.
func proportionTest(refEvents, refTrials, candEvents, candTrials uint64, alt stats.Alternative, tolerance, minSamples float64) testResult {
	pRef := ratio(float64(refEvents), float64(refTrials))
	opts := stats.TestOptions{Alpha: decideAlpha, MinSamples: minSamples, Alternative: alt,
		MinEffect: math.Max(tolRatioAbsolute, tolerance*zeroIfNaN(pRef))}
	r := stats.TwoProportions(refEvents, refTrials, candEvents, candTrials, opts)
	return fromStats(r, ratio(float64(candEvents), float64(candTrials)), pRef)
}

// rateTest compares event rates given their exposures. It is inconclusive
// until the candidate, at the reference's rate, would have seen minSamples
// events: a big reference alone must not make a few seconds conclusive.
func rateTest(refEvents uint64, refExposure float64, candEvents uint64, candExposure float64, alt stats.Alternative, tolerance, minSamples float64) testResult {
	opts := stats.TestOptions{Alpha: decideAlpha, MinSamples: minSamples, MinEffect: tolerance, Alternative: alt}
	r := stats.PoissonRates(refEvents, refExposure, candEvents, candExposure, opts)
	t := fromStats(r, ratio(float64(candEvents), candExposure), ratio(float64(refEvents), refExposure))
	if expected := float64(refEvents) / refExposure * candExposure; !(expected >= minSamples) && float64(candEvents) < minSamples {
		t.conclusive, t.harmful = false, false
	}
	return t
}

// distributionTest compares two distributions (Mann-Whitney U, ties from bins).
func distributionTest(ref, cand []stats.Bin, alt stats.Alternative, minSamples float64, q float64) testResult {
	opts := stats.TestOptions{Alpha: decideAlpha, MinSamples: minSamples, MinEffect: tolRankBiserial, Alternative: alt}
	r := stats.MannWhitneyBins(ref, cand, opts)
	return fromStats(r, quantileOfBins(cand, q), quantileOfBins(ref, q))
}

func zeroIfNaN(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// beyondTolerance tells whether observed is worse than expected by more than
// the relative tolerance, in the direction that hurts.
func beyondTolerance(observed, expected, tolerance float64, d detector.Direction) bool {
	if math.IsNaN(observed) || math.IsNaN(expected) {
		return false
	}
	margin := tolerance * math.Abs(expected)
	switch d {
	case detector.HigherIsWorse:
		return observed > expected+margin
	case detector.LowerIsWorse:
		return observed < expected-margin
	}
	return math.Abs(observed-expected) > margin
}

// minLogSamples is the total of error log records under which a comparison
// of error log rates is inconclusive.
const minLogSamples = 10

// compare runs indicator i's comparison c of cand against ref; ok is false
// when the indicator has no such comparison (or no data for it). Only a
// before/after comparison of two whole-service windows compares the
// service's rates; otherwise (a cohort) rates are compared per instance or
// per request, as cohorts serve different shares.
func (s *Series) compare(i int, ref, cand view, c Comparison) (testResult, bool) {
	sp := &s.engine.specs[i]
	whole := c == CompareBeforeAfter && ref.whole && cand.whole
	alt := alternative(sp.dir)
	minRequests := float64(s.engine.cfg.MinRequests)
	switch sp.kind {
	case kindRequestRate:
		if whole {
			return s.compareServiceRate(i, ref, cand, alt, minRequests)
		}
		return s.compareInstanceRate(i, ref, cand, c, alt, minRequests)
	case kindErrorRatio:
		if ref.requests() == 0 || cand.requests() == 0 {
			return testResult{}, false
		}
		return proportionTest(ref.errors(), ref.requests(), cand.errors(), cand.requests(), alt, tolerance(c, tolRatioRelative, tolDrift), minRequests), true
	case kindLatency:
		return s.distributions(ref.a.latency, ref.b.latency, cand.a.latency, cand.b.latency, alt, minRequests, math.NaN())
	case kindLogErrorRate:
		return compareLogErrors(ref, cand, c, whole, alt)
	case kindGauge:
		return s.compareGauge(i, ref, cand, c, whole, alt)
	case kindRate:
		if !whole {
			return testResult{}, false
		}
		_, refEvents, refExposure := ref.custom(sp.custom)
		_, candEvents, candExposure := cand.custom(sp.custom)
		if refExposure <= 0 || candExposure <= 0 {
			return testResult{}, false
		}
		return rateTest(uint64(math.Round(refEvents)), refExposure, uint64(math.Round(candEvents)), candExposure, alt, tolRateDrift, minRequests), true
	case kindRatio:
		refNum, refDen, _ := ref.custom(sp.custom)
		candNum, candDen, _ := cand.custom(sp.custom)
		if !counts(refNum, refDen) || !counts(candNum, candDen) || refDen == 0 || candDen == 0 {
			return testResult{}, false
		}
		return proportionTest(uint64(refNum), uint64(refDen), uint64(candNum), uint64(candDen), alt, tolerance(c, tolRatioRelative, tolDrift), minRequests), true
	}
	return testResult{}, false
}

// compareServiceRate compares the whole service's request rate before and
// after. Traffic is overdispersed (it wanders with the hour and with its
// callers far more than Poisson noise): across time, a significant drop is
// harm only where the present rate is also outside the band the baseline
// learned of the rate's own wandering.
func (s *Series) compareServiceRate(i int, ref, cand view, alt stats.Alternative, minRequests float64) (testResult, bool) {
	if ref.exposure() <= 0 || cand.exposure() <= 0 {
		return testResult{}, false
	}
	t := rateTest(ref.requests(), ref.exposure(), cand.requests(), cand.exposure(), alt, tolRateDrift, minRequests)
	if t.harmful && !s.presentlyOutside(i, t.expected, tolRateDrift, 1) {
		t.harmful = false
	}
	return t, true
}

// compareInstanceRate compares a cohort's request rate per instance, and
// only where instances take equal shares. Across time (a cohort against the
// window before the deployment), a cohort's rate per instance follows the
// load: a quiet hour lowers the old and the new version's alike. There it is
// harm only where the whole service's present rate is also outside the band
// the baseline learned; the concurrent cohorts' comparison judges a version
// that serves less than its peers.
func (s *Series) compareInstanceRate(i int, ref, cand view, c Comparison, alt stats.Alternative, minRequests float64) (testResult, bool) {
	if !s.loadComparable() || ref.instances() <= 0 || cand.instances() <= 0 {
		return testResult{}, false
	}
	t := rateTest(ref.requests(), ref.instances(), cand.requests(), cand.instances(), alt, tolRate, minRequests)
	if t.harmful && c != CompareCohorts && !s.presentlyOutside(i, s.inds[i].last.Baseline, tolRateDrift, 1) {
		t.harmful = false
	}
	return t, true
}

// compareLogErrors compares error log rates: per request where requests are
// known (cohorts serve different shares of traffic, and a traffic surge
// brings more error records with no change in how often a request fails),
// else per second of logs (the whole service only).
func compareLogErrors(ref, cand view, c Comparison, whole bool, alt stats.Alternative) (testResult, bool) {
	if !whole || (ref.requests() > 0 && cand.requests() > 0) {
		if ref.requests() == 0 || cand.requests() == 0 {
			return testResult{}, false
		}
		return rateTest(ref.logErrors(), float64(ref.requests()), cand.logErrors(), float64(cand.requests()), alt,
			tolerance(c, tolEventRate, tolDrift), minLogSamples), true
	}
	if ref.logSeconds() <= 0 || cand.logSeconds() <= 0 {
		return testResult{}, false
	}
	return rateTest(ref.logErrors(), ref.logSeconds(), cand.logErrors(), cand.logSeconds(), alt, tolDrift, minLogSamples), true
}

// compareGauge compares a gauge (CPU, memory, a custom gauge). Load-dependent
// gauges compare across cohorts only where instances take equal shares;
// across time, only the whole service's, judged on its present level.
func (s *Series) compareGauge(i int, ref, cand view, c Comparison, whole bool, alt stats.Alternative) (testResult, bool) {
	if (!whole && !s.loadComparable()) || (c != CompareCohorts && !whole) {
		return testResult{}, false
	}
	// The load fit assumes instances share the load alike; a canary with
	// its own share of traffic changes what the mean over instances is.
	if whole && s.loadComparable() {
		if t, ok := s.fits[i].test(alt, tolGaugeRelative); ok {
			return t, true
		}
	}
	// Without a learned load fit, a gauge cannot be told apart from the
	// load across time: when the load moved past its drift (a surge, a
	// quiet hour), the before/after comparison is inconclusive.
	if whole && loadMoved(ref, cand) {
		return testResult{}, false
	}
	ci := s.engine.specs[i].custom
	refSum, refTotal, _ := ref.custom(ci)
	refA, refB := ref.values(ci)
	candA, candB := cand.values(ci)
	t, ok := s.distributions(refA, refB, candA, candB, alt, minGaugePoints, ratio(refSum, refTotal))
	if !ok {
		return t, false
	}
	candSum, candTotal, _ := cand.custom(ci)
	t.observed = ratio(candSum, candTotal)
	// Gauge values are not independent draws: load moves them for minutes
	// at a time. Harm is judged on the present: the recent level (the last
	// minute) must be past the tolerance and outside the range the baseline
	// learned, whose width includes that drift.
	if c == CompareBeforeAfter && whole && !s.presentlyOutside(i, t.expected, tolGaugeDrift, gaugeBandFactor) {
		t.harmful = false
	}
	return t, true
}

// loadMoved tells whether the request rate per instance differs between
// two windows by more than rates drift before/after (tolRateDrift); false
// when either has no requests or instances to tell.
func loadMoved(ref, cand view) bool {
	if ref.requests() == 0 || cand.requests() == 0 || ref.instances() <= 0 || cand.instances() <= 0 {
		return false
	}
	before := float64(ref.requests()) / ref.instances()
	after := float64(cand.requests()) / cand.instances()
	return math.Abs(after-before) > tolRateDrift*before
}

// presentlyOutside tells whether the indicator's recent level (about the
// last minute) is past the tolerance from expected and outside its
// baseline's expected range widened bandFactor times, in the harmful direction.
func (s *Series) presentlyOutside(i int, expected, tolerance, bandFactor float64) bool {
	sp, ind := &s.engine.specs[i], &s.inds[i]
	if !ind.recentValid || !beyondTolerance(ind.recent, expected, tolerance, sp.dir) {
		return false
	}
	if !ind.lastValid || !ind.last.Ready {
		return true
	}
	upper := ind.last.Baseline + bandFactor*(ind.last.Upper-ind.last.Baseline)
	lower := ind.last.Baseline - bandFactor*(ind.last.Baseline-ind.last.Lower)
	switch sp.dir {
	case detector.HigherIsWorse:
		return ind.recent > upper
	case detector.LowerIsWorse:
		return ind.recent < lower
	}
	return ind.recent > upper || ind.recent < lower
}

// gaugeBandFactor widens a gauge's expected range for before/after
// judgements: a recent level twice as far out as the range's edge.
const gaugeBandFactor = 2

// counts tells whether a ratio's parts are event counts (whole, part ≤ whole).
func counts(part, whole float64) bool {
	return part >= 0 && part <= whole && part == math.Trunc(part) && whole == math.Trunc(whole) && whole < 1<<53
}

// distributions compares the merged sketches of two windows with
// Mann-Whitney; expected, when not NaN, replaces the reference's median.
func (s *Series) distributions(refA, refB, candA, candB *stats.Sketch, alt stats.Alternative, minSamples, expected float64) (testResult, bool) {
	e := s.engine
	refBins, candBins := e.getBins(), e.getBins()
	defer e.putBins(refBins)
	defer e.putBins(candBins)
	var refFloor, candFloor float64
	*refBins, refFloor = appendBins(*refBins, refA, refB)
	*candBins, candFloor = appendBins(*candBins, candA, candB)
	if len(*refBins) == 0 || len(*candBins) == 0 {
		return testResult{}, false
	}
	floor := math.Max(refFloor, candFloor)
	ref, cand := foldBelow(*refBins, floor), foldBelow(*candBins, floor) // views into the pooled slices
	q := 0.95
	if !math.IsNaN(expected) {
		q = 0.5
	}
	t := distributionTest(ref, cand, alt, minSamples, q)
	if !math.IsNaN(expected) {
		t.expected = expected
	}
	return t, true
}
