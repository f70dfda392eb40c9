// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor // import "github.com/deploylens/deploylens/processor/deploymentprocessor"

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Config is the deployment processor's configuration. Every option has a
// default; `deployment: {}` tracks, infers and tags.
type Config struct {
	// EnvironmentDefault is the deployment.environment.name of telemetry and
	// events that carry none. Empty keeps such services apart under "".
	EnvironmentDefault string `mapstructure:"environment_default"`
	// PostWindow is the validation window after a deployment ends, during which
	// its service is tagged `post`. 0 goes straight back to `steady`.
	PostWindow time.Duration `mapstructure:"post_window"`
	// MaxDuration marks a deployment stuck when it has been running longer.
	MaxDuration time.Duration `mapstructure:"max_duration"`
	// MaxServices bounds the tracked services (namespace, name, environment).
	MaxServices int `mapstructure:"max_services"`
	// IdleTTL forgets a service that sent neither telemetry nor events for this long.
	IdleTTL time.Duration `mapstructure:"idle_ttl"`
	// HistorySize is the number of finished deployments remembered per service.
	HistorySize int `mapstructure:"history_size"`
	// Inference infers deployments from new service.version values.
	Inference InferenceConfig `mapstructure:"inference"`
	// TagUnknownAsSteady writes deployment.phase=steady on telemetry of
	// services with no known deployment (none tracked or remembered); false
	// leaves their phase unwritten.
	TagUnknownAsSteady bool `mapstructure:"tag_unknown_as_steady"`
	// Tagging says which attributes are written on which signal, and where.
	Tagging TaggingConfig `mapstructure:"tagging"`
	// Storage is the ID of a storage extension (e.g. file_storage) the state
	// is saved to and restored from. Unset keeps the state in memory only.
	Storage *component.ID `mapstructure:"storage"`
	// FlushInterval is how often changed state is saved to Storage.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// Health configures the health engine: indicators, baselines, anomaly
	// and canary tests, health scores and verdicts.
	Health HealthConfig `mapstructure:"health"`
	// Signals configures the derived metrics and alert signals the processor emits.
	Signals EmissionConfig `mapstructure:"signals"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// InferenceConfig configures deployment inference from telemetry.
type InferenceConfig struct {
	// Enabled turns inference on.
	Enabled bool `mapstructure:"enabled"`
	// Settle is how long the old version must be silent for an inferred
	// deployment to succeed. It is also how recently a version must have
	// reported to count as serving, for cohorts.
	Settle time.Duration `mapstructure:"settle"`
}

// TaggingConfig configures tagging per signal.
type TaggingConfig struct {
	Traces  SignalTagging `mapstructure:"traces"`
	Metrics SignalTagging `mapstructure:"metrics"`
	Logs    SignalTagging `mapstructure:"logs"`
}

// SignalTagging says which attributes to write on one signal, and at which level.
type SignalTagging struct {
	// Attributes lists the attributes to write, from deployment.phase,
	// deployment.id, deployment.cohort and service.version. Empty writes none.
	Attributes []string `mapstructure:"attributes"`
	// Level is where they are written: resource (default), or per datum:
	// span (traces), datapoint (metrics), record (logs).
	Level string `mapstructure:"level"`
}

// Tagging levels.
const (
	levelResource  = "resource"
	levelSpan      = "span"
	levelDatapoint = "datapoint"
	levelRecord    = "record"
)

// taggable lists the attributes the processor can write.
var taggable = []string{
	deployevent.AttrDeploymentPhase,
	deployevent.AttrDeploymentID,
	deployevent.AttrDeploymentCohort,
	deployevent.AttrServiceVersion,
}

// Validate checks the configuration; errors name the YAML key.
func (cfg *Config) Validate() error {
	var errs []error
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive, got %s", key, d))
		}
	}
	if cfg.PostWindow < 0 {
		errs = append(errs, fmt.Errorf("post_window: must not be negative, got %s", cfg.PostWindow))
	}
	positive("max_duration", cfg.MaxDuration)
	positive("idle_ttl", cfg.IdleTTL)
	positive("inference::settle", cfg.Inference.Settle)
	if cfg.MaxServices <= 0 {
		errs = append(errs, fmt.Errorf("max_services: must be positive, got %d", cfg.MaxServices))
	}
	if cfg.HistorySize < 0 {
		errs = append(errs, fmt.Errorf("history_size: must not be negative, got %d", cfg.HistorySize))
	}
	if cfg.Storage != nil {
		positive("flush_interval", cfg.FlushInterval)
	}
	errs = append(errs, cfg.Tagging.Traces.validate("traces", levelSpan)...)
	errs = append(errs, cfg.Tagging.Metrics.validate("metrics", levelDatapoint)...)
	errs = append(errs, cfg.Tagging.Logs.validate("logs", levelRecord)...)
	if err := cfg.Health.validate(cfg); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, cfg.Signals.validate()...)
	return errors.Join(errs...)
}

func (st *SignalTagging) validate(signal, datumLevel string) []error {
	var errs []error
	prefix := "tagging::" + signal + "::"
	if st.Level != levelResource && st.Level != datumLevel {
		errs = append(errs, fmt.Errorf("%slevel: must be %q or %q, got %q", prefix, levelResource, datumLevel, st.Level))
	}
	seen := make(map[string]bool, len(st.Attributes))
	for i, attr := range st.Attributes {
		switch {
		case !isTaggable(attr):
			errs = append(errs, fmt.Errorf("%sattributes[%d]: unknown attribute %q, must be one of %s",
				prefix, i, attr, strings.Join(taggable, ", ")))
		case seen[attr]:
			errs = append(errs, fmt.Errorf("%sattributes[%d]: %q is listed twice", prefix, i, attr))
		}
		seen[attr] = true
	}
	return errs
}

func isTaggable(attr string) bool {
	for _, a := range taggable {
		if a == attr {
			return true
		}
	}
	return false
}
