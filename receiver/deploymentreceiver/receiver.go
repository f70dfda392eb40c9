// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver // import "github.com/deploylens/deploylens/receiver/deploymentreceiver"

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/receiver/deploymentreceiver/internal/metadata"
)

// Paths of the sources. They are the receiver's public contract.
const (
	pathGeneric      = "/v1/deployments"
	pathGitHub       = "/webhooks/github"
	pathGitLab       = "/webhooks/gitlab"
	pathArgoCD       = "/webhooks/argocd"
	pathFlagger      = "/webhooks/flagger"
	pathArgoRollouts = "/webhooks/argo-rollouts"
)

// source is one enabled webhook path: how a request to it is authenticated
// and parsed.
type source struct {
	name string
	path string
	// mediaTypes are the accepted Content-Type media types; "" accepts a
	// request that sends none (notifications-engine sets none by default).
	mediaTypes []string
	// authorize checks credentials over the raw body, before any parsing.
	authorize func(h http.Header, body []byte) error
	// parse turns the body into events. It returns a *requestError for bad
	// input and an *ignoredError for valid deliveries that are not deployments.
	parse func(h http.Header, body []byte) ([]deployevent.Event, error)
}

// requestError is a client error answered with status and a one-line message.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// errUnauthorized never says which credential was wrong, nor echoes it.
var errUnauthorized = &requestError{status: http.StatusUnauthorized, msg: "unauthorized"}

// ignoredError marks a valid delivery that carries no deployment event (a
// GitHub ping, another event type): answered with status, counted, not emitted.
type ignoredError struct {
	status int
	msg    string
}

func (e *ignoredError) Error() string { return e.msg }

type deploymentReceiver struct {
	cfg       *Config
	settings  receiver.Settings
	next      consumer.Logs
	telemetry *metadata.TelemetryBuilder
	obsrecv   *receiverhelper.ObsReport
	sources   map[string]*source
	now       func() time.Time

	server     *http.Server
	addr       string // the address actually listened on (tests use port 0)
	shutdownWG sync.WaitGroup
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*deploymentReceiver, error) {
	telemetry, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obsrecv, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              "http",
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	r := &deploymentReceiver{
		cfg:       cfg,
		settings:  set,
		next:      next,
		telemetry: telemetry,
		obsrecv:   obsrecv,
		sources:   map[string]*source{},
		now:       time.Now,
	}
	for _, s := range r.buildSources() {
		r.sources[s.path] = s
	}
	return r, nil
}

// buildSources returns the enabled sources. Each source's file provides its
// constructor.
func (r *deploymentReceiver) buildSources() []*source {
	var out []*source
	if c := r.cfg.Generic.Get(); c != nil {
		out = append(out, newGenericSource(c))
	}
	if c := r.cfg.GitHub.Get(); c != nil {
		out = append(out, newGitHubSource(c))
	}
	if c := r.cfg.GitLab.Get(); c != nil {
		out = append(out, newGitLabSource(c))
	}
	if c := r.cfg.ArgoCD.Get(); c != nil {
		out = append(out, newArgoCDSource(c))
	}
	if c := r.cfg.Flagger.Get(); c != nil {
		out = append(out, newFlaggerSource(c))
	}
	if c := r.cfg.ArgoRollouts.Get(); c != nil {
		out = append(out, newArgoRolloutsSource(c))
	}
	return out
}

func (r *deploymentReceiver) Start(ctx context.Context, host component.Host) error {
	if gh := r.cfg.GitHub.Get(); gh != nil && gh.Secret == "" && !gh.InsecureSkipVerify {
		r.settings.Logger.Warn("github: no secret configured; every GitHub delivery will be refused with 401 (set github::secret, or github::insecure_skip_verify: true)")
	}
	listener, err := r.cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", r.cfg.NetAddr.Endpoint, err)
	}
	r.server, err = r.cfg.ToServer(ctx, host.GetExtensions(), r.settings.TelemetrySettings, r)
	if err != nil {
		_ = listener.Close()
		return err
	}
	r.shutdownWG.Add(1)
	go func() {
		defer r.shutdownWG.Done()
		if errHTTP := r.server.Serve(listener); errHTTP != nil && !errors.Is(errHTTP, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(errHTTP))
		}
	}()
	r.addr = listener.Addr().String()
	r.settings.Logger.Info("deployment receiver listening", zap.String("endpoint", r.addr))
	return nil
}

func (r *deploymentReceiver) Shutdown(ctx context.Context) error {
	var err error
	if r.server != nil {
		err = r.server.Shutdown(ctx)
	}
	r.shutdownWG.Wait()
	r.telemetry.Shutdown()
	return err
}

// ServeHTTP routes a request to its source and answers per the receiver's
// contract: 404 unknown path, 405 wrong method, 415 wrong content type, 413
// too large, 401 bad credentials, 400 bad input, 503 + Retry-After when the
// pipeline refuses, 200 with the accepted deployment ids otherwise.
func (r *deploymentReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	src, ok := r.sources[req.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "no deployment source at "+strconv.Quote(req.URL.Path))
		return
	}
	ctx := req.Context()
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.refuse(ctx, w, src, "method_not_allowed", http.StatusMethodNotAllowed, "method "+req.Method+" not allowed; use POST")
		return
	}
	if !acceptsMediaType(src.mediaTypes, req.Header.Get("Content-Type")) {
		r.refuse(ctx, w, src, "unsupported_media_type", http.StatusUnsupportedMediaType,
			fmt.Sprintf("content type %q not supported; send %s", req.Header.Get("Content-Type"), mediaTypeList(src.mediaTypes)))
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.refuse(ctx, w, src, "too_large", http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body larger than max_request_body_size (%d bytes)", tooLarge.Limit))
			return
		}
		r.refuse(ctx, w, src, "bad_request", http.StatusBadRequest, "failed to read request body: "+err.Error())
		return
	}
	if err = src.authorize(req.Header, body); err != nil {
		r.refuse(ctx, w, src, "unauthorized", http.StatusUnauthorized, "unauthorized")
		return
	}
	events, err := src.parse(req.Header, body)
	if err != nil {
		var ignored *ignoredError
		if errors.As(err, &ignored) {
			r.telemetry.ReceiverDeploymentRequestsRefused.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
				attribute.String("source", src.name), attribute.String("reason", "ignored_event"))))
			writeJSON(w, ignored.status, map[string]any{"accepted": 0, "message": ignored.msg})
			return
		}
		var reqErr *requestError
		if errors.As(err, &reqErr) {
			r.refuse(ctx, w, src, "bad_request", reqErr.status, reqErr.msg)
			return
		}
		r.refuse(ctx, w, src, "bad_request", http.StatusBadRequest, err.Error())
		return
	}
	r.deliver(ctx, w, src, events)
}

// deliver completes the events with defaults, passes them on as one plog.Logs
// and answers the client.
func (r *deploymentReceiver) deliver(ctx context.Context, w http.ResponseWriter, src *source, events []deployevent.Event) {
	now := r.now()
	logs := plog.NewLogs()
	ids := make([]string, 0, len(events))
	for i := range events {
		e := &events[i]
		if e.Environment == "" {
			e.Environment = r.cfg.DefaultEnvironment
		}
		if e.Timestamp.IsZero() {
			e.Timestamp = now
		}
		if e.Source == "" {
			e.Source = src.name
		}
		e.AppendTo(logs, now)
		ids = append(ids, e.ID)
	}
	ctx = r.obsrecv.StartLogsOp(ctx)
	err := r.next.ConsumeLogs(ctx, logs)
	r.obsrecv.EndLogsOp(ctx, metadata.Type.String(), len(events), err)
	if err != nil {
		if consumererror.IsPermanent(err) {
			r.refuse(ctx, w, src, "pipeline_refused", http.StatusBadRequest, "pipeline rejected the events permanently: "+err.Error())
			return
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(r.retryAfter().Seconds())))
		r.refuse(ctx, w, src, "pipeline_refused", http.StatusServiceUnavailable, "pipeline refused the events, retry later")
		return
	}
	srcAttr := metric.WithAttributeSet(attribute.NewSet(attribute.String("source", src.name)))
	r.telemetry.ReceiverDeploymentRequestsAccepted.Add(ctx, 1, srcAttr)
	r.telemetry.ReceiverDeploymentEventsEmitted.Add(ctx, int64(len(events)), srcAttr)
	writeJSON(w, http.StatusOK, map[string]any{"accepted": len(events), "deployment_ids": ids})
}

func (r *deploymentReceiver) retryAfter() time.Duration {
	if r.cfg.RetryAfter > 0 {
		return r.cfg.RetryAfter
	}
	return defaultRetryAfter
}

func (r *deploymentReceiver) refuse(ctx context.Context, w http.ResponseWriter, src *source, reason string, status int, msg string) {
	r.telemetry.ReceiverDeploymentRequestsRefused.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String("source", src.name), attribute.String("reason", reason))))
	writeError(w, status, msg)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func acceptsMediaType(accepted []string, contentType string) bool {
	mediaType := ""
	if contentType != "" {
		var err error
		if mediaType, _, err = mime.ParseMediaType(contentType); err != nil {
			return false
		}
	}
	for _, a := range accepted {
		if a == mediaType {
			return true
		}
	}
	return false
}

func mediaTypeList(accepted []string) string {
	out := ""
	for _, a := range accepted {
		if a == "" {
			continue
		}
		if out != "" {
			out += " or "
		}
		out += a
	}
	return out
}

// bearerAuthorizer checks `Authorization: Bearer <token>` in constant time;
// an empty token accepts every request.
func bearerAuthorizer(token string) func(http.Header, []byte) error {
	if token == "" {
		return func(http.Header, []byte) error { return nil }
	}
	want := []byte("Bearer " + token)
	return func(h http.Header, _ []byte) error {
		if subtle.ConstantTimeCompare([]byte(h.Get("Authorization")), want) != 1 {
			return errUnauthorized
		}
		return nil
	}
}

// compile-time check: the receiver serves HTTP itself.
var (
	_ http.Handler        = (*deploymentReceiver)(nil)
	_ receiver.Logs       = (*deploymentReceiver)(nil)
	_ component.Component = (*deploymentReceiver)(nil)
)
