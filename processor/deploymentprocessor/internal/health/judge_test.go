// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

func TestJudgeCountsOnlyAnomalousSamplesAsHarmful(t *testing.T) {
	tests := []struct {
		name      string
		value     float64 // after a warm baseline of 100 ± 10 ms
		anomalous bool
		harmful   bool
	}{
		{"within tolerance", 105, false, false},
		{"beyond tolerance, but usual for the series", 120, false, false},
		{"beyond tolerance and anomalous", 300, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, newWorld(), nil)
			s := e.newSeries(checkout)
			latency := -1
			for i, sp := range e.specs {
				if sp.name == indicators.LatencyP95 {
					latency = i
				}
			}
			require.GreaterOrEqual(t, latency, 0)
			rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // test data
			end := t0
			for range 3000 {
				end = end.Add(10 * time.Second)
				s.judge(latency, end, 100+10*rng.NormFloat64())
			}
			s.judge(latency, end.Add(10*time.Second), 100) // an ordinary sample last
			s.inds[latency].harmful = false                // as an evaluation does: judge the last sample alone
			s.judge(latency, end.Add(20*time.Second), tt.value)
			ind := &s.inds[latency]
			require.True(t, ind.judged)
			assert.Equal(t, tt.anomalous, ind.last.Anomalous(), "raw score %.2f", ind.last.RawScore)
			assert.Equal(t, tt.harmful, ind.harmful)
		})
	}
}
