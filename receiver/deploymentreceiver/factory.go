// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/deploylens/deploylens/receiver/deploymentreceiver/internal/metadata"
)

const (
	defaultEndpoint = "localhost:8088"
	// defaultMaxRequestBodySize bounds a webhook body: GitHub's largest
	// deployment payloads are tens of KiB, GitHub caps deliveries at 25 MiB.
	defaultMaxRequestBodySize = 1 << 20
	defaultRetryAfter         = 5 * time.Second
)

// NewFactory returns the factory of the deployment receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createDefaultConfig() component.Config {
	server := confighttp.NewDefaultServerConfig()
	server.NetAddr.Endpoint = defaultEndpoint
	server.MaxRequestBodySize = defaultMaxRequestBodySize
	return &Config{
		ServerConfig: server,
		Generic:      configoptional.Some(GenericConfig{}),
		RetryAfter:   defaultRetryAfter,
	}
}

func createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	return newReceiver(cfg.(*Config), set, next)
}
