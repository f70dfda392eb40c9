// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// Paths of the gate server: its public contract.
const (
	pathVerdict  = "/v1/verdict"
	pathGate     = "/v1/gate"
	pathRollback = "/v1/gate/rollback"
	pathStatus   = "/v1/status"
)

// Decisions of POST /v1/gate and POST /v1/gate/rollback.
const (
	decisionAdvance    = "advance"
	decisionHold       = "hold"
	decisionRollback   = "rollback"
	decisionNoRollback = "no_rollback"
)

// maxGateBody bounds a Flagger webhook body (a few hundred bytes in practice).
const maxGateBody = 64 << 10

type gateServer struct {
	c   *core
	cfg *GateConfig
	mux *http.ServeMux

	server *http.Server
	addr   string // the address actually listened on (tests use port 0)
	wg     sync.WaitGroup
}

func newGateServer(c *core, cfg *GateConfig) *gateServer {
	g := &gateServer{c: c, cfg: cfg, mux: http.NewServeMux()}
	g.mux.HandleFunc("GET /{$}", g.handlePage)
	g.mux.HandleFunc("GET "+pathStatus, g.handleStatus)
	g.mux.HandleFunc("GET "+pathVerdict, g.handleVerdict)
	g.mux.HandleFunc("GET "+pathGraph, g.handleGraph)
	g.mux.HandleFunc("POST "+pathGate, g.handleGate)
	g.mux.HandleFunc("POST "+pathRollback, g.handleRollback)
	return g
}

func (g *gateServer) start(ctx context.Context, host component.Host) error {
	listener, err := g.cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("gate: failed to listen on %s: %w", g.cfg.NetAddr.Endpoint, err)
	}
	g.server, err = g.cfg.ToServer(ctx, host.GetExtensions(), g.c.set.TelemetrySettings, g.mux)
	if err != nil {
		_ = listener.Close()
		return err
	}
	g.addr = listener.Addr().String()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if errHTTP := g.server.Serve(listener); errHTTP != nil && !errors.Is(errHTTP, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(errHTTP))
		}
	}()
	g.c.logger.Info("rollout gate listening", zap.String("endpoint", g.addr))
	return nil
}

func (g *gateServer) shutdown(ctx context.Context) error {
	var err error
	if g.server != nil {
		err = g.server.Shutdown(ctx)
	}
	g.wg.Wait()
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (g *gateServer) count(ctx context.Context, endpoint, verdict string) {
	g.c.telemetry.ExporterDeploymentGateRequests.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String("endpoint", endpoint), attribute.String("verdict", verdict))))
}

func (g *gateServer) judge(q query) verdictResult {
	now := g.c.now()
	g.c.mu.Lock()
	defer g.c.mu.Unlock()
	return g.c.st.verdict(q, now, g.cfg)
}

// handleVerdict answers GET /v1/verdict?service=S&environment=E[&namespace=N]
// with 200 and the verdict, whatever it is: for Argo Rollouts' web provider a
// non-2xx status is an Error, not a Failure. Only a query without service is
// a 400.
func (g *gateServer) handleVerdict(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := query{Service: v.Get("service"), Environment: v.Get("environment"), Namespace: v.Get("namespace")}
	if q.Service == "" {
		writeError(w, http.StatusBadRequest, "query parameter service is required: /v1/verdict?service=S&environment=E[&namespace=N]")
		return
	}
	res := g.judge(q)
	g.count(r.Context(), "verdict", res.Verdict)
	writeJSON(w, http.StatusOK, res)
}

// flaggerPayload is the body Flagger POSTs to every webhook.
type flaggerPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     string            `json:"phase"`
	Checksum  string            `json:"checksum"`
	Metadata  map[string]string `json:"metadata"`
}

// flaggerQuery reads a Flagger webhook body: service from metadata.service
// else name, environment from metadata.environment else namespace, and
// service.namespace from metadata.namespace when given.
func flaggerQuery(w http.ResponseWriter, r *http.Request) (query, bool) {
	var p flaggerPayload
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxGateBody))
	if err := dec.Decode(&p); err != nil {
		writeError(w, http.StatusBadRequest, "body is not a Flagger webhook payload: "+err.Error())
		return query{}, false
	}
	q := query{Service: p.Metadata["service"], Environment: p.Metadata["environment"], Namespace: p.Metadata["namespace"]}
	if q.Service == "" {
		q.Service = p.Name
	}
	if q.Environment == "" {
		q.Environment = p.Namespace
	}
	if strings.TrimSpace(q.Service) == "" {
		writeError(w, http.StatusBadRequest, "no service: set name, or metadata.service")
		return query{}, false
	}
	return q, true
}

// handleGate answers Flagger's gating hooks (confirm-rollout,
// confirm-traffic-increase, confirm-promotion, pre-rollout, rollout): 200 when
// the deployment may advance, 412 with the reasons when it must not (Flagger
// counts anything above 202 as a failed check).
func (g *gateServer) handleGate(w http.ResponseWriter, r *http.Request) {
	q, ok := flaggerQuery(w, r)
	if !ok {
		return
	}
	now := g.c.now()
	res := g.judge(q)
	g.count(r.Context(), "gate", res.Verdict)
	if gateAllows(&res, now, g.cfg) {
		res.Decision = decisionAdvance
		writeJSON(w, http.StatusOK, res)
		return
	}
	res.Decision = decisionHold
	writeJSON(w, http.StatusPreconditionFailed, res)
}

// handleRollback answers Flagger's rollback hook, polled while a canary runs:
// 200 tells Flagger to roll back, so it is answered only when deploylens
// recommends rollback; otherwise 412 (the precondition for a rollback does
// not hold), which Flagger reads as "not signalling a rollback".
func (g *gateServer) handleRollback(w http.ResponseWriter, r *http.Request) {
	q, ok := flaggerQuery(w, r)
	if !ok {
		return
	}
	res := g.judge(q)
	g.count(r.Context(), "rollback", res.Verdict)
	if res.Recommendation == string(deployevent.RecommendRollback) {
		res.Decision = decisionRollback
		writeJSON(w, http.StatusOK, res)
		return
	}
	res.Decision = decisionNoRollback
	writeJSON(w, http.StatusPreconditionFailed, res)
}
