// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package detector

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var epoch = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)

// series generates value i of a synthetic series sampled every minute.
type series func(i int, rng *rand.Rand) float64

func gaussian(mean, sd float64) series {
	return func(_ int, rng *rand.Rand) float64 { return mean + sd*rng.NormFloat64() }
}

// dailyRhythm is a latency-like series: 200 ms by day, 120 ms by night, 5% noise.
func dailyRhythm(i int, rng *rand.Rand) float64 {
	phase := 2 * math.Pi * float64(i%1440) / 1440
	return (160 - 40*math.Cos(phase)) * (1 + 0.05*rng.NormFloat64())
}

// autocorrelated is AR(1) noise with coefficient 0.9 around 50.
func autocorrelated() series {
	state := 0.0
	return func(_ int, rng *rand.Rand) float64 {
		state = 0.9*state + rng.NormFloat64()
		return 50 + state
	}
}

// feed runs n samples of s through d from sample `from`, returning the results.
func feed(d *Detector, s series, rng *rand.Rand, from, n int) []Result {
	out := make([]Result, n)
	for k := range n {
		i := from + k
		out[k] = d.Update(epoch.Add(time.Duration(i)*time.Minute), s(i, rng))
	}
	return out
}

func maxScore(results []Result) (score float64, at int) {
	at = -1
	for k, r := range results {
		if r.Score > score {
			score, at = r.Score, k
		}
	}
	return score, at
}

// maxCleanAlarms bounds the anomalous samples of six days of a clean minute series (one in 4000).
const maxCleanAlarms = 2

func TestCleanSeriesDoNotAlarm(t *testing.T) {
	tests := []struct {
		name   string
		series func() series
	}{
		{"gaussian noise", func() series { return gaussian(100, 5) }},
		{"daily rhythm", func() series { return dailyRhythm }},
		{"autocorrelated noise", autocorrelated},
	}
	for _, tt := range tests {
		for seed := uint64(1); seed <= 3; seed++ {
			rng := rand.New(rand.NewPCG(seed, 42))
			d := New(DefaultConfig())
			results := feed(d, tt.series(), rng, 0, 6*1440)
			// AnomalyThreshold is p ≈ 0.025 per sample: the bar is a false-alarm rate, not none at all.
			anomalous := 0
			for _, r := range results {
				if r.Anomalous() {
					anomalous++
				}
			}
			assert.LessOrEqual(t, anomalous, maxCleanAlarms, "%s, seed %d: %d of %d samples anomalous", tt.name, seed, anomalous, len(results))
			score, at := maxScore(results[DefaultWarmUp:])
			assert.Less(t, score, AnomalyThreshold+0.05, "%s, seed %d: score %.2f at sample %d (%s)",
				tt.name, seed, score, at+DefaultWarmUp, results[at+DefaultWarmUp].Test)
		}
	}
}

func TestStepsAndSpikesAreDetected(t *testing.T) {
	tests := []struct {
		name      string
		direction Direction
		change    func(k int) float64 // added to the noise (sd 1) from the change on
		within    int                 // samples after the change by which the score must reach the threshold
		detected  bool
	}{
		{"5-sigma step up", Both, func(int) float64 { return 5 }, 5, true},
		{"5-sigma step down", Both, func(int) float64 { return -5 }, 5, true},
		{"8-sigma single spike", Both, func(k int) float64 { return map[bool]float64{true: 8}[k == 0] }, 1, true},
		{"step up when higher is worse", HigherIsWorse, func(int) float64 { return 5 }, 5, true},
		{"step down ignored when higher is worse", HigherIsWorse, func(int) float64 { return -5 }, 50, false},
		{"step up ignored when lower is worse", LowerIsWorse, func(int) float64 { return 5 }, 50, false},
	}
	for _, tt := range tests {
		for seed := uint64(1); seed <= 3; seed++ {
			rng := rand.New(rand.NewPCG(seed, 7))
			cfg := DefaultConfig()
			cfg.Direction = tt.direction
			d := New(cfg)
			feed(d, gaussian(100, 1), rng, 0, 3000)
			changed := func(i int, rng *rand.Rand) float64 { return 100 + rng.NormFloat64() + tt.change(i-3000) }
			results := feed(d, changed, rng, 3000, tt.within)
			score, at := maxScore(results)
			if tt.detected {
				assert.GreaterOrEqual(t, score, AnomalyThreshold, "%s, seed %d", tt.name, seed)
				assert.InDelta(t, 100+tt.change(at), results[at].Observed, 3, "evidence: the value judged is the changed one")
				assert.True(t, results[at].Anomalous())
				assert.True(t, results[at].Ready)
				assert.Greater(t, results[at].Confidence, 0.99)
				if at == 0 {
					assert.InDelta(t, 100, results[at].Baseline, 0.3, "evidence: the baseline before the change")
					if tt.change(0) > 0 {
						assert.Greater(t, results[at].Observed, results[at].Upper, "evidence: the changed value is above the expected range")
					} else {
						assert.Less(t, results[at].Observed, results[at].Lower, "evidence: the changed value is below the expected range")
					}
				}
			} else {
				assert.Less(t, score, AnomalyThreshold, "%s, seed %d", tt.name, seed)
				for _, r := range results {
					assert.False(t, r.Anomalous(), "%s, seed %d", tt.name, seed)
				}
			}
		}
	}
}

func TestDriftIsDetectedAgainstAFrozenBaseline(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		rng := rand.New(rand.NewPCG(seed, 9))
		d := New(DefaultConfig())
		feed(d, gaussian(100, 1), rng, 0, 3000)
		d.Freeze() // a deployment starts: judge it against what came before
		drift := func(i int, rng *rand.Rand) float64 { return 100 + 0.02*float64(i-3000) + rng.NormFloat64() }
		results := feed(d, drift, rng, 3000, 300)
		first := -1
		for k, r := range results {
			if r.Score >= AnomalyThreshold {
				first = k
				break
			}
		}
		require.GreaterOrEqual(t, first, 0, "seed %d: a drift of 0.02 sigma per sample must be seen", seed)
		assert.Less(t, 0.02*float64(first), 4.0, "seed %d: seen within 4 sigma of drift, at %d", seed, first)
		assert.Equal(t, TestShift, results[first].Test, "the moving average sees a drift first")
	}
}

func TestWarmUpAndNonFinite(t *testing.T) {
	d := New(DefaultConfig())
	for i := range DefaultWarmUp {
		r := d.Update(epoch.Add(time.Duration(i)*time.Minute), 1000*float64(i%2)) // wild, but young
		assert.False(t, r.Ready, "sample %d", i)
		assert.Zero(t, r.Score)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	feed(d, gaussian(10, 1), rng, DefaultWarmUp, 500)
	before := d.Snapshot()
	r := d.Update(epoch.Add(600*time.Minute), math.NaN())
	assert.False(t, r.Ready)
	assert.Zero(t, r.Score)
	assert.Equal(t, before, d.Snapshot(), "a NaN teaches nothing")
}

func TestFreezeKeepsTheBaseline(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	d := New(DefaultConfig())
	feed(d, gaussian(100, 2), rng, 0, 2000)
	d.Freeze()
	require.True(t, d.Frozen())
	frozenBaseline := d.Expect(epoch.Add(2000 * time.Minute))
	results := feed(d, gaussian(130, 2), rng, 2000, 500) // a bad deployment, lasting
	last := results[len(results)-1]
	assert.InDelta(t, frozenBaseline.Center, last.Baseline, 1e-9, "the baseline did not learn the bad version")
	assert.Greater(t, last.RawScore, AnomalyThreshold, "still anomalous after 500 samples")

	d.Unfreeze()
	results = feed(d, gaussian(130, 2), rng, 2500, 3000)
	// Unfrozen, the new level becomes normal: alarms stop, and the baseline follows, at the
	// pace of the Huber clip (an outlier moves it by at most 3 scale units / window).
	assert.Greater(t, results[len(results)-1].Baseline, 120.0)
	for k, r := range results[1000:] {
		require.Less(t, r.RawScore, AnomalyThreshold, "no alarm after 1000 samples of the new level (sample %d)", 1000+k)
	}
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	cfg := DefaultConfig()
	cfg.Direction = HigherIsWorse
	d := New(cfg)
	feed(d, dailyRhythm, rng, 0, 4*1440)
	d.Freeze()

	snap := d.Snapshot()
	require.Len(t, snap, SnapshotSize)
	restored := New(DefaultConfig())
	require.NoError(t, restored.Restore(snap))
	assert.Equal(t, d.Config(), restored.Config())
	assert.True(t, restored.Frozen())
	assert.Equal(t, *d, *restored)

	// Both go on identically.
	a := feed(d, dailyRhythm, rand.New(rand.NewPCG(5, 5)), 4*1440, 500)
	b := feed(restored, dailyRhythm, rand.New(rand.NewPCG(5, 5)), 4*1440, 500)
	assert.Equal(t, a, b)

	bad := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"short", snap[:100]},
		{"long", append(append([]byte{}, snap...), 0)},
		{"version", append([]byte{99}, snap[1:]...)},
		{"version 1 of version 2's size", append([]byte{1}, snap[1:]...)},
		{"version 2 of version 1's size", append([]byte{snapshotVersion}, v1Of(snap)[1:]...)},
		{"config", func() []byte {
			c := append([]byte{}, snap...)
			c[1+8] = 0 // window 0
			c[1+9] = 0
			return c
		}()},
	}
	for _, tt := range bad {
		before := *restored
		assert.Error(t, restored.Restore(tt.data), tt.name)
		assert.Equal(t, before, *restored, "%s: a failed restore changes nothing", tt.name)
	}
}

func TestConfig(t *testing.T) {
	require.NoError(t, DefaultConfig().Validate())
	mutate := map[string]func(*Config){
		"direction":    func(c *Config) { c.Direction = 9 },
		"window":       func(c *Config) { c.Window = 5 },
		"warm_up":      func(c *Config) { c.WarmUp = -1 },
		"short_window": func(c *Config) { c.ShortWindow = 0 },
		"refractory":   func(c *Config) { c.Refractory = 0 },
	}
	for key, m := range mutate {
		c := DefaultConfig()
		m(&c)
		err := c.Validate()
		require.Error(t, err, key)
		assert.Contains(t, err.Error(), key)
	}
	for _, d := range []Direction{Both, HigherIsWorse, LowerIsWorse} {
		parsed, err := ParseDirection(d.String())
		require.NoError(t, err)
		assert.Equal(t, d, parsed)
	}
	_, err := ParseDirection("sideways")
	assert.Error(t, err)
}

func TestRefractoryDampsRepeats(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	d := New(DefaultConfig())
	feed(d, gaussian(0, 1), rng, 0, 3000)
	first := d.Update(epoch.Add(3000*time.Minute), 12)
	feed(d, gaussian(0, 1), rng, 3001, 5)
	second := d.Update(epoch.Add(3006*time.Minute), 11)
	require.GreaterOrEqual(t, first.Score, AnomalyThreshold)
	assert.Equal(t, first.RawScore, first.Score, "the onset is not damped")
	assert.Less(t, second.Score, second.RawScore, "a smaller repeat soon after is damped")
	assert.InDelta(t, second.RawScore*dampedShare, second.Score, 1e-12)
}
