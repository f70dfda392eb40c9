// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Command deploylens-bench runs the comparative benchmarks that `make bench`
// reports: each contender through testing.Benchmark on the same batches,
// ns and allocations per datum, and the ratio lines the issues name.
package main

import (
	"fmt"
	"os"
	"testing"

	"github.com/deploylens/deploylens/bench/indicators"
	"github.com/deploylens/deploylens/bench/tagging"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "deploylens-bench:", err)
		os.Exit(1)
	}
}

// perDatum is one contender's result, per span.
type perDatum struct {
	ns, allocs, bytes float64
}

func measure(c tagging.Contender) perDatum {
	defer c.Close()
	r := testing.Benchmark(c.Run)
	n := float64(r.N) * tagging.SpansPerBatch
	res := perDatum{
		ns:     float64(r.T.Nanoseconds()) / n,
		allocs: float64(r.MemAllocs) / n,
		bytes:  float64(r.MemBytes) / n,
	}
	fmt.Printf("%-55s %8.2f ns/datum %8.4f allocs/datum %8.2f B/datum  (%d batches)\n", c.Name, res.ns, res.allocs, res.bytes, r.N)
	return res
}

func run() error {
	fmt.Printf("tagging: %d spans per batch (%d resources x %d scopes x %d spans)\n",
		tagging.SpansPerBatch, tagging.Resources, tagging.ScopesPerRes, tagging.SpansPerScope)
	ours, err := tagging.Deployment("span")
	if err != nil {
		return err
	}
	oursResult := measure(ours)
	oursDefault, err := tagging.Deployment("resource")
	if err != nil {
		return err
	}
	measure(oursDefault)
	attrs, err := tagging.AttributesProcessor()
	if err != nil {
		return err
	}
	attrsResult := measure(attrs)
	floorResult := measure(tagging.Floor())
	fmt.Printf("ratio tagging/attributesprocessor: %.2f\n", oursResult.ns/attrsResult.ns)
	fmt.Printf("ratio tagging/floor: %.2f\n", oursResult.ns/floorResult.ns)
	return runIndicators()
}

// runIndicators compares health indicator extraction (with its baseline
// updates) with contrib's spanmetricsconnector on the same traces.
func runIndicators() error {
	fmt.Printf("indicators: %d spans per batch, data time +2s per batch (an evaluation interval closes every 5 batches)\n", indicators.SpansPerBatch)
	ours, err := indicators.Deployment()
	if err != nil {
		return err
	}
	oursResult := measureIndicators(ours)
	spanMetrics, err := indicators.SpanMetrics()
	if err != nil {
		return err
	}
	spanMetricsResult := measureIndicators(spanMetrics)
	still, err := indicators.Deployment()
	if err != nil {
		return err
	}
	stillResult := measureIndicators(still.Still())
	withoutDeps, err := indicators.DeploymentWithoutDependencies()
	if err != nil {
		return err
	}
	withoutDepsResult := measureIndicators(withoutDeps)
	fmt.Printf("allocs per span (indicators, steady state): %.4f (%.4f with the evaluations of the intervals that close)\n",
		stillResult.allocs, oursResult.allocs)
	fmt.Printf("dependency indicators: %+.1f ns/span (half the spans are calls to %d dependencies per service)\n",
		oursResult.ns-withoutDepsResult.ns, indicators.Dependencies)
	fmt.Printf("ratio indicators/spanmetrics: %.2f\n", oursResult.ns/spanMetricsResult.ns)
	return nil
}

func measureIndicators(c indicators.Contender) perDatum {
	defer c.Close()
	r := testing.Benchmark(c.Run)
	n := float64(r.N) * indicators.SpansPerBatch
	res := perDatum{
		ns:     float64(r.T.Nanoseconds()) / n,
		allocs: float64(r.MemAllocs) / n,
		bytes:  float64(r.MemBytes) / n,
	}
	fmt.Printf("%-55s %8.2f ns/span  %8.4f allocs/span %8.2f B/span  (%d batches)\n", c.Name, res.ns, res.allocs, res.bytes, r.N)
	return res
}
