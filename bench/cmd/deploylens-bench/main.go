// Command deploylens-bench runs the comparative benchmarks that `make bench`
// reports: each contender through testing.Benchmark on the same batches,
// ns and allocations per datum, and the ratio lines the issues name.
package main

import (
	"fmt"
	"os"
	"testing"

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
	return nil
}
