// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package detector

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/deploylens/deploylens/internal/stats"
)

// Direction says which deviations hurt.
type Direction int

const (
	// Both treats rises and falls alike.
	Both Direction = iota
	// HigherIsWorse alarms only on rises (latency, error ratio, saturation).
	HigherIsWorse
	// LowerIsWorse alarms only on falls (throughput, success ratio).
	LowerIsWorse
)

// String returns the name used in configuration.
func (d Direction) String() string {
	switch d {
	case HigherIsWorse:
		return "higher_is_worse"
	case LowerIsWorse:
		return "lower_is_worse"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Direction(%d)", int(d))
}

// ParseDirection reads "both", "higher_is_worse" or "lower_is_worse".
func ParseDirection(s string) (Direction, error) {
	for _, d := range []Direction{Both, HigherIsWorse, LowerIsWorse} {
		if d.String() == s {
			return d, nil
		}
	}
	return Both, fmt.Errorf("direction must be both, higher_is_worse or lower_is_worse, got %q", s)
}

// Names of the tests that can carry a Result, as they appear in alert evidence.
const (
	// TestLevel: the value against the baseline band (robust z-score, daily profile when learned).
	TestLevel = "robust_z"
	// TestShift: a short moving average of the residual against how far it usually strays (level shifts, drifts).
	TestShift = "window_shift"
	// TestStep: the change since the previous sample against the usual change (spikes, sudden steps).
	TestStep = "step_change"
)

// Config sets a detector up. One configuration serves every series: nothing is tuned per series.
type Config struct {
	// Direction says which deviations count.
	Direction Direction
	// Window is the memory, in samples, of the baseline and of the history of surprises.
	Window int
	// WarmUp is the number of samples judged as not Ready (score 0) while the baseline settles.
	WarmUp int
	// Seasonal lets the baseline learn a daily profile (used only where it predicts better).
	Seasonal bool
	// ShortWindow is the span, in samples, of the moving average of the shift test.
	ShortWindow int
	// Refractory is the half-life, in samples, of the damping of repeated high scores.
	Refractory int
}

// Defaults: chosen by leave-one-category-out over the shared NAB categories (make nab-loco;
// see README.md): Window and Refractory won in most folds; ShortWindow hardly matters there
// (4, 8 and 16 score within 0.3 points out of fold) and stays at 8 for drift detection.
// Never fitted per series.
const (
	DefaultWindow      = 1000
	DefaultWarmUp      = 30
	DefaultShortWindow = 8
	DefaultRefractory  = 25
)

// DefaultConfig returns the default settings.
func DefaultConfig() Config {
	return Config{
		Direction:   Both,
		Window:      DefaultWindow,
		WarmUp:      DefaultWarmUp,
		Seasonal:    true,
		ShortWindow: DefaultShortWindow,
		Refractory:  DefaultRefractory,
	}
}

// Validate reports settings that cannot work; messages name the YAML-style key.
func (c Config) Validate() error {
	switch {
	case c.Direction < Both || c.Direction > LowerIsWorse:
		return fmt.Errorf("direction: unknown value %d", int(c.Direction))
	case c.Window < 10:
		return fmt.Errorf("window must be at least 10 samples, got %d", c.Window)
	case c.WarmUp < 0:
		return fmt.Errorf("warm_up must not be negative, got %d", c.WarmUp)
	case c.ShortWindow < 1:
		return fmt.Errorf("short_window must be at least 1 sample, got %d", c.ShortWindow)
	case c.Refractory < 1:
		return fmt.Errorf("refractory must be at least 1 sample, got %d", c.Refractory)
	}
	return nil
}

func (c Config) baseline() stats.BaselineConfig {
	b := stats.DefaultBaselineConfig()
	b.Window = c.Window
	b.WarmUp = c.WarmUp
	b.Seasonal = c.Seasonal
	return b
}

// Result is the judgement of one sample, with its evidence.
type Result struct {
	// Score is the anomaly score in [0, 1]: -log10(PValue)/ScoreDecades, damped to half while
	// it does not exceed a recent higher score (so an anomaly alarms at its onset, not on every sample).
	Score float64
	// RawScore is the score before damping: how anomalous this sample is on its own.
	RawScore float64
	// PValue is the probability, under the recent history, of a surprise at least this large
	// in the test that found it (Bonferroni-adjusted for the three tests).
	PValue float64
	// Confidence is 1 - PValue.
	Confidence float64
	// Test names the test with the smallest p-value (TestLevel, TestShift or TestStep).
	Test string
	// Observed is the value judged.
	Observed float64
	// Baseline is the expected value, and Lower/Upper the expected range, before this sample.
	Baseline, Lower, Upper float64
	// Ready is false during warm-up and for non-finite values; the score is then 0.
	Ready bool
}

// ScoreDecades is the -log10 p-value that maps to a score of 1.
const ScoreDecades = 4

// AnomalyThreshold is the score from which a sample counts as anomalous, p ≈ 0.025 against the
// series' own history: the processor counts a gauge's steady-state evidence as harmful only
// from it, and the NAB score is reported at it (cmd/nabrun writes it to threshold.json).
// Chosen by leave-one-category-out: every fold picked 0.4.
const AnomalyThreshold = 0.4

// Anomalous tells whether the sample, on its own (RawScore, undamped), reaches AnomalyThreshold;
// a damped repeat of an ongoing anomaly is still anomalous.
func (r Result) Anomalous() bool { return r.Ready && r.RawScore >= AnomalyThreshold }

// dampedShare is the share of its raw score that a damped sample keeps: at most 0.25, below
// AnomalyThreshold, so that a damped sample never alarms by itself.
const dampedShare = 0.25

// testCount is the number of tests whose smallest p-value is reported (Bonferroni factor).
const testCount = 3

// Detector judges one gauge-like series, one sample at a time (see the package
// documentation). It is not safe for concurrent use.
type Detector struct {
	cfg      Config
	baseline stats.Baseline

	count float64 // samples judged

	shiftMean float64 // EWMA of the z-score over ShortWindow
	shiftDev  float64 // EWMA of |shiftMean|, clipped

	prevValue float64 // previous finite value and its time, for the step test
	prevUnix  int64
	stepDev   float64 // EWMA of |step|, clipped
	stepVar   float64 // EWMA of step², not clipped: floors the step scale of intermittent series

	level, shift, step stats.Tail

	damping float64      // decaying memory of recent raw scores
	season  seasonMemory // what each hour of the day brought on the previous days
	frozen  bool
}

// New returns a detector; cfg must be valid (see Config.Validate).
func New(cfg Config) *Detector {
	d := &Detector{}
	d.init(cfg)
	return d
}

func (d *Detector) init(cfg Config) {
	*d = Detector{cfg: cfg}
	d.baseline.Init(cfg.baseline())
	d.level, d.shift, d.step = stats.NewTail(), stats.NewTail(), stats.NewTail()
}

// Config returns the settings of d.
func (d *Detector) Config() Config { return d.cfg }

// Freeze stops learning, so that a deployment is judged against the state before it.
func (d *Detector) Freeze() {
	d.frozen = true
	d.baseline.Freeze()
}

// Unfreeze resumes learning.
func (d *Detector) Unfreeze() {
	d.frozen = false
	d.baseline.Unfreeze()
}

// Frozen tells whether learning is stopped.
func (d *Detector) Frozen() bool { return d.frozen }

// Expect returns the current expectation at ts (for dashboards), without judging anything.
func (d *Detector) Expect(ts time.Time) stats.Expectation { return d.baseline.Expect(ts) }

const madToSigma = 1.2533141373155003 // √(π/2): mean absolute deviation to standard deviation

// directed keeps the part of a signed statistic that counts in the configured direction.
func (d *Detector) directed(z float64) float64 {
	switch d.cfg.Direction {
	case HigherIsWorse:
		return math.Max(z, 0)
	case LowerIsWorse:
		return math.Max(-z, 0)
	}
	return math.Abs(z)
}

// Update judges value at ts and then learns from it (unless frozen).
func (d *Detector) Update(ts time.Time, value float64) Result {
	e := d.baseline.Observe(ts, value)
	res := Result{Observed: value, Baseline: e.Center, Lower: e.Lower, Upper: e.Upper, PValue: 1, Test: TestLevel}
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return res
	}
	learn := !d.frozen
	if d.count == 0 {
		d.count = 1
		d.prevValue, d.prevUnix = value, ts.Unix()
		return res
	}
	if learn {
		d.count++
	}
	window := float64(d.cfg.Window)
	weight := math.Max(1/d.count, 1/window)

	z := e.Z(value)

	d.shiftMean += 2 / (float64(d.cfg.ShortWindow) + 1) * (z - d.shiftMean)
	shiftScale := math.Max(madToSigma*d.shiftDev, 1e-3)
	shiftZ := d.shiftMean / shiftScale

	// The step is taken between residuals of one model, so that a learned daily rise is no step.
	prevCenter := d.baseline.Center(time.Unix(d.prevUnix, 0), e.Seasonal)
	step := (value - e.Center) - (d.prevValue - prevCenter)
	stepScale := math.Max(madToSigma*d.stepDev, math.Max(1e-3*math.Abs(e.Center)+1e-12, 0.4*math.Sqrt(d.stepVar)))
	stepZ := step / stepScale
	d.prevValue, d.prevUnix = value, ts.Unix()

	sLevel, sShift, sStep := d.directed(z), d.directed(shiftZ), d.directed(stepZ)
	pLevel, pShift, pStep := d.level.PValue(sLevel), d.shift.PValue(sShift), d.step.PValue(sStep)

	ready := e.Ready && d.count > float64(d.cfg.WarmUp)
	if learn {
		d.shiftDev += weight * (math.Min(math.Abs(d.shiftMean), 3*shiftScale) - d.shiftDev)
		d.stepDev += weight * (math.Min(math.Abs(step), 3*stepScale) - d.stepDev)
		d.stepVar += weight * (step*step - d.stepVar)
		if ready {
			// Surprises are learned only once the baseline means something.
			d.level.Learn(sLevel, window)
			d.shift.Learn(sShift, window)
			d.step.Learn(sStep, window)
		}
	}

	p := pLevel
	if pShift < p {
		p, res.Test = pShift, TestShift
	}
	if pStep < p {
		p, res.Test = pStep, TestStep
	}
	p = math.Min(1, testCount*p)
	res.PValue, res.Confidence = p, 1-p
	res.Ready = ready
	if !ready {
		return res
	}
	raw := math.Min(1, -math.Log10(math.Max(p, 1e-300))/ScoreDecades)
	res.RawScore, res.Score = raw, raw
	day, hour := dayHour(ts.Unix())
	if raw <= d.damping || raw <= d.season.precedent(hour, day) {
		// A repeat within the refractory period, or the routine of this time of day. A
		// quarter keeps every damped score below AnomalyThreshold, even a saturated one
		// (half of 1 would still reach it, and a long incident would alarm on every sample).
		res.Score = raw * dampedShare
	}
	d.damping = math.Max(d.damping*math.Exp2(-1/float64(d.cfg.Refractory)), raw)
	if learn {
		d.season.learn(hour, day, raw)
	}
	return res
}

// snapshotVersion is the first byte of a snapshot; bump it when the layout changes.
// Version 2 added the seasonal memory; Restore still reads version 1, with an empty one.
const snapshotVersion = 2

// snapshotSizeV1 is the size of a version 1 snapshot: version 2 without the seasonal memory.
const snapshotSizeV1 = SnapshotSize - seasonBinarySize

// SnapshotSize is the size in bytes of every snapshot.
const SnapshotSize = 1 + 6*8 + stats.BaselineBinarySize + // version, config, baseline
	8*7 + 8 + 3*stats.TailBinarySize + 8 + // state, prevUnix, tails, reserved
	seasonBinarySize + 1 // seasonal memory, frozen

var errSnapshot = errors.New("detector: invalid snapshot")

// Snapshot returns the detector's whole state, settings included, in SnapshotSize bytes,
// for the processor to save through a storage extension.
func (d *Detector) Snapshot() []byte { return d.AppendSnapshot(make([]byte, 0, SnapshotSize)) }

// AppendSnapshot appends the snapshot to buf, so that many detectors can share one buffer.
func (d *Detector) AppendSnapshot(buf []byte) []byte {
	le := binary.LittleEndian
	buf = append(buf, snapshotVersion)
	for _, v := range []int{int(d.cfg.Direction), d.cfg.Window, d.cfg.WarmUp, d.cfg.ShortWindow, d.cfg.Refractory} {
		buf = le.AppendUint64(buf, uint64(v))
	}
	buf = le.AppendUint64(buf, uint64(boolByte(d.cfg.Seasonal)))
	buf, _ = d.baseline.AppendBinary(buf) // appending cannot fail
	for _, v := range []float64{d.count, d.shiftMean, d.shiftDev, d.prevValue, d.stepDev, d.stepVar, d.damping} {
		buf = le.AppendUint64(buf, math.Float64bits(v))
	}
	buf = le.AppendUint64(buf, uint64(d.prevUnix))
	buf = d.level.AppendBinary(buf)
	buf = d.shift.AppendBinary(buf)
	buf = d.step.AppendBinary(buf)
	buf = le.AppendUint64(buf, 0) // reserved
	buf = d.season.appendBinary(buf)
	return append(buf, boolByte(d.frozen))
}

// Restore replaces the detector's state, settings included, with a snapshot; d is unchanged on error.
func (d *Detector) Restore(data []byte) error {
	// A version 1 snapshot (saved before an upgrade) keeps its learned baseline and tails;
	// the seasonal memory starts empty, as on a new series, and fills within days.
	v1 := len(data) == snapshotSizeV1 && len(data) > 0 && data[0] == 1
	if !v1 && (len(data) != SnapshotSize || data[0] != snapshotVersion) {
		return fmt.Errorf("%w: want %d bytes of version %d", errSnapshot, SnapshotSize, snapshotVersion)
	}
	le := binary.LittleEndian
	next := func() uint64 {
		v := le.Uint64(data)
		data = data[8:]
		return v
	}
	data = data[1:]
	var out Detector
	out.cfg.Direction = Direction(next())
	out.cfg.Window = int(next())
	out.cfg.WarmUp = int(next())
	out.cfg.ShortWindow = int(next())
	out.cfg.Refractory = int(next())
	out.cfg.Seasonal = next() != 0
	if err := out.cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errSnapshot, err)
	}
	var err error
	if data, err = out.baseline.DecodeBinary(data); err != nil {
		return fmt.Errorf("%w: %w", errSnapshot, err)
	}
	state := []*float64{&out.count, &out.shiftMean, &out.shiftDev, &out.prevValue, &out.stepDev, &out.stepVar, &out.damping}
	for _, v := range state {
		*v = math.Float64frombits(next())
		if math.IsNaN(*v) || math.IsInf(*v, 0) {
			return fmt.Errorf("%w: non-finite state", errSnapshot)
		}
	}
	out.prevUnix = int64(next())
	for _, t := range []*stats.Tail{&out.level, &out.shift, &out.step} {
		if data, err = t.DecodeBinary(data); err != nil {
			return fmt.Errorf("%w: %w", errSnapshot, err)
		}
	}
	next() // reserved
	if !v1 {
		data = out.season.decodeBinary(data)
	}
	out.frozen = data[0] != 0
	*d = out
	return nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}
