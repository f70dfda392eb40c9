// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Command detect-e2e judges the scenario library in real time through the
// built distribution: a subset of the library (dozens of deployments, clean
// ones and every shape among them, many services at once in one collector)
// is replayed over OTLP with lifecycle events to the deployment receiver,
// while a real Alertmanager receives the alerts and a real Prometheus
// scrapes the health scores; the rollout gate is asked for each verdict.
// It prints one line per deployment, then detect-bench's figures and
// min_clean_score last. `make detect-e2e` runs it; it takes minutes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/deploylens/deploylens/internal/e2e/realtime"
	"github.com/deploylens/deploylens/internal/scenario"
)

func main() {
	binary := flag.String("binary", "_build/otelcol-deploylens", "the built distribution")
	seed := flag.Int64("seed", 1, "seed of the scenario library")
	perCell := flag.Int("per-cell", 4, "deployments per library cell (plus one low-traffic one per clean cell)")
	filter := flag.String("filter", "", "replay only the picked scenarios whose name matches this regular expression")
	wave := flag.Int("wave", 26, "deployments at once")
	observe := flag.Duration("observe", 4*time.Minute, "how long each deployment is watched from its start")
	lead := flag.Duration("lead", 90*time.Second, "time to fast-forward a wave's warm-ups before its first deployment starts")
	debugLog := flag.String("debug-log", "", "a file the collector logs to at debug level (the evidence of every alarming evaluation)")
	flag.Parse()
	if err := run(*binary, *seed, *perCell, *filter, *wave, *observe, *lead, *debugLog); err != nil {
		fmt.Fprintln(os.Stderr, "detect-e2e:", err)
		os.Exit(1)
	}
}

func run(binary string, seed int64, perCell int, filter string, wave int, observe, lead time.Duration, debugLog string) error {
	picked := realtime.Subset(scenario.Library(seed), perCell)
	if filter != "" {
		re, err := regexp.Compile(filter)
		if err != nil {
			return err
		}
		picked = slices.DeleteFunc(picked, func(sc scenario.Scenario) bool { return !re.MatchString(sc.Name) })
	}
	dir, err := os.MkdirTemp("", "detect-e2e")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res, err := realtime.Run(ctx, realtime.Config{
		Stack:     realtime.StackConfig{Collector: binary, Dir: dir, DebugLog: debugLog},
		Scenarios: picked,
		Observe:   observe,
		Wave:      wave,
		Lead:      lead,
		Progress:  os.Stderr,
	})
	if res == nil {
		return err
	}
	res.Report(os.Stdout)
	right, of := res.Verdicts()
	steady, late := 0, 0
	for i := range res.Outcomes {
		o := &res.Outcomes[i]
		if o.SteadyAlarm {
			steady++
		}
		if o.Late > 0 {
			late++
		}
	}
	s := &res.Summary
	fmt.Printf("scenarios: %d deployments, %d regressions at >= %d req/s, %d clean (%d low traffic); %d faulty deployments alerted\n",
		len(res.Outcomes), s.Regressions, scenario.LowTrafficRPS, s.Clean, s.LowClean, s.Faulty)
	fmt.Printf("verdicts_as_expected: %d/%d\n", right, of)
	fmt.Printf("steady_alarms: %d; late_warmups: %d; elapsed_s: %.0f\n", steady, late, res.Elapsed.Seconds())
	fmt.Print(res.Lines())
	return err
}
