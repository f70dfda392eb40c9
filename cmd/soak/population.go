// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/scenario"
)

const (
	soakNamespace   = "soak"
	soakEnvironment = "soak"
)

// service is one simulated application: it reports until goneAt, and
// deploys a new version now and then.
type service struct {
	name            string
	version         int
	goneAt          time.Time
	nextDeploy      time.Time
	deploying       bool
	deploymentID    string
	deployEnd       time.Time
	outcome         deployevent.State
	requests        uint64 // cumulative count behind the histogram stream
	durationSumMsec float64
}

// population is the churning set of services: each lives about lifetime,
// then vanishes and a new one (a new name) takes its place.
type population struct {
	rng      *rand.Rand
	size     int
	lifetime time.Duration
	active   []*service
	next     int
	// vanished records when each service that stopped reporting last reported.
	vanished map[string]time.Time

	deploymentsStarted, deploymentsEnded int
	spans, points                        int
}

func newPopulation(seed uint64, size int, lifetime time.Duration) *population {
	return &population{
		rng:      rand.New(rand.NewPCG(seed, seed^0x5eed)), //nolint:gosec // load, not security
		size:     size,
		lifetime: lifetime,
		vanished: map[string]time.Time{},
	}
}

// jitter is d scaled by a uniform factor in [lo, hi).
func (p *population) jitter(d time.Duration, lo, hi float64) time.Duration {
	return time.Duration(float64(d) * (lo + p.rng.Float64()*(hi-lo)))
}

func (p *population) spawn(now time.Time) *service {
	p.next++
	s := &service{name: fmt.Sprintf("svc-%06d", p.next), version: 1, goneAt: now.Add(p.jitter(p.lifetime, 0.5, 1.5))}
	s.nextDeploy = now.Add(p.jitter(p.lifetime, 0.05, 0.4))
	return s
}

// distinct is the number of services that have reported so far.
func (p *population) distinct() int { return p.next }

// tick retires the services whose time is up, fills the population back
// to size, moves deployments on and returns the data of this second.
func (p *population) tick(now time.Time, lastSent time.Time) scenario.Step {
	kept := p.active[:0]
	for _, s := range p.active {
		if now.Before(s.goneAt) {
			kept = append(kept, s)
			continue
		}
		p.vanished[s.name] = lastSent
	}
	for i := len(kept); i < len(p.active); i++ {
		p.active[i] = nil
	}
	p.active = kept
	for len(p.active) < p.size {
		p.active = append(p.active, p.spawn(now))
	}

	st := scenario.Step{Time: now, Logs: plog.NewLogs(), Traces: ptrace.NewTraces(), Metrics: pmetric.NewMetrics()}
	for _, s := range p.active {
		p.lifecycle(s, now, &st)
	}
	for _, s := range p.active {
		p.telemetry(s, now, &st)
	}
	return st
}

func (p *population) event(s *service, state deployevent.State, now time.Time, st *scenario.Step) {
	e := deployevent.Event{
		Service: s.name, Namespace: soakNamespace, Environment: soakEnvironment,
		Version: fmt.Sprintf("v%d", s.version), PreviousVersion: fmt.Sprintf("v%d", s.version-1),
		ID: s.deploymentID, Name: s.name, State: state, Strategy: deployevent.StrategyRolling,
		Source: "generic", Timestamp: now,
	}
	e.AppendTo(st.Logs, now)
	st.Events = append(st.Events, e)
}

// lifecycle starts and ends deployments: most succeed, some fail (an alert
// of their own), some are rolled back.
func (p *population) lifecycle(s *service, now time.Time, st *scenario.Step) {
	switch {
	case !s.deploying && !now.Before(s.nextDeploy):
		s.version++
		s.deploying = true
		s.deploymentID = fmt.Sprintf("%s-d%d", s.name, s.version)
		s.deployEnd = now.Add(p.jitter(10*time.Second, 0.5, 1.5))
		switch r := p.rng.Float64(); {
		case r < 0.2:
			s.outcome = deployevent.StateFailed
		case r < 0.3:
			s.outcome = deployevent.StateRolledBack
		default:
			s.outcome = deployevent.StateSucceeded
		}
		p.event(s, deployevent.StateStarted, now, st)
		p.deploymentsStarted++
	case s.deploying && !now.Before(s.deployEnd):
		p.event(s, s.outcome, now, st)
		p.deploymentsEnded++
		s.deploying = false
		s.nextDeploy = now.Add(p.jitter(p.lifetime, 0.2, 0.6))
	}
}

// telemetry is two server spans and two metric points (a CPU gauge and a
// cumulative latency histogram) per service per second. A deployment that
// will fail errs on a third of its requests meanwhile.
func (p *population) telemetry(s *service, now time.Time, st *scenario.Step) {
	version := fmt.Sprintf("v%d", s.version)
	failing := s.deploying && s.outcome != deployevent.StateSucceeded
	ts := pcommon.NewTimestampFromTime(now)

	rs := st.Traces.ResourceSpans().AppendEmpty()
	setResource(rs.Resource().Attributes(), s.name, version)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 2 {
		span := spans.AppendEmpty()
		var traceID pcommon.TraceID
		var spanID pcommon.SpanID
		fillRandom(p.rng, traceID[:])
		fillRandom(p.rng, spanID[:])
		span.SetTraceID(traceID)
		span.SetSpanID(spanID)
		span.SetName("GET /items")
		span.SetKind(ptrace.SpanKindServer)
		latency := p.jitter(20*time.Millisecond, 0.5, 2)
		span.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-latency - time.Duration(i)*time.Millisecond)))
		span.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(i) * time.Millisecond)))
		if failing && p.rng.IntN(3) == 0 {
			span.Status().SetCode(ptrace.StatusCodeError)
		}
		span.Attributes().PutStr("http.request.method", "GET")
		span.Attributes().PutInt("http.response.status_code", 200)
		s.requests++
		s.durationSumMsec += float64(latency) / float64(time.Millisecond)
	}
	p.spans += 2

	rm := st.Metrics.ResourceMetrics().AppendEmpty()
	setResource(rm.Resource().Attributes(), s.name, version)
	metrics := rm.ScopeMetrics().AppendEmpty().Metrics()
	cpu := metrics.AppendEmpty()
	cpu.SetName("process.cpu.utilization")
	cpu.SetUnit("1")
	dp := cpu.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(0.2 + 0.1*p.rng.Float64())

	hist := metrics.AppendEmpty()
	hist.SetName("http.server.request.duration")
	hist.SetUnit("ms")
	h := hist.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := h.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts)
	hp.SetCount(s.requests)
	hp.SetSum(s.durationSumMsec)
	hp.ExplicitBounds().FromRaw([]float64{10, 25, 50, 100})
	hp.BucketCounts().FromRaw([]uint64{0, s.requests, 0, 0, 0})
	p.points += 2
}

func setResource(attrs pcommon.Map, name, version string) {
	attrs.PutStr(deployevent.AttrServiceName, name)
	attrs.PutStr(deployevent.AttrServiceNamespace, soakNamespace)
	attrs.PutStr(deployevent.AttrEnvironment, soakEnvironment)
	attrs.PutStr(deployevent.AttrServiceVersion, version)
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
