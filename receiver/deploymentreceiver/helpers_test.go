// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/golden"
	"github.com/open-telemetry/opentelemetry-collector-contrib/pkg/pdatatest/plogtest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/receiver/deploymentreceiver/internal/metadata"
)

// -update rewrites golden files from the current output: go test -run X -update
var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fixedNow is the receipt time in tests, so defaulted timestamps are stable.
var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// newTestReceiver builds a receiver (not started: requests go straight to
// ServeHTTP) with the given config edits and a sink.
func newTestReceiver(t *testing.T, edit func(*Config), next consumer.Logs) *deploymentReceiver {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	if edit != nil {
		edit(cfg)
	}
	require.NoError(t, cfg.Validate())
	if next == nil {
		next = new(consumertest.LogsSink)
	}
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	r.now = func() time.Time { return fixedNow }
	t.Cleanup(func() { r.telemetry.Shutdown() })
	return r
}

// post sends body to path with headers and returns the recorded response.
func post(t *testing.T, r http.Handler, path string, body []byte, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	return rec
}

// readTestdata reads a file under testdata/.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// assertGoldenLogs compares logs with the golden file testdata/<name>
// (rewritten with -update). Observed timestamps are receipt times and ignored.
func assertGoldenLogs(t *testing.T, name string, actual plog.Logs) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, golden.WriteLogs(t, path, actual))
	}
	expected, err := golden.ReadLogs(path)
	require.NoError(t, err)
	require.NoError(t, plogtest.CompareLogs(expected, actual, plogtest.IgnoreObservedTimestamp()))
}

// allLogs merges what a sink received into one plog.Logs.
func allLogs(sink *consumertest.LogsSink) plog.Logs {
	out := plog.NewLogs()
	for _, l := range sink.AllLogs() {
		l.ResourceLogs().MoveAndAppendTo(out.ResourceLogs())
	}
	return out
}

func receiverSettings() receiver.Settings {
	return receivertest.NewNopSettings(metadata.Type)
}

// checkFuzzedEvents is what every parser promises for input it accepts.
func checkFuzzedEvents(t *testing.T, events []deployevent.Event) {
	t.Helper()
	if len(events) == 0 {
		t.Fatal("accepted input produced no events")
	}
	for _, e := range events {
		if e.Service == "" || e.ID == "" || !e.State.Valid() {
			t.Fatalf("accepted an incomplete event: %+v", e)
		}
		if e.Strategy != "" && !e.Strategy.Valid() {
			t.Fatalf("accepted an invalid strategy: %+v", e)
		}
	}
}
