// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Command soak runs the built distribution for a long time under churn: a
// few thousand services report over OTLP (traces and metrics), each for a
// while, then vanish for good while new ones appear, and deployments start
// and end all the time (lifecycle events; some fail, some are rolled back).
// The soak config has a small max_services and a short idle_ttl, so the
// state limits and TTL sweeps work all the time; the alert memories keep
// resolved and unsignalled alerts for a minute or two (processor
// signals::alerts::resolved_ttl 1m, exporter state::alert_ttl 2m, against 1h
// and 30m by default), so they reach their steady size within the warm-up
// and growth after it is a leak, not a store still filling. Alerts go to an
// Alertmanager API receiver in this process.
//
// It prints last, as `make soak`'s contract:
//
//	rss_mib_start: A         (RSS of the collector: median over the minute after the warm-up)
//	rss_mib_end: B           (median over the run's last minute)
//	rss_growth_pct: C
//	gauge <series>: final V peak P limit L ok|OVER   (every state gauge; "limit unknown" if not in the table)
//	firing_alerts_of_forgotten_services: N
//
// and exits 1 when growth > 5 %, a gauge passed its limit or N > 0.
//
// With -per-service N it instead measures the memory per tracked service:
// N services (max_services N) report and deploy once, and it prints
// rss_kib_per_service and heap_kib_per_service.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/deploylens/deploylens/internal/loadtest"
)

// soakConfig is the run's shape and the collector's limits.
type soakConfig struct {
	binary         string
	duration       time.Duration
	warmup         time.Duration
	services       int
	lifetime       time.Duration
	maxServices    int
	maxStreams     int
	maxAlerts      int
	idleTTL        time.Duration
	grace          time.Duration
	maxGrowthPct   float64
	seed           uint64
	perServiceSize int
	// pprof, when set, is the address of the collector's pprof extension
	// (go tool pprof http://ADDR/debug/pprof/heap while it runs).
	pprof string
}

func main() {
	var c soakConfig
	flag.StringVar(&c.binary, "binary", "_build/otelcol-deploylens", "the built distribution")
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "length of the run, warm-up included")
	flag.DurationVar(&c.warmup, "warmup", 0, "warm-up before RSS is first read (default: a fifth of -duration)")
	flag.IntVar(&c.services, "services", 500, "services reporting at any time")
	flag.DurationVar(&c.lifetime, "lifetime", 90*time.Second, "how long a service reports, on average, before it vanishes")
	flag.IntVar(&c.maxServices, "max-services", 600, "max_services of the processor and of the exporter's state")
	flag.IntVar(&c.maxStreams, "max-streams", 5000, "the processor's health::max_streams")
	flag.DurationVar(&c.idleTTL, "idle-ttl", 30*time.Second, "the processor's idle_ttl (and the exporter's state::service_ttl)")
	flag.DurationVar(&c.grace, "grace", 30*time.Second, "time for a forgotten service's resolve to reach Alertmanager (sweep, signal interval, delivery)")
	flag.Float64Var(&c.maxGrowthPct, "max-growth-pct", 5, "the RSS growth bar")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the traffic")
	flag.IntVar(&c.perServiceSize, "per-service", 0, "measure memory per tracked service at this many services instead of soaking")
	flag.StringVar(&c.pprof, "pprof", "", "serve the collector's Go profiles (the pprof extension) on this address, e.g. 127.0.0.1:1777")
	flag.Parse()
	if c.warmup <= 0 {
		c.warmup = c.duration / 5
	}
	c.maxAlerts = 10 * c.maxServices

	os.Exit(exitCode(c))
}

// exitCode runs and says how it ended: 0, 1 when a bar is not met, 2 when the measurement failed.
func exitCode(c soakConfig) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if c.perServiceSize > 0 {
		err = perService(ctx, &c)
	} else {
		err = soak(ctx, &c)
	}
	return loadtest.ExitCode("soak", err)
}
