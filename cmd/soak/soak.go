// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/deploylens/deploylens/internal/loadtest"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
)

// collectorConfig: the processor in every pipeline with the soak's limits,
// the exporter delivering to the in-process Alertmanager receiver, and the
// collector's own metrics on a Prometheus pull endpoint.
const collectorConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
  pprof:
    endpoint: %[9]s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[2]d
processors:
  deployment:
    max_services: %[4]d
    idle_ttl: %[5]s
    post_window: 20s
    max_duration: 1m
    health:
      max_streams: %[6]d
    signals:
      alerts:
        resolved_ttl: 1m
exporters:
  deployment:
    alertmanager:
      endpoints: [http://127.0.0.1:%[3]d]
      resend_interval: 15s
    state:
      max_services: %[4]d
      service_ttl: %[5]s
      max_alerts: %[7]d
      alert_ttl: 2m
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000000
service:
  extensions: [%[10]s]
%[8]s  pipelines:
    traces:
      receivers: [otlp]
      processors: [deployment]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      processors: [deployment]
      exporters: [deployment, debug]
    logs:
      receivers: [otlp]
      processors: [deployment]
      exporters: [deployment]
`

// harness is a started collector with its Alertmanager receiver and sender.
type harness struct {
	collector *loadtest.Collector
	sender    *otlpsend.Sender
	am        *amSink
	amServer  *http.Server
	dir       string
}

func startHarness(ctx context.Context, c *soakConfig) (*harness, error) {
	ports, err := loadtest.FreePorts(3)
	if err != nil {
		return nil, err
	}
	h := &harness{am: newAMSink()}
	listener, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	h.amServer = &http.Server{Handler: h.am, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.amServer.Serve(listener) }()
	amPort := listener.Addr().(*net.TCPAddr).Port
	if h.dir, err = os.MkdirTemp("", "soak"); err != nil {
		_ = h.close()
		return nil, err
	}
	extensions, pprof := "health_check", "127.0.0.1:0"
	if c.pprof != "" {
		extensions, pprof = "health_check, pprof", c.pprof
	}
	config := fmt.Sprintf(collectorConfig, ports[0], ports[1], amPort, c.maxServices, c.idleTTL, c.maxStreams, c.maxAlerts,
		loadtest.TelemetryYAML(ports[2]), pprof, extensions)
	if h.collector, err = loadtest.StartCollector(ctx, c.binary, h.dir, config, ports[0], ports[2]); err != nil {
		_ = h.close()
		return nil, err
	}
	h.sender, err = otlpsend.New(ctx, otlpsend.Config{Endpoint: fmt.Sprintf("127.0.0.1:%d", ports[1]), RetryFor: 10 * time.Second})
	if err != nil {
		_ = h.close()
		return nil, err
	}
	return h, nil
}

// close stops everything; it returns the collector's exit error.
func (h *harness) close() error {
	var err error
	if h.sender != nil {
		err = h.sender.Shutdown(context.Background())
	}
	if h.collector != nil {
		if cerr := h.collector.Stop(30 * time.Second); cerr != nil {
			err = errors.Join(err, fmt.Errorf("collector: %w\n%s", cerr, h.collector.Output()))
		}
	}
	_ = h.amServer.Close()
	if h.dir != "" {
		_ = os.RemoveAll(h.dir)
	}
	return err
}

func (h *harness) rssMiB() (float64, error) {
	b, err := loadtest.RSSBytes(h.collector.Pid())
	return loadtest.MiB(b), err
}

func soak(ctx context.Context, c *soakConfig) error {
	h, err := startHarness(ctx, c)
	if err != nil {
		return err
	}
	defer func() { _ = h.close() }()
	pop := newPopulation(c.seed, c.services, c.lifetime)
	watch := newGaugeWatch(limitsFor(c))

	begin := time.Now()
	warmupEnd, end := begin.Add(c.warmup), begin.Add(c.duration)
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	scrapeEvery := 10 * time.Second
	nextScrape, nextProgress := begin.Add(scrapeEvery), begin.Add(time.Minute)
	// RSS is sampled every second after the warm-up; start and end are the
	// medians of a window at either end (a single reading lands anywhere in
	// a GC cycle: ±5 % on its own).
	var rssSamples []rssSample
	window := min(time.Minute, (c.duration-c.warmup)/4)
	sendErrors := 0
	lastSent := begin
	for now := begin; now.Before(end); now = <-ticker.C {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st := pop.tick(now, lastSent)
		if err := h.sender.Send(ctx, st); err != nil {
			sendErrors++
			if sendErrors == 1 {
				fmt.Fprintln(os.Stderr, "soak: send:", err)
			}
		}
		lastSent = now
		if !now.Before(warmupEnd) {
			rss, err := h.rssMiB()
			if err != nil {
				return err
			}
			rssSamples = append(rssSamples, rssSample{at: now, mib: rss})
		}
		if !now.Before(nextScrape) {
			nextScrape = nextScrape.Add(scrapeEvery)
			scrape, err := loadtest.Scrape(ctx, h.collector.TelemetryURL)
			if err != nil {
				return fmt.Errorf("collector telemetry: %w", err)
			}
			watch.observe(scrape)
		}
		if !now.Before(nextProgress) {
			nextProgress = nextProgress.Add(time.Minute)
			rss, _ := h.rssMiB()
			fmt.Fprintf(os.Stderr, "soak: %s of %s: %d services seen, rss %.1f MiB\n",
				now.Sub(begin).Round(time.Second), c.duration, pop.distinct(), rss)
		}
	}
	now := time.Now()
	scrape, err := loadtest.Scrape(ctx, h.collector.TelemetryURL)
	if err != nil {
		return fmt.Errorf("collector telemetry: %w", err)
	}
	watch.observe(scrape)
	last, err := h.rssMiB()
	if err != nil {
		return err
	}
	rssSamples = append(rssSamples, rssSample{at: now, mib: last})
	rssStart := medianRSS(rssSamples, warmupEnd, warmupEnd.Add(window))
	rssEnd := medianRSS(rssSamples, now.Add(-window), now.Add(time.Second))
	firing, forgotten := h.am.firing(now, pop.vanished, now.Add(-c.idleTTL-c.grace))
	posts, received, distinctAlerts := h.am.counts()

	fmt.Printf("soak: %s (warm-up %s), %d services at once, %d distinct (%.1f x max_services %d), lifetime ~%s, idle_ttl %s\n",
		c.duration, c.warmup, c.services, pop.distinct(), float64(pop.distinct())/float64(c.maxServices), c.maxServices, c.lifetime, c.idleTTL)
	fmt.Printf("sent: %d spans, %d metric points, %d deployments started, %d ended, %d send errors\n",
		pop.spans, pop.points, pop.deploymentsStarted, pop.deploymentsEnded, sendErrors)
	fmt.Printf("alertmanager: %d posts, %d alerts received, %d distinct, %d firing now; %d services vanished\n",
		posts, received, distinctAlerts, firing, len(pop.vanished))
	growth := loadtest.GrowthPct(rssStart, rssEnd)
	fmt.Printf("rss_mib_start: %.1f\n", rssStart)
	fmt.Printf("rss_mib_end: %.1f\n", rssEnd)
	fmt.Printf("rss_growth_pct: %.1f\n", growth)
	within := watch.report(os.Stdout)
	fmt.Printf("firing_alerts_of_forgotten_services: %d\n", forgotten)

	if err := h.close(); err != nil {
		return err
	}
	var failed []error
	if !(growth <= c.maxGrowthPct) {
		failed = append(failed, fmt.Errorf("rss_growth_pct %.1f > %g", growth, c.maxGrowthPct))
	}
	if !within {
		failed = append(failed, errors.New("a state gauge passed its limit"))
	}
	if forgotten > 0 {
		failed = append(failed, fmt.Errorf("%d alerts of forgotten services still firing", forgotten))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %w", loadtest.ErrBar, errors.Join(failed...))
	}
	return nil
}

type rssSample struct {
	at  time.Time
	mib float64
}

// medianRSS is the median of the samples taken in [from, to); the last
// sample when none was.
func medianRSS(samples []rssSample, from, to time.Time) float64 {
	var in []float64
	for _, s := range samples {
		if !s.at.Before(from) && s.at.Before(to) {
			in = append(in, s.mib)
		}
	}
	if len(in) == 0 {
		return samples[len(samples)-1].mib
	}
	sort.Float64s(in)
	if n := len(in); n%2 == 0 {
		return (in[n/2-1] + in[n/2]) / 2
	}
	return in[len(in)/2]
}
