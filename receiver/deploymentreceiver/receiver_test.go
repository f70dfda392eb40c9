// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/deploylens/deploylens/receiver/deploymentreceiver/internal/metadatatest"
)

var jsonHeaders = map[string]string{"Content-Type": "application/json"}

func TestGenericGolden(t *testing.T) {
	for _, tt := range []struct{ input, golden string }{
		{"generic/full.json", "generic/full_expected.yaml"},
		{"generic/array.json", "generic/array_expected.yaml"},
	} {
		t.Run(tt.input, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, nil, sink)
			rec := post(t, r, pathGeneric, readTestdata(t, tt.input), jsonHeaders)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assertGoldenLogs(t, tt.golden, allLogs(sink))
		})
	}
}

func TestGenericDerivedIDIsStableAcrossEvents(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := newTestReceiver(t, nil, sink)
	for _, state := range []string{"queued", "started", "succeeded"} {
		body := `{"service":"checkout","environment":"production","version":"2.0.0","state":"` + state + `"}`
		rec := post(t, r, pathGeneric, []byte(body), jsonHeaders)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
	body := `{"service":"checkout","environment":"production","version":"2.0.1","state":"started"}`
	require.Equal(t, http.StatusOK, post(t, r, pathGeneric, []byte(body), jsonHeaders).Code)

	ids := map[string]int{}
	for _, l := range sink.AllLogs() {
		lr := l.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
		id, ok := lr.Attributes().Get("deployment.id")
		require.True(t, ok)
		ids[id.Str()]++
	}
	assert.Len(t, ids, 2, "one id for version 2.0.0's three events, another for 2.0.1")
	for _, n := range ids {
		assert.Contains(t, []int{1, 3}, n)
	}
}

func TestHTTPContract(t *testing.T) {
	for _, tt := range []struct {
		name       string
		method     string
		path       string
		headers    map[string]string
		body       string
		edit       func(*Config)
		wantStatus int
		wantMsg    string
	}{
		{name: "unknown path", path: "/v1/nope", headers: jsonHeaders, body: `{}`, wantStatus: 404, wantMsg: "no deployment source"},
		{name: "disabled source", path: pathGitLab, headers: jsonHeaders, body: `{}`, wantStatus: 404},
		{name: "wrong method", method: http.MethodGet, path: pathGeneric, wantStatus: 405, wantMsg: "use POST"},
		{name: "wrong content type", path: pathGeneric, headers: map[string]string{"Content-Type": "text/plain"}, body: `{}`, wantStatus: 415, wantMsg: "application/json"},
		{name: "no content type", path: pathGeneric, body: `{}`, wantStatus: 415},
		{name: "malformed content type", path: pathGeneric, headers: map[string]string{"Content-Type": "application/json; ="}, body: `{}`, wantStatus: 415},
		{name: "empty body", path: pathGeneric, headers: jsonHeaders, wantStatus: 400, wantMsg: "empty body"},
		{name: "not json", path: pathGeneric, headers: jsonHeaders, body: `{"service":`, wantStatus: 400, wantMsg: "invalid JSON"},
		{name: "trailing data", path: pathGeneric, headers: jsonHeaders, body: `{"service":"a","state":"started"} {}`, wantStatus: 400, wantMsg: "invalid JSON"},
		{name: "wrong type names field", path: pathGeneric, headers: jsonHeaders, body: `{"service":42,"state":"started"}`, wantStatus: 400, wantMsg: `field "service"`},
		{name: "missing service", path: pathGeneric, headers: jsonHeaders, body: `{"state":"started"}`, wantStatus: 400, wantMsg: `missing required field "service"`},
		{name: "missing state", path: pathGeneric, headers: jsonHeaders, body: `{"service":"a"}`, wantStatus: 400, wantMsg: `missing required field "state"`},
		{name: "bad state", path: pathGeneric, headers: jsonHeaders, body: `{"service":"a","state":"done"}`, wantStatus: 400, wantMsg: `field "state"`},
		{name: "bad strategy", path: pathGeneric, headers: jsonHeaders, body: `{"service":"a","state":"started","strategy":"yolo"}`, wantStatus: 400, wantMsg: `field "strategy"`},
		{name: "bad timestamp", path: pathGeneric, headers: jsonHeaders, body: `{"service":"a","state":"started","timestamp":"yesterday"}`, wantStatus: 400, wantMsg: `field "timestamp"`},
		{name: "bad commit_time", path: pathGeneric, headers: jsonHeaders, body: `{"service":"a","state":"started","commit_time":"1700000000"}`, wantStatus: 400, wantMsg: `field "commit_time"`},
		{name: "array element error is numbered", path: pathGeneric, headers: jsonHeaders, body: `[{"service":"a","state":"started"},{"state":"started"}]`, wantStatus: 400, wantMsg: `event 1: missing required field "service"`},
		{name: "empty array", path: pathGeneric, headers: jsonHeaders, body: `[]`, wantStatus: 400, wantMsg: "empty array"},
		{name: "state case-insensitive", path: pathGeneric, headers: jsonHeaders, body: `{"service":"a","state":"Started"}`, wantStatus: 200},
		{
			name: "bearer token missing", path: pathGeneric, headers: jsonHeaders, body: `{"service":"a","state":"started"}`,
			edit:       func(c *Config) { c.Generic.Get().BearerToken = "s3cret" },
			wantStatus: 401, wantMsg: "unauthorized",
		},
		{
			name: "bearer token wrong", path: pathGeneric, body: `{"service":"a","state":"started"}`,
			headers:    map[string]string{"Content-Type": "application/json", "Authorization": "Bearer nope"},
			edit:       func(c *Config) { c.Generic.Get().BearerToken = "s3cret" },
			wantStatus: 401, wantMsg: "unauthorized",
		},
		{
			name: "bearer token right", path: pathGeneric, body: `{"service":"a","state":"started"}`,
			headers:    map[string]string{"Content-Type": "application/json; charset=utf-8", "Authorization": "Bearer s3cret"},
			edit:       func(c *Config) { c.Generic.Get().BearerToken = "s3cret" },
			wantStatus: 200, wantMsg: `"accepted":1`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sink := new(consumertest.LogsSink)
			r := newTestReceiver(t, tt.edit, sink)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, tt.path, strings.NewReader(tt.body))
			require.NoError(t, err)
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			rec := &responseRecorder{header: http.Header{}}
			r.ServeHTTP(rec, req)
			assert.Equal(t, tt.wantStatus, rec.status, rec.body.String())
			assert.Contains(t, decodedBody(t, rec.body.Bytes()), tt.wantMsg)
			assert.Equal(t, "application/json", rec.header.Get("Content-Type"))
			assert.Equal(t, 1, strings.Count(strings.TrimSpace(rec.body.String()), "\n")+1, "one-line message")
			if tt.wantStatus == 405 {
				assert.Equal(t, "POST", rec.header.Get("Allow"))
			}
			if tt.wantStatus == 401 {
				assert.NotContains(t, rec.body.String(), "nope", "the credential is not echoed")
			}
			if tt.wantStatus != 200 {
				assert.Zero(t, sink.LogRecordCount(), "nothing emitted for a refused request")
			} else {
				assert.Equal(t, 1, sink.LogRecordCount())
			}
		})
	}
}

// decodedBody returns the "error" message of a JSON error answer, or the raw
// body of any other answer.
func decodedBody(t *testing.T, body []byte) string {
	var answer struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(body, &answer), "every answer is JSON: %s", body)
	if answer.Error != "" {
		return answer.Error
	}
	return string(body)
}

// responseRecorder is a minimal http.ResponseWriter for table tests.
type responseRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *responseRecorder) Header() http.Header         { return r.header }
func (r *responseRecorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *responseRecorder) WriteHeader(status int)      { r.status = status }

func TestPipelineRefusal(t *testing.T) {
	body := []byte(`{"service":"a","state":"started"}`)

	t.Run("retryable error is 503 with Retry-After", func(t *testing.T) {
		r := newTestReceiver(t, nil, consumertest.NewErr(errors.New("memory limiter: data refused")))
		rec := post(t, r, pathGeneric, body, jsonHeaders)
		assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
		assert.Equal(t, "5", rec.Header().Get("Retry-After"))
		assert.Contains(t, rec.Body.String(), "retry later")
	})
	t.Run("configured Retry-After", func(t *testing.T) {
		r := newTestReceiver(t, func(c *Config) { c.RetryAfter = 90e9 }, consumertest.NewErr(errors.New("busy")))
		rec := post(t, r, pathGeneric, body, jsonHeaders)
		assert.Equal(t, "90", rec.Header().Get("Retry-After"))
	})
	t.Run("permanent error is 400", func(t *testing.T) {
		r := newTestReceiver(t, nil, consumertest.NewErr(consumererror.NewPermanent(errors.New("invalid resource"))))
		rec := post(t, r, pathGeneric, body, jsonHeaders)
		assert.Equal(t, http.StatusBadRequest, rec.Code)
		assert.Empty(t, rec.Header().Get("Retry-After"))
		assert.Contains(t, rec.Body.String(), "invalid resource")
	})
}

func TestSelfTelemetry(t *testing.T) {
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	sink := new(consumertest.LogsSink)
	r, err := newReceiver(cfg, metadatatest.NewSettings(tel), sink)
	require.NoError(t, err)
	defer r.telemetry.Shutdown()

	post(t, r, pathGeneric, readTestdata(t, "generic/array.json"), jsonHeaders)
	post(t, r, pathGeneric, []byte(`{"state":"started"}`), jsonHeaders)
	post(t, r, pathGeneric, []byte(`{}`), map[string]string{"Content-Type": "text/plain"})

	generic := attribute.NewSet(attribute.String("source", "generic"))
	metadatatest.AssertEqualReceiverDeploymentRequestsAccepted(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 1, Attributes: generic}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverDeploymentEventsEmitted(t, tel,
		[]metricdata.DataPoint[int64]{{Value: 2, Attributes: generic}}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverDeploymentRequestsRefused(t, tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("source", "generic"), attribute.String("reason", "bad_request"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("source", "generic"), attribute.String("reason", "unsupported_media_type"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestServerLimits runs the real confighttp server: the body limit answers 413.
func TestServerLimits(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.MaxRequestBodySize = 128
	sink := new(consumertest.LogsSink)
	r, err := newReceiver(cfg, receiverSettings(), sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		require.NoError(t, r.Shutdown(context.Background()))
		require.NoError(t, r.Shutdown(context.Background()), "Shutdown is safe twice")
	})

	send := func(body string) (int, string) {
		resp, err := http.Post("http://"+r.addr+pathGeneric, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	status, msg := send(`{"service":"checkout","state":"started","attributes":{"pad":"` + strings.Repeat("x", 200) + `"}}`)
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.Contains(t, msg, "max_request_body_size")
	status, _ = send(`{"service":"checkout","state":"started"}`)
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, 1, sink.LogRecordCount())
}

func TestShutdownWithoutStart(t *testing.T) {
	r, err := newReceiver(createDefaultConfig().(*Config), receiverSettings(), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestStartFailsOnBusyPort(t *testing.T) {
	first, err := newReceiver(func() *Config {
		c := createDefaultConfig().(*Config)
		c.NetAddr.Endpoint = "127.0.0.1:0"
		return c
	}(), receiverSettings(), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, first.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, first.Shutdown(context.Background())) }()

	cfg := createDefaultConfig().(*Config)
	cfg.NetAddr.Endpoint = first.addr
	second, err := newReceiver(cfg, receiverSettings(), consumertest.NewNop())
	require.NoError(t, err)
	err = second.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), first.addr)
	require.NoError(t, second.Shutdown(context.Background()))
}
