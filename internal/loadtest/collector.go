// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package loadtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/deploylens/deploylens/internal/e2e/realtime"
)

// Collector is the built distribution started for a measurement.
type Collector struct {
	*realtime.Process
	// TelemetryURL is the collector's own metrics (service::telemetry::metrics).
	TelemetryURL string
}

// TelemetryYAML is the service::telemetry block that serves the collector's
// own metrics at 127.0.0.1:port (logs at warn, so logging costs nothing).
func TelemetryYAML(port int) string {
	return fmt.Sprintf(`  telemetry:
    logs:
      level: warn
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
                without_scope_info: true
`, port)
}

// StartCollector writes config into dir and starts binary on it; it returns
// once the health_check at healthPort answers and the telemetry endpoint at
// telemetryPort serves.
func StartCollector(ctx context.Context, binary, dir, config string, healthPort, telemetryPort int) (*Collector, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("collector binary: %w (run make build)", err)
	}
	path := filepath.Join(dir, "collector.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, err
	}
	p, err := realtime.Start("collector", nil, binary, "--config", path)
	if err != nil {
		return nil, err
	}
	c := &Collector{Process: p, TelemetryURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetryPort)}
	if err := p.WaitReady(ctx, fmt.Sprintf("http://127.0.0.1:%d/", healthPort), time.Minute); err != nil {
		_ = p.Stop(10 * time.Second)
		return nil, err
	}
	if err := p.WaitReady(ctx, c.TelemetryURL, 30*time.Second); err != nil {
		_ = p.Stop(10 * time.Second)
		return nil, err
	}
	return c, nil
}

// FreePorts returns n distinct loopback ports that were free a moment ago.
func FreePorts(n int) ([]int, error) {
	seen := map[int]bool{}
	out := make([]int, 0, n)
	for len(out) < n {
		p, err := realtime.FreePort()
		if err != nil {
			return nil, err
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}
