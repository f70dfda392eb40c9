// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package stats

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var epoch = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

func minute(i int) time.Time { return epoch.Add(time.Duration(i) * time.Minute) }

func TestBaselineLearnsLevelAndScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	b := NewBaseline(DefaultBaselineConfig())
	for i := range 3000 {
		b.Observe(minute(i), 50+2*rng.NormFloat64())
	}
	e := b.Expect(minute(3000))
	assert.True(t, e.Ready)
	assert.False(t, e.Seasonal, "a series without a daily rhythm keeps the flat level")
	assert.InDelta(t, 50, e.Center, 0.3)
	assert.InDelta(t, 2, e.Scale, 0.2)
	widening := 1 + 30.0/3000 // young estimates get a wider band
	assert.InDelta(t, e.Center-3*widening*e.Scale, e.Lower, 1e-9)
	assert.InDelta(t, e.Center+3*widening*e.Scale, e.Upper, 1e-9)
	assert.InDelta(t, 2.5, e.Z(55), 0.3)
}

func TestBaselineIsRobustToOutliers(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	b := NewBaseline(DefaultBaselineConfig())
	for i := range 2000 {
		v := 50 + 2*rng.NormFloat64()
		if i > 500 && i%50 == 0 {
			v = 5000 // a spike every 50 samples: 2% contamination at 2500 sigma
		}
		b.Observe(minute(i), v)
	}
	e := b.Expect(minute(2000))
	// A plain EWMA would sit near 50 + 0.02·4950 ≈ 150; the clipped one barely moves.
	assert.InDelta(t, 50, e.Center, 1.5)
	// Frequent spikes widen the band (the scale is at least 0.4 of the plain standard
	// deviation, so that bursty series are judged on their bursts), yet a spike stays far out.
	assert.Greater(t, e.Z(5000), 5.0)
}

func TestBaselineWarmUp(t *testing.T) {
	b := NewBaseline(DefaultBaselineConfig())
	e := b.Observe(minute(0), 10)
	assert.False(t, e.Ready)
	assert.True(t, math.IsInf(e.Upper, 1), "nothing learned: the band is unbounded")
	for i := 1; i < 10; i++ {
		e = b.Observe(minute(i), 10+float64(i%2))
	}
	assert.False(t, e.Ready, "still warming up")
	young := e.Upper - e.Lower
	for i := 10; i < 200; i++ {
		e = b.Observe(minute(i), 10+float64(i%2))
	}
	assert.True(t, e.Ready)
	assert.Less(t, e.Upper-e.Lower, young, "the band narrows as the estimate matures")
	assert.Equal(t, 200, b.Count())
}

func TestBaselineFollowsALevelShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	b := NewBaseline(DefaultBaselineConfig())
	for i := range 1000 {
		b.Observe(minute(i), 10+rng.NormFloat64())
	}
	for i := 1000; i < 5000; i++ {
		b.Observe(minute(i), 30+rng.NormFloat64())
	}
	assert.InDelta(t, 30, b.Expect(minute(5000)).Center, 1, "a lasting shift becomes the new normal")
}

// daily is a series with a strong daily rhythm: 100 by day (08:00-20:00 UTC), 20 by night.
func daily(ts time.Time, rng *rand.Rand) float64 {
	if h := ts.Hour(); h >= 8 && h < 20 {
		return 100 + 3*rng.NormFloat64()
	}
	return 20 + 3*rng.NormFloat64()
}

func TestBaselineLearnsADailyProfile(t *testing.T) {
	every := 5 * time.Minute
	const days = 10
	run := func(seasonal bool) (noon, night Expectation) {
		rng := rand.New(rand.NewPCG(4, 4))
		cfg := DefaultBaselineConfig()
		cfg.Seasonal = seasonal
		b := NewBaseline(cfg)
		for i := range 288 * days {
			ts := epoch.Add(time.Duration(i) * every)
			e := b.Observe(ts, daily(ts, rng))
			switch ts.Sub(epoch) {
			case (days-1)*24*time.Hour + 12*time.Hour:
				noon = e
			case (days-1)*24*time.Hour + 2*time.Hour:
				night = e
			}
		}
		return noon, night
	}
	noon, night := run(true)
	require.True(t, noon.Seasonal)
	require.True(t, night.Seasonal)
	assert.InDelta(t, 100, noon.Center, 3)
	assert.InDelta(t, 20, night.Center, 3)
	assert.Less(t, noon.Scale, 6.0, "the profile explains the swing: the band is the noise's")
	// At night, a daytime value is far out of band.
	assert.Greater(t, night.Z(100), 10.0)

	// Without the profile the band spans day and night.
	_, flatNight := run(false)
	assert.False(t, flatNight.Seasonal)
	assert.Less(t, math.Abs(flatNight.Z(100)), 3.0)
}

func TestBaselineFreeze(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	b := NewBaseline(DefaultBaselineConfig())
	for i := range 500 {
		b.Observe(minute(i), 10+rng.NormFloat64())
	}
	b.Freeze()
	assert.True(t, b.Frozen())
	before, err := b.MarshalBinary()
	require.NoError(t, err)
	for i := 500; i < 1000; i++ {
		e := b.Observe(minute(i), 40) // a bad deployment
		assert.Greater(t, e.Z(40), 20.0, "judged against the frozen state")
	}
	after, err := b.MarshalBinary()
	require.NoError(t, err)
	assert.Equal(t, before, after, "a frozen baseline learns nothing")
	b.Unfreeze()
	b.Observe(minute(1000), 40)
	assert.Equal(t, 501, b.Count())
}

func TestBaselineIgnoresNonFinite(t *testing.T) {
	b := NewBaseline(DefaultBaselineConfig())
	for i := range 100 {
		b.Observe(minute(i), 1)
	}
	b.Observe(minute(100), math.NaN())
	b.Observe(minute(101), math.Inf(1))
	assert.Equal(t, 100, b.Count())
	assert.InDelta(t, 1, b.Expect(minute(102)).Center, 1e-12)
}

func TestBaselineBinaryRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	b := NewBaseline(DefaultBaselineConfig())
	for i := range 288 * 3 {
		ts := epoch.Add(time.Duration(i) * 5 * time.Minute)
		b.Observe(ts, daily(ts, rng))
	}
	b.Freeze()
	data, err := b.MarshalBinary()
	require.NoError(t, err)
	assert.Len(t, data, BaselineBinarySize)

	var restored Baseline
	require.NoError(t, restored.UnmarshalBinary(data))
	assert.Equal(t, *b, restored)
	ts := epoch.Add(80 * time.Hour)
	assert.Equal(t, b.Expect(ts), restored.Expect(ts))

	assert.ErrorIs(t, restored.UnmarshalBinary(data[:10]), errShortEncoding)
	bad := append([]byte{99}, data[1:]...)
	assert.ErrorIs(t, restored.UnmarshalBinary(bad), errBadEncoding)
	assert.ErrorIs(t, restored.UnmarshalBinary(append(data, 0)), errBadEncoding)
	assert.Equal(t, *b, restored, "a failed decode leaves the baseline as it was")
}

func TestBaselineConfigValidate(t *testing.T) {
	require.NoError(t, DefaultBaselineConfig().Validate())
	mutate := []func(*BaselineConfig){
		func(c *BaselineConfig) { c.Window = 1 },
		func(c *BaselineConfig) { c.WarmUp = -1 },
		func(c *BaselineConfig) { c.SeasonalDays = 0.5 },
		func(c *BaselineConfig) { c.Clip = 0 },
		func(c *BaselineConfig) { c.BandWidth = math.NaN() },
	}
	for i, m := range mutate {
		c := DefaultBaselineConfig()
		m(&c)
		assert.Error(t, c.Validate(), "case %d", i)
	}
}

func TestTailCalibration(t *testing.T) {
	tail := NewTail()
	// The prior alone reads like |N(0,1)|, made conservative by the margin.
	assert.Equal(t, 1.0, tail.PValue(0))
	assert.Greater(t, tail.PValue(1), 0.2)
	assert.Less(t, tail.PValue(6), 0.01)

	rng := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		tail.Learn(math.Abs(rng.NormFloat64()), 1000)
	}
	// Half of |N(0,1)| lies above 0.674: the body is the empirical one, read conservatively
	// (a value's own bin and a margin below it count as reached).
	assert.Greater(t, tail.PValue(0.674), 0.5)
	assert.Less(t, tail.PValue(0.674), 0.8)
	// In the body it is conservative by design: 1.96 (5% two-sided) reads about 0.2.
	assert.Greater(t, tail.PValue(1.96), 0.05)
	assert.Less(t, tail.PValue(1.96), 0.3)
	// Beyond anything seen, the p-value falls fast with the distance.
	assert.Less(t, tail.PValue(10), tail.PValue(6))
	assert.Less(t, tail.PValue(10), 1e-3)

	// Recurring spikes of 50 become unsurprising once history holds them.
	before := tail.PValue(50)
	for i := range 1000 {
		s := math.Abs(rng.NormFloat64())
		if i%100 == 0 {
			s = 50
		}
		tail.Learn(s, 1000)
	}
	assert.Greater(t, tail.PValue(50), 100*before)
	assert.Greater(t, tail.PValue(50), 0.005)

	data := tail.AppendBinary(nil)
	require.Len(t, data, TailBinarySize)
	var restored Tail
	rest, err := restored.DecodeBinary(append(data, 7))
	require.NoError(t, err)
	assert.Equal(t, []byte{7}, rest)
	assert.Equal(t, tail, restored)
	_, err = restored.DecodeBinary(data[:4])
	assert.Error(t, err)
}
