// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package detector

import (
	"encoding/binary"
	"math"

	"github.com/deploylens/deploylens/internal/stats"
)

// The seasonal precedent: a surprise that the same time of day brought on most of the last
// few days is the series' routine (a nightly batch, a morning peak), not news. The tails
// judge surprises per sample, so an event that lasts one sample a day stays rare there
// (about 3.5 precedents in a memory of 1000 five-minute samples) and would alarm daily.
const (
	// seasonDays is how many previous days are looked back on.
	seasonDays = 3
	// seasonNeed is how many of them must have reached the surprise. One is not enough: the
	// highest of the many samples of a noisy hour often reaches a moderate score by chance,
	// and a lone precedent would hide a real anomaly behind yesterday's noise. Two of three
	// also asks for the routine to be current.
	seasonNeed = 2
	// seasonNear is how many neighbouring hours on each side count as "the same time of day",
	// so that an event that comes at 03:55 one day and 04:05 the next is one routine.
	seasonNear = 1
	// seasonRing holds the previous days and today.
	seasonRing = seasonDays + 1
	// seasonScale stores a score in [0, 1] as a uint16, rounded up so that a stored
	// precedent is never below the score it records.
	seasonScale = math.MaxUint16
	// seasonBinarySize is the size of a seasonMemory's binary form.
	seasonBinarySize = stats.SeasonBuckets * seasonRing * 4
)

// seasonSlot is the highest raw score of one hour of one day.
type seasonSlot struct {
	score uint16 // raw score × seasonScale, rounded up
	day   uint16 // the day (days since the Unix epoch, mod 2¹⁶) the score belongs to
}

// seasonMemory keeps, for each hour of the day (UTC, as the baseline's profile), the highest
// raw score of today and of each of the seasonDays previous days: 384 bytes.
type seasonMemory [stats.SeasonBuckets][seasonRing]seasonSlot

// dayHour splits a Unix time into its day (mod 2¹⁶) and its hour of the day.
func dayHour(unix int64) (uint16, int) {
	day := unix / 86400
	if unix%86400 < 0 {
		day--
	}
	return uint16(day), int(unix-day*86400) / (86400 / stats.SeasonBuckets)
}

// dayMax is the highest raw score of day in hour and its neighbours, 0 when none is remembered.
func (m *seasonMemory) dayMax(hour int, day uint16) float64 {
	best := uint16(0)
	for dh := -seasonNear; dh <= seasonNear; dh++ {
		s := m[(hour+dh+stats.SeasonBuckets)%stats.SeasonBuckets][day%seasonRing]
		if s.day == day {
			best = max(best, s.score)
		}
	}
	return float64(best) / seasonScale
}

// precedent is the highest score that the time of day of hour reached on at least seasonNeed
// of the seasonDays previous days: a raw score up to it is routine at this time of day.
func (m *seasonMemory) precedent(hour int, day uint16) float64 {
	var top [seasonDays]float64 // the previous days' maxima, highest first
	for k := uint16(1); k <= seasonDays; k++ {
		v := m.dayMax(hour, day-k)
		for i := range top {
			if v > top[i] {
				top[i], v = v, top[i]
			}
		}
	}
	return top[seasonNeed-1]
}

// learn records a raw score at hour of day. A sample older than what its slot holds (out of
// order by whole days) is ignored rather than allowed to erase a newer day.
func (m *seasonMemory) learn(hour int, day uint16, raw float64) {
	s := &m[hour][day%seasonRing]
	if s.day != day {
		if int16(day-s.day) < 0 && s.score > 0 {
			return
		}
		*s = seasonSlot{day: day}
	}
	s.score = max(s.score, uint16(math.Ceil(math.Min(math.Max(raw, 0), 1)*seasonScale)))
}

func (m *seasonMemory) appendBinary(buf []byte) []byte {
	for h := range m {
		for _, s := range m[h] {
			buf = binary.LittleEndian.AppendUint16(buf, s.score)
			buf = binary.LittleEndian.AppendUint16(buf, s.day)
		}
	}
	return buf
}

// decodeBinary reads a memory written by appendBinary from the front of data (which holds
// at least seasonBinarySize bytes) and returns the rest.
func (m *seasonMemory) decodeBinary(data []byte) []byte {
	for h := range m {
		for i := range m[h] {
			m[h][i] = seasonSlot{score: binary.LittleEndian.Uint16(data), day: binary.LittleEndian.Uint16(data[2:])}
			data = data[4:]
		}
	}
	return data
}
