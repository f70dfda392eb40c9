// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Command bench-receiver measures the deployment receiver of the built
// distribution on loopback: requests per second, p50 and p99 latency and
// the collector's RSS, at 1, 16 and 64 concurrent clients, each POSTing a
// real GitHub deployment_status delivery (testdata), signed with
// X-Hub-Signature-256 as the receiver requires. The clients are Go
// (net/http, keep-alive), in this process; the RSS is the collector's.
// It prints one line per concurrency, as `make bench-receiver`'s contract:
//
//	clients C: requests_per_s R p50_ms A p99_ms B rss_mib M errors E
package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/deploylens/deploylens/internal/loadtest"
)

//go:embed testdata/github-deployment_status-success.json
var payload []byte

// secret signs the deliveries; the collector is configured with it.
const secret = "bench-receiver-secret"

const collectorConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
receivers:
  deployment:
    endpoint: 127.0.0.1:%[2]d
    github:
      secret: %[3]s
exporters:
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000000
service:
  extensions: [health_check]
%[4]s  pipelines:
    logs:
      receivers: [deployment]
      exporters: [debug]
`

func main() {
	binary := flag.String("binary", "_build/otelcol-deploylens", "the built distribution")
	duration := flag.Duration("duration", 10*time.Second, "measurement per concurrency")
	warmup := flag.Duration("warmup", 2*time.Second, "load before each measurement")
	levels := flag.String("clients", "1,16,64", "concurrent clients, comma-separated")
	flag.Parse()
	clients, err := parseLevels(*levels)
	if err == nil {
		err = run(*binary, clients, *duration, *warmup)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-receiver:", err)
		os.Exit(2)
	}
}

func parseLevels(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-clients: %q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// sign is the X-Hub-Signature-256 of body under key.
func sign(key string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func run(binary string, clients []int, duration, warmup time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ports, err := loadtest.FreePorts(3)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "bench-receiver")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	config := fmt.Sprintf(collectorConfig, ports[0], ports[1], secret, loadtest.TelemetryYAML(ports[2]))
	collector, err := loadtest.StartCollector(ctx, binary, dir, config, ports[0], ports[2])
	if err != nil {
		return err
	}
	defer func() { _ = collector.Stop(30 * time.Second) }()
	url := fmt.Sprintf("http://127.0.0.1:%d/webhooks/github", ports[1])
	signature := sign(secret, payload)
	if err := post(ctx, http.DefaultClient, url, signature); err != nil {
		return fmt.Errorf("first delivery: %w", err)
	}
	rssIdle, err := loadtest.RSSBytes(collector.Pid())
	if err != nil {
		return err
	}
	fmt.Printf("payload: %s, %d bytes; rss idle %.1f MiB; %s per concurrency after %s warm-up\n",
		"github deployment_status", len(payload), loadtest.MiB(rssIdle), duration, warmup)
	for _, c := range clients {
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}, Timeout: 10 * time.Second}
		load(ctx, client, url, signature, c, warmup)
		r := load(ctx, client, url, signature, c, duration)
		rss, err := loadtest.RSSBytes(collector.Pid())
		if err != nil {
			return err
		}
		fmt.Printf("clients %d: requests_per_s %.0f p50_ms %.3f p99_ms %.3f rss_mib %.1f errors %d\n",
			c, float64(len(r.latencies))/r.elapsed.Seconds(),
			ms(loadtest.Percentile(r.latencies, 0.5)), ms(loadtest.Percentile(r.latencies, 0.99)), loadtest.MiB(rss), r.errors)
		if r.firstErr != nil {
			fmt.Fprintf(os.Stderr, "bench-receiver: clients %d: first error: %v\n", c, r.firstErr)
		}
		client.CloseIdleConnections()
	}
	return ctx.Err()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// result is what one load level measured: the latency of every successful request.
type result struct {
	latencies []time.Duration
	errors    int
	firstErr  error
	elapsed   time.Duration
}

// load runs c clients back to back for d.
func load(ctx context.Context, client *http.Client, url, signature string, c int, d time.Duration) result {
	var mu sync.Mutex
	var r result
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			errs := 0
			var first error
			for time.Now().Before(deadline) && ctx.Err() == nil {
				start := time.Now()
				if err := post(ctx, client, url, signature); err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, time.Since(start))
			}
			mu.Lock()
			defer mu.Unlock()
			r.latencies = append(r.latencies, lat...)
			r.errors += errs
			if r.firstErr == nil {
				r.firstErr = first
			}
		}()
	}
	wg.Wait()
	r.elapsed = time.Since(begin)
	return r
}

var errStatus = errors.New("unexpected status")

func post(ctx context.Context, client *http.Client, url, signature string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "deployment_status")
	req.Header.Set("X-GitHub-Delivery", "bench")
	req.Header.Set("X-Hub-Signature-256", signature)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w %s: %s", errStatus, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}
