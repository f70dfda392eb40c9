// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package kpi

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestEvictsLeastRecentlyUpdated: at MaxServices a new service drops the one
// updated longest ago (not the one added first), and counts it.
func TestEvictsLeastRecentlyUpdated(t *testing.T) {
	b := New(Config{MaxServices: 2})
	b.Started(Key{Service: "a"}, Deployment{ID: "a1"}, at(1, 10, 0))
	b.Started(Key{Service: "b"}, Deployment{ID: "b1"}, at(1, 10, 1))
	b.Judged(Key{Service: "a"}, "a1", at(1, 10, 2)) // a is now the most recent
	b.Started(Key{Service: "c"}, Deployment{ID: "c1"}, at(1, 10, 3))
	_, ok := b.Values(Key{Service: "b"}, at(1, 11, 0))
	assert.False(t, ok, "b was updated longest ago")
	_, ok = b.Values(Key{Service: "a"}, at(1, 11, 0))
	assert.True(t, ok)
	assert.Equal(t, 2, b.Len())
	assert.Equal(t, int64(1), b.Evicted())

	assert.True(t, b.Forget(Key{Service: "a"}))
	assert.False(t, b.Forget(Key{Service: "a"}))
	b.Started(Key{Service: "d"}, Deployment{ID: "d1"}, at(1, 10, 4))
	assert.Equal(t, int64(1), b.Evicted(), "a forgotten service left room: nothing evicted")
}

// BenchmarkInsertAtLimit: a new service in a full book costs the same at 1k
// and 100k services (O(1) eviction).
func BenchmarkInsertAtLimit(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			book := New(Config{MaxServices: size})
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			keys := make([]Key, size+b.N)
			for i := range keys {
				keys[i] = Key{Service: "svc-" + strconv.Itoa(i)}
			}
			for i := range size {
				book.Started(keys[i], Deployment{ID: "d"}, start.Add(time.Duration(i)))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				book.Started(keys[size+i], Deployment{ID: "d"}, start.Add(time.Duration(size+i)))
			}
		})
	}
}
