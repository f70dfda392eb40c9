// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package detector

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fiveMinutes is NAB's usual sampling: 288 samples a day.
const fiveMinutes = 5 * time.Minute

// spiked is noise around 100 with one-sample spikes: spikeAt(day, sample of the day) returns
// the spike's size in noise units, 0 for none.
func spiked(rng *rand.Rand, days int, spikeAt func(day, sample int) float64) (ts []time.Time, values []float64) {
	for i := range days * 288 {
		v := 100 + 2*rng.NormFloat64()
		v += 2 * spikeAt(i/288, i%288)
		ts, values = append(ts, epoch.Add(time.Duration(i)*fiveMinutes)), append(values, v)
	}
	return ts, values
}

// TestDailyRoutineStopsAlarming: an event that recurs at the same time each day alarms on the
// first days, then no more (the known weakness before the seasonal precedent: one alarm a day),
// while a real anomaly still alarms — at another hour, bigger than the routine, or at the hour
// of a lone earlier event.
func TestDailyRoutineStopsAlarming(t *testing.T) {
	// Around 03:00, up to 40 minutes early or late: the routine's time wanders.
	jitter := []int{0, 8, -5, 3, -8, 6, 1, -3, 7, -6, 2, 5, -2, 4}
	routine := func(day, sample int) float64 {
		if sample == 36+jitter[day%len(jitter)] {
			return 12
		}
		return 0
	}
	tests := []struct {
		name    string
		spikeAt func(day, sample int) float64
		// judged: the sample whose NAB detection (Score) is checked, and what is expected.
		day, sample int
		alarms      bool
	}{
		{"the same spike at 15:00", func(day, sample int) float64 {
			if day == 10 && sample == 180 {
				return 12
			}
			return routine(day, sample)
		}, 10, 180, true},
		{"a spike far bigger than the routine", func(day, sample int) float64 {
			if day == 10 && sample == 36 {
				return 200
			}
			return routine(day, sample)
		}, 10, 36, true},
		{"a second one-off at yesterday's hour", func(day, sample int) float64 {
			if (day == 9 || day == 10) && sample == 36 {
				return 12
			}
			return 0
		}, 10, 36, true},
	}
	for _, tt := range tests {
		ts, values := spiked(rand.New(rand.NewPCG(11, 12)), 12, tt.spikeAt)
		d := New(DefaultConfig())
		for i := range values {
			r := d.Update(ts[i], values[i])
			if i == tt.day*288+tt.sample {
				require.True(t, r.Anomalous(), "%s: the sample is anomalous on its own (the processor still sees it)", tt.name)
				assert.Equal(t, tt.alarms, r.Score >= AnomalyThreshold, "%s: score %.2f, raw %.2f", tt.name, r.Score, r.RawScore)
			}
		}
	}

	// Over twenty days, the routine alarms on every one of them without the seasonal precedent
	// (the tails alone call it rare), and on at most half of them from the fourth on with it:
	// a routine is judged against the lower of its two highest recent days, so a day whose
	// spike is larger than that still alarms (see README.md).
	const days = 20
	for _, seed := range []uint64{13, 14, 15} {
		ts, values := spiked(rand.New(rand.NewPCG(seed, 14)), days, routine)
		d := New(DefaultConfig())
		anomalous, alarms := 0, 0
		for i := range values {
			r := d.Update(ts[i], values[i])
			if i/288 >= seasonDays+1 && routine(i/288, i%288) > 0 {
				if r.Anomalous() {
					anomalous++
				}
				if r.Score >= AnomalyThreshold {
					alarms++
				}
			}
		}
		assert.Equal(t, days-seasonDays-1, anomalous, "seed %d: each spike is rare on its own", seed)
		assert.LessOrEqual(t, alarms, (days-seasonDays-1)/2, "seed %d", seed)
	}
}

// TestRepeatsBelowTheThreshold: a sensor that was stuck for a week comes back to life. Its
// noise is then a shock for a while, and several samples in a row score 0.8 to 1 on their
// own. Halving (the damping before) left such repeats at 0.4 to 0.5, at or above
// AnomalyThreshold, so one event alarmed several times, each a false positive once past
// NAB's window. A quarter keeps every damped repeat below it.
func TestRepeatsBelowTheThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	d := New(DefaultConfig())
	high, alarms := 0, 0
	for i := range 4020 {
		v := 50 + rng.NormFloat64()
		if i >= 2000 && i < 4000 {
			v = 50 // stuck
		}
		r := d.Update(epoch.Add(time.Duration(i)*fiveMinutes), v)
		if i < 4000 {
			continue
		}
		if r.RawScore >= 0.8 {
			high++
		}
		if r.Score >= AnomalyThreshold {
			alarms++
		}
	}
	require.GreaterOrEqual(t, high, 2, "the return scores high more than once")
	assert.Equal(t, 1, alarms, "it alarms once")
}

func TestSeasonMemory(t *testing.T) {
	day, hour := dayHour(epoch.Add(27 * time.Hour).Unix())
	assert.Equal(t, 3, hour)
	before, lastHour := dayHour(-1)
	assert.Equal(t, uint16(0xffff), before, "the second before the epoch is on day -1")
	assert.Equal(t, 23, lastHour)

	tests := []struct {
		name  string
		learn map[int]float64 // days back → score learned at 03:00 that day (at 04:00 for day 3)
		want  float64
	}{
		{"nothing remembered", nil, 0},
		{"one previous day is no routine", map[int]float64{1: 0.8}, 0},
		{"two of three days: the lower of the two", map[int]float64{1: 0.8, 2: 0.6}, 0.6},
		{"the second highest of three", map[int]float64{1: 0.5, 2: 0.9, 3: 0.7}, 0.7},
		{"today is not a precedent", map[int]float64{0: 0.9, 1: 0.5}, 0},
		{"four days back is forgotten", map[int]float64{1: 0.8, 4: 0.8}, 0},
	}
	for _, tt := range tests {
		var m seasonMemory
		for back, score := range tt.learn {
			h := hour
			if back == 3 {
				h = hour + 1 // a neighbouring hour is the same time of day
			}
			m.learn(h, day-uint16(back), score)
		}
		assert.InDelta(t, tt.want, m.precedent(hour, day), 1.0/seasonScale, tt.name)
	}

	var m seasonMemory
	m.learn(hour, day, 0.5)
	m.learn(hour, day-seasonRing, 0.9) // out of order by whole days: the same slot, an older day
	assert.InDelta(t, 0.5, m.dayMax(hour, day), 1.0/seasonScale, "an older day does not erase a newer one")
}

// v1Of rewrites a snapshot in version 1's layout: the same state without the seasonal memory.
func v1Of(snap []byte) []byte {
	end := len(snap) - 1 - seasonBinarySize
	v1 := append([]byte{1}, snap[1:end]...)
	return append(v1, snap[len(snap)-1])
}

// TestSnapshotVersion1Restores: a snapshot saved before the seasonal memory existed keeps its
// learned state after an upgrade, with an empty seasonal memory.
func TestSnapshotVersion1Restores(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	d := New(DefaultConfig())
	feed(d, dailyRhythm, rng, 0, 4*1440)
	snap := d.Snapshot()
	require.NotEqual(t, seasonMemory{}, d.season, "four days fill the seasonal memory")

	var restored Detector
	require.NoError(t, restored.Restore(v1Of(snap)))
	want := *d
	want.season = seasonMemory{}
	assert.Equal(t, want, restored)
}
