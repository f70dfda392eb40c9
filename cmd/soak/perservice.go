// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/loadtest"
	"github.com/deploylens/deploylens/internal/scenario"
)

// perService measures memory per tracked service: RSS and Go heap of the
// idle collector, then with n services (max_services n) each reporting and
// deploying once, all tracked. The difference over n is the cost of one.
func perService(ctx context.Context, c *soakConfig) error {
	n := c.perServiceSize
	c.maxServices, c.maxAlerts = n, 10*n
	c.maxStreams = max(c.maxStreams, 4*n)
	c.idleTTL = time.Hour // nothing is forgotten while measuring
	h, err := startHarness(ctx, c)
	if err != nil {
		return err
	}
	defer func() { _ = h.close() }()
	time.Sleep(10 * time.Second) // the collector settles
	rssBase, heapBase, err := h.memory(ctx)
	if err != nil {
		return err
	}
	// Services live for the whole measurement; each deploys within the first rounds.
	pop := newPopulation(c.seed, n, 100*time.Hour)
	begin := time.Now()
	var tracked float64
	for round := 0; ; round++ {
		now := time.Now()
		st := pop.tick(now, now)
		for _, s := range pop.active {
			if !s.deploying && s.version > 1 {
				s.nextDeploy = now.Add(100 * time.Hour) // one deployment each
			} else if !s.deploying && s.nextDeploy.After(now.Add(time.Hour)) {
				s.nextDeploy = now.Add(time.Duration(rand.IntN(20)) * time.Second) //nolint:gosec // spreads the starts
			}
		}
		for _, part := range split(st, 1000) {
			if err := h.sender.Send(ctx, part); err != nil {
				return err
			}
		}
		scrape, err := loadtest.Scrape(ctx, h.collector.TelemetryURL)
		if err != nil {
			return err
		}
		tracked = loadtest.Sum(scrape, "otelcol_processor_deployment_services_tracked", nil)
		if round >= 60 && pop.deploymentsEnded >= n {
			break
		}
		if time.Since(begin) > 10*time.Minute {
			return errors.New("per-service: not every service deployed within 10 minutes")
		}
		time.Sleep(time.Until(now.Add(time.Second)))
	}
	rssFull, heapFull, err := h.memory(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("per-service: %d services, %.0f tracked, %d deployments ended; rss %.1f -> %.1f MiB, heap %.1f -> %.1f MiB\n",
		n, tracked, pop.deploymentsEnded, loadtest.MiB(rssBase), loadtest.MiB(rssFull), loadtest.MiB(heapBase), loadtest.MiB(heapFull))
	fmt.Printf("rss_kib_per_service: %.2f\n", float64(rssFull-rssBase)/1024/float64(n))
	fmt.Printf("heap_kib_per_service: %.2f\n", float64(heapFull-heapBase)/1024/float64(n))
	if tracked < float64(n) {
		fmt.Fprintf(os.Stderr, "per-service: only %.0f of %d services tracked\n", tracked, n)
	}
	return h.close()
}

// memory is the collector's RSS and its Go heap in use (from its own telemetry).
func (h *harness) memory(ctx context.Context) (rss, heap int64, err error) {
	if rss, err = loadtest.RSSBytes(h.collector.Pid()); err != nil {
		return 0, 0, err
	}
	scrape, err := loadtest.Scrape(ctx, h.collector.TelemetryURL)
	if err != nil {
		return 0, 0, err
	}
	heap = int64(loadtest.Sum(scrape, "otelcol_process_runtime_heap_alloc_bytes", nil))
	return rss, heap, nil
}

// split cuts a step into steps of at most n resources per signal, so no
// request passes the receiver's 4 MiB limit; events stay first.
func split(st scenario.Step, n int) []scenario.Step {
	var out []scenario.Step
	part := func(i int) *scenario.Step {
		for len(out) <= i {
			out = append(out, scenario.Step{Time: st.Time, Logs: plog.NewLogs(), Traces: ptrace.NewTraces(), Metrics: pmetric.NewMetrics()})
		}
		return &out[i]
	}
	for i, rl := range st.Logs.ResourceLogs().All() {
		rl.MoveTo(part(i / n).Logs.ResourceLogs().AppendEmpty())
	}
	for i, rs := range st.Traces.ResourceSpans().All() {
		rs.MoveTo(part(i / n).Traces.ResourceSpans().AppendEmpty())
	}
	for i, rm := range st.Metrics.ResourceMetrics().All() {
		rm.MoveTo(part(i / n).Metrics.ResourceMetrics().AppendEmpty())
	}
	return out
}
