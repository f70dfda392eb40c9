// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
)

// Config is the deployment receiver's configuration. The HTTP server settings
// (endpoint, tls, auth, cors, max_request_body_size …) sit directly under
// `deployment:`, as in contrib's webhook receivers.
type Config struct {
	confighttp.ServerConfig `mapstructure:",squash"`

	// Generic is POST /v1/deployments, deploylens' own JSON. On by default.
	Generic configoptional.Optional[GenericConfig] `mapstructure:"generic"`
	// GitHub is POST /webhooks/github. Enabled when the key is present.
	GitHub configoptional.Optional[GitHubConfig] `mapstructure:"github"`
	// GitLab is POST /webhooks/gitlab.
	GitLab configoptional.Optional[GitLabConfig] `mapstructure:"gitlab"`
	// ArgoCD is POST /webhooks/argocd.
	ArgoCD configoptional.Optional[ArgoCDConfig] `mapstructure:"argocd"`
	// Flagger is POST /webhooks/flagger.
	Flagger configoptional.Optional[FlaggerConfig] `mapstructure:"flagger"`
	// ArgoRollouts is POST /webhooks/argo-rollouts.
	ArgoRollouts configoptional.Optional[ArgoRolloutsConfig] `mapstructure:"argo_rollouts"`

	// DefaultEnvironment is written as deployment.environment.name when an
	// event names no environment. Empty leaves it unset.
	DefaultEnvironment string `mapstructure:"default_environment"`
	// RetryAfter is the Retry-After a client is told when the pipeline refuses data.
	RetryAfter time.Duration `mapstructure:"retry_after"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// GenericConfig configures POST /v1/deployments.
type GenericConfig struct {
	// BearerToken, when set, must be sent as `Authorization: Bearer <token>`.
	BearerToken configopaque.String `mapstructure:"bearer_token"`
}

// GitHubConfig configures POST /webhooks/github.
type GitHubConfig struct {
	// Secret is the webhook secret; X-Hub-Signature-256 is checked against it.
	Secret configopaque.String `mapstructure:"secret"`
	// InsecureSkipVerify accepts unsigned deliveries when no secret is set.
	// Without it, an empty secret (e.g. an unset ${env:…}) does not stop the
	// collector: every GitHub delivery is refused with 401 and a warning is
	// logged at start, so a missing secret fails closed.
	InsecureSkipVerify bool `mapstructure:"insecure_skip_verify"`
}

// GitLabConfig configures POST /webhooks/gitlab.
type GitLabConfig struct {
	// Token, when set, must equal the X-Gitlab-Token header.
	Token configopaque.String `mapstructure:"token"`
}

// ArgoCDConfig configures POST /webhooks/argocd.
type ArgoCDConfig struct {
	// BearerToken, when set, must be sent as `Authorization: Bearer <token>`.
	BearerToken configopaque.String `mapstructure:"bearer_token"`
}

// FlaggerConfig configures POST /webhooks/flagger. Flagger sends no
// credentials of its own; protect the path with `auth:` or a network policy.
type FlaggerConfig struct {
	// BearerToken, when set, must be sent as `Authorization: Bearer <token>`
	// (Flagger cannot send one; use it behind a proxy that adds it).
	BearerToken configopaque.String `mapstructure:"bearer_token"`
}

// ArgoRolloutsConfig configures POST /webhooks/argo-rollouts.
type ArgoRolloutsConfig struct {
	// BearerToken, when set, must be sent as `Authorization: Bearer <token>`.
	BearerToken configopaque.String `mapstructure:"bearer_token"`
}

// Validate checks the configuration; errors name the YAML key.
func (cfg *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(cfg.NetAddr.Endpoint) == "" {
		errs = append(errs, errors.New("endpoint: must not be empty"))
	}
	if cfg.RetryAfter < 0 {
		errs = append(errs, fmt.Errorf("retry_after: must not be negative, got %s", cfg.RetryAfter))
	}
	if !cfg.Generic.HasValue() && !cfg.GitHub.HasValue() && !cfg.GitLab.HasValue() &&
		!cfg.ArgoCD.HasValue() && !cfg.Flagger.HasValue() && !cfg.ArgoRollouts.HasValue() {
		errs = append(errs, errors.New("no source enabled: enable at least one of generic, github, gitlab, argocd, flagger, argo_rollouts"))
	}
	return errors.Join(errs...)
}
