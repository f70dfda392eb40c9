// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/deploylens/deploylens/internal/deployevent"
)

func TestLifecycleEventsRoundTrip(t *testing.T) {
	for _, strategy := range []deployevent.Strategy{deployevent.StrategyRolling, deployevent.StrategyCanary} {
		t.Run(string(strategy), func(t *testing.T) {
			sc := testScenario(5)
			sc.Deployment.Strategy = strategy
			sc.Deployment.CanaryDuration = 5 * time.Minute
			var fromLogs, fromSteps []deployevent.Event
			require.NoError(t, sc.Run(func(st Step) error {
				fromSteps = append(fromSteps, st.Events...)
				for _, rl := range st.Logs.ResourceLogs().All() {
					for _, sl := range rl.ScopeLogs().All() {
						for _, lr := range sl.LogRecords().All() {
							if !deployevent.IsLifecycle(lr) {
								continue
							}
							e, err := deployevent.FromLogRecord(rl.Resource(), lr)
							require.NoError(t, err)
							fromLogs = append(fromLogs, e)
						}
					}
				}
				return nil
			}))
			require.Equal(t, sc.Events(), fromSteps, "Step.Events are the scenario's events")
			require.Len(t, fromLogs, len(fromSteps))

			label := sc.Label()
			want := []deployevent.State{deployevent.StateQueued, deployevent.StateStarted, deployevent.StateProgressing, deployevent.StateSucceeded}
			if strategy == deployevent.StrategyCanary {
				want = []deployevent.State{deployevent.StateQueued, deployevent.StateStarted, deployevent.StateProgressing, deployevent.StateProgressing, deployevent.StateSucceeded}
			}
			var states []deployevent.State
			for i, e := range fromLogs {
				states = append(states, e.State)
				assert.Equal(t, fromSteps[i].Timestamp, e.Timestamp)
				assert.Equal(t, "checkout", e.Service)
				assert.Equal(t, "shop", e.Namespace)
				assert.Equal(t, "production", e.Environment)
				assert.Equal(t, "1.5.0", e.Version)
				assert.Equal(t, "1.4.2", e.PreviousVersion)
				assert.Equal(t, label.DeploymentID, e.ID)
				assert.Equal(t, strategy, e.Strategy)
				assert.Equal(t, deployevent.SourceGeneric, e.Source)
				assert.Equal(t, sc.Deployment.Revision, e.Revision)
				assert.True(t, sc.Deployment.CommitTime.Equal(e.CommitTime))
				if i > 0 {
					assert.True(t, e.Timestamp.After(fromLogs[i-1].Timestamp), "events in time order")
				}
			}
			assert.Equal(t, want, states)
			assert.Equal(t, label.DeploymentStart.Add(-time.Minute), fromLogs[0].Timestamp, "queued QueuedFor before the start")
			assert.Equal(t, label.DeploymentStart, fromLogs[1].Timestamp)
			assert.Equal(t, label.RolloutEnd, fromLogs[len(fromLogs)-1].Timestamp, "succeeded when the rollout ends")
		})
	}
}

func TestSilentDeployment(t *testing.T) {
	sc := testScenario(5)
	sc.Deployment.Silent = true
	assert.Empty(t, sc.Events())
	require.NoError(t, sc.Run(func(st Step) error {
		require.Empty(t, st.Events)
		return nil
	}))
	assert.True(t, sc.Label().Silent)
}

func TestLabel(t *testing.T) {
	sc := testScenario(50)
	clean := sc.Label()
	assert.False(t, clean.Regressed)
	assert.Equal(t, KindNone, clean.Kind)
	assert.True(t, clean.RegressionOnset.IsZero())
	assert.Equal(t, testStart.Add(10*time.Minute), clean.DeploymentStart)
	assert.Equal(t, testStart.Add(30*time.Minute), clean.End)
	assert.Equal(t, 50.0, clean.TrafficRPS)
	assert.False(t, clean.LowTraffic())
	assert.Equal(t, "checkout", clean.Service)
	assert.Equal(t, "1.5.0", clean.Version)
	assert.Equal(t, "1.4.2", clean.PreviousVersion)
	assert.NotEmpty(t, clean.DeploymentID)

	sc.Regression = &Regression{Kind: KindLatency, Magnitude: 1.3, StartsAt: 2 * time.Minute}
	regressed := sc.Label()
	assert.True(t, regressed.Regressed)
	assert.Equal(t, KindLatency, regressed.Kind)
	assert.Equal(t, 1.3, regressed.Magnitude)
	assert.Equal(t, regressed.DeploymentStart.Add(2*time.Minute), regressed.RegressionOnset)
	assert.Empty(t, regressed.Cohort)

	low := testScenario(5)
	assert.True(t, low.Label().LowTraffic())
}

func TestDelayedRegressionOnset(t *testing.T) {
	sc := testScenario(100)
	sc.Regression = &Regression{Kind: KindErrorRatio, Magnitude: 3, StartsAt: 5 * time.Minute}
	regressed, _ := collect(t, &sc)
	clean := testScenario(100)
	cleanRequests, _ := collect(t, &clean)
	label := sc.Label()
	between := func(r *request) bool {
		return !r.end.Before(label.RolloutEnd) && r.end.Before(label.RegressionOnset)
	}
	after := func(r *request) bool { return !r.end.Before(label.RegressionOnset) }
	assert.InEpsilon(t, 1, errorRatio(filter(regressed, between))/errorRatio(filter(cleanRequests, between)), 0.25, "healthy until the onset")
	assert.InEpsilon(t, 3, errorRatio(filter(regressed, after))/errorRatio(filter(cleanRequests, after)), 0.2)
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Scenario)
		err    string
	}{
		{"valid", func(*Scenario) {}, ""},
		{"no start", func(s *Scenario) { s.Start = time.Time{} }, "Start"},
		{"no services", func(s *Scenario) { s.Services = nil }, "no services"},
		{"unknown deployed service", func(s *Scenario) { s.Deployment.Service = "nope" }, "not among"},
		{"same version", func(s *Scenario) { s.Deployment.Version = "1.4.2" }, "differ"},
		{"queued before start", func(s *Scenario) { s.Deployment.QueuedFor = time.Hour }, "QueuedFor"},
		{"strategy", func(s *Scenario) { s.Deployment.Strategy = deployevent.StrategyBlueGreen }, "rolling or canary"},
		{"ratios", func(s *Scenario) { s.Services[0].Traffic.ErrorRatio = 0.99 }, "ratios"},
		{"amplitude", func(s *Scenario) { s.Services[0].Traffic.DiurnalAmplitude = 1 }, "DiurnalAmplitude"},
		{"latency order", func(s *Scenario) { s.Services[0].Traffic.LatencyP95 = time.Millisecond }, "LatencyP95"},
		{"throughput magnitude", func(s *Scenario) { s.Regression = &Regression{Kind: KindThroughput, Magnitude: 2} }, "fraction lost"},
		{"unknown kind", func(s *Scenario) { s.Regression = &Regression{Kind: "boom", Magnitude: 1} }, "unknown regression kind"},
		{"canary errors need a canary", func(s *Scenario) { s.Regression = &Regression{Kind: KindCanaryErrors, Magnitude: 3} }, "canary strategy"},
		{"saturation needs metrics", func(s *Scenario) {
			s.Services[0].Signals = SignalTraces
			s.Regression = &Regression{Kind: KindSaturation, Magnitude: 0.3}
		}, "emits metrics"},
		{"late regression", func(s *Scenario) { s.Regression = &Regression{Kind: KindLatency, Magnitude: 2, StartsAt: time.Hour} }, "after the scenario ends"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := testScenario(10)
			sc.Services = append([]Service(nil), sc.Services...)
			tt.modify(&sc)
			err := sc.Validate()
			if tt.err == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, tt.err)
			_, stepsErr := sc.Steps()
			assert.Error(t, stepsErr)
		})
	}
}

func TestShift(t *testing.T) {
	sc := testScenario(20)
	sc.WarmUp, sc.Observe = time.Minute, time.Minute
	const d = 90 * 24 * time.Hour
	var original, shifted []Step
	require.NoError(t, sc.Run(func(st Step) error { original = append(original, st); return nil }))
	require.NoError(t, sc.Run(func(st Step) error { st.Shift(d); shifted = append(shifted, st); return nil }))
	for i := range original {
		o, s := original[i], shifted[i]
		assert.Equal(t, o.Time.Add(d), s.Time)
		for j := range o.Events {
			assert.Equal(t, o.Events[j].Timestamp.Add(d), s.Events[j].Timestamp)
		}
		if o.Traces.SpanCount() > 0 {
			os := o.Traces.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			ss := s.Traces.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
			assert.Equal(t, os.StartTimestamp().AsTime().Add(d), ss.StartTimestamp().AsTime())
			assert.Equal(t, os.EndTimestamp().AsTime().Add(d), ss.EndTimestamp().AsTime())
		}
		if o.Metrics.DataPointCount() > 0 {
			om := o.Metrics.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
			sm := s.Metrics.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Histogram().DataPoints().At(0)
			assert.Equal(t, om.Timestamp().AsTime().Add(d), sm.Timestamp().AsTime())
			assert.Equal(t, om.StartTimestamp().AsTime().Add(d), sm.StartTimestamp().AsTime())
		}
		for k, rl := range s.Logs.ResourceLogs().All() {
			lr := rl.ScopeLogs().At(0).LogRecords().At(0)
			olr := o.Logs.ResourceLogs().At(k).ScopeLogs().At(0).LogRecords().At(0)
			assert.Equal(t, olr.Timestamp().AsTime().Add(d), lr.Timestamp().AsTime())
			if deployevent.IsLifecycle(lr) {
				e, err := deployevent.FromLogRecord(rl.Resource(), lr)
				require.NoError(t, err)
				assert.Equal(t, sc.Deployment.CommitTime.Add(d), e.CommitTime, "commit time moves too")
			}
		}
	}
	label := sc.Label()
	want := label
	label.Shift(d)
	assert.Equal(t, want.DeploymentStart.Add(d), label.DeploymentStart)
	assert.Equal(t, want.End.Add(d), label.End)
	assert.True(t, label.RegressionOnset.IsZero(), "a zero time stays zero")
}

func TestSignalsString(t *testing.T) {
	assert.Equal(t, "traces+metrics+logs", SignalsAll.String())
	assert.Equal(t, "metrics", SignalMetrics.String())
	assert.Equal(t, "none", Signals(0).String())
}
