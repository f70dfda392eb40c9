// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Config is the deployment exporter's configuration.
type Config struct {
	// Alertmanager receives every alert signal through its API v2. No
	// endpoints: no Alertmanager delivery.
	Alertmanager AlertmanagerConfig `mapstructure:"alertmanager"`
	// Channels are the webhook channels routes refer to, by name.
	Channels map[string]ChannelConfig `mapstructure:"channels"`
	// Routes choose the channels of an alert; the first matching route wins.
	// Without routes, every alert goes to every channel.
	Routes []RouteConfig `mapstructure:"routes"`
	// RunbookURL is the runbook_url annotation (and webhook field), with
	// {placeholders} replaced by the alert's values. Empty: no runbook link.
	RunbookURL string `mapstructure:"runbook_url"`
	// Gate is the rollout-gate HTTP server and status page. On by default.
	Gate configoptional.Optional[GateConfig] `mapstructure:"gate"`
	// State bounds the in-memory view the gate and escalation work from.
	State StateConfig `mapstructure:"state"`

	// QueueConfig is the sending queue of every delivery target (each
	// Alertmanager endpoint and each channel has a queue of its own).
	QueueConfig configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	// BackOffConfig is the retry of every delivery target.
	BackOffConfig configretry.BackOffConfig `mapstructure:"retry_on_failure"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// AlertmanagerConfig configures delivery to Alertmanager's API v2. The HTTP
// client settings (timeout, headers, tls, auth …) apply to every endpoint.
type AlertmanagerConfig struct {
	// Endpoints are the base URLs of the Alertmanagers (an HA pair or more);
	// alerts are POSTed to <endpoint>/api/v2/alerts on each of them.
	Endpoints []string `mapstructure:"endpoints"`

	confighttp.ClientConfig `mapstructure:",squash"`

	// ResolveTimeout sets endsAt = signal time + resolve_timeout on firing
	// alerts, so Alertmanager resolves an alert by itself when deploylens
	// stops re-sending it.
	ResolveTimeout time.Duration `mapstructure:"resolve_timeout"`
	// ResendInterval re-posts a firing alert that no signal re-posted for this
	// long, so it never reaches its endsAt while it still fires.
	ResendInterval time.Duration `mapstructure:"resend_interval"`
	// Labels are added to every alert (e.g. cluster); they never replace the
	// labels deploylens sets.
	Labels map[string]string `mapstructure:"labels"`
}

// Channel types.
const (
	channelWebhook   = "webhook"
	channelSlack     = "slack"
	channelPagerDuty = "pagerduty"
)

// ChannelConfig is one webhook channel. The HTTP client settings (endpoint,
// timeout, headers, tls, auth …) sit directly under the channel.
type ChannelConfig struct {
	// Type is webhook (generic JSON), slack (incoming webhook) or pagerduty
	// (Events API v2).
	Type string `mapstructure:"type"`

	confighttp.ClientConfig `mapstructure:",squash"`

	// RoutingKey is the PagerDuty integration (routing) key.
	RoutingKey configopaque.String `mapstructure:"routing_key"`
}

// RouteConfig sends matching alerts to its channels. An empty matcher
// matches every alert.
type RouteConfig struct {
	// Severities the route matches (info, warning, critical).
	Severities []string `mapstructure:"severities"`
	// Services (service.name) the route matches.
	Services []string `mapstructure:"services"`
	// Environments (deployment.environment.name) the route matches.
	Environments []string `mapstructure:"environments"`
	// Channels are notified in order: the first at once, the next one each
	// time the alert has fired for another escalate_after.
	Channels []string `mapstructure:"channels"`
	// EscalateAfter is the escalation step. 0 notifies every channel at once.
	EscalateAfter time.Duration `mapstructure:"escalate_after"`
}

// Inconclusive policies of the gate.
const (
	inconclusiveHold = "hold"
	inconclusivePass = "pass"
)

// GateConfig configures the rollout-gate HTTP server (endpoint, tls, auth …
// sit directly under `gate:`) and its policy.
type GateConfig struct {
	confighttp.ServerConfig `mapstructure:",squash"`

	// MinObservation is how long after the deployment started a healthy
	// verdict must wait before it is a pass.
	MinObservation time.Duration `mapstructure:"min_observation"`
	// Inconclusive is what POST /v1/gate answers for an inconclusive verdict
	// once inconclusive_pass_window is over: hold (412) or pass (200).
	Inconclusive string `mapstructure:"inconclusive"`
	// InconclusivePassWindow: during this long after the deployment started,
	// an inconclusive verdict passes the gate (there is no data to judge yet).
	// 0, the default, never passes an inconclusive verdict early.
	InconclusivePassWindow time.Duration `mapstructure:"inconclusive_pass_window"`
	// MaxHealthAge: a health data point received longer ago than this is
	// stale, and the verdict is inconclusive until a new one arrives.
	MaxHealthAge time.Duration `mapstructure:"max_health_age"`
	// StatusRefreshInterval is how often the status page polls for updates.
	StatusRefreshInterval time.Duration `mapstructure:"status_refresh_interval"`
	// ImpactUnhealthyBelow is the edge score (0–100) under which a caller's
	// calls into a deploying service are unhealthy: they fail its gate with a
	// rollback recommendation (the processor's health::unhealthy_below default).
	ImpactUnhealthyBelow float64 `mapstructure:"impact_unhealthy_below"`
}

// StateConfig bounds the exporter's in-memory state.
type StateConfig struct {
	// MaxServices is the most (namespace, service, environment) views kept;
	// the least recently updated one makes room for a new one.
	MaxServices int `mapstructure:"max_services"`
	// ServiceTTL drops a view not updated for this long.
	ServiceTTL time.Duration `mapstructure:"service_ttl"`
	// MaxAlerts is the most firing alerts tracked (for escalation, re-sends,
	// the gate and the page); the least recently signalled one makes room.
	MaxAlerts int `mapstructure:"max_alerts"`
	// AlertTTL drops a firing alert not signalled again for this long; it is
	// then no longer re-sent and Alertmanager resolves it at its endsAt.
	AlertTTL time.Duration `mapstructure:"alert_ttl"`
	// History is how many finished deployments a view keeps.
	History int `mapstructure:"history"`
	// MaxIndicators is how many indicators a view keeps sparklines for.
	MaxIndicators int `mapstructure:"max_indicators"`
	// SparklinePoints is how many points an indicator's sparkline keeps.
	SparklinePoints int `mapstructure:"sparkline_points"`
	// MaxEdges is the most service-graph edges (caller, dependency) kept;
	// the least recently updated one makes room for a new one.
	MaxEdges int `mapstructure:"max_edges"`
	// EdgeTTL drops an edge not updated for this long: the graph shows the
	// calls a service makes now, not the ones it made hours ago.
	EdgeTTL time.Duration `mapstructure:"edge_ttl"`
}

var (
	channelNameRe  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	placeholderRe  = regexp.MustCompile(`\{([^{}]*)\}`)
	labelNameRe    = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	knownSeverity  = map[string]bool{deployevent.SeverityInfo: true, deployevent.SeverityWarning: true, deployevent.SeverityCritical: true}
	knownChannelTy = map[string]bool{channelWebhook: true, channelSlack: true, channelPagerDuty: true}
)

// Validate checks the configuration; errors name the YAML key.
func (cfg *Config) Validate() error {
	var errs []error
	errs = append(errs, cfg.Alertmanager.validate()...)

	for _, name := range slices.Sorted(maps.Keys(cfg.Channels)) { // a stable order of errors
		ch := cfg.Channels[name]
		key := "channels::" + name
		if !channelNameRe.MatchString(name) {
			errs = append(errs, fmt.Errorf("%s: channel name must be letters, digits, '_', '.' or '-'", key))
		}
		if !knownChannelTy[ch.Type] {
			errs = append(errs, fmt.Errorf("%s::type: must be one of webhook, slack, pagerduty, got %q", key, ch.Type))
		}
		switch ch.Type {
		case channelPagerDuty:
			if ch.RoutingKey == "" {
				errs = append(errs, fmt.Errorf("%s::routing_key: must not be empty for a pagerduty channel", key))
			}
			if ch.Endpoint != "" {
				if err := checkURL(ch.Endpoint); err != nil {
					errs = append(errs, fmt.Errorf("%s::endpoint: %w", key, err))
				}
			}
		case channelWebhook, channelSlack:
			if ch.Endpoint == "" {
				errs = append(errs, fmt.Errorf("%s::endpoint: must not be empty for a %s channel", key, ch.Type))
			} else if err := checkURL(ch.Endpoint); err != nil {
				errs = append(errs, fmt.Errorf("%s::endpoint: %w", key, err))
			}
		}
		if ch.Timeout < 0 {
			errs = append(errs, fmt.Errorf("%s::timeout: must not be negative", key))
		}
	}

	if len(cfg.Routes) > 0 && len(cfg.Channels) == 0 {
		errs = append(errs, errors.New("routes: no channels are configured for the routes to use"))
	}
	for i, r := range cfg.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if len(r.Channels) == 0 {
			errs = append(errs, fmt.Errorf("%s::channels: must name at least one channel", key))
		}
		for _, name := range r.Channels {
			if _, ok := cfg.Channels[name]; !ok {
				errs = append(errs, fmt.Errorf("%s::channels: unknown channel %q (not under channels)", key, name))
			}
		}
		for _, s := range r.Severities {
			if !knownSeverity[s] {
				errs = append(errs, fmt.Errorf("%s::severities: must be info, warning or critical, got %q", key, s))
			}
		}
		if r.EscalateAfter < 0 {
			errs = append(errs, fmt.Errorf("%s::escalate_after: must not be negative, got %s", key, r.EscalateAfter))
		}
	}

	for _, m := range placeholderRe.FindAllStringSubmatch(cfg.RunbookURL, -1) {
		if !knownPlaceholder(m[1]) {
			errs = append(errs, fmt.Errorf("runbook_url: unknown placeholder {%s}; use %s", m[1], strings.Join(placeholderNames(), ", ")))
		}
	}

	if g := cfg.Gate.Get(); g != nil {
		if strings.TrimSpace(g.NetAddr.Endpoint) == "" {
			errs = append(errs, errors.New("gate::endpoint: must not be empty (use gate: {enabled: false} to turn the gate off)"))
		}
		if g.MinObservation < 0 {
			errs = append(errs, fmt.Errorf("gate::min_observation: must not be negative, got %s", g.MinObservation))
		}
		if g.InconclusivePassWindow < 0 {
			errs = append(errs, fmt.Errorf("gate::inconclusive_pass_window: must not be negative, got %s", g.InconclusivePassWindow))
		}
		if g.MaxHealthAge <= 0 {
			errs = append(errs, fmt.Errorf("gate::max_health_age: must be positive, got %s", g.MaxHealthAge))
		}
		if g.Inconclusive != inconclusiveHold && g.Inconclusive != inconclusivePass {
			errs = append(errs, fmt.Errorf("gate::inconclusive: must be hold or pass, got %q", g.Inconclusive))
		}
		if g.StatusRefreshInterval < 100*time.Millisecond {
			errs = append(errs, fmt.Errorf("gate::status_refresh_interval: must be at least 100ms, got %s", g.StatusRefreshInterval))
		}
		if !(g.ImpactUnhealthyBelow >= 0 && g.ImpactUnhealthyBelow <= 100) {
			errs = append(errs, fmt.Errorf("gate::impact_unhealthy_below: must be between 0 and 100, got %v", g.ImpactUnhealthyBelow))
		}
	}

	errs = append(errs, cfg.State.validate()...)
	return errors.Join(errs...)
}

func (am *AlertmanagerConfig) validate() []error {
	var errs []error
	if am.Endpoint != "" {
		errs = append(errs, errors.New("alertmanager::endpoint: not used; list the Alertmanagers under alertmanager::endpoints"))
	}
	seen := map[string]bool{}
	for i, ep := range am.Endpoints {
		if err := checkURL(ep); err != nil {
			errs = append(errs, fmt.Errorf("alertmanager::endpoints[%d]: %w", i, err))
		}
		if seen[ep] {
			errs = append(errs, fmt.Errorf("alertmanager::endpoints[%d]: %q is listed twice", i, ep))
		}
		seen[ep] = true
	}
	if am.ResolveTimeout <= 0 {
		errs = append(errs, fmt.Errorf("alertmanager::resolve_timeout: must be positive, got %s", am.ResolveTimeout))
	}
	if am.ResendInterval <= 0 {
		errs = append(errs, fmt.Errorf("alertmanager::resend_interval: must be positive, got %s", am.ResendInterval))
	} else if am.ResolveTimeout > 0 && am.ResendInterval >= am.ResolveTimeout {
		errs = append(errs, fmt.Errorf("alertmanager::resend_interval: must be shorter than resolve_timeout (%s), or firing alerts expire between re-sends", am.ResolveTimeout))
	}
	if am.Timeout < 0 {
		errs = append(errs, errors.New("alertmanager::timeout: must not be negative"))
	}
	for name := range am.Labels {
		if !labelNameRe.MatchString(name) {
			errs = append(errs, fmt.Errorf("alertmanager::labels: %q is not a valid label name", name))
		}
		if builtinLabels[name] {
			errs = append(errs, fmt.Errorf("alertmanager::labels: %q is set by deploylens and cannot be overridden", name))
		}
	}
	return errs
}

func (s *StateConfig) validate() []error {
	var errs []error
	positiveInt := func(key string, v int) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("state::%s: must be positive, got %d", key, v))
		}
	}
	positiveDur := func(key string, v time.Duration) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("state::%s: must be positive, got %s", key, v))
		}
	}
	positiveInt("max_services", s.MaxServices)
	positiveDur("service_ttl", s.ServiceTTL)
	positiveInt("max_alerts", s.MaxAlerts)
	positiveDur("alert_ttl", s.AlertTTL)
	positiveInt("history", s.History)
	positiveInt("max_indicators", s.MaxIndicators)
	positiveInt("sparkline_points", s.SparklinePoints)
	positiveInt("max_edges", s.MaxEdges)
	positiveDur("edge_ttl", s.EdgeTTL)
	return errs
}

// checkURL accepts absolute http(s) URLs with a host.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid URL %q: want http(s)://host[:port][/path]", raw)
	}
	return nil
}
