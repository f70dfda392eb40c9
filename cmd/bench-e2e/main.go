// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Command bench-e2e measures what the deployment processor costs in the
// built distribution: the same config with and without the processor in
// the traces, metrics and logs pipelines, under the same OTLP load (traces
// and metrics, sent by the collector's own OTLP exporter from this process).
// It reads the CPU time (utime+stime of /proc/PID/stat) of the collector's
// process only, so the load generator's CPU is not counted, and the
// collector's own counters (accepted, refused, sent) from its telemetry.
//
// For each config: CPU seconds per million spans at a fixed rate, then the
// offered rate is ramped step by step; a step is sustained when every slot
// was sent (no backlog), nothing was refused or failed, the collector
// accepted what was sent and the exporter sent on every accepted span.
// It prints last, as `make bench-e2e`'s contract:
//
//	ratio e2e cpu/without: X
//	max_spans_per_s with/without: A/B
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/deploylens/deploylens/internal/loadtest"
)

type benchConfig struct {
	binary     string
	rate       float64
	cpuFor     time.Duration
	warmup     time.Duration
	rounds     int
	rampFrom   float64
	rampFactor float64
	stepFor    time.Duration
	rampMax    float64
	workers    int
	maxRatio   float64
	// cpuProfile, when set, receives a CPU profile of the collector with the
	// processor over the first round's measurement (its pprof extension).
	cpuProfile string
	// baseProfile is the same for the collector without the processor, so
	// that `go tool pprof -diff_base` shows what the processor adds.
	baseProfile string
	// pin puts the collector and the load generator on CPUs of their own
	// during the CPU measurements.
	pin bool
}

func main() {
	var c benchConfig
	flag.StringVar(&c.binary, "binary", "_build/otelcol-deploylens", "the built distribution")
	flag.Float64Var(&c.rate, "rate", 10000, "spans per second of the CPU measurement")
	flag.DurationVar(&c.cpuFor, "cpu-for", time.Minute, "length of one CPU measurement")
	flag.DurationVar(&c.warmup, "warmup", 10*time.Second, "load before measuring, after each start")
	flag.IntVar(&c.rounds, "rounds", 2, "CPU measurements of each config, alternated (without, with, without, ...)")
	flag.Float64Var(&c.rampFrom, "ramp-from", 10000, "first offered rate of the ramp, spans/s")
	flag.Float64Var(&c.rampFactor, "ramp-factor", 1.25, "each ramp step offers this much more")
	flag.DurationVar(&c.stepFor, "step-for", 10*time.Second, "length of one ramp step")
	flag.Float64Var(&c.rampMax, "ramp-max", 500000, "the ramp stops here")
	flag.IntVar(&c.workers, "workers", 8, "concurrent OTLP requests")
	flag.Float64Var(&c.maxRatio, "max-ratio", 1.10, "the CPU ratio bar")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the collector with the processor (first round) to this file")
	flag.StringVar(&c.baseProfile, "cpuprofile-without", "", "write a CPU profile of the collector without the processor (first round) to this file")
	flag.BoolVar(&c.pin, "pin", false, "during the CPU measurements, pin the collector to the last CPU and the load generator to the others (needs 2 CPUs)")
	flag.Parse()
	os.Exit(exitCode(&c))
}

// exitCode runs and says how it ended: 0, 1 when a bar is not met, 2 when the measurement failed.
func exitCode(c *benchConfig) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, c)
	return loadtest.ExitCode("bench-e2e", err)
}

func run(ctx context.Context, c *benchConfig) error {
	var cpu [2]float64 // without, with
	var spans [2]int64
	for round := range c.rounds {
		for variant, with := range []bool{false, true} {
			m, err := measureCPU(ctx, c, with)
			if err != nil {
				return err
			}
			fmt.Printf("round %d %s: %.2f cpu_s for %d spans (%d metric points) at %.0f spans/s offered over %s: %.2f cpu_s per million spans\n",
				round+1, label(with), m.cpu, m.spans, m.points, c.rate, c.cpuFor, m.perMillion())
			cpu[variant] += m.cpu
			spans[variant] += m.spans
		}
	}
	var maxRate [2]float64
	for variant, with := range []bool{false, true} {
		r, err := ramp(ctx, c, with)
		if err != nil {
			return err
		}
		maxRate[variant] = r
	}
	without, with := cpuPerMillion(cpu[0], spans[0]), cpuPerMillion(cpu[1], spans[1])
	ratio := with / without
	fmt.Printf("cpu_s_per_million_spans without: %.2f\n", without)
	fmt.Printf("cpu_s_per_million_spans with: %.2f\n", with)
	fmt.Printf("ratio e2e cpu/without: %.3f\n", ratio)
	fmt.Printf("max_spans_per_s with/without: %.0f/%.0f\n", maxRate[1], maxRate[0])
	if !(ratio <= c.maxRatio) {
		return fmt.Errorf("%w: ratio %.3f > %g", loadtest.ErrBar, ratio, c.maxRatio)
	}
	return nil
}

func label(with bool) string {
	if with {
		return "with"
	}
	return "without"
}
