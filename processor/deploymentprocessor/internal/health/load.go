// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"math"

	"github.com/deploylens/deploylens/internal/stats"
)

// loadFit learns how a gauge follows the load: a least-squares line of the
// gauge's interval means on the request rate per instance, from
// exponentially weighted moments (about loadMemory intervals). Saturation
// gauges such as CPU follow the traffic; once the load's share is removed,
// what remains moves by little more than the readings' own noise, and a
// version that needs more CPU per request stands out within a minute instead
// of hiding in the traffic's drift.
type loadFit struct {
	n             float64
	mx, my        float64
	cxx, cxy, cyy float64
	// noise is the mean sampling variance of x: a rate measured from N
	// requests varies around the true rate, which the gauge follows, not
	// the count. Left in, it would flatten the slope.
	noise     float64
	adjusted  float64 // EWMA of the load-adjusted value, while judged
	adjustedN float64
	lastX     float64 // the load of the last judged interval
}

const (
	// loadMemory is the fit's memory, in intervals.
	loadMemory = 60
	// loadMinSamples is the number of intervals before the fit is used.
	loadMinSamples = 20
	// loadRange is how far (in standard deviations of the load learned) the
	// load may be from its mean for the fit to be used.
	loadRange = 3
	// loadRecentWeight is the weight of the last interval in the recent
	// adjusted level (a span of about three intervals): with the load's
	// drift removed, a short memory is steady enough.
	loadRecentWeight = 0.5
	// loadMinR2 is the share of the gauge's variance the load must explain
	// for the fit to be used at all.
	loadMinR2 = 0.3
)

func (f *loadFit) learn(x, noise, y float64) {
	f.n++
	w := math.Max(1/f.n, 1.0/loadMemory)
	dx, dy := x-f.mx, y-f.my
	f.mx += w * dx
	f.my += w * dy
	f.noise += w * (noise - f.noise)
	// Exponentially weighted co-moments (West's update).
	f.cxx = (1 - w) * (f.cxx + w*dx*dx)
	f.cxy = (1 - w) * (f.cxy + w*dx*dy)
	f.cyy = (1 - w) * (f.cyy + w*dy*dy)
}

// model returns the slope and the residual standard deviation; ok is false
// when the load does not explain enough of the gauge to be used.
func (f *loadFit) model() (slope, residualSD float64, ok bool) {
	// The variance of the true load: what x varies by, less its sampling noise.
	load := f.cxx - f.noise
	if f.n < loadMinSamples || !(load > 0) || !(f.cyy > 0) {
		return 0, 0, false
	}
	r2 := f.cxy * f.cxy / (load * f.cyy)
	if !(r2 >= loadMinR2) {
		return 0, 0, false
	}
	slope = f.cxy / load
	// The spread of y - slope·x as measured, sampling noise included.
	residual := math.Max(f.cyy-2*slope*f.cxy+slope*slope*f.cxx, 0)
	// The noise of a reading can hardly be below a thousandth of its level.
	return slope, math.Max(math.Sqrt(residual), 1e-3*math.Abs(f.my)), true
}

// judge folds one judged interval into the recent adjusted level.
func (f *loadFit) judge(x, y float64) {
	slope, _, ok := f.model()
	if !ok {
		return
	}
	f.lastX = x
	v := y - slope*(x-f.mx)
	if f.adjustedN == 0 {
		f.adjusted = v
	} else {
		f.adjusted += loadRecentWeight * (v - f.adjusted)
	}
	f.adjustedN++
}

func (f *loadFit) resetJudged() { f.adjusted, f.adjustedN = 0, 0 }

// test compares the recent load-adjusted level with the level before the
// deployment: a z-test against the residual noise of an exponentially
// weighted mean, harmful past the relative tolerance.
func (f *loadFit) test(alt stats.Alternative, tolerance float64) (testResult, bool) {
	_, sd, ok := f.model()
	// A line fitted on the load's usual wander says little far outside it
	// (a canary instance added to the pool moves every instance's load).
	if !ok || f.adjustedN < 3 || math.Abs(f.lastX-f.mx) > loadRange*math.Sqrt(f.cxx) {
		return testResult{}, false
	}
	// Variance of an EWMA of independent values: w/(2-w) of theirs.
	se := sd * math.Sqrt(loadRecentWeight/(2-loadRecentWeight))
	z := (f.adjusted - f.my) / se
	t := testResult{test: TestLoadAdjusted, conclusive: true, observed: f.adjusted, expected: f.my}
	margin := tolerance * math.Abs(f.my)
	switch alt {
	case stats.Greater:
		t.pvalue = stats.NormalSF(z)
		t.harmful = f.adjusted > f.my+margin
	case stats.Less:
		t.pvalue = stats.NormalCDF(z)
		t.harmful = f.adjusted < f.my-margin
	default:
		t.pvalue = math.Min(1, 2*stats.NormalSF(math.Abs(z)))
		t.harmful = math.Abs(f.adjusted-f.my) > margin
	}
	return t, true
}

// TestLoadAdjusted names the comparison of a gauge's recent level, with the
// load's share removed, against its level before the deployment.
const TestLoadAdjusted = "load_adjusted_z"
