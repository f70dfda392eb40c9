// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package alerts

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// TestEvictsOldestResolved: at MaxAlerts a new alert takes the place of the
// alert resolved longest ago; firing alerts are never evicted.
func TestEvictsOldestResolved(t *testing.T) {
	e := New(Config{MaxAlerts: 3})
	fire := func(name string, at time.Duration) []Signal {
		return e.Evaluate(ctx, []Condition{{Name: name, Severity: "warning", Active: true}}, t0.Add(at))
	}
	fire("a", 0)
	fire("b", time.Second)
	fire("c", 2*time.Second)
	e.Evaluate(ctx, []Condition{{Name: "b"}}, t0.Add(time.Minute))   // b resolved first
	e.Evaluate(ctx, []Condition{{Name: "a"}}, t0.Add(2*time.Minute)) // then a
	require.Len(t, fire("d", 3*time.Minute), 1)
	assert.Equal(t, 3, e.Len())
	assert.Len(t, fire("b", 4*time.Minute), 1, "b was evicted: it fires as new")
	assert.Len(t, fire("e", 5*time.Minute), 0, "a was evicted for b; now every alert fires")
	assert.Equal(t, int64(1), e.Dropped())
	names := map[string]bool{}
	for _, s := range e.Firing(ctx.Key) {
		names[s.Name] = true
	}
	assert.Equal(t, map[string]bool{"b": true, "c": true, "d": true}, names)
}

// TestResolveServiceWithReason: a forgotten service's alerts are resolved
// with the reason in the record and the sentence, and the service's alerts
// leave the memory an hour later.
func TestResolveServiceWithReason(t *testing.T) {
	e := New(Config{})
	other := ctx
	other.Service = "cart"
	e.Evaluate(ctx, []Condition{regression(true)}, t0)
	e.Evaluate(other, []Condition{regression(true)}, t0)
	out := e.ResolveService(ctx.Key, t0.Add(10*time.Minute), ReasonStoppedReporting)
	require.Len(t, out, 1)
	assert.Equal(t, deployevent.AlertResolved, out[0].State)
	assert.Equal(t, ReasonStoppedReporting, out[0].Reason)
	assert.Contains(t, out[0].Body, "(service stopped reporting)")
	assert.Empty(t, e.Firing(ctx.Key))
	assert.Len(t, e.Firing(other.Key), 1, "another service's alert is untouched")
	assert.Equal(t, 2, e.Services())

	a := appendOne(&out[0]).Attributes()
	reason, ok := a.Get(deployevent.AttrAlertReason)
	require.True(t, ok)
	assert.Equal(t, ReasonStoppedReporting, reason.Str())

	e.Sweep(t0.Add(2*time.Hour), time.Hour)
	assert.Equal(t, 1, e.Len(), "the resolved alert is forgotten, the firing one kept")
	assert.Equal(t, 1, e.Services())
}

// BenchmarkNewAlertAtLimit: a new alert in a full memory (resolved alerts to
// evict) costs the same at 1k and 100k alerts (O(1) eviction).
func BenchmarkNewAlertAtLimit(b *testing.B) {
	for _, size := range []int{1_000, 100_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			e := New(Config{MaxAlerts: size})
			conds := make([][]Condition, size+b.N)
			for i := range conds {
				conds[i] = []Condition{{Name: "a-" + strconv.Itoa(i), Severity: "warning", Active: true}}
			}
			for i := range size {
				e.Evaluate(ctx, conds[i], t0)
				conds[i][0].Active = false
				e.Evaluate(ctx, conds[i], t0.Add(time.Duration(i)))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				e.Evaluate(ctx, conds[size+i], t0.Add(time.Hour))
				conds[size+i][0].Active = false
				e.Evaluate(ctx, conds[size+i], t0.Add(time.Hour+time.Duration(i)))
			}
		})
	}
}

// appendOne writes s as a log record and returns it.
func appendOne(s *Signal) plog.LogRecord {
	logs := plog.NewLogs()
	s.AppendTo(logs)
	return logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
}
