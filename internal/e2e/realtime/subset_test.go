// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package realtime

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/scenario"
)

func TestSubset(t *testing.T) {
	for _, tt := range []struct {
		perCell, want int
	}{
		{perCell: 1, want: 12 + 3},
		{perCell: 4, want: 12*4 + 3},
	} {
		picked := Subset(scenario.Library(1), tt.perCell)
		require.Len(t, picked, tt.want, "every cell, plus a low-traffic one of each clean cell")
		services := map[string]bool{}
		cells := map[string]int{}
		for i, sc := range picked {
			require.NoError(t, sc.Validate(), sc.Name)
			for _, svc := range sc.Services {
				assert.False(t, services[svc.Name], "service %s twice: one collector judges them all", svc.Name)
				services[svc.Name] = true
			}
			cell, _, _ := strings.Cut(sc.Name, "/rps=")
			cells[cell]++
			if rps := sc.Label().TrafficRPS; rps < scenario.LowTrafficRPS {
				assert.False(t, sc.Label().Regressed, "%s: low traffic only for clean cells", sc.Name)
			} else if i < 12 {
				assert.Equal(t, 50.0, rps, "the first round is at 50 req/s")
			}
		}
		assert.Len(t, cells, 12)
		assert.Equal(t, tt.perCell+1, cells["clean-quiet"])
		assert.Equal(t, tt.perCell, cells["clean-surge"])
		// Interleaved: the first twelve are one of every cell.
		first := map[string]bool{}
		for _, sc := range picked[:12] {
			cell, _, _ := strings.Cut(sc.Name, "/rps=")
			first[cell] = true
		}
		assert.Len(t, first, 12)
	}
}

func TestUnique(t *testing.T) {
	sc := scenario.Library(1)[0]
	renamed := Unique(sc, "-07")
	assert.Equal(t, sc.Deployment.Service+"-07", renamed.Deployment.Service)
	assert.Equal(t, renamed.Deployment.Service, renamed.Label().Service)
	for i := range sc.Services {
		assert.Equal(t, sc.Services[i].Name+"-07", renamed.Services[i].Name)
	}
	assert.NotEqual(t, sc.Services[0].Name, renamed.Services[0].Name, "the original is untouched")
	require.NoError(t, renamed.Validate())
}
