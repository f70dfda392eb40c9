// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Alertmanager labels and annotations: the public contract of an alert.
const (
	labelAlertname    = "alertname"
	labelService      = "service"
	labelNamespace    = "namespace"
	labelEnvironment  = "environment"
	labelSeverity     = "severity"
	labelDeploymentID = "deployment_id"
	labelVersion      = "version"
	// labelIndicator keeps two alerts about different indicators of one
	// deployment apart: Alertmanager identifies an alert by its labels.
	labelIndicator = "indicator"

	annotationSummary        = "summary"
	annotationDescription    = "description"
	annotationRecommendation = "recommendation"
	annotationRunbookURL     = "runbook_url"
	annotationEvidence       = "evidence"
	annotationReason         = "reason"
	annotationExplainedBy    = "explained_by"
)

// alertsPath is where Alertmanager's API v2 takes alerts, under an endpoint.
const alertsPath = "/api/v2/alerts"

var builtinLabels = map[string]bool{
	labelAlertname: true, labelService: true, labelNamespace: true, labelEnvironment: true,
	labelSeverity: true, labelDeploymentID: true, labelVersion: true, labelIndicator: true,
}

// alertmanagerURL is the alerts URL of an endpoint (which may carry a
// --web.route-prefix path).
func alertmanagerURL(endpoint string) string {
	return strings.TrimRight(endpoint, "/") + alertsPath
}

// runbook expands the runbook_url template for a.
type runbook string

// placeholders of runbook_url and what they are replaced with (path-escaped).
var placeholders = map[string]func(a *alertSignal) string{
	"alertname":     func(a *alertSignal) string { return a.Name },
	"service":       func(a *alertSignal) string { return a.Key.Service },
	"namespace":     func(a *alertSignal) string { return a.Key.Namespace },
	"environment":   func(a *alertSignal) string { return a.Key.Environment },
	"severity":      func(a *alertSignal) string { return a.Severity },
	"indicator":     func(a *alertSignal) string { return a.Evidence.Indicator },
	"deployment_id": func(a *alertSignal) string { return a.DeploymentID },
	"version":       func(a *alertSignal) string { return a.Version },
	"fingerprint":   func(a *alertSignal) string { return a.Fingerprint },
}

func knownPlaceholder(name string) bool { _, ok := placeholders[name]; return ok }

func placeholderNames() []string {
	out := make([]string, 0, len(placeholders))
	for k := range placeholders {
		out = append(out, "{"+k+"}")
	}
	sort.Strings(out)
	return out
}

func (r runbook) expand(a *alertSignal) string {
	if r == "" {
		return ""
	}
	return placeholderRe.ReplaceAllStringFunc(string(r), func(m string) string {
		if f, ok := placeholders[m[1:len(m)-1]]; ok {
			return url.PathEscape(f(a))
		}
		return m
	})
}

// amConverter turns alert signals into Alertmanager's PostableAlert model.
type amConverter struct {
	resolveTimeout time.Duration
	labels         map[string]string
	runbook        runbook
}

// postable builds the alert Alertmanager gets. A firing alert ends
// resolve_timeout after its signal: re-sends move endsAt on, and when they
// stop Alertmanager resolves it by itself. A resolved one ends when it stopped
// firing.
func (c *amConverter) postable(a *alertSignal) *models.PostableAlert {
	labels := models.LabelSet{
		labelAlertname: a.Name,
		labelService:   a.Key.Service,
		labelSeverity:  a.Severity,
	}
	for k, v := range map[string]string{
		labelNamespace:    a.Key.Namespace,
		labelEnvironment:  a.Key.Environment,
		labelDeploymentID: a.DeploymentID,
		labelVersion:      a.Version,
		labelIndicator:    a.Evidence.Indicator,
	} {
		if v != "" {
			labels[k] = v
		}
	}
	for k, v := range c.labels {
		if _, taken := labels[k]; !taken && v != "" {
			labels[k] = v
		}
	}
	annotations := models.LabelSet{
		annotationSummary:        a.Summary,
		annotationDescription:    a.description(),
		annotationRecommendation: string(a.Recommendation),
	}
	if u := c.runbook.expand(a); u != "" {
		annotations[annotationRunbookURL] = u
	}
	if ev := a.evidenceText((*evidence).text); ev != "" {
		annotations[annotationEvidence] = ev
	}
	if a.Reason != "" {
		annotations[annotationReason] = a.Reason
	}
	if a.ExplainedBy != "" {
		annotations[annotationExplainedBy] = a.ExplainedBy
	}
	endsAt := a.EndsAt
	if a.firing() {
		endsAt = a.SignalledAt.Add(c.resolveTimeout)
	}
	if endsAt.Before(a.StartsAt) {
		endsAt = a.StartsAt // Alertmanager refuses an alert that ends before it starts
	}
	return &models.PostableAlert{
		Alert:       models.Alert{Labels: labels},
		Annotations: annotations,
		StartsAt:    strfmt.DateTime(a.StartsAt.UTC()),
		EndsAt:      strfmt.DateTime(endsAt.UTC()),
	}
}

// postableAlerts builds and validates the request body of a POST /api/v2/alerts.
func (c *amConverter) postableAlerts(alerts []alertSignal) (models.PostableAlerts, error) {
	out := make(models.PostableAlerts, 0, len(alerts))
	for i := range alerts {
		batch := []*models.PostableAlert{c.postable(&alerts[i])}
		if old := replacedLabelSet(&alerts[i]); old != nil {
			batch = append(batch, c.postable(old))
		}
		for _, pa := range batch {
			if err := pa.Validate(strfmt.Default); err != nil {
				return nil, fmt.Errorf("alert %s: %w", alerts[i].Fingerprint, err)
			}
			out = append(out, pa)
		}
	}
	return out, nil
}

// replacedLabelSet is, for a signal that changed a firing alert's severity in
// place, the alert under its old severity resolved now: the severity is a
// label, so to Alertmanager the change is a new alert, and without this the
// old one would stay active until its endsAt passed.
func replacedLabelSet(a *alertSignal) *alertSignal {
	if !a.firing() || a.PreviousSeverity == "" || a.PreviousSeverity == a.Severity {
		return nil
	}
	old := *a
	old.Severity, old.PreviousSeverity = a.PreviousSeverity, ""
	old.State, old.EndsAt = deployevent.AlertResolved, a.SignalledAt
	old.ExplainedBy = ""
	return &old
}
