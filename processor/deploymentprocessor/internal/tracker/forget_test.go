// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/deploylens/deploylens/internal/deployevent"
)

type forgottenCall struct {
	key     Key
	reason  EvictReason
	tracked int // the tracker's size, read from inside the hook
}

// TestForgottenOnEveryPath: idle TTL, LRU eviction and refusal each tell the
// Forgotten hook the key, once, after the lock is released (the hook may
// call the tracker).
func TestForgottenOnEveryPath(t *testing.T) {
	var calls []forgottenCall
	var tr *Tracker
	tr, clk, _ := newTestTracker(func(c *Config) {
		c.MaxServices, c.IdleTTL, c.Inference = 2, time.Hour, false
		c.Hooks.Forgotten = func(k Key, r EvictReason) { calls = append(calls, forgottenCall{k, r, tr.Len()}) }
	})

	tr.Observe(svc("a"), "v1", t0)
	tr.Observe(svc("b"), "v1", t0.Add(time.Second))
	tr.Observe(svc("c"), "v1", t0.Add(2*time.Second)) // a is the least recently seen
	assert.Equal(t, []forgottenCall{{svc("a"), EvictLRU, 2}}, calls, "c took its place before the hook ran")

	calls = nil
	clk.now = t0.Add(2 * time.Hour)
	tr.Sweep(clk.now)
	assert.ElementsMatch(t, []Key{svc("b"), svc("c")}, []Key{calls[0].key, calls[1].key})
	for _, c := range calls {
		assert.Equal(t, EvictIdle, c.reason)
	}
	assert.Zero(t, tr.Len())

	calls = nil
	for i, name := range []string{"d", "e"} {
		ev := event("deploy-"+name, deployevent.StateStarted, 2*time.Hour+time.Duration(i)*time.Second, "v2")
		ev.Service = name
		_, _ = tr.Apply(ev)
	}
	tr.Observe(svc("f"), "v1", clk.now.Add(time.Minute)) // d and e deploy: f is refused
	assert.Equal(t, []forgottenCall{{svc("f"), EvictRefused, 2}}, calls)
}

// TestForgottenNotCalledInSteadyState: the hook costs nothing when nothing
// is forgotten.
func TestForgottenNotCalledInSteadyState(t *testing.T) {
	calls := 0
	tr, _, _ := newTestTracker(func(c *Config) { c.Hooks.Forgotten = func(Key, EvictReason) { calls++ } })
	for i := range 100 {
		tr.Observe(svc("a"), "v1", t0.Add(time.Duration(i)*time.Second))
	}
	tr.Sweep(t0.Add(time.Minute))
	assert.Zero(t, calls)
	assert.Zero(t, testing.AllocsPerRun(100, func() { tr.Observe(svc("a"), "v1", t0.Add(time.Minute)) }))
}

// BenchmarkNewKeyAtLimit: a new service in a full tracker evicts the least
// recently seen one (heap, O(log n)) and tells the Forgotten hook.
func BenchmarkNewKeyAtLimit(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			forgotten := 0
			tr := New(Config{MaxServices: size, Hooks: Hooks{Forgotten: func(Key, EvictReason) { forgotten++ }}})
			keys := make([]Key, size+b.N)
			for i := range keys {
				keys[i] = svc("svc-" + strconv.Itoa(i))
			}
			for i := range size {
				tr.Observe(keys[i], "v1", t0.Add(time.Duration(i)))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				tr.Observe(keys[size+i], "v1", t0.Add(time.Duration(size+i)))
			}
			b.StopTimer()
			if forgotten != b.N {
				b.Fatalf("forgotten %d, want %d", forgotten, b.N)
			}
		})
	}
}
