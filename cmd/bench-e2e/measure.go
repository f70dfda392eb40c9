// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"time"

	"github.com/deploylens/deploylens/internal/loadtest"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

// collectorConfig is the same with and without the processor: %[3]s is
// "[deployment]" or "[]".
const collectorConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
  pprof:
    endpoint: 127.0.0.1:%[5]d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[2]d
processors:
  deployment: {}
exporters:
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000000
service:
  extensions: [health_check, pprof]
%[4]s  pipelines:
    traces:
      receivers: [otlp]
      processors: %[3]s
      exporters: [debug]
    metrics:
      receivers: [otlp]
      processors: %[3]s
      exporters: [debug]
    logs:
      receivers: [otlp]
      processors: %[3]s
      exporters: [debug]
`

// run is a started collector and a sender to it.
type target struct {
	collector *loadtest.Collector
	sender    *otlpsend.Sender
	dir       string
	pprof     int // the pprof extension's port
}

func startTarget(ctx context.Context, c *benchConfig, with bool) (*target, error) {
	ports, err := loadtest.FreePorts(4)
	if err != nil {
		return nil, err
	}
	processors := "[]"
	if with {
		processors = "[deployment]"
	}
	t := &target{}
	if t.dir, err = os.MkdirTemp("", "bench-e2e"); err != nil {
		return nil, err
	}
	t.pprof = ports[3]
	config := fmt.Sprintf(collectorConfig, ports[0], ports[1], processors, loadtest.TelemetryYAML(ports[2]), ports[3])
	if t.collector, err = loadtest.StartCollector(ctx, c.binary, t.dir, config, ports[0], ports[2]); err != nil {
		t.stop()
		return nil, err
	}
	// No retries: a refused request is a failure of the step, not hidden.
	t.sender, err = otlpsend.New(ctx, otlpsend.Config{Endpoint: fmt.Sprintf("127.0.0.1:%d", ports[1]), RetryFor: time.Millisecond})
	if err != nil {
		t.stop()
		return nil, err
	}
	if err := t.sender.Send(ctx, loadtest.DeploymentsStarted(time.Now())); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

func (t *target) stop() {
	if t.sender != nil {
		_ = t.sender.Shutdown(context.Background())
	}
	if t.collector != nil {
		_ = t.collector.Stop(30 * time.Second)
	}
	_ = os.RemoveAll(t.dir)
}

// counters are the collector's span counters at one moment.
type counters struct {
	accepted, refused, failed, sent float64
	cpu                             float64
}

func (t *target) read(ctx context.Context) (counters, error) {
	var k counters
	cpu, err := loadtest.CPUSeconds(t.collector.Pid())
	if err != nil {
		return k, err
	}
	scrape, err := loadtest.Scrape(ctx, t.collector.TelemetryURL)
	if err != nil {
		return k, err
	}
	k.cpu = cpu
	k.accepted = loadtest.Counter(scrape, "otelcol_receiver_accepted_spans", nil)
	k.refused = loadtest.Counter(scrape, "otelcol_receiver_refused_spans", nil)
	k.failed = loadtest.Counter(scrape, "otelcol_receiver_failed_spans", nil)
	k.sent = loadtest.Counter(scrape, "otelcol_exporter_sent_spans", nil)
	return k, nil
}

// cpuMeasurement is the collector's CPU over a fixed-rate load.
type cpuMeasurement struct {
	cpu           float64
	spans, points int64
}

func (m cpuMeasurement) perMillion() float64 { return cpuPerMillion(m.cpu, m.spans) }

func cpuPerMillion(cpu float64, spans int64) float64 { return loadtest.PerMillion(cpu, spans) }

func measureCPU(ctx context.Context, c *benchConfig, with bool) (cpuMeasurement, error) {
	t, err := startTarget(ctx, c, with)
	if err != nil {
		return cpuMeasurement{}, err
	}
	defer t.stop()
	if c.pin {
		restore, err := pinApart(t.collector.Pid())
		if err != nil {
			return cpuMeasurement{}, err
		}
		defer restore()
	}
	generate(ctx, t.sender, c.rate, c.warmup, c.workers)
	before, err := t.read(ctx)
	if err != nil {
		return cpuMeasurement{}, err
	}
	profiled := make(chan error, 1)
	file := &c.baseProfile
	if with {
		file = &c.cpuProfile
	}
	if *file != "" {
		name := *file
		*file = "" // the first round only
		go func() { profiled <- t.profile(ctx, c.cpuFor, name) }()
	} else {
		profiled <- nil
	}
	o := generate(ctx, t.sender, c.rate, c.cpuFor, c.workers)
	if err := <-profiled; err != nil {
		return cpuMeasurement{}, err
	}
	after, err := t.read(ctx)
	if err != nil {
		return cpuMeasurement{}, err
	}
	if o.errors > 0 || !o.kept() {
		return cpuMeasurement{}, fmt.Errorf("%s: the CPU measurement at %.0f spans/s was not sustained (%d errors, %d of %d slots missed); lower -rate",
			label(with), c.rate, o.errors, o.missed, o.slots)
	}
	// CPU is divided by the spans the collector accepted in the window.
	return cpuMeasurement{cpu: after.cpu - before.cpu, spans: int64(after.accepted - before.accepted), points: o.points}, nil
}

// step is one ramp step's outcome.
type step struct {
	offered                         float64
	o                               offered
	accepted, refused, failed, sent float64
}

// sustained: the pace kept (see offered.kept), no error, nothing refused or failed, the
// receiver accepted what was sent and the exporter passed all of it on.
func (s *step) sustained() bool {
	return s.o.kept() && s.o.errors == 0 && s.refused == 0 && s.failed == 0 &&
		s.accepted == float64(s.o.spans) && s.sent == s.accepted
}

// ramp offers ever higher rates to a fresh collector and returns the
// highest sustained one (0 if none).
func ramp(ctx context.Context, c *benchConfig, with bool) (float64, error) {
	t, err := startTarget(ctx, c, with)
	if err != nil {
		return 0, err
	}
	defer t.stop()
	generate(ctx, t.sender, c.rampFrom, c.warmup, c.workers)
	best := 0.0
	for rate := c.rampFrom; rate <= c.rampMax; rate *= c.rampFactor {
		before, err := t.read(ctx)
		if err != nil {
			return 0, err
		}
		s := step{offered: rate, o: generate(ctx, t.sender, rate, c.stepFor, c.workers)}
		time.Sleep(time.Second) // the exporter's side drains
		after, err := t.read(ctx)
		if err != nil {
			return 0, err
		}
		s.accepted, s.refused = after.accepted-before.accepted, after.refused-before.refused
		s.failed, s.sent = after.failed-before.failed, after.sent-before.sent
		ok := s.sustained()
		fmt.Printf("ramp %s: offered %.0f spans/s: sent %d in %s (%.0f/s), %d missed, %d errors; accepted %.0f refused %.0f failed %.0f exported %.0f: %s\n",
			label(with), rate, s.o.spans, s.o.elapsed.Round(time.Millisecond), float64(s.o.spans)/s.o.elapsed.Seconds(),
			s.o.missed, s.o.errors, s.accepted, s.refused, s.failed, s.sent, map[bool]string{true: "sustained", false: "not sustained"}[ok])
		if !ok {
			break
		}
		best = rate
	}
	return best, nil
}

// profile writes the collector's CPU profile over d to file.
func (t *target) profile(ctx context.Context, d time.Duration, file string) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", t.pprof, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: %s", resp.Status)
	}
	out, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// pinApart pins the collector to the last CPU and this process, the load
// generator, to the others, for one CPU measurement, so that they do not
// trade cores. Pinned, the collector spends less (no idle spinning across
// two cores), so the ratio reads higher for the same absolute cost of the
// processor. restore gives this process every CPU back (the ramp runs
// unpinned).
func pinApart(collector int) (restore func(), err error) {
	n := runtime.NumCPU()
	others := make([]int, 0, n)
	for i := range n - 1 {
		others = append(others, i)
	}
	if err := loadtest.Pin(collector, n-1); err != nil {
		return nil, err
	}
	if err := loadtest.Pin(os.Getpid(), others...); err != nil {
		return nil, err
	}
	return func() { _ = loadtest.Pin(os.Getpid(), append(others, n-1)...) }, nil
}
