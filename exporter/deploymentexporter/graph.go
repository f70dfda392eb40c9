// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// The service graph: per-edge dependency metrics of the judgement stream,
// on the resource of the calling service.
const (
	metricDependencyValue    = "deployment.dependency.value"
	metricDependencyBaseline = "deployment.dependency.baseline"
	metricDependencyLower    = "deployment.dependency.lower"
	metricDependencyUpper    = "deployment.dependency.upper"
	metricDependencyScore    = "deployment.dependency.health.score"
	// metricImpactServices is on the resource of a deploying service: how many
	// of its callers' call edges regressed during its deployment.
	metricImpactServices = "deployment.impact.services"

	// attrDependencyName is the callee as the caller names it: a service
	// name (payment) or a resource (postgresql/orders, kafka/orders).
	attrDependencyName = "deployment.dependency.name"
	// attrDependencyService is the service the callee is, when the
	// processor knows (its span pairs learned what an address means).
	attrDependencyService = "deployment.dependency.service"
)

// pathGraph serves the service graph, whole or around one service.
const pathGraph = "/v1/graph"

// The indicators an edge keeps, in this order.
const (
	edgeRequestRate    = iota // calls per second
	edgeErrorRatio            // 0–1
	edgeLatencyP95            // seconds
	edgeIndicatorCount        // how many
)

var edgeIndicatorNames = [edgeIndicatorCount]string{"request_rate", "error_ratio", "latency_p95"}

// edgeIndicator is the index of an indicator name, -1 for one an edge does
// not keep (its memory stays fixed whatever the data says).
func edgeIndicator(name string) int {
	for i, n := range edgeIndicatorNames {
		if n == name {
			return i
		}
	}
	return -1
}

// edgeField says which number of an edge a data point carries.
type edgeField uint8

const (
	edgeValue    edgeField = iota // deployment.dependency.value
	edgeBaseline                  // deployment.dependency.baseline
	edgeLower                     // deployment.dependency.lower
	edgeUpper                     // deployment.dependency.upper
	edgeScore                     // deployment.dependency.health.score
)

// edgeKey identifies an edge of the service graph: who calls, and what.
type edgeKey struct {
	Caller     serviceKey
	Dependency string
}

// edgeNumbers are an indicator's value, baseline and expected band in one
// evaluation; NaN where the evaluation wrote none.
type edgeNumbers struct{ Value, Baseline, Lower, Upper float64 }

// edge is the latest evaluation of the calls of one service to one
// dependency.
type edge struct {
	Key        edgeKey
	Indicators [edgeIndicatorCount]edgeNumbers
	// Score is deployment.dependency.health.score, NaN while not judged.
	Score float64
	// Service is the service the dependency is, when the processor knows
	// (deployment.dependency.service: its name, or what span pairs taught).
	Service string
	// At is the evaluation's timestamp; LastUpdate when we got it (edge_ttl
	// runs on our clock, like every other TTL of the state).
	At         time.Time
	LastUpdate time.Time
	// HarmedSince is the timestamp of the first of the run of harmed
	// evaluations (edge.harm) before this one; zero when the last one was
	// not harmed.
	HarmedSince time.Time
}

// reset starts the evaluation at: every number unknown until it is written.
func (e *edge) reset(at time.Time) {
	nan := math.NaN()
	for i := range e.Indicators {
		e.Indicators[i] = edgeNumbers{Value: nan, Baseline: nan, Lower: nan, Upper: nan}
	}
	e.Score = nan
	e.At = at
}

// edgePoint is one data point of an edge.
type edgePoint struct {
	Key       edgeKey
	Field     edgeField
	Indicator int // for the value, baseline and band fields
	Value     float64
	At        time.Time
	// Service is the point's deployment.dependency.service ("" when absent).
	Service string
}

// applyEdge merges one data point into its edge, creating it (and making
// room at max_edges) when new. The points of one evaluation share a
// timestamp and a newer evaluation replaces the edge's numbers, so a number
// it did not write (a baseline still learning, a score not judged) is
// unknown rather than left over.
func (s *state) applyEdge(p *edgePoint, now time.Time) {
	if !finiteNum(p.Value) {
		return
	}
	// The caller's view holds its edges: an edge never outlives it.
	v := s.view(p.Key.Caller, now)
	e, ok := v.Edges[p.Key.Dependency]
	if !ok {
		if len(s.edges) >= s.cfg.MaxEdges {
			if oldest, found := s.edgeOrder.Oldest(); found {
				s.deleteEdge(oldest)
				s.drop("edge", "limit")
			}
		}
		e = &edge{Key: p.Key}
		e.reset(p.At)
		if v.Edges == nil {
			v.Edges = map[string]*edge{}
		}
		v.Edges[p.Key.Dependency] = e
		s.edges[p.Key] = e
	}
	if p.At.Before(e.At) {
		return // out of order
	}
	if p.At.After(e.At) {
		e.settle(s.impactUnhealthyBelow)
		e.reset(p.At)
	}
	e.LastUpdate = now
	if p.Service != "" {
		e.Service = p.Service
	}
	s.edgeOrder.Touch(p.Key)
	if p.Field == edgeScore {
		e.Score = p.Value
		return
	}
	n := &e.Indicators[p.Indicator]
	switch p.Field {
	case edgeValue:
		n.Value = p.Value
	case edgeBaseline:
		n.Baseline = p.Value
	case edgeLower:
		n.Lower = p.Value
	case edgeUpper:
		n.Upper = p.Value
	}
}

func (s *state) deleteEdge(k edgeKey) {
	delete(s.edges, k)
	s.edgeOrder.Remove(k)
	if v, ok := s.services[k.Caller]; ok {
		delete(v.Edges, k.Dependency)
	}
}

// applyImpact records deployment.impact.services for the current deployment
// of key; a point older than the deployment's start is about an earlier one.
func (s *state) applyImpact(key serviceKey, value float64, at, now time.Time) {
	if !finiteNum(value) || value < 0 {
		return
	}
	v := s.view(key, now)
	if at.Before(v.ImpactAt) || (v.Deployment != nil && at.Before(v.Deployment.StartedAt)) {
		return
	}
	v.Impact, v.ImpactAt = int64(math.Round(value)), at
}

// graphNode is a node of GET /v1/graph: a service deploylens has a view of,
// or an external dependency (a name its callers use that is no such service).
type graphNode struct {
	ID          string `json:"id"`
	Service     string `json:"service"`
	Namespace   string `json:"namespace"`
	Environment string `json:"environment"`
	External    bool   `json:"external"`
	// HealthScore is null without a score (no health data, or nothing
	// judged); HealthScoreText is then empty.
	HealthScore     *float64 `json:"health_score"`
	HealthScoreText string   `json:"health_score_text"`
	// HealthVerdict is empty without health data (and for external nodes).
	HealthVerdict  string `json:"health_verdict"`
	Phase          string `json:"phase"`
	DeploymentID   string `json:"deployment_id"`
	Version        string `json:"version"`
	ImpactServices *int64 `json:"impact_services"`
}

// graphEdge is an edge of GET /v1/graph; numbers are null when the latest
// evaluation wrote none, and the *_text fields are the page's text for them.
type graphEdge struct {
	Caller              string   `json:"caller"`
	Callee              string   `json:"callee"`
	Dependency          string   `json:"dependency"`
	RequestRate         *float64 `json:"request_rate"`
	ErrorRatio          *float64 `json:"error_ratio"`
	LatencyP95          *float64 `json:"latency_p95"`
	RequestRateBaseline *float64 `json:"request_rate_baseline"`
	ErrorRatioBaseline  *float64 `json:"error_ratio_baseline"`
	LatencyP95Baseline  *float64 `json:"latency_p95_baseline"`
	RequestRateLower    *float64 `json:"request_rate_lower"`
	RequestRateUpper    *float64 `json:"request_rate_upper"`
	ErrorRatioLower     *float64 `json:"error_ratio_lower"`
	ErrorRatioUpper     *float64 `json:"error_ratio_upper"`
	LatencyP95Lower     *float64 `json:"latency_p95_lower"`
	LatencyP95Upper     *float64 `json:"latency_p95_upper"`
	Score               *float64 `json:"score"`
	UpdatedAt           string   `json:"updated_at"`
	RequestRateText     string   `json:"request_rate_text"`
	ErrorRatioText      string   `json:"error_ratio_text"`
	LatencyP95Text      string   `json:"latency_p95_text"`
	ScoreText           string   `json:"score_text"`
	// ImpactOf is the deployment id of the callee's rollout this edge is
	// counted against (its calls are harmed since it began); null otherwise.
	ImpactOf *string `json:"impact_of"`
}

// graphData is the answer of GET /v1/graph.
type graphData struct {
	Nodes []graphNode `json:"nodes"`
	Edges []graphEdge `json:"edges"`
}

// externalID is the node id of a dependency that is no known service. It is
// per environment: the callers of one environment share the node.
func externalID(environment, dependency string) string {
	return "external:" + environment + ":" + dependency
}

// calleeResolver finds the service an edge calls.
type calleeResolver struct {
	services map[serviceKey]*serviceView
	byName   map[[2]string][]*serviceView // (environment, service) → views
}

func (s *state) calleeResolver() *calleeResolver {
	r := &calleeResolver{services: s.services, byName: make(map[[2]string][]*serviceView, len(s.services))}
	for k, v := range s.services {
		name := [2]string{k.Environment, k.Service}
		r.byName[name] = append(r.byName[name], v)
	}
	return r
}

// callee is the view an edge calls: the service the processor says it is
// (service), else the one named like the dependency, in the caller's
// namespace and environment, else the one service of that
// name in the caller's environment; nil when there is none (or several),
// which makes the callee an external node.
func (r *calleeResolver) callee(k edgeKey, service string) *serviceView {
	for _, name := range []string{service, k.Dependency} {
		if name == "" {
			continue
		}
		if v, ok := r.services[serviceKey{Namespace: k.Caller.Namespace, Service: name, Environment: k.Caller.Environment}]; ok {
			return v
		}
		if m := r.byName[[2]string{k.Caller.Environment, name}]; len(m) == 1 {
			return m[0]
		}
	}
	return nil
}

// graph builds GET /v1/graph. Without focus: every service, every external
// dependency and every edge. With focus: the focus, its callers and callees,
// and the edges between any two of them. Caller holds mu.
func (s *state) graph(focus *serviceView) graphData {
	type resolvedEdge struct {
		e                  *edge
		callerID, calleeID string
		callee             *serviceView
	}
	r := s.calleeResolver()
	edges := make([]resolvedEdge, 0, len(s.edges))
	for k, e := range s.edges {
		x := resolvedEdge{e: e, callerID: k.Caller.String(), callee: r.callee(k, e.Service)}
		if x.callee != nil {
			x.calleeID = x.callee.Key.String()
		} else {
			x.calleeID = externalID(k.Caller.Environment, k.Dependency)
		}
		edges = append(edges, x)
	}

	// in are the ids of the nodes in the answer: a service's view, or nil for
	// an external dependency.
	in := map[string]*serviceView{}
	if focus == nil {
		for k, v := range s.services {
			in[k.String()] = v
		}
		for _, x := range edges {
			in[x.calleeID] = x.callee
		}
	} else {
		id := focus.Key.String()
		in[id] = focus
		for _, x := range edges {
			if x.callerID == id || x.calleeID == id {
				in[x.callerID] = s.services[x.e.Key.Caller]
				in[x.calleeID] = x.callee
			}
		}
	}

	g := graphData{Nodes: make([]graphNode, 0, len(in)), Edges: []graphEdge{}}
	externals := map[string]edgeKey{}
	for _, x := range edges {
		_, callerIn := in[x.callerID]
		_, calleeIn := in[x.calleeID]
		if !callerIn || !calleeIn {
			continue
		}
		ge := edgeJSON(x.e, x.callerID, x.calleeID)
		if im := s.impactOn(x.e, x.callee); im != nil {
			id := im.Deployment.ID
			ge.ImpactOf = &id
		}
		g.Edges = append(g.Edges, ge)
		if x.callee == nil {
			externals[x.calleeID] = x.e.Key
		}
	}
	for id, v := range in {
		if v != nil {
			g.Nodes = append(g.Nodes, serviceNode(v))
			continue
		}
		k := externals[id]
		g.Nodes = append(g.Nodes, graphNode{ID: id, Service: k.Dependency, Environment: k.Caller.Environment, External: true})
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].ID < g.Nodes[j].ID })
	sort.Slice(g.Edges, func(i, j int) bool {
		a, b := &g.Edges[i], &g.Edges[j]
		if a.Caller != b.Caller {
			return a.Caller < b.Caller
		}
		if a.Callee != b.Callee {
			return a.Callee < b.Callee
		}
		return a.Dependency < b.Dependency
	})
	return g
}

// serviceNode is the node of a view: its effective health (as the status
// page shows it), phase and current deployment.
func serviceNode(v *serviceView) graphNode {
	n := graphNode{
		ID: v.Key.String(), Service: v.Key.Service, Namespace: v.Key.Namespace, Environment: v.Key.Environment,
		Phase: v.Phase, Version: v.Version,
	}
	if n.Phase == "" {
		n.Phase = string(deployevent.PhaseSteady)
	}
	if d := v.Deployment; d != nil {
		n.DeploymentID = d.ID
		if d.Version != "" {
			n.Version = d.Version
		}
	}
	if h := v.effectiveHealth(); h.known() {
		n.HealthVerdict = string(h.Verdict)
		if finiteNum(h.Score) {
			n.HealthScore, n.HealthScoreText = numPtr(h.Score), unitPlain.format(h.Score)
		}
	}
	if !v.ImpactAt.IsZero() {
		impact := v.Impact
		n.ImpactServices = &impact
	}
	return n
}

func edgeJSON(e *edge, callerID, calleeID string) graphEdge {
	rate, ratio, latency := &e.Indicators[edgeRequestRate], &e.Indicators[edgeErrorRatio], &e.Indicators[edgeLatencyP95]
	out := graphEdge{
		Caller: callerID, Callee: calleeID, Dependency: e.Key.Dependency,
		RequestRate: numPtr(rate.Value), ErrorRatio: numPtr(ratio.Value), LatencyP95: numPtr(latency.Value),
		RequestRateBaseline: numPtr(rate.Baseline), ErrorRatioBaseline: numPtr(ratio.Baseline), LatencyP95Baseline: numPtr(latency.Baseline),
		RequestRateLower: numPtr(rate.Lower), RequestRateUpper: numPtr(rate.Upper),
		ErrorRatioLower: numPtr(ratio.Lower), ErrorRatioUpper: numPtr(ratio.Upper),
		LatencyP95Lower: numPtr(latency.Lower), LatencyP95Upper: numPtr(latency.Upper),
		Score:     numPtr(e.Score),
		UpdatedAt: rfc3339(e.At),
	}
	out.RequestRateText = numText(rate.Value, unitOf(edgeIndicatorNames[edgeRequestRate]))
	out.ErrorRatioText = numText(ratio.Value, unitOf(edgeIndicatorNames[edgeErrorRatio]))
	out.LatencyP95Text = numText(latency.Value, unitOf(edgeIndicatorNames[edgeLatencyP95]))
	out.ScoreText = numText(e.Score, unitPlain)
	return out
}

// numPtr is v for JSON: null when it is not a number.
func numPtr(v float64) *float64 {
	if !finiteNum(v) {
		return nil
	}
	return &v
}

// numText is v in unit u, empty when it is not a number.
func numText(v float64, u unit) string {
	if !finiteNum(v) {
		return ""
	}
	return u.format(v)
}

// handleGraph answers GET /v1/graph with the whole service graph, or with
// ?service=S[&environment=E][&namespace=N] the neighbourhood of the one
// service that names (the lookup of /v1/verdict): 404 when none matches,
// 409 when several do, each with the reason.
func (g *gateServer) handleGraph(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := query{Service: v.Get("service"), Environment: v.Get("environment"), Namespace: v.Get("namespace")}
	if q.Service == "" && (v.Has("service") || v.Has("environment") || v.Has("namespace")) {
		writeError(w, http.StatusBadRequest, "query parameter service is required to select a neighbourhood: /v1/graph?service=S[&environment=E][&namespace=N], or /v1/graph for the whole graph")
		return
	}
	g.c.mu.Lock()
	var focus *serviceView
	if q.Service != "" {
		view, matched, why := g.c.st.find(q)
		if view == nil {
			g.c.mu.Unlock()
			status := http.StatusNotFound
			if matched > 1 {
				status = http.StatusConflict
			}
			writeError(w, status, why)
			return
		}
		focus = view
	}
	data := g.c.st.graph(focus)
	g.c.mu.Unlock()
	writeJSON(w, http.StatusOK, data)
}
