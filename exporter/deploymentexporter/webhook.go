// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"fmt"
	"strings"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// webhookSchemaVersion is the version of the generic webhook JSON schema
// documented in the README.
const webhookSchemaVersion = "1"

// webhookPayload is the body of a generic webhook channel's POST.
type webhookPayload struct {
	Version string         `json:"version"`
	Channel string         `json:"channel"`
	Alerts  []webhookAlert `json:"alerts"`
}

type webhookAlert struct {
	Status          string `json:"status"`
	Alertname       string `json:"alertname"`
	Fingerprint     string `json:"fingerprint"`
	Severity        string `json:"severity"`
	Recommendation  string `json:"recommendation"`
	Summary         string `json:"summary"`
	Description     string `json:"description"`
	Service         string `json:"service"`
	Namespace       string `json:"namespace,omitempty"`
	Environment     string `json:"environment,omitempty"`
	Version         string `json:"version,omitempty"`
	PreviousVersion string `json:"previous_version,omitempty"`
	DeploymentID    string `json:"deployment_id,omitempty"`
	Phase           string `json:"phase,omitempty"`
	Revision        string `json:"revision,omitempty"`
	StartsAt        string `json:"starts_at"`
	EndsAt          string `json:"ends_at,omitempty"`
	// Reason is alert.reason: why a resolved alert was resolved, when it has a cause of its own.
	Reason     string `json:"reason,omitempty"`
	RunbookURL string `json:"runbook_url,omitempty"`
	// ExplainedBy is the rollout of a dependency that explains a firing alert.
	ExplainedBy string    `json:"explained_by,omitempty"`
	HealthScore *float64  `json:"health_score,omitempty"`
	Evidence    *evidence `json:"evidence,omitempty"`
	// EvidenceAll is every indicator an alert about a whole deployment rests on.
	EvidenceAll []evidence `json:"evidence_all,omitempty"`
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func genericPayload(channel string, alerts []alertSignal, rb runbook) webhookPayload {
	p := webhookPayload{Version: webhookSchemaVersion, Channel: channel, Alerts: make([]webhookAlert, 0, len(alerts))}
	for i := range alerts {
		a := &alerts[i]
		w := webhookAlert{
			Status:          a.State,
			Alertname:       a.Name,
			Fingerprint:     a.Fingerprint,
			Severity:        a.Severity,
			Recommendation:  string(a.Recommendation),
			Summary:         a.Summary,
			Description:     a.description(),
			Service:         a.Key.Service,
			Namespace:       a.Key.Namespace,
			Environment:     a.Key.Environment,
			Version:         a.Version,
			PreviousVersion: a.PreviousVersion,
			DeploymentID:    a.DeploymentID,
			Phase:           a.Phase,
			Revision:        a.Revision,
			StartsAt:        rfc3339(a.StartsAt),
			RunbookURL:      rb.expand(a),
			ExplainedBy:     a.ExplainedBy,
			HealthScore:     a.HealthScore,
		}
		if !a.firing() {
			w.EndsAt = rfc3339(a.EndsAt)
			w.Reason = a.Reason
		}
		if all := a.allEvidence(); len(all) > 0 {
			ev := all[0]
			w.Evidence = &ev
			if len(a.Evidences) > 0 {
				w.EvidenceAll = a.Evidences
			}
		}
		p.Alerts = append(p.Alerts, w)
	}
	return p
}

// Slack incoming-webhook message (Block Kit).
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// slackMaxAlerts keeps a message under Slack's 50 blocks.
const slackMaxAlerts = 10

// slackEscape escapes the three characters Slack's mrkdwn reserves.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func mrkdwn(s string) slackText { return slackText{Type: "mrkdwn", Text: s} }

func alertHeadline(a *alertSignal) string {
	status := "FIRING"
	if !a.firing() {
		status = "RESOLVED"
	}
	target := a.Key.Service
	if a.Version != "" {
		target += " " + a.Version
	}
	if a.Key.Environment != "" {
		target += " in " + a.Key.Environment
	}
	return fmt.Sprintf("[%s:%s] %s: %s", status, a.Severity, a.Name, target)
}

func slackPayload(alerts []alertSignal, rb runbook) slackMessage {
	msg := slackMessage{}
	if len(alerts) == 0 {
		return msg
	}
	msg.Text = alertHeadline(&alerts[0])
	if len(alerts) > 1 {
		msg.Text += fmt.Sprintf(" (+%d more)", len(alerts)-1)
	}
	shown := alerts
	if len(shown) > slackMaxAlerts {
		shown = shown[:slackMaxAlerts]
	}
	for i := range shown {
		a := &shown[i]
		if i > 0 {
			msg.Blocks = append(msg.Blocks, slackBlock{Type: "divider"})
		}
		icon := ":red_circle:"
		switch {
		case !a.firing():
			icon = ":large_green_circle:"
		case a.Severity == deployevent.SeverityWarning:
			icon = ":large_orange_circle:"
		case a.Severity == deployevent.SeverityInfo:
			icon = ":large_blue_circle:"
		}
		msg.Blocks = append(msg.Blocks,
			slackBlock{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(icon+" "+alertHeadline(a), 150), Emoji: true}},
			slackBlock{Type: "section", Text: ptr(mrkdwn(slackEscape.Replace(a.Summary) + "\n" + slackEscape.Replace(a.description())))},
		)
		fields := []slackText{mrkdwn("*Recommendation*\n" + string(a.Recommendation))}
		if ev := a.evidenceText((*evidence).text); ev != "" {
			fields = append(fields, mrkdwn("*Evidence*\n"+slackEscape.Replace(ev)))
		}
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "section", Fields: fields})
		ctx := "fingerprint " + a.Fingerprint + " · since " + rfc3339(a.StartsAt)
		if !a.firing() {
			ctx += " · ended " + rfc3339(a.EndsAt)
		}
		if u := rb.expand(a); u != "" {
			ctx += " · <" + u + "|runbook>"
		}
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: []slackText{mrkdwn(ctx)}})
	}
	if len(alerts) > len(shown) {
		msg.Blocks = append(msg.Blocks, slackBlock{Type: "context", Elements: []slackText{mrkdwn(fmt.Sprintf("…and %d more alerts", len(alerts)-len(shown)))}})
	}
	return msg
}

func ptr[T any](v T) *T { return &v }

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// PagerDuty Events API v2.
const defaultPagerDutyEndpoint = "https://events.pagerduty.com/v2/enqueue"

type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"`
	DedupKey    string     `json:"dedup_key"`
	Payload     *pdPayload `json:"payload,omitempty"`
	Client      string     `json:"client,omitempty"`
	Links       []pdLink   `json:"links,omitempty"`
}

type pdPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

type pdLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// pdSummaryMax is the Events API's limit on payload.summary.
const pdSummaryMax = 1024

// pagerDutyEvent triggers (firing) or resolves (resolved) the incident whose
// dedup_key is the alert fingerprint.
func pagerDutyEvent(routingKey string, a *alertSignal, rb runbook) pdEvent {
	ev := pdEvent{RoutingKey: routingKey, DedupKey: a.Fingerprint}
	if !a.firing() {
		ev.EventAction = "resolve"
		return ev
	}
	ev.EventAction = "trigger"
	ev.Client = "deploylens"
	source := a.Key.Service
	if a.Key.Environment != "" {
		source += " (" + a.Key.Environment + ")"
	}
	details := map[string]any{
		"alertname":      a.Name,
		"recommendation": string(a.Recommendation),
		"description":    a.description(),
	}
	for k, v := range map[string]string{
		"namespace": a.Key.Namespace, "environment": a.Key.Environment, "version": a.Version,
		"previous_version": a.PreviousVersion, "deployment_id": a.DeploymentID, "phase": a.Phase, "revision": a.Revision,
		"explained_by": a.ExplainedBy,
	} {
		if v != "" {
			details[k] = v
		}
	}
	if len(a.Evidences) > 0 {
		details["evidence"] = a.Evidences
	} else if !a.Evidence.empty() {
		details["evidence"] = a.Evidence
	}
	severity := a.Severity
	if severity != "critical" && severity != "warning" && severity != "info" && severity != "error" {
		severity = "warning"
	}
	ev.Payload = &pdPayload{
		Summary:       truncate(alertHeadline(a)+" — "+a.Summary, pdSummaryMax),
		Source:        source,
		Severity:      severity,
		Timestamp:     rfc3339(a.StartsAt),
		Component:     a.Key.Service,
		Group:         a.Key.Namespace,
		Class:         a.Name,
		CustomDetails: details,
	}
	if u := rb.expand(a); u != "" {
		ev.Links = []pdLink{{Href: u, Text: "Runbook"}}
	}
	return ev
}
