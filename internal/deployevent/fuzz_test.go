// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deployevent

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/fuzzattrs"
)

// FuzzFromLogRecord decodes fuzzed deployment.lifecycle records: no panic,
// and an accepted record is a valid event that survives a round trip.
func FuzzFromLogRecord(f *testing.F) {
	f.Add("service.name=checkout\nservice.version=1.4.2", "deployment.state=started\ndeployment.id=gh-1\ndeployment.strategy=canary\ndeployment.commit_time=2026-01-01T00:00:00Z", int64(1))
	f.Add("", "service.name=checkout\ndeployment.state=succeeded", int64(0))
	f.Add("service.name=i:", "deployment.state=m:x\ndeployment.commit_time=b:", int64(-1))
	f.Add("service.name=a", "deployment.state=bogus", int64(0))
	f.Fuzz(func(t *testing.T, resAttrs, recAttrs string, ts int64) {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		fuzzattrs.Put(rl.Resource().Attributes(), resAttrs)
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName(EventName)
		lr.SetTimestamp(pcommon.Timestamp(uint64(ts)))
		fuzzattrs.Put(lr.Attributes(), recAttrs)
		ev, err := FromLogRecord(rl.Resource(), lr)
		if err != nil {
			return
		}
		if ev.Service == "" || !ev.State.Valid() || !ev.Strategy.Valid() || ev.ID == "" {
			t.Fatalf("accepted an invalid event: %+v", ev)
		}
		out := plog.NewLogs()
		ev.AppendTo(out, time.Unix(0, 0))
		back, err := FromLogRecord(out.ResourceLogs().At(0).Resource(), out.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0))
		if err != nil {
			t.Fatalf("a decoded event does not decode again: %v (%+v)", err, ev)
		}
		if back.Service != ev.Service || back.State != ev.State || back.ID != ev.ID || back.Strategy != ev.Strategy {
			t.Fatalf("round trip changed the event: %+v -> %+v", ev, back)
		}
	})
}
