// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each channel's payload over real HTTP, against golden JSON.
func TestWebhookPayloadsGolden(t *testing.T) {
	hook := newRecorder(t, nil)
	slack := newRecorder(t, nil)
	pd := newRecorder(t, nil)
	clock := newClock(t0.Add(3 * time.Minute))
	cfg := testConfig(func(cfg *Config) {
		cfg.RunbookURL = "https://runbooks.example.com/deploylens/{alertname}"
		cfg.Channels = map[string]ChannelConfig{
			"audit":      {Type: channelWebhook, ClientConfig: clientAt(hook.URL() + "/deploylens")},
			"team-slack": {Type: channelSlack, ClientConfig: clientAt(slack.URL() + "/services/T000/B000/XXXX")},
			"oncall":     {Type: channelPagerDuty, ClientConfig: clientAt(pd.URL() + "/v2/enqueue"), RoutingKey: "R0UT1NGK3Y"},
		}
	})
	c := startCore(t, cfg, clock, nil)
	alert := criticalAlert()

	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(alert)))
	for _, r := range []*recorder{hook, slack, pd} {
		require.Eventually(t, func() bool { return r.count() == 1 }, 5*time.Second, 10*time.Millisecond)
	}
	assertGoldenJSON(t, "webhook_firing.json", hook.body(0))
	assertGoldenJSON(t, "slack_firing.json", slack.body(0))
	assertGoldenJSON(t, "pagerduty_trigger.json", pd.body(0))
	hook.mu.Lock()
	assert.Equal(t, "/deploylens", hook.paths[0])
	assert.Equal(t, "application/json", hook.headers[0].Get("Content-Type"))
	hook.mu.Unlock()

	clock.Advance(4 * time.Minute)
	require.NoError(t, c.consumeLogs(context.Background(), alertLogs(alert.resolved(clock.Now()))))
	for _, r := range []*recorder{hook, slack, pd} {
		require.Eventually(t, func() bool { return r.count() == 2 }, 5*time.Second, 10*time.Millisecond)
	}
	assertGoldenJSON(t, "webhook_resolved.json", hook.body(1))
	assertGoldenJSON(t, "slack_resolved.json", slack.body(1))
	assertGoldenJSON(t, "pagerduty_resolve.json", pd.body(1))
}

// PagerDuty: dedup_key is the fingerprint, so trigger and resolve address one
// incident.
func TestPagerDutyDedupKey(t *testing.T) {
	a := criticalAlert()
	ld := alertLogs(a, a.resolved(t0.Add(10*time.Minute)))
	alerts := alertsOf(ld, t0)
	require.Len(t, alerts, 2)
	trigger := pagerDutyEvent("k", &alerts[0], "")
	resolve := pagerDutyEvent("k", &alerts[1], "")
	assert.Equal(t, "trigger", trigger.EventAction)
	assert.Equal(t, "resolve", resolve.EventAction)
	assert.Equal(t, "fp-err-1", trigger.DedupKey)
	assert.Equal(t, trigger.DedupKey, resolve.DedupKey)
	assert.Nil(t, resolve.Payload)
}

// A Slack message stays under Slack's block limit, however many alerts.
func TestSlackManyAlerts(t *testing.T) {
	var alerts []alertSignal
	for i := range 25 {
		a := criticalAlert()
		a.fingerprint = fmt.Sprintf("fp-%d", i)
		alerts = append(alerts, alertsOf(alertLogs(a), t0)...)
	}
	msg := slackPayload(alerts, "")
	assert.LessOrEqual(t, len(msg.Blocks), 50)
	assert.Contains(t, msg.Text, "(+24 more)")
	last := msg.Blocks[len(msg.Blocks)-1]
	assert.Equal(t, "…and 15 more alerts", last.Elements[0].Text)
	_, err := json.Marshal(msg)
	require.NoError(t, err)
}

// Slack's mrkdwn control characters in alert text are escaped.
func TestSlackEscapes(t *testing.T) {
	a := criticalAlert()
	a.body = "p99 <500ms> & more"
	msg := slackPayload(alertsOf(alertLogs(a), t0), "")
	assert.Contains(t, msg.Blocks[1].Text.Text, "p99 &lt;500ms&gt; &amp; more")
}

// Errors (and so logs) never carry a Slack webhook's path, nor query tokens.
func TestDeliveryErrorsRedactSecrets(t *testing.T) {
	addr := freeAddr(t)
	cfg := testConfig(func(cfg *Config) {
		cfg.Channels = map[string]ChannelConfig{
			"team-slack": {Type: channelSlack, ClientConfig: clientAt("http://" + addr + "/services/T000/B000/S3CRET")},
			"audit":      {Type: channelWebhook, ClientConfig: clientAt("http://" + addr + "/hook?token=S3CRET")},
		}
	})
	c := newTestCore(t, cfg, newClock(t0), nil)
	for _, name := range []string{"team-slack", "audit"} {
		tg := c.channels[name]
		require.NoError(t, tg.start(context.Background(), &testHost{}))
		err := tg.push(context.Background(), alertLogs(criticalAlert()))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "S3CRET", name)
		assert.Contains(t, err.Error(), addr, name)
	}
}
