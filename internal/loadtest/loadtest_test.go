// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package loadtest

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStatCPUTicks(t *testing.T) {
	tests := []struct {
		name, stat string
		want       uint64
		wantErr    bool
	}{
		{name: "plain", stat: "1234 (otelcol) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 500 1000000 2000 18446744073709551615",
			want: 325},
		{name: "command with spaces and parentheses", stat: "7 (a b) (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 9 1 1 1",
			want: 7},
		{name: "truncated", stat: "7 (x) R 1 7", wantErr: true},
		{name: "no command", stat: "7 x R", wantErr: true},
		{name: "not a number", stat: "7 (x) R 1 7 7 0 -1 0 0 0 0 0 u 4 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatCPUTicks(tt.stat)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseStatusRSSKiB(t *testing.T) {
	got, err := ParseStatusRSSKiB("Name:\totelcol\nVmPeak:\t  900 kB\nVmRSS:\t   51200 kB\nRssAnon:\t 40000 kB\n")
	require.NoError(t, err)
	assert.Equal(t, int64(51200), got)
	_, err = ParseStatusRSSKiB("Name:\tx\n")
	assert.Error(t, err)
	_, err = ParseStatusRSSKiB("VmRSS:\t12 MB\n")
	assert.Error(t, err)
}

func TestProcSelf(t *testing.T) {
	rss, err := RSSBytes(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, rss)
	_, err = CPUSeconds(os.Getpid())
	assert.NoError(t, err)
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	assert.Equal(t, time.Duration(0), Percentile(nil, 0.5))
	assert.Equal(t, 3*time.Millisecond, Percentile(ms(5, 1, 3, 2, 4), 0.5))
	assert.Equal(t, 5*time.Millisecond, Percentile(ms(5, 1, 3, 2, 4), 0.99))
	assert.Equal(t, time.Millisecond, Percentile(ms(5, 1, 3, 2, 4), 0))
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i
	}
	assert.Equal(t, 99*time.Millisecond, Percentile(ms(hundred...), 0.99))
	assert.Equal(t, 50*time.Millisecond, Percentile(ms(hundred...), 0.5))
}

func TestGrowthAndPerMillion(t *testing.T) {
	assert.InDelta(t, 5.0, GrowthPct(100, 105), 1e-9)
	assert.InDelta(t, -10.0, GrowthPct(200, 180), 1e-9)
	assert.True(t, math.IsNaN(GrowthPct(0, 10)))
	assert.InDelta(t, 2.0, PerMillion(1, 500_000), 1e-9)
	assert.True(t, math.IsNaN(PerMillion(1, 0)))
}

const exposition = `# HELP otelcol_processor_deployment_services_tracked Services currently tracked.
# TYPE otelcol_processor_deployment_services_tracked gauge
otelcol_processor_deployment_services_tracked{otel_scope_name="x",processor="deployment"} 42
# TYPE otelcol_exporter_deployment_state_entries gauge
otelcol_exporter_deployment_state_entries{exporter="deployment",kind="alert"} 3
otelcol_exporter_deployment_state_entries{exporter="deployment",kind="service"} 7 1700000000000
# TYPE otelcol_receiver_accepted_spans_total counter
otelcol_receiver_accepted_spans_total{receiver="otlp",transport="grpc"} 1.5e+06
otelcol_receiver_accepted_spans_total{receiver="otlp",transport="http"} 10
odd{msg="a \"quoted\", comma\\"} 1
`

func TestParseText(t *testing.T) {
	series, err := ParseText(strings.NewReader(exposition))
	require.NoError(t, err)
	require.Len(t, series, 6)
	assert.Equal(t, "gauge", series[0].Type)
	assert.InDelta(t, 42.0, series[0].Value, 0)
	assert.Equal(t, `otelcol_exporter_deployment_state_entries{exporter="deployment",kind="service"}`, series[2].ID())
	assert.InDelta(t, 7.0, series[2].Value, 0)
	assert.Equal(t, "counter", series[3].Type)
	assert.InDelta(t, 1_500_010.0, Sum(series, "otelcol_receiver_accepted_spans_total", nil), 0)
	assert.InDelta(t, 10.0, Sum(series, "otelcol_receiver_accepted_spans_total", map[string]string{"transport": "http"}), 0)
	assert.InDelta(t, 1_500_010.0, Counter(series, "otelcol_receiver_accepted_spans", nil), 0)
	assert.Equal(t, `a "quoted", comma\`, series[5].Labels["msg"])
	assert.Empty(t, series[5].Type)

	for _, bad := range []string{"name_without_value", `x{a="1" 2`, `x{a=1} 2`, "x 1 2 3", "x one"} {
		_, err := ParseText(strings.NewReader(bad))
		assert.Error(t, err, bad)
	}
}

func TestExitCode(t *testing.T) {
	assert.Equal(t, 0, ExitCode("x", nil))
	assert.Equal(t, 1, ExitCode("x", fmt.Errorf("%w: growth 7 %% > 5 %%", ErrBar)))
	assert.Equal(t, 2, ExitCode("x", errors.New("collector did not start")))
}

func TestBatchShape(t *testing.T) {
	st := Batch(3, time.Now())
	assert.Equal(t, SpansPerBatch, st.Traces.SpanCount())
	assert.Equal(t, ServicesPerBatch*PointsPerService, st.Metrics.DataPointCount())
	assert.Equal(t, Services/2, DeploymentsStarted(time.Now()).Logs.LogRecordCount())
}
