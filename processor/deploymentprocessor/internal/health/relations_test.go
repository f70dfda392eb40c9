// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

var (
	payment       = Key{Namespace: "shop", Service: "payment", Environment: "prod"}
	checkoutCalls = Key{Namespace: "shop", Service: "checkout", Environment: "prod", Dependency: "payment"}
)

// mesh is checkout calling payment: an engine of services reading an
// engine of edges, the edges' status as the processor derives it.
type mesh struct {
	w              *world
	services, deps *Engine
	rng            *rand.Rand
	at             time.Duration
}

func newMesh(t *testing.T) *mesh {
	t.Helper()
	m := &mesh{w: newWorld(), rng: rand.New(rand.NewPCG(3, 4))} //nolint:gosec // test data
	edgeStatus := func(k Key) Status {
		caller := m.w.Status(k.Caller())
		caller.Subject = k.Caller()
		if callee := m.w.Status(k.Callee()); callee.Phase == deployevent.PhaseDuring || callee.Phase == deployevent.PhasePost {
			callee.Subject = k.Callee()
			return callee
		}
		return caller
	}
	cfg := DefaultConfig()
	cfg.Now = m.w.Now
	ec := cfg
	ec.Edges, ec.Indicators, ec.MaxDependencies = true, nil, 4
	ec.SpanKinds = []ptrace.SpanKind{ptrace.SpanKindClient, ptrace.SpanKindProducer}
	var err error
	m.deps, err = New(ec, edgeStatus)
	require.NoError(t, err)
	cfg.Relations = m.deps
	m.services, err = New(cfg, m.w.Status)
	require.NoError(t, err)
	m.w.set(checkout, deployevent.PhaseSteady, "", "")
	m.w.set(payment, deployevent.PhaseSteady, "", "")
	return m
}

// load is one interval's traffic of a key, as spans of kind.
type load struct {
	e          *Engine
	key        Key
	kind       ptrace.SpanKind
	rps        float64
	errorRatio float64
}

func (m *mesh) step(loads ...load) {
	for _, l := range loads {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		n := int(l.rps * 10)
		for i := range n {
			end := t0.Add(m.at + time.Duration(float64(i)+0.5)*10*time.Second/time.Duration(n))
			latency := 0.05 * math.Exp(0.5*m.rng.NormFloat64())
			sp := spans.AppendEmpty()
			sp.SetKind(l.kind)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(end.Add(-time.Duration(latency * float64(time.Second)))))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
			if m.rng.Float64() < l.errorRatio {
				sp.Status().SetCode(ptrace.StatusCodeError)
			}
		}
		s := l.e.Series(l.key)
		src := &indicators.Source{Instance: 1, Identity: 1, Now: t0.Add(m.at + 10*time.Second).UnixNano()}
		s.Lock()
		s.AddSpans(src, td.ResourceSpans().At(0).ScopeSpans())
		s.Unlock()
	}
	m.at += 10 * time.Second
	now := t0.Add(m.at + 5*time.Second)
	m.w.mu.Lock()
	m.w.now = now
	m.w.mu.Unlock()
	// Edges first, as the processor's sweep does not promise: either order works.
	m.deps.Sweep(now)
	m.services.Sweep(now)
}

// run sends n intervals of checkout (its own requests and its calls to
// payment, whose errors are callsFail) and payment's own requests
// (paymentFails), checkout's own failing as checkoutFails.
func (m *mesh) run(n int, checkoutFails, callsFail, paymentFails float64) {
	for range n {
		m.step(
			load{e: m.services, key: checkout, kind: ptrace.SpanKindServer, rps: 40, errorRatio: checkoutFails},
			load{e: m.deps, key: checkoutCalls, kind: ptrace.SpanKindClient, rps: 30, errorRatio: callsFail},
			load{e: m.services, key: payment, kind: ptrace.SpanKindServer, rps: 60, errorRatio: paymentFails},
		)
	}
}

func (m *mesh) snapshot(t *testing.T, k Key) *Snapshot {
	t.Helper()
	snap := m.services.Snapshot(k)
	require.NotNil(t, snap)
	return snap
}

// TestImpactFailsTheCallee: payment's rollout breaks only checkout's calls
// to it (its own spans stay clean): the harm counts against payment's
// deployment, names checkout, and explains checkout's calls.
func TestImpactFailsTheCallee(t *testing.T) {
	m := newMesh(t)
	m.run(60, 0.005, 0.005, 0.005)
	require.False(t, m.snapshot(t, payment).Alarm())
	m.w.set(payment, deployevent.PhaseDuring, "pay-2", deployevent.StrategyRolling)
	m.run(18, 0.005, 0.08, 0.005)

	snap := m.snapshot(t, payment)
	assert.True(t, snap.Alarm(), "the callers' harm fails the deployment: %+v", snap.Health)
	require.NotEmpty(t, snap.Health.Impact)
	assert.Equal(t, checkout, snap.Health.Impact[0].Peer)
	assert.Equal(t, "pay-2", snap.Health.Impact[0].DeploymentID)
	assert.Equal(t, indicators.ErrorRatio, snap.Health.Impact[0].Evidence.Indicator)
	ev := relationEvidence(t, &snap.Health, RelationCaller)
	assert.Equal(t, checkout, ev.Peer)
	assert.Equal(t, indicators.DimensionDependencies, ev.Dimension)

	caller := m.snapshot(t, checkout)
	require.NotEmpty(t, caller.Health.ExplainedBy, "checkout's calls are explained by payment's rollout")
	assert.Equal(t, payment, caller.Health.ExplainedBy[0].Peer)
	assert.Equal(t, "pay-2", caller.Health.ExplainedBy[0].DeploymentID)
	assert.False(t, caller.Alarm(), "checkout's own requests are healthy and the edge is payment's")
	edge := m.deps.Snapshot(checkoutCalls)
	require.NotNil(t, edge)
	assert.Equal(t, payment, edge.Subject)
}

// TestCleanCalleeRolloutHasNoImpact: the same rollout, harmless.
func TestCleanCalleeRolloutHasNoImpact(t *testing.T) {
	m := newMesh(t)
	m.run(60, 0.005, 0.005, 0.005)
	m.w.set(payment, deployevent.PhaseDuring, "pay-2", deployevent.StrategyRolling)
	m.run(18, 0.005, 0.005, 0.005)
	snap := m.snapshot(t, payment)
	assert.False(t, snap.Alarm())
	assert.Empty(t, snap.Health.Impact)
	assert.Empty(t, m.snapshot(t, checkout).Health.ExplainedBy)
}

// TestCallerOwnRegressionIsItsOwn: checkout's rollout fails its own
// requests; its calls to payment stay healthy: blamed on checkout alone.
func TestCallerOwnRegressionIsItsOwn(t *testing.T) {
	m := newMesh(t)
	m.run(60, 0.005, 0.005, 0.005)
	m.w.set(checkout, deployevent.PhaseDuring, "co-7", deployevent.StrategyRolling)
	m.run(18, 0.06, 0.005, 0.005)
	caller := m.snapshot(t, checkout)
	assert.True(t, caller.Alarm())
	assert.Empty(t, caller.Health.ExplainedBy)
	assert.False(t, m.snapshot(t, payment).Alarm())
	assert.Empty(t, m.snapshot(t, payment).Health.Impact)
}

// TestDependencyRolloutExplainsTheCallersRegression: payment's rollout
// fails the calls and, through them, checkout's own requests, while an
// unrelated rollout of checkout runs: payment's deployment is blamed, not
// checkout's.
func TestDependencyRolloutExplainsTheCallersRegression(t *testing.T) {
	m := newMesh(t)
	m.run(60, 0.005, 0.005, 0.005)
	m.w.set(checkout, deployevent.PhaseDuring, "co-7", deployevent.StrategyRolling)
	m.w.set(payment, deployevent.PhaseDuring, "pay-2", deployevent.StrategyRolling)
	m.run(18, 0.06, 0.08, 0.03)
	caller := m.snapshot(t, checkout)
	assert.False(t, caller.Alarm(), "checkout's regression is payment's: %+v", caller.Health)
	require.NotEmpty(t, caller.Health.ExplainedBy)
	assert.Equal(t, "payment", evidence(&caller.Health, indicators.ErrorRatio).ExplainedBy)
	assert.True(t, m.snapshot(t, payment).Alarm())
}

// TestOwnDependencyHarmCountsAgainstTheCaller: checkout's rollout breaks its
// calls to payment (payment does not deploy): the dependencies dimension of
// checkout's health.
func TestOwnDependencyHarmCountsAgainstTheCaller(t *testing.T) {
	m := newMesh(t)
	m.run(60, 0.005, 0.005, 0.005)
	m.w.set(checkout, deployevent.PhaseDuring, "co-7", deployevent.StrategyRolling)
	m.run(18, 0.005, 0.1, 0.005)
	caller := m.snapshot(t, checkout)
	assert.True(t, caller.Alarm(), "%+v", caller.Health)
	ev := relationEvidence(t, &caller.Health, RelationDependency)
	assert.Equal(t, Key{Namespace: "shop", Service: "payment", Environment: "prod"}, ev.Peer)
	dims := map[indicators.Dimension]DimensionScore{}
	for _, d := range caller.Health.Dimensions {
		dims[d.Dimension] = d
	}
	assert.True(t, dims[indicators.DimensionDependencies].Judged)
	assert.Less(t, dims[indicators.DimensionDependencies].Score, 50.0)
	assert.Empty(t, m.snapshot(t, payment).Health.Impact)
}

// TestDependenciesPerServiceAreBounded: a caller's edges beyond
// MaxDependencies are refused and counted; forgetting the caller drops its edges.
func TestDependenciesPerServiceAreBounded(t *testing.T) {
	m := newMesh(t)
	for i := range 6 {
		k := checkoutCalls
		k.Dependency = string(rune('a' + i))
		if i < 4 {
			assert.NotNil(t, m.deps.Series(k))
		} else {
			assert.Nil(t, m.deps.Series(k))
		}
	}
	assert.Equal(t, uint64(2), m.deps.DependencyRefused())
	assert.Equal(t, 4, m.deps.Len())
	n := 0
	m.deps.Outgoing(checkout, func(*Snapshot) { n++ })
	assert.Zero(t, n, "no snapshot before an evaluation")
	m.deps.ForgetCaller(checkout)
	assert.Zero(t, m.deps.Len())
	assert.Equal(t, uint64(4), m.deps.Evicted())
	assert.NotNil(t, m.deps.Series(checkoutCalls), "room again")
}

// TestEdgeStateSurvivesARestart: an engine of edges saves its keys with
// their dependency, and a services' state of version 1 still loads.
func TestEdgeStateSurvivesARestart(t *testing.T) {
	m := newMesh(t)
	m.run(30, 0.005, 0.005, 0.005)
	saved := m.deps.MarshalState(m.w.Now())
	other := newMesh(t)
	n, err := other.deps.RestoreState(saved, m.w.Now())
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.True(t, other.deps.Has(checkoutCalls))
	// An engine of services takes no edges, and an engine of edges no services.
	n, err = other.services.RestoreState(saved, m.w.Now())
	require.NoError(t, err)
	assert.Zero(t, n)
	v1 := m.services.MarshalState(m.w.Now())
	n, err = other.deps.RestoreState(v1, m.w.Now())
	require.NoError(t, err)
	assert.Zero(t, n)
}

func relationEvidence(t *testing.T, h *Health, kind RelationKind) Evidence {
	t.Helper()
	for _, ev := range h.Indicators {
		if ev.Relation == kind {
			return ev
		}
	}
	require.Failf(t, "no evidence", "no %s evidence in %+v", kind, h.Indicators)
	return Evidence{}
}
