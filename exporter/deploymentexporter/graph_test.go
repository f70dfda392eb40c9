// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/deploylens/deploylens/exporter/deploymentexporter/internal/metadatatest"
	"github.com/deploylens/deploylens/internal/deployevent"
)

var nan = math.NaN()

// testEdge is one evaluation of a caller's calls to one dependency, as the
// processor writes it: NaN numbers are not written.
type testEdge struct {
	dependency string
	// indicators: indicator.name → value, baseline, lower, upper.
	indicators map[string][4]float64
	score      float64
	cohort     string
	// service is deployment.dependency.service ("" leaves it out).
	service string
}

// rateOnly is an edge with a request rate and nothing else.
func rateOnly(dependency string, rate float64) testEdge {
	return testEdge{dependency: dependency, indicators: map[string][4]float64{"request_rate": {rate, nan, nan, nan}}, score: nan}
}

// dependencyMetrics is the caller's edges at at, in the contract's names.
func dependencyMetrics(caller serviceKey, at time.Time, edges ...testEdge) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr("service.name", caller.Service)
	putIf(res, "service.namespace", caller.Namespace)
	putIf(res, "deployment.environment.name", caller.Environment)
	ms := rm.ScopeMetrics().AppendEmpty().Metrics()
	gauges := map[string]pmetric.Gauge{}
	point := func(name string, e testEdge, v float64) pmetric.NumberDataPoint {
		g, ok := gauges[name]
		if !ok {
			m := ms.AppendEmpty()
			m.SetName(name)
			g = m.SetEmptyGauge()
			gauges[name] = g
		}
		dp := g.DataPoints().AppendEmpty()
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetDoubleValue(v)
		dp.Attributes().PutStr("deployment.dependency.name", e.dependency)
		putIf(dp.Attributes(), "deployment.cohort", e.cohort)
		putIf(dp.Attributes(), "deployment.dependency.service", e.service)
		return dp
	}
	for _, e := range edges {
		names := make([]string, 0, len(e.indicators))
		for name := range e.indicators {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			for i, metric := range []string{"deployment.dependency.value", "deployment.dependency.baseline", "deployment.dependency.lower", "deployment.dependency.upper"} {
				if v := e.indicators[name][i]; !math.IsNaN(v) {
					point(metric, e, v).Attributes().PutStr("indicator.name", name)
				}
			}
		}
		if !math.IsNaN(e.score) {
			point("deployment.dependency.health.score", e, e.score)
		}
	}
	md.MarkReadOnly()
	return md
}

// impactMetrics is deployment.impact.services of a deploying service.
func impactMetrics(key serviceKey, at time.Time, n int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", key.Service)
	putIf(rm.Resource().Attributes(), "service.namespace", key.Namespace)
	putIf(rm.Resource().Attributes(), "deployment.environment.name", key.Environment)
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("deployment.impact.services")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
	dp.SetIntValue(n)
	md.MarkReadOnly()
	return md
}

var (
	frontendKey = serviceKey{Namespace: "shop", Service: "frontend", Environment: "production"}
	paymentKey  = serviceKey{Namespace: "shop", Service: "payment", Environment: "production"}
)

// checkoutEdges: checkout calls payment (judged, regressed) and
// postgresql/orders (no baseline yet, not judged).
func checkoutEdges() []testEdge {
	return []testEdge{
		{dependency: "payment", score: 35, indicators: map[string][4]float64{
			"request_rate": {25.5, 24, 18, 30},
			"error_ratio":  {0.012, 0.001, 0, 0.004},
			"latency_p95":  {0.213, 0.2, 0, 0.26},
		}},
		{dependency: "postgresql/orders", score: nan, indicators: map[string][4]float64{
			"request_rate": {80, nan, nan, nan},
			"latency_p95":  {0.004, nan, nan, nan},
		}},
	}
}

func edgeOf(t *testing.T, s *state, caller serviceKey, dependency string) *edge {
	t.Helper()
	e := s.edges[edgeKey{Caller: caller, Dependency: dependency}]
	require.NotNil(t, e, "edge %s → %s", caller, dependency)
	return e
}

func TestGraphStateFromMetrics(t *testing.T) {
	clock := newClock(t0)
	c := newTestCore(t, testConfig(nil), clock, nil)
	ctx := context.Background()
	at := t0.Add(time.Minute)
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, at, checkoutEdges()...)))
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(frontendKey, at, rateOnly("checkout", 40))))

	s := c.st
	require.Len(t, s.edges, 3)
	assert.Contains(t, s.services, frontendKey, "a caller is a service: its view holds its edges")
	assert.Len(t, s.services[checkoutKey].Edges, 2)

	pay := edgeOf(t, s, checkoutKey, "payment")
	assert.Equal(t, edgeNumbers{Value: 25.5, Baseline: 24, Lower: 18, Upper: 30}, pay.Indicators[edgeRequestRate])
	assert.Equal(t, edgeNumbers{Value: 0.012, Baseline: 0.001, Lower: 0, Upper: 0.004}, pay.Indicators[edgeErrorRatio])
	assert.InDelta(t, 0.213, pay.Indicators[edgeLatencyP95].Value, 1e-12)
	assert.Equal(t, 35.0, pay.Score)
	assert.Equal(t, at, pay.At)

	db := edgeOf(t, s, checkoutKey, "postgresql/orders")
	assert.Equal(t, 80.0, db.Indicators[edgeRequestRate].Value)
	assert.True(t, math.IsNaN(db.Indicators[edgeRequestRate].Baseline), "no baseline written: unknown, not 0")
	assert.True(t, math.IsNaN(db.Indicators[edgeErrorRatio].Value))
	assert.True(t, math.IsNaN(db.Score), "not judged: no score")

	// A newer evaluation replaces the edge: what it did not write is unknown.
	later := at.Add(time.Minute)
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, later, testEdge{
		dependency: "payment", score: nan, indicators: map[string][4]float64{"request_rate": {30, nan, nan, nan}},
	})))
	assert.Equal(t, 30.0, pay.Indicators[edgeRequestRate].Value)
	assert.True(t, math.IsNaN(pay.Indicators[edgeRequestRate].Baseline))
	assert.True(t, math.IsNaN(pay.Score), "the newest evaluation did not judge the edge")
	assert.Equal(t, later, pay.At)

	// Out of order, another cohort's, unknown indicators and nameless points change nothing.
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, at, checkoutEdges()[0])))
	baseline := rateOnly("payment", 99)
	baseline.cohort = "baseline"
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, later, baseline)))
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, later, testEdge{
		dependency: "payment", score: nan, indicators: map[string][4]float64{"saturation": {0.9, nan, nan, nan}},
	})))
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, later, rateOnly("", 5))))
	assert.Equal(t, 30.0, pay.Indicators[edgeRequestRate].Value)
	assert.True(t, math.IsNaN(pay.Score))
	assert.Len(t, s.edges, 3)

	// deployment.impact.services lands on the deploying service's view.
	require.NoError(t, c.consumeLogs(ctx, lifecycleLogs(deployevent.StateStarted, t0)))
	require.NoError(t, c.consumeMetrics(ctx, impactMetrics(checkoutKey, later, 2)))
	assert.Equal(t, int64(2), s.services[checkoutKey].Impact)
}

func TestGraphEdgesBoundedAndExpire(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	clock := newClock(t0)
	cfg := testConfig(func(cfg *Config) {
		cfg.State.MaxEdges = 3
		cfg.State.EdgeTTL = 10 * time.Minute
		cfg.State.ServiceTTL = time.Hour
	})
	c := startCore(t, cfg, clock, tt)
	ctx := context.Background()

	for i, dep := range []string{"a", "b", "c", "d"} {
		clock.Advance(time.Second)
		require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, t0.Add(time.Duration(i)*time.Second), rateOnly(dep, 1))))
	}
	s := c.st
	assert.Len(t, s.edges, 3, "max_edges")
	assert.NotContains(t, s.edges, edgeKey{Caller: checkoutKey, Dependency: "a"}, "the least recently updated edge made room")
	assert.NotContains(t, s.services[checkoutKey].Edges, "a", "and its view forgot it too")
	assert.Equal(t, s.edgeOrder.Len(), len(s.edges))

	metadatatest.AssertEqualExporterDeploymentStateEntries(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("kind", "service"))},
		{Value: 0, Attributes: attribute.NewSet(attribute.String("kind", "alert"))},
		{Value: 0, Attributes: attribute.NewSet(attribute.String("kind", "resolved"))},
		{Value: 0, Attributes: attribute.NewSet(attribute.String("kind", "indicator"))},
		{Value: 3, Attributes: attribute.NewSet(attribute.String("kind", "edge"))},
	}, metricdatatest.IgnoreTimestamp())

	// Only d is still called: b and c expire after edge_ttl, the view stays.
	clock.Advance(6 * time.Minute)
	require.NoError(t, c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, t0.Add(6*time.Minute), rateOnly("d", 2))))
	clock.Advance(6 * time.Minute)
	require.NoError(t, c.tick(ctx))
	assert.Equal(t, []string{"d"}, edgeNames(s, checkoutKey))
	assert.Contains(t, s.services, checkoutKey)

	metadatatest.AssertEqualExporterDeploymentStateDropped(t, tt, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("kind", "edge"), attribute.String("reason", "limit"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("kind", "edge"), attribute.String("reason", "ttl"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

func edgeNames(s *state, caller serviceKey) []string {
	var out []string
	for k := range s.edges {
		if k.Caller == caller {
			out = append(out, k.Dependency)
		}
	}
	slices.Sort(out)
	return out
}

// When a view is forgotten (limit or service_ttl), its edges go with it.
func TestGraphEdgesForgottenWithService(t *testing.T) {
	cfg := createDefaultConfig().(*Config).State
	cfg.MaxServices = 2
	s := newState(cfg)
	edge := func(caller serviceKey, dep string, now time.Time) {
		s.applyEdge(&edgePoint{Key: edgeKey{Caller: caller, Dependency: dep}, Field: edgeValue, Indicator: edgeRequestRate, Value: 1, At: now}, now)
	}
	edge(frontendKey, "checkout", t0)
	edge(frontendKey, "payment", t0)
	edge(checkoutKey, "payment", t0.Add(time.Second))
	require.Len(t, s.edges, 3)

	s.view(paymentKey, t0.Add(2*time.Second)) // evicts frontend, the least recently updated
	assert.NotContains(t, s.services, frontendKey)
	assert.Empty(t, edgeNames(s, frontendKey), "frontend's edges are forgotten with it")
	assert.Equal(t, []string{"payment"}, edgeNames(s, checkoutKey))
	assert.Equal(t, 1, s.edgeOrder.Len())
	assert.Zero(t, s.dropped[dropKey{"edge", "limit"}], "counted as the service's drop")

	s.sweep(t0.Add(cfg.ServiceTTL + time.Hour))
	assert.Empty(t, s.services)
	assert.Empty(t, s.edges, "service_ttl forgets every edge of the service")
	assert.Zero(t, s.edgeOrder.Len())
}

// An edge's callee is the service of that name in the caller's namespace and
// environment, else the only one of that name in the environment; anything
// else is an external node.
func TestGraphCalleeResolution(t *testing.T) {
	s := newState(createDefaultConfig().(*Config).State)
	for _, k := range []serviceKey{
		{Namespace: "shop", Service: "payment", Environment: "production"},
		{Namespace: "billing", Service: "payment", Environment: "production"},
		{Namespace: "billing", Service: "ledger", Environment: "production"},
		{Namespace: "billing", Service: "ledger", Environment: "staging"},
		{Namespace: "shop", Service: "search", Environment: "staging"},
	} {
		s.view(k, t0)
	}
	r := s.calleeResolver()
	callee := func(caller serviceKey, dep string) string {
		if v := r.callee(edgeKey{Caller: caller, Dependency: dep}, ""); v != nil {
			return v.Key.String()
		}
		return externalID(caller.Environment, dep)
	}
	web := serviceKey{Namespace: "web", Service: "frontend", Environment: "production"}
	assert.Equal(t, "shop/payment/production", callee(checkoutKey, "payment"), "the caller's namespace first")
	assert.Equal(t, "external:production:payment", callee(web, "payment"), "two payments elsewhere: ambiguous, so external")
	assert.Equal(t, "billing/ledger/production", callee(web, "ledger"), "the one ledger of the environment")
	assert.Equal(t, "external:production:search", callee(checkoutKey, "search"), "never across environments")
	assert.Equal(t, "external:production:postgresql/orders", callee(checkoutKey, "postgresql/orders"))
}

// graphFixture: checkout (shop, production) is being deployed with health
// data; frontend calls checkout and payment; checkout calls payment and
// postgresql/orders; payment calls postgresql/payments.
func graphFixture(t *testing.T, refresh time.Duration) *gateFixture {
	t.Helper()
	f := statusFixture(t, refresh)
	ctx := context.Background()
	at := f.clock.Now()
	require.NoError(t, f.c.consumeMetrics(ctx, dependencyMetrics(checkoutKey, at, checkoutEdges()...)))
	require.NoError(t, f.c.consumeMetrics(ctx, dependencyMetrics(frontendKey, at,
		testEdge{dependency: "checkout", score: 91, indicators: map[string][4]float64{"request_rate": {40, 41, 30, 50}, "error_ratio": {0.002, 0.002, 0, 0.01}}},
		rateOnly("payment", 3))))
	require.NoError(t, f.c.consumeMetrics(ctx, dependencyMetrics(paymentKey, at, rateOnly("postgresql/payments", 12))))
	require.NoError(t, f.c.consumeMetrics(ctx, impactMetrics(checkoutKey, at, 1)))
	return f
}

func getGraph(t *testing.T, f *gateFixture, query string) (int, map[string]any) {
	t.Helper()
	path := "/v1/graph"
	if query != "" {
		path += "?" + query
	}
	return f.do(http.MethodGet, path, nil)
}

func ids(list any, field string) []string {
	var out []string
	for _, x := range list.([]any) {
		out = append(out, x.(map[string]any)[field].(string))
	}
	return out
}

func edgePairs(list any) []string {
	var out []string
	for _, x := range list.([]any) {
		e := x.(map[string]any)
		out = append(out, e["caller"].(string)+" → "+e["callee"].(string))
	}
	return out
}

func TestGraphWholeJSON(t *testing.T) {
	f := graphFixture(t, time.Second)
	status, body := getGraph(t, f, "")
	require.Equal(t, http.StatusOK, status)

	assert.Equal(t, []string{
		"external:production:postgresql/orders", "external:production:postgresql/payments",
		"shop/checkout/production", "shop/frontend/production", "shop/payment/production",
	}, ids(body["nodes"], "id"), "every service and external dependency, sorted by id")
	assert.Equal(t, []string{
		"shop/checkout/production → external:production:postgresql/orders",
		"shop/checkout/production → shop/payment/production",
		"shop/frontend/production → shop/checkout/production",
		"shop/frontend/production → shop/payment/production",
		"shop/payment/production → external:production:postgresql/payments",
	}, edgePairs(body["edges"]), "sorted by caller, callee, dependency")

	nodes := body["nodes"].([]any)
	assert.Equal(t, map[string]any{
		"id": "external:production:postgresql/orders", "service": "postgresql/orders", "namespace": "", "environment": "production",
		"external": true, "health_score": nil, "health_score_text": "", "health_verdict": "", "phase": "",
		"deployment_id": "", "version": "", "impact_services": nil,
	}, nodes[0])
	assert.Equal(t, map[string]any{
		"id": "shop/checkout/production", "service": "checkout", "namespace": "shop", "environment": "production",
		"external": false, "health_score": 74.0, "health_score_text": "74", "health_verdict": "healthy", "phase": "during",
		"deployment_id": "gh-1234", "version": "1.4.2", "impact_services": 1.0,
	}, nodes[2])
	payment := nodes[4].(map[string]any)
	assert.Nil(t, payment["health_score"], "no health data: null, not 0")
	assert.Empty(t, payment["health_verdict"])
	assert.Equal(t, "steady", payment["phase"])
	assert.Nil(t, payment["impact_services"])

	edges := body["edges"].([]any)
	assert.Equal(t, map[string]any{
		"caller": "shop/checkout/production", "callee": "shop/payment/production", "dependency": "payment",
		"request_rate": 25.5, "error_ratio": 0.012, "latency_p95": 0.213,
		"request_rate_baseline": 24.0, "error_ratio_baseline": 0.001, "latency_p95_baseline": 0.2,
		"request_rate_lower": 18.0, "request_rate_upper": 30.0, "error_ratio_lower": 0.0, "error_ratio_upper": 0.004,
		"latency_p95_lower": 0.0, "latency_p95_upper": 0.26,
		"score": 35.0, "updated_at": f.clock.Now().UTC().Format(time.RFC3339Nano),
		"request_rate_text": "25.5 req/s", "error_ratio_text": "1.2 %", "latency_p95_text": "213 ms", "score_text": "35",
		"impact_of": nil, // payment does not deploy: nothing to count it against
	}, edges[1])
	assert.Nil(t, edges[2].(map[string]any)["impact_of"], "frontend's calls into deploying checkout are clean")
	db := edges[0].(map[string]any)
	assert.Equal(t, "postgresql/orders", db["dependency"])
	assert.Equal(t, 80.0, db["request_rate"])
	for _, k := range []string{"error_ratio", "error_ratio_baseline", "latency_p95_baseline", "request_rate_baseline", "score"} {
		assert.Nil(t, db[k], "%s: unknown is null", k)
	}
	assert.Empty(t, db["error_ratio_text"])
	assert.Empty(t, db["score_text"])

	_, again := getGraph(t, f, "")
	assert.Equal(t, body, again, "deterministic")
}

func TestGraphNeighbourhood(t *testing.T) {
	f := graphFixture(t, time.Second)
	status, body := getGraph(t, f, "service=checkout&environment=production")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []string{
		"external:production:postgresql/orders", "shop/checkout/production", "shop/frontend/production", "shop/payment/production",
	}, ids(body["nodes"], "id"), "checkout, its caller and its callees; not payment's database")
	assert.Equal(t, []string{
		"shop/checkout/production → external:production:postgresql/orders",
		"shop/checkout/production → shop/payment/production",
		"shop/frontend/production → shop/checkout/production",
		"shop/frontend/production → shop/payment/production",
	}, edgePairs(body["edges"]), "the edges between them, frontend → payment included")

	// payment's neighbourhood: its callers checkout and frontend, its database.
	_, body = getGraph(t, f, "service=payment")
	assert.Equal(t, []string{
		"external:production:postgresql/payments", "shop/checkout/production", "shop/frontend/production", "shop/payment/production",
	}, ids(body["nodes"], "id"))
	assert.Len(t, body["edges"], 4, "frontend → checkout is between two of them")

	// A service with no edges is its own neighbourhood.
	ctx := context.Background()
	cart := deployevent.Event{Service: "cart", Namespace: "shop", Environment: "production", ID: "gh-77", State: deployevent.StateStarted, Timestamp: f.clock.Now()}
	require.NoError(t, f.c.consumeLogs(ctx, lifecycleLogsOf(cart)))
	status, body = getGraph(t, f, "service=cart&namespace=shop")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []string{"shop/cart/production"}, ids(body["nodes"], "id"))
	assert.Equal(t, []any{}, body["edges"], "an empty list, not null")
}

func TestGraphLookupErrors(t *testing.T) {
	f := graphFixture(t, time.Second)
	status, body := getGraph(t, f, "service=nope&environment=production")
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, "deploylens has seen no deployment, health data or alert for service=nope environment=production", body["error"])

	// An external dependency is no service to look up.
	status, _ = getGraph(t, f, "service=postgresql/orders")
	assert.Equal(t, http.StatusNotFound, status)

	staging := checkoutKey
	staging.Environment = "staging"
	require.NoError(t, f.c.consumeMetrics(context.Background(), dependencyMetrics(staging, f.clock.Now(), rateOnly("payment", 1))))
	status, body = getGraph(t, f, "service=checkout")
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "service=checkout matches 2 services (shop/checkout/production, shop/checkout/staging); add namespace and environment", body["error"])
	status, body = getGraph(t, f, "service=checkout&environment=staging")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, []string{"shop/checkout/staging → external:staging:payment"}, edgePairs(body["edges"]), "staging's payment is not production's")

	status, body = getGraph(t, f, "environment=production")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body["error"], "query parameter service is required")
	status, _ = f.do(http.MethodPost, "/v1/graph", []byte(`{}`))
	assert.Equal(t, http.StatusMethodNotAllowed, status)
}

// A new deployment is judged afresh: the last one's impact is not its own.
func TestGraphImpactPerDeployment(t *testing.T) {
	f := graphFixture(t, time.Second)
	node := func() map[string]any {
		_, body := getGraph(t, f, "service=checkout&environment=production")
		for _, n := range body["nodes"].([]any) {
			if n := n.(map[string]any); n["id"] == "shop/checkout/production" {
				return n
			}
		}
		t.Fatal("no checkout node")
		return nil
	}
	assert.Equal(t, 1.0, node()["impact_services"])
	ctx := context.Background()
	f.clock.Advance(time.Minute)
	next := deployevent.Event{Service: "checkout", Namespace: "shop", Environment: "production", Version: "1.4.3", ID: "gh-1300", State: deployevent.StateStarted, Timestamp: f.clock.Now()}
	require.NoError(t, f.c.consumeLogs(ctx, lifecycleLogsOf(next)))
	assert.Nil(t, node()["impact_services"], "unknown for the new deployment")
	require.NoError(t, f.c.consumeMetrics(ctx, impactMetrics(checkoutKey, f.clock.Now().Add(-2*time.Minute), 5)))
	assert.Nil(t, node()["impact_services"], "a point from before it started is about the last deployment")
	require.NoError(t, f.c.consumeMetrics(ctx, impactMetrics(checkoutKey, f.clock.Now(), 0)))
	assert.Equal(t, 0.0, node()["impact_services"])
	assert.Equal(t, "gh-1300", node()["deployment_id"])
}

// The JSON decodes into the documented shape (a guard on the README table).
func TestGraphJSONFieldNames(t *testing.T) {
	f := graphFixture(t, time.Second)
	resp, err := http.Get(f.base + "/v1/graph?service=checkout")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var body struct {
		Nodes []map[string]json.RawMessage `json:"nodes"`
		Edges []map[string]json.RawMessage `json:"edges"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	require.NotEmpty(t, body.Nodes)
	require.NotEmpty(t, body.Edges)
	keys := func(m map[string]json.RawMessage) []string {
		out := make([]string, 0, len(m))
		for k := range m {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	assert.Equal(t, []string{
		"deployment_id", "environment", "external", "health_score", "health_score_text", "health_verdict", "id",
		"impact_services", "namespace", "phase", "service", "version",
	}, keys(body.Nodes[0]))
	assert.Equal(t, []string{
		"callee", "caller", "dependency", "error_ratio", "error_ratio_baseline", "error_ratio_lower", "error_ratio_text", "error_ratio_upper",
		"impact_of", "latency_p95", "latency_p95_baseline", "latency_p95_lower", "latency_p95_text", "latency_p95_upper",
		"request_rate", "request_rate_baseline", "request_rate_lower", "request_rate_text", "request_rate_upper",
		"score", "score_text", "updated_at",
	}, keys(body.Edges[0]))
}
