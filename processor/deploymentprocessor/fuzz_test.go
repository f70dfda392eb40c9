// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentprocessor

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/fuzzattrs"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadata"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/metadatatest"
)

// eventsCounted sums events applied and ignored.
func eventsCounted(t *testing.T, tel *componenttest.Telemetry) int64 {
	var n int64
	for _, name := range []string{"otelcol_processor_deployment_events_applied", "otelcol_processor_deployment_events_ignored"} {
		m, err := tel.GetMetric(name)
		if err != nil {
			continue // not recorded yet
		}
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			n += dp.Value
		}
	}
	return n
}

// FuzzLifecycleRecord feeds one fuzzed deployment.lifecycle record (any
// attribute types, missing keys, huge strings) to the logs pipeline: no
// panic, the record is counted (applied or ignored), and a valid event for
// another service afterwards still applies.
func FuzzLifecycleRecord(f *testing.F) {
	f.Add("service.name=checkout\nservice.namespace=shop\ndeployment.environment.name=prod\nservice.version=1.5.0",
		"deployment.id=rollout-1\ndeployment.state=started\ndeployment.strategy=canary\ndeployment.previous_version=1.4.0", int64(1))
	f.Add("", "deployment.state=started", int64(0))
	f.Add("service.name=i:", "deployment.state=m:x\ndeployment.id=f:\ndeployment.commit_time=b:", int64(-1))
	f.Add("service.name=checkout", "deployment.state=succeeded\ndeployment.id=", int64(1<<62))
	f.Add("service.name=checkout\nservice.version=", "deployment.state=rolled_back\ndeployment.previous_version=i:", int64(5))
	f.Fuzz(func(t *testing.T, resAttrs, recAttrs string, ts int64) {
		tel := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
		set := metadatatest.NewSettings(tel)
		set.ID = component.NewID(metadata.Type)
		ps := newPipelines(t, pipelineOptions{set: &set})

		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		fuzzattrs.Put(rl.Resource().Attributes(), resAttrs)
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName(deployevent.EventName)
		lr.SetTimestamp(pcommon.Timestamp(uint64(ts)))
		fuzzattrs.Put(lr.Attributes(), recAttrs)
		require.NoError(t, ps.logs.ConsumeLogs(context.Background(), ld))
		require.Equal(t, int64(1), eventsCounted(t, tel), "the record is counted as applied or ignored")

		valid := deployEvent("fuzz-valid-after", deployevent.StateStarted, 0)
		valid.Service = "fuzz-check-service"
		ps.consumeEvents(t, valid)
		m, err := tel.GetMetric("otelcol_processor_deployment_events_applied")
		require.NoError(t, err)
		var started int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if v, ok := dp.Attributes.Value("state"); ok && v.AsString() == "started" {
				started += dp.Value
			}
		}
		require.GreaterOrEqual(t, started, int64(1), "a valid event after a malformed one still applies")
	})
}
