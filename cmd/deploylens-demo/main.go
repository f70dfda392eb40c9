// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Command deploylens-demo shows a deployment going bad, on one machine, in a
// few minutes: it starts the built distribution on a demo config (OTLP on
// localhost:4317, webhooks on localhost:8088, the rollout gate and status page
// on http://localhost:8089/), then replays a scenario from the scenario
// library: half an hour of steady traffic compressed into seconds (with its
// real, past timestamps, so the baselines learn from it), then a deployment
// whose new version triples the error ratio, in real time. The collector's
// alert output is printed as it happens. `make demo` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/deploylens/deploylens/internal/e2e/realtime"
	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

const demoConfig = `
extensions:
  health_check:
    endpoint: localhost:13133
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: localhost:4317
  deployment:
    endpoint: localhost:8088
processors:
  deployment: {}
exporters:
  deployment:
    gate:
      endpoint: localhost:8089
  debug/alerts:
    verbosity: normal
  debug:
    verbosity: basic
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: warn
  pipelines:
    traces:
      receivers: [otlp]
      processors: [deployment]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      processors: [deployment]
      exporters: [deployment]
    logs:
      receivers: [otlp, deployment]
      processors: [deployment]
      exporters: [deployment, debug/alerts]
`

func main() {
	binary := flag.String("binary", "_build/otelcol-deploylens", "the built distribution")
	kind := flag.String("regression", "error_ratio", "the regression to inject: error_ratio, latency, throughput, saturation, canary_errors, none")
	rps := flag.Float64("rps", 50, "requests per second of the deployed service")
	flag.Parse()
	if err := run(*binary, *kind, *rps); err != nil {
		fmt.Fprintln(os.Stderr, "deploylens-demo:", err)
		os.Exit(1)
	}
}

// pick returns a library scenario with the regression kind and traffic.
func pick(kind string, rps float64) (scenario.Scenario, error) {
	for _, sc := range scenario.Library(1) {
		l := sc.Label()
		if string(l.Kind) == kind && l.TrafficRPS == rps {
			return sc, nil
		}
	}
	return scenario.Scenario{}, fmt.Errorf("no library scenario with regression %q at %g req/s", kind, rps)
}

func run(binary, kind string, rps float64) error {
	sc, err := pick(kind, rps)
	if err != nil {
		return err
	}
	// Simulated time ends a little after now: the warm-up lies in the past and
	// the deployment starts a few seconds after the fast-forward.
	lead := 15 * time.Second
	sc.Start = time.Now().Add(lead - sc.WarmUp).Truncate(time.Second)
	label := sc.Label()

	dir, err := os.MkdirTemp("", "deploylens-demo")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	configPath := filepath.Join(dir, "config.yaml")
	if err = os.WriteFile(configPath, []byte(demoConfig), 0o600); err != nil {
		return err
	}
	// The collector is stopped with SIGTERM below, not by a context: it must flush.
	collector := exec.Command(binary, "--config", configPath) //nolint:noctx // stopped by SIGTERM, see defer
	collector.Stdout, collector.Stderr = os.Stdout, os.Stderr
	if err = collector.Start(); err != nil {
		return fmt.Errorf("start %s (run `make build` first): %w", binary, err)
	}
	defer func() {
		_ = collector.Process.Signal(syscall.SIGTERM)
		_ = collector.Wait()
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err = waitHealthy(ctx); err != nil {
		return err
	}
	sender, err := otlpsend.New(ctx, otlpsend.Config{Endpoint: "localhost:4317", DeploymentsURL: "http://localhost:8088/v1/deployments"})
	if err != nil {
		return err
	}
	defer func() { _ = sender.Shutdown(context.Background()) }()

	fmt.Printf("\ndeploylens demo: %s\n", sc.Name)
	fmt.Printf("  status page:  http://localhost:8089/\n")
	fmt.Printf("  verdict:      curl 'http://localhost:8089/v1/verdict?service=%s&environment=%s'\n", label.Service, label.Environment)
	fmt.Printf("  %s %s → %s starts at %s; its new version brings a %s regression.\n",
		label.Service, label.PreviousVersion, label.Version, label.DeploymentStart.Local().Format("15:04:05"), label.Kind)
	fmt.Printf("  replaying %s of steady traffic first (fast-forward) …\n\n", sc.WarmUp)

	steps, err := sc.Steps()
	if err != nil {
		return err
	}
	for st := range steps {
		if wait := time.Until(st.Time); st.Time.After(label.DeploymentStart.Add(-sc.Step)) && wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
		}
		if err = sender.Send(ctx, st); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
	}
	fmt.Println("\ndeploylens demo: scenario over; Ctrl-C to stop the collector")
	<-ctx.Done()
	return nil
}

func waitHealthy(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if resp, err := realtime.Get(context.Background(), "http://localhost:13133/"); err == nil && resp == 200 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("the collector did not become healthy within 60s")
}
