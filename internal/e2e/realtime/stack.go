// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package realtime

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Default paths of the servers, as the Debian packages install them.
const (
	AlertmanagerBinary = "/usr/bin/prometheus-alertmanager"
	PrometheusBinary   = "/usr/bin/prometheus"
)

// Stack is the collector, Alertmanager and Prometheus of one run, on free
// loopback ports.
type Stack struct {
	OTLPPort, WebhookPort, GatePort int
	AlertmanagerURL, PrometheusURL  string
	processes                       []*Process
}

// StackConfig names the binaries and a directory for their files.
type StackConfig struct {
	Collector, Alertmanager, Prometheus string
	Dir                                 string
	// DebugLog, when set, is a file the collector logs to at debug level
	// (the processor then logs the evidence of every alarming evaluation).
	DebugLog string
}

// collectorConfig is one collector doing it all: the processor in every
// pipeline, the exporter delivering to Alertmanager and serving the gate
// (min_observation 1m), and the processor's own metrics (selected by the
// filter processor behind a forward connector, so the applications'
// histograms stay out of Prometheus) on a prometheus exporter.
const collectorConfig = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%[1]d
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%[2]d
  deployment:
    endpoint: 127.0.0.1:%[3]d
processors:
  deployment: {}
  filter/judgement:
    error_mode: ignore
    metrics:
      metric:
        - 'not IsMatch(name, "^deployment\\.")'
connectors:
  forward/judgement: {}
exporters:
  deployment:
    alertmanager:
      endpoints: [http://127.0.0.1:%[4]d]
    gate:
      endpoint: 127.0.0.1:%[5]d
      min_observation: 1m
  prometheus:
    endpoint: 127.0.0.1:%[6]d
    resource_constant_labels:
      included: [service.name, service.namespace, deployment.environment.name]
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: %[7]s
      output_paths: [%[8]s]
    metrics:
      level: none # no self-metrics server on :8888: runs must not collide with another collector
  pipelines:
    traces:
      receivers: [otlp]
      processors: [deployment]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      processors: [deployment]
      exporters: [deployment, forward/judgement]
    metrics/prometheus:
      receivers: [forward/judgement]
      processors: [filter/judgement]
      exporters: [prometheus]
    logs:
      receivers: [otlp, deployment]
      processors: [deployment]
      exporters: [deployment]
`

// StartStack starts Alertmanager, the collector and Prometheus (scraping
// the collector's prometheus exporter every second) and waits until each is ready.
func StartStack(ctx context.Context, cfg StackConfig) (*Stack, error) {
	for _, bin := range []string{cfg.Collector, cfg.Alertmanager, cfg.Prometheus} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%s: %w", bin, errMissing)
		}
	}
	ports := make([]int, 8)
	for i := range ports {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	health, amPort, promPort, exporterPort := ports[0], ports[1], ports[2], ports[3]
	s := &Stack{OTLPPort: ports[4], WebhookPort: ports[5], GatePort: ports[6]}
	s.AlertmanagerURL = "http://127.0.0.1:" + strconv.Itoa(amPort)
	s.PrometheusURL = "http://127.0.0.1:" + strconv.Itoa(promPort)
	start := func(name, readyURL string, argv ...string) error {
		p, err := Start(name, nil, argv...)
		if err != nil {
			return err
		}
		s.processes = append(s.processes, p)
		return p.WaitReady(ctx, readyURL, time.Minute)
	}
	level, logPaths := "warn", "stderr"
	if cfg.DebugLog != "" {
		level, logPaths = "debug", strconv.Quote(cfg.DebugLog)
	}
	files := map[string]string{
		"alertmanager.yml": "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n",
		"collector.yaml":   fmt.Sprintf(collectorConfig, health, s.OTLPPort, s.WebhookPort, amPort, s.GatePort, exporterPort, level, logPaths),
		"prometheus.yml": fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: deploylens\n    static_configs:\n      - targets: ['127.0.0.1:%d']\n",
			exporterPort),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(cfg.Dir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	err := start("alertmanager", s.AlertmanagerURL+"/-/ready", cfg.Alertmanager,
		"--config.file="+filepath.Join(cfg.Dir, "alertmanager.yml"), "--storage.path="+filepath.Join(cfg.Dir, "alertmanager"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(amPort), "--cluster.listen-address=")
	if err == nil {
		err = start("collector", fmt.Sprintf("http://127.0.0.1:%d/", health), cfg.Collector, "--config", filepath.Join(cfg.Dir, "collector.yaml"))
	}
	if err == nil {
		err = start("prometheus", s.PrometheusURL+"/-/ready", cfg.Prometheus,
			"--config.file="+filepath.Join(cfg.Dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(cfg.Dir, "prometheus"),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(promPort))
	}
	if err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// Stop stops every process, the collector with time to flush; it returns
// the collector's exit error, if any.
func (s *Stack) Stop() error {
	var collectorErr error
	for i := len(s.processes) - 1; i >= 0; i-- {
		p := s.processes[i]
		if err := p.Stop(30 * time.Second); err != nil && p.Name == "collector" {
			collectorErr = fmt.Errorf("collector: %w\n%s", err, p.Output())
		}
	}
	return collectorErr
}

// CollectorOutput is what the collector printed so far.
func (s *Stack) CollectorOutput() string {
	for _, p := range s.processes {
		if p.Name == "collector" {
			return p.Output()
		}
	}
	return ""
}

// Alert is the part of an alert in Alertmanager's GET /api/v2/alerts we use.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Fingerprint string            `json:"fingerprint"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// ActiveAlerts lists the alerts Alertmanager holds as active at now (a
// resolved one, its end passed, is not).
func (s *Stack) ActiveAlerts(ctx context.Context, now time.Time) ([]Alert, error) {
	var all []Alert
	if err := getJSON(ctx, s.AlertmanagerURL+"/api/v2/alerts?active=true&silenced=false&inhibited=false", &all); err != nil {
		return nil, err
	}
	out := all[:0]
	for _, a := range all {
		if a.Status.State == "active" && (a.EndsAt.IsZero() || a.EndsAt.After(now)) {
			out = append(out, a)
		}
	}
	return out, nil
}

// QueryAt runs an instant PromQL query on the stack's Prometheus, evaluated at at.
func (s *Stack) QueryAt(ctx context.Context, query string, at time.Time) ([]Sample, error) {
	return Query(ctx, s.PrometheusURL, query, at)
}

// Query runs an instant PromQL query through the HTTP API of the Prometheus
// at base, evaluated at at, and returns each series' labels and value.
func Query(ctx context.Context, base, query string, at time.Time) ([]Sample, error) {
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	q := url.Values{"query": {query}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	if err := getJSON(ctx, base+"/api/v1/query?"+q.Encode(), &answer); err != nil {
		return nil, err
	}
	if answer.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", query, answer.Error)
	}
	out := make([]Sample, 0, len(answer.Data.Result))
	for _, r := range answer.Data.Result {
		text, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, fmt.Errorf("prometheus: %s: value %q: %w", query, text, err)
		}
		out = append(out, Sample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// Sample is one series of a query's answer.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Verdict asks the gate about a service: the verdict and its reasons.
func (s *Stack) Verdict(ctx context.Context, service, namespace, environment string) (verdict string, reasons []string, err error) {
	var answer struct {
		Verdict string   `json:"verdict"`
		Reasons []string `json:"reasons"`
	}
	q := url.Values{"service": {service}, "namespace": {namespace}, "environment": {environment}}
	err = getJSON(ctx, fmt.Sprintf("http://127.0.0.1:%d/v1/verdict?%s", s.GatePort, q.Encode()), &answer)
	return answer.Verdict, answer.Reasons, err
}

func getJSON(ctx context.Context, url string, into any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return json.Unmarshal(body, into)
}
