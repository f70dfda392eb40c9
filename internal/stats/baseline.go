// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// SeasonBuckets is the number of time-of-day buckets of the daily profile (one per hour, UTC).
const SeasonBuckets = 24

const (
	// madToSigma turns a mean absolute deviation into a standard deviation for normal data (√(π/2)).
	madToSigma = 1.2533141373155003
	// intermittentFloor bounds the robust scale below by this share of the plain standard
	// deviation: a series that is mostly constant with bursts (disk writes, error counts) has
	// a robust spread near zero, and would otherwise call every burst infinitely surprising.
	intermittentFloor = 0.4
	// relativeResolution bounds the scale below by this share of the level, for flat series.
	relativeResolution = 1e-3
	// seasonalAdvantage is how much smaller the daily profile's error must be for it to be used.
	seasonalAdvantage = 0.8
)

// BaselineConfig sets how a Baseline learns.
type BaselineConfig struct {
	// Window is the effective memory in samples of the global estimate (EWMA weight 1/Window).
	Window int
	// WarmUp is the number of samples before the baseline is Ready; until then its band is wide and not to be alarmed on.
	WarmUp int
	// Seasonal enables the daily profile (SeasonBuckets hourly offsets from the global level).
	Seasonal bool
	// SeasonalDays is the effective memory of each hourly bucket, in days.
	SeasonalDays float64
	// Clip is the Huber clip, in scale units: a residual beyond it is learned as if it were at the clip.
	Clip float64
	// BandWidth is the half-width of the expected range, in scale units (lower/upper for dashboards).
	BandWidth float64
}

// DefaultBaselineConfig returns the settings the detector uses by default.
func DefaultBaselineConfig() BaselineConfig {
	return BaselineConfig{
		Window:       1000,
		WarmUp:       30,
		Seasonal:     true,
		SeasonalDays: 5,
		Clip:         3,
		BandWidth:    3,
	}
}

// Validate reports settings that cannot work.
func (c BaselineConfig) Validate() error {
	switch {
	case c.Window < 2:
		return fmt.Errorf("window must be at least 2, got %d", c.Window)
	case c.WarmUp < 0:
		return fmt.Errorf("warm_up must not be negative, got %d", c.WarmUp)
	case c.Seasonal && !(c.SeasonalDays >= 1):
		return fmt.Errorf("seasonal_days must be at least 1, got %v", c.SeasonalDays)
	case !(c.Clip > 0):
		return fmt.Errorf("clip must be positive, got %v", c.Clip)
	case !(c.BandWidth > 0):
		return fmt.Errorf("band_width must be positive, got %v", c.BandWidth)
	}
	return nil
}

// Expectation is what a Baseline expected of one sample, before it learned from it.
type Expectation struct {
	// Center is the expected value.
	Center float64
	// Scale is the expected spread (a robust standard deviation), never zero.
	Scale float64
	// Lower and Upper bound the expected range: Center ∓ BandWidth·Scale, wider during warm-up.
	Lower, Upper float64
	// Seasonal tells that the daily profile, not the global level, made the expectation.
	Seasonal bool
	// Ready is false during warm-up: the band is then not to be alarmed on.
	Ready bool
}

// Z is the standardised residual of value against the expectation.
func (e Expectation) Z(value float64) float64 { return (value - e.Center) / e.Scale }

type seasonBucket struct {
	offset float32 // learned mean of (value - global level) in this hour
	dev    float32 // learned mean absolute residual of the seasonal model in this hour
	count  float32 // samples learned (capped): the bucket's maturity
}

// Baseline is a rolling, outlier-robust estimate of what a series usually looks like, in
// O(1) time and fixed memory per sample: a Huber-clipped EWMA of the level and of the mean
// absolute deviation, and optionally a daily profile of hourly offsets from that level,
// used only while it predicts clearly better than the flat level (so a series without a
// daily rhythm is not judged against noise). Each hour's spread is learned too, so a busy
// hour may vary more than a quiet one. The first samples learn at weight 1/n (a plain
// mean), so a new series settles fast, and its band stays wide until WarmUp samples.
// Freeze keeps a snapshot to judge a deployment against; MarshalBinary saves it.
type Baseline struct {
	cfg BaselineConfig

	count    float64 // samples learned
	level    float64 // EWMA of the value
	dev      float64 // EWMA of |value - level|, Huber-clipped
	variance float64 // EWMA of (value - level)², not clipped
	lastUnix int64   // timestamp of the last sample, seconds
	interval float64 // EWMA of the sampling interval, seconds

	season      [SeasonBuckets]seasonBucket
	errGlobal   float64 // EWMA of |value - level|
	errSeasonal float64 // EWMA of |value - seasonal prediction|
	varSeasonal float64 // EWMA of (value - seasonal prediction)², not clipped

	frozen bool
}

// NewBaseline returns an empty baseline; cfg must be valid.
func NewBaseline(cfg BaselineConfig) *Baseline {
	b := &Baseline{}
	b.Init(cfg)
	return b
}

// Init resets b to an empty baseline with cfg, for callers that hold a Baseline by value.
func (b *Baseline) Init(cfg BaselineConfig) { *b = Baseline{cfg: cfg} }

// Config returns the settings b was made with.
func (b *Baseline) Config() BaselineConfig { return b.cfg }

// Count is the number of samples learned.
func (b *Baseline) Count() int { return int(b.count) }

// Ready tells that warm-up is over.
func (b *Baseline) Ready() bool { return b.count > 0 && b.count >= float64(b.cfg.WarmUp) }

// Freeze stops learning: Observe still judges against the frozen state but no longer updates it.
func (b *Baseline) Freeze() { b.frozen = true }

// Unfreeze resumes learning.
func (b *Baseline) Unfreeze() { b.frozen = false }

// Frozen tells whether learning is stopped.
func (b *Baseline) Frozen() bool { return b.frozen }

func (b *Baseline) resolution() float64 { return relativeResolution*math.Abs(b.level) + 1e-12 }

func (b *Baseline) scaleFloor(variance float64) float64 {
	return math.Max(b.resolution(), intermittentFloor*math.Sqrt(variance))
}

func bucketOf(ts time.Time) int {
	return int((ts.Unix()%86400+86400)%86400) / (86400 / SeasonBuckets)
}

// useSeasonal tells whether the daily profile has learned enough, and predicts clearly better, to be used.
func (b *Baseline) useSeasonal(bucket int) bool {
	if !b.cfg.Seasonal || b.interval <= 0 {
		return false
	}
	perDay := 3600 / b.interval // samples per bucket per day
	// Every bucket must have seen about two days of data.
	return float64(b.season[bucket].count) >= 2*perDay && b.count >= 2*SeasonBuckets*perDay &&
		b.errSeasonal < seasonalAdvantage*b.errGlobal
}

// Expect returns the expectation for a sample at ts without learning anything.
func (b *Baseline) Expect(ts time.Time) Expectation {
	e := Expectation{Center: b.level, Scale: math.Max(madToSigma*b.dev, b.scaleFloor(b.variance)), Ready: b.Ready()}
	bucket := bucketOf(ts)
	if b.useSeasonal(bucket) {
		s := &b.season[bucket]
		e.Center = b.level + float64(s.offset)
		e.Scale = math.Max(madToSigma*float64(s.dev), b.scaleFloor(b.varSeasonal))
		e.Seasonal = true
	}
	width := b.cfg.BandWidth * e.Scale
	if b.count < 1 {
		width = math.Inf(1)
	} else {
		// The estimate is uncertain while young: widen the band, by 2x at the end of warm-up.
		width *= 1 + float64(b.cfg.WarmUp)/b.count
	}
	e.Lower, e.Upper = e.Center-width, e.Center+width
	return e
}

// Center is the value expected at ts by the seasonal or the flat model; the detector uses it to
// compare consecutive residuals under one model.
func (b *Baseline) Center(ts time.Time, seasonal bool) float64 {
	if seasonal {
		return b.level + float64(b.season[bucketOf(ts)].offset)
	}
	return b.level
}

// Observe returns the expectation for value at ts (made before seeing it) and then learns from it,
// unless frozen. Non-finite values are judged but never learned.
func (b *Baseline) Observe(ts time.Time, value float64) Expectation {
	e := b.Expect(ts)
	if !b.frozen && !math.IsNaN(value) && !math.IsInf(value, 0) {
		b.learn(ts, value)
	}
	return e
}

func (b *Baseline) learn(ts time.Time, value float64) {
	unix := ts.Unix()
	if b.count > 0 && unix > b.lastUnix {
		dt := float64(unix - b.lastUnix)
		if b.interval == 0 {
			b.interval = dt
		} else {
			// Gaps in the data should not move the interval far: clip what one gap teaches.
			b.interval += 0.05 * (math.Min(dt, 4*b.interval) - b.interval)
		}
	}
	if b.count == 0 || unix > b.lastUnix {
		b.lastUnix = unix
	}
	if b.count == 0 {
		b.level = value
		b.count = 1
		return
	}
	b.count++
	weight := math.Max(1/b.count, 1/float64(b.cfg.Window))
	clipping := b.count > float64(b.cfg.WarmUp) // the scale means nothing before warm-up

	// Each model's prediction error decides which one to trust.
	bucket := bucketOf(ts)
	s := &b.season[bucket]
	globalErr := math.Abs(value - b.level)
	seasonalErr := globalErr
	if s.count > 0 {
		seasonalErr = math.Abs(value - b.level - float64(s.offset))
	}
	b.errGlobal += weight * (globalErr - b.errGlobal)
	b.errSeasonal += weight * (seasonalErr - b.errSeasonal)
	b.varSeasonal += weight * (seasonalErr*seasonalErr - b.varSeasonal)

	residual := value - b.level
	b.variance += weight * (residual*residual - b.variance)
	if b.useSeasonal(bucket) {
		// Learn the level from the deseasonalised value (as Holt-Winters does), so that the
		// daily swing neither ripples the level nor biases the offsets learned against it.
		residual -= float64(s.offset)
	}
	if clipping {
		// Clip at the robust scale alone: the intermittent floor is for judging, and would let
		// frequent outliers drag the level.
		residual = clamp(residual, b.cfg.Clip*math.Max(madToSigma*b.dev, b.resolution()))
	}
	b.level += weight * residual
	b.dev += weight * (math.Abs(residual) - b.dev)

	// The profile is learned against a settled level: from the second day of data on.
	if !b.cfg.Seasonal || b.interval <= 0 || b.count*b.interval < 86400 {
		return
	}
	seasonal := value - b.level - float64(s.offset)
	if s.count >= 3 {
		seasonal = clamp(seasonal, b.cfg.Clip*math.Max(madToSigma*float64(s.dev), b.resolution()))
	}
	memory := math.Max(b.cfg.SeasonalDays*3600/b.interval, 2) // samples per bucket
	bucketWeight := math.Max(1/(float64(s.count)+1), 1/memory)
	s.offset += float32(bucketWeight * seasonal)
	s.dev += float32(bucketWeight * (math.Abs(seasonal) - float64(s.dev)))
	if s.count < 1e6 {
		s.count++
	}
}

func clamp(v, limit float64) float64 { return math.Max(-limit, math.Min(limit, v)) }

const (
	// baselineVersion is the first byte of the binary form; bump it when the layout changes.
	baselineVersion = 1
	// BaselineBinarySize is the size of a Baseline's binary form.
	BaselineBinarySize = 1 + 8*5 + 1 + // version, window, warm-up, seasonal days, clip, band width, seasonal
		8*5 + 8 + // count, level, dev, variance, interval, last timestamp
		SeasonBuckets*3*4 + 8*3 + 1 // season, errors, frozen
)

var (
	errShortEncoding = errors.New("stats: encoding too short")
	errBadEncoding   = errors.New("stats: invalid encoding")
)

// MarshalBinary encodes the baseline, settings included, in a fixed little-endian layout of BaselineBinarySize bytes.
func (b *Baseline) MarshalBinary() ([]byte, error) {
	return b.AppendBinary(make([]byte, 0, BaselineBinarySize))
}

// AppendBinary appends the binary form of b to buf.
func (b *Baseline) AppendBinary(buf []byte) ([]byte, error) {
	le := binary.LittleEndian
	f64 := func(v float64) { buf = le.AppendUint64(buf, math.Float64bits(v)) }
	buf = append(buf, baselineVersion)
	buf = le.AppendUint64(buf, uint64(b.cfg.Window))
	buf = le.AppendUint64(buf, uint64(b.cfg.WarmUp))
	f64(b.cfg.SeasonalDays)
	f64(b.cfg.Clip)
	f64(b.cfg.BandWidth)
	buf = append(buf, boolByte(b.cfg.Seasonal))
	f64(b.count)
	f64(b.level)
	f64(b.dev)
	f64(b.variance)
	f64(b.interval)
	buf = le.AppendUint64(buf, uint64(b.lastUnix))
	for i := range b.season {
		buf = le.AppendUint32(buf, math.Float32bits(b.season[i].offset))
		buf = le.AppendUint32(buf, math.Float32bits(b.season[i].dev))
		buf = le.AppendUint32(buf, math.Float32bits(b.season[i].count))
	}
	f64(b.errGlobal)
	f64(b.errSeasonal)
	f64(b.varSeasonal)
	buf = append(buf, boolByte(b.frozen))
	return buf, nil
}

// UnmarshalBinary restores a baseline written by MarshalBinary, settings included.
func (b *Baseline) UnmarshalBinary(data []byte) error {
	rest, err := b.DecodeBinary(data)
	if err == nil && len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errBadEncoding, len(rest))
	}
	return err
}

// DecodeBinary reads one baseline from the front of data and returns the rest; b is unchanged on error.
func (b *Baseline) DecodeBinary(data []byte) ([]byte, error) {
	if len(data) < BaselineBinarySize {
		return nil, errShortEncoding
	}
	if data[0] != baselineVersion {
		return nil, fmt.Errorf("%w: baseline version %d", errBadEncoding, data[0])
	}
	r := reader{buf: data[1:]}
	var out Baseline
	out.cfg.Window = int(r.u64())
	out.cfg.WarmUp = int(r.u64())
	out.cfg.SeasonalDays = r.f64()
	out.cfg.Clip = r.f64()
	out.cfg.BandWidth = r.f64()
	out.cfg.Seasonal = r.bool()
	out.count = r.f64()
	out.level = r.f64()
	out.dev = r.f64()
	out.variance = r.f64()
	out.interval = r.f64()
	out.lastUnix = int64(r.u64())
	for i := range out.season {
		out.season[i].offset = r.f32()
		out.season[i].dev = r.f32()
		out.season[i].count = r.f32()
	}
	out.errGlobal = r.f64()
	out.errSeasonal = r.f64()
	out.varSeasonal = r.f64()
	out.frozen = r.bool()
	if err := out.cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadEncoding, err)
	}
	for _, v := range []float64{out.count, out.level, out.dev, out.variance, out.interval, out.errGlobal, out.errSeasonal, out.varSeasonal} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: non-finite state", errBadEncoding)
		}
	}
	*b = out
	return r.buf, nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// reader decodes the fixed layouts written with encoding/binary; callers check the length first.
type reader struct{ buf []byte }

func (r *reader) u64() uint64 {
	v := binary.LittleEndian.Uint64(r.buf)
	r.buf = r.buf[8:]
	return v
}

func (r *reader) u32() uint32 {
	v := binary.LittleEndian.Uint32(r.buf)
	r.buf = r.buf[4:]
	return v
}

func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }
func (r *reader) f32() float32 { return math.Float32frombits(r.u32()) }

func (r *reader) bool() bool {
	v := r.buf[0] != 0
	r.buf = r.buf[1:]
	return v
}
