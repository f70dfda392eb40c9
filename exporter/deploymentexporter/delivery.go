// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
)

// Target kinds.
const (
	kindAlertmanager = "alertmanager"
)

// target is one place alerts are delivered to: an Alertmanager endpoint or a
// channel. Each has its own exporterhelper sending queue and retry, so one
// that is down neither blocks the others nor loses what it has not got yet.
type target struct {
	name       string
	kind       string // alertmanager, webhook, slack, pagerduty
	url        string
	logURL     string // url without secrets, for errors and logs
	clientCfg  confighttp.ClientConfig
	routingKey string

	core   *core
	client *http.Client
	exp    exporter.Logs
	// attrs are the telemetry attributes of the target's deliveries.
	success, retryable, permanent metric.MeasurementOption
}

// innerID names a target's queue: its storage (file_storage keeps a file per
// component ID) and its otelcol_exporter_* metrics are the target's own.
func innerID(outer component.ID, targetName string) component.ID {
	name := targetName
	if outer.Name() != "" {
		name = outer.Name() + "." + targetName
	}
	return component.NewIDWithName(outer.Type(), name)
}

func newTarget(ctx context.Context, c *core, name, kind, endpointURL string, clientCfg confighttp.ClientConfig, routingKey string) (*target, error) {
	if clientCfg.Timeout == 0 {
		clientCfg.Timeout = defaultClientTimeout
	}
	t := &target{
		name: name, kind: kind, url: endpointURL, logURL: redactURL(kind, endpointURL),
		clientCfg: clientCfg, routingKey: routingKey, core: c,
	}
	outcome := func(o string) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("target", name), attribute.String("outcome", o)))
	}
	t.success, t.retryable, t.permanent = outcome("success"), outcome("retryable"), outcome("permanent")

	set := c.set
	set.ID = innerID(c.set.ID, name)
	set.Logger = c.set.Logger.With(zap.String("target", name))
	exp, err := exporterhelper.NewLogs(ctx, set, c.cfg, t.push,
		exporterhelper.WithStart(t.start),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}), // the HTTP client's timeout applies per request
		exporterhelper.WithQueue(c.cfg.QueueConfig),
		exporterhelper.WithRetry(c.cfg.BackOffConfig),
	)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	t.exp = exp
	return t, nil
}

func (t *target) start(ctx context.Context, host component.Host) error {
	client, err := t.clientCfg.ToClient(ctx, host.GetExtensions(), t.core.set.TelemetrySettings)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	t.client = client
	return nil
}

// push delivers one queued batch of alert signals. It returns a permanent
// error for what a retry cannot fix (4xx) and a retryable one, with the
// server's Retry-After, otherwise.
func (t *target) push(ctx context.Context, ld plog.Logs) error {
	alerts := alertsOf(ld, t.core.now())
	if len(alerts) == 0 {
		return nil
	}
	switch t.kind {
	case kindAlertmanager:
		body, err := t.core.am.postableAlerts(alerts)
		if err != nil {
			return consumererror.NewPermanent(err)
		}
		return t.post(ctx, body)
	case channelWebhook:
		return t.post(ctx, genericPayload(t.name, alerts, t.core.runbook))
	case channelSlack:
		return t.post(ctx, slackPayload(alerts, t.core.runbook))
	case channelPagerDuty:
		// One event per alert. A retry after a partial failure repeats the
		// events already sent: PagerDuty deduplicates them by dedup_key.
		for i := range alerts {
			if err := t.post(ctx, pagerDutyEvent(t.routingKey, &alerts[i], t.core.runbook)); err != nil {
				return err
			}
		}
		return nil
	}
	return consumererror.NewPermanent(fmt.Errorf("unknown target kind %q", t.kind))
}

// alertsOf reads the alert signals of a queued batch (validated before they
// were queued).
func alertsOf(ld plog.Logs, now time.Time) []alertSignal {
	var out []alertSignal
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if a, err := parseAlert(rl.Resource(), lrs.At(k), now); err == nil {
					if v, ok := lrs.At(k).Attributes().Get(attrExplainedBy); ok && a.firing() {
						a.explain(v.AsString())
					}
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// maxErrorBody is how much of an error response is quoted in the error.
const maxErrorBody = 512

func (t *target) post(ctx context.Context, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		t.core.telemetry.ExporterDeploymentDeliveries.Add(ctx, 1, t.retryable)
		// *url.Error quotes the whole URL, and a Slack webhook's path is its secret.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return fmt.Errorf("POST %s: %w", t.logURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	err = classifyResponse(resp.StatusCode, resp.Header.Get("Retry-After"), strings.TrimSpace(string(snippet)), t.core.now())
	switch {
	case err == nil:
		t.core.telemetry.ExporterDeploymentDeliveries.Add(ctx, 1, t.success)
		return nil
	case consumererror.IsPermanent(err):
		t.core.telemetry.ExporterDeploymentDeliveries.Add(ctx, 1, t.permanent)
	default:
		t.core.telemetry.ExporterDeploymentDeliveries.Add(ctx, 1, t.retryable)
	}
	return fmt.Errorf("POST %s: %w", t.logURL, err)
}

// classifyResponse: 2xx is delivered; 408, 429 and 5xx are retried (after
// Retry-After when the server sends one); any other status is permanent.
func classifyResponse(status int, retryAfter, body string, now time.Time) error {
	if status >= 200 && status < 300 {
		return nil
	}
	err := fmt.Errorf("HTTP %d %s: %s", status, http.StatusText(status), body)
	if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500 {
		if d := parseRetryAfter(retryAfter, now); d > 0 {
			return exporterhelper.NewThrottleRetry(err, d)
		}
		return err
	}
	return consumererror.NewPermanent(err)
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// redactURL drops what may be a secret: the query (tokens) of any URL, and
// the path of a Slack incoming webhook, which is its credential.
func redactURL(kind, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	if kind == channelSlack {
		u.Path, u.RawPath = "/redacted", ""
	}
	return u.String()
}
