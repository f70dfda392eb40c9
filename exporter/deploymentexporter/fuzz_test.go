// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/fuzzattrs"
)

// fuzzRecord builds one log record named event whose attributes come from
// fuzzed "key=value" lines; a value prefixed "i:", "f:", "b:" or "m:" is put
// as an int, double, bool or map, so wrong value types reach the decoders.
func fuzzRecord(event, resAttrs, recAttrs string) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	fuzzattrs.Put(rl.Resource().Attributes(), resAttrs)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(event)
	lr.Body().SetStr(recAttrs)
	fuzzattrs.Put(lr.Attributes(), recAttrs)
	return ld
}

const fuzzResource = "service.name=checkout\nservice.namespace=shop\ndeployment.environment.name=production\nservice.version=1.4.2"

// FuzzConsumeRecords feeds malformed deployment.lifecycle and deployment.alert
// records to the exporter: it must not panic, and afterwards a valid
// lifecycle event still applies (the gate knows the deployment).
func FuzzConsumeRecords(f *testing.F) {
	f.Add(true, fuzzResource, "deployment.id=gh-1234\ndeployment.state=started\ndeployment.strategy=canary")
	f.Add(true, "", "deployment.state=started")
	f.Add(true, fuzzResource, "deployment.id=i:\ndeployment.state=m:x\ndeployment.commit_time=b:")
	f.Add(false, fuzzResource, "alert.name=DeploymentUnhealthy\nalert.state=firing\nalert.severity=critical\nalert.fingerprint=fp\nobserved.value=f:1")
	f.Add(false, fuzzResource, "alert.state=resolved\nalert.name=i:\nanomaly.score=NaN\nalert.starts_at=m:")
	f.Add(false, "", "alert.state=bogus")
	f.Fuzz(func(t *testing.T, lifecycle bool, resAttrs, recAttrs string) {
		c := newTestCore(t, testConfig(nil), newClock(t0), nil)
		event := deployevent.AlertEventName
		if lifecycle {
			event = deployevent.EventName
		}
		require.NoError(t, c.consumeLogs(context.Background(), fuzzRecord(event, resAttrs, recAttrs)))
		require.NoError(t, c.consumeLogs(context.Background(), lifecycleLogs(deployevent.StateStarted, t0)))
		c.mu.Lock()
		v, _ := c.st.lookup(query{Service: "checkout", Environment: "production", Namespace: "shop"})
		c.mu.Unlock()
		require.NotNil(t, v, "a valid event after a malformed one still applies")
	})
}

// FuzzGate drives the gate's handlers with fuzzed queries and bodies: the
// answer is 2xx or 4xx with JSON, never 5xx or a panic.
func FuzzGate(f *testing.F) {
	f.Add("GET", "/v1/verdict", "service=checkout&environment=production&namespace=shop", "")
	f.Add("GET", "/v1/verdict", "", "")
	f.Add("GET", "/v1/verdict", "service=%ZZ&service=a&environment=\x00", "")
	f.Add("POST", "/v1/gate", "", `{"name":"checkout","namespace":"production","phase":"Progressing","metadata":{"service":"checkout","environment":"production"}}`)
	f.Add("POST", "/v1/gate", "", `{"name":1}`)
	f.Add("POST", "/v1/gate/rollback", "", `{"name":"checkout","metadata":null}`)
	f.Add("POST", "/v1/gate/rollback", "", `not json`)
	f.Add("GET", "/v1/status", "service=checkout", "")
	f.Add("GET", "/v1/graph", "service=checkout&environment=production", "")
	f.Add("GET", "/v1/graph", "namespace=%00&service=", "")
	f.Fuzz(func(t *testing.T, method, path, rawQuery, body string) {
		if method != http.MethodGet && method != http.MethodPost {
			method = http.MethodPost
		}
		u := &url.URL{Path: "/" + strings.TrimLeft(path, "/"), RawQuery: rawQuery}
		c := newTestCore(t, testConfig(nil), newClock(t0), nil)
		require.NoError(t, c.consumeLogs(context.Background(), lifecycleLogs(deployevent.StateStarted, t0)))
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL = u
		req.RequestURI = u.RequestURI()
		rec := httptest.NewRecorder()
		c.gate.mux.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, u, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
			var msg map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &msg); err != nil {
				t.Fatalf("%s %s: %d with a body that is not JSON: %q", method, u, rec.Code, rec.Body.String())
			}
		}
	})
}
