// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploylens/deploylens/internal/loadtest"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

// offered is what one load step sent.
type offered struct {
	spans, points int64
	errors        int64
	slots, missed int64 // send slots, and those dropped because every worker was busy: backlog
	elapsed       time.Duration
}

// kept says the generator kept its pace: at most 1 % of the slots missed
// (a scheduling hiccup on a shared machine is not a backlog).
func (o *offered) kept() bool { return o.missed*100 <= o.slots }

// generate sends at rate spans/s for d with workers concurrent requests
// (each waits for the collector's answer); slots no worker can take are missed.
func generate(ctx context.Context, sender *otlpsend.Sender, rate float64, d time.Duration, workers int) offered {
	interval := time.Duration(float64(time.Second) * loadtest.SpansPerBatch / rate)
	slots := make(chan int, workers)
	var out offered
	var wg sync.WaitGroup
	var spans, points, errs atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range slots {
				st := loadtest.Batch(i, time.Now())
				p := int64(st.Metrics.DataPointCount())
				if err := sender.Send(ctx, st); err != nil {
					errs.Add(1)
					continue
				}
				spans.Add(loadtest.SpansPerBatch)
				points.Add(p)
			}
		}()
	}
	begin := time.Now()
	n := 0
	for due := begin; time.Since(begin) < d && ctx.Err() == nil; due = due.Add(interval) {
		if wait := time.Until(due); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case slots <- n:
		default:
			out.missed++
		}
		n++
	}
	close(slots)
	wg.Wait()
	out.elapsed = time.Since(begin)
	out.slots = int64(n)
	out.spans, out.points, out.errors = spans.Load(), points.Load(), errs.Load()
	return out
}
