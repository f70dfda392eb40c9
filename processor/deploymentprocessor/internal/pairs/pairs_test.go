// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package pairs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
)

func id(n byte) pcommon.SpanID { return pcommon.SpanID{n, 1, 2, 3, 4, 5, 6, 7} }

var address = Name{Namespace: "shop", Environment: "prod", Dependency: "10.0.4.17:8443"}

func TestPairTeachesTheName(t *testing.T) {
	tb := New(10, 10)
	now := time.Now().UnixNano()
	tb.Lock()
	tb.AddCallLocked(id(1), address, now)
	assert.True(t, tb.Waiting())
	_, ok := tb.MatchLocked(id(2), "prod", "payment", now)
	assert.False(t, ok, "not the call's child")
	n, ok := tb.MatchLocked(id(1), "prod", "payment", now)
	tb.Unlock()
	require.True(t, ok)
	assert.Equal(t, address, n)
	assert.False(t, tb.Waiting())
	service, ok := tb.Resolve(address)
	require.True(t, ok)
	assert.Equal(t, "payment", service)

	// A second pair saying the same teaches nothing new; another environment nothing at all.
	tb.Lock()
	tb.AddCallLocked(id(3), address, now)
	_, again := tb.MatchLocked(id(3), "prod", "payment", now)
	tb.AddCallLocked(id(4), address, now)
	_, other := tb.MatchLocked(id(4), "staging", "payment", now)
	tb.Unlock()
	assert.False(t, again)
	assert.False(t, other)
	assert.Equal(t, int64(1), tb.Names())
}

func TestCallsExpireAfterTwoWindows(t *testing.T) {
	tb := New(10, 10)
	now := time.Now().UnixNano()
	tb.Lock()
	tb.AddCallLocked(id(1), address, now)
	tb.Unlock()
	tb.Sweep(now+int64(Window), 0) // one window: still waiting
	assert.True(t, tb.Waiting())
	tb.Sweep(now+2*int64(Window), 0) // two: gone
	assert.False(t, tb.Waiting())
	assert.Zero(t, tb.Calls())
	tb.Lock()
	_, ok := tb.MatchLocked(id(1), "prod", "payment", now+2*int64(Window))
	tb.Unlock()
	assert.False(t, ok)
}

func TestBounds(t *testing.T) {
	tb := New(2, 1)
	now := time.Now().UnixNano()
	tb.Lock()
	for i := range byte(4) {
		tb.AddCallLocked(id(i), Name{Namespace: "shop", Environment: "prod", Dependency: string('a' + rune(i))}, now)
	}
	tb.Unlock()
	calls, _ := tb.Dropped()
	assert.Equal(t, uint64(2), calls)
	assert.Equal(t, int64(2), tb.Calls())
	tb.Lock()
	_, first := tb.MatchLocked(id(0), "prod", "payment", now)
	_, second := tb.MatchLocked(id(1), "prod", "cart", now)
	tb.Unlock()
	assert.True(t, first)
	assert.False(t, second, "max names")
	_, names := tb.Dropped()
	assert.Equal(t, uint64(1), names)
	// Names no pair confirmed since before are forgotten.
	tb.Sweep(now, now+1)
	assert.Zero(t, tb.Names())
}
