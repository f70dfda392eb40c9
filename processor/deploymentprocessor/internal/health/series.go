// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package health // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/health"

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/deploylens/deploylens/internal/deployevent"
	"github.com/deploylens/deploylens/internal/detector"
	"github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"
)

// recentWeight is the weight of the last interval in an indicator's recent
// level: a span of about six intervals.
const recentWeight = 2.0 / 7

// minLogEvents is the expected number of error log records per interval
// under which the detector's judgement of the error log rate is
// inconclusive (a count that small is mostly zeros and ones).
const minLogEvents = 5

// Series is the health state of one key.
type Series struct {
	mu     sync.Mutex
	engine *Engine
	key    Key

	window  *indicators.Window
	streams *indicators.Streams
	// lastSeen is the processor's clock when data last came, unix ns;
	// opened when the current interval opened (or last closed).
	lastSeen, opened int64

	inds []indicatorState
	// valueBuf holds the indicators' values of the interval being closed.
	valueBuf []float64
	// fits learn how each gauge indicator follows the load (nil for others);
	// load is the smoothed request rate per instance they follow, and
	// loadNoise the sampling variance of one interval's rate.
	fits            []*loadFit
	load, loadNoise float64
	loadN           float64

	// frozen is set while a deployment is judged against the state before
	// it; judged is that deployment's id.
	frozen bool
	judged string
	// recent is the window before a deployment (the reference once frozen);
	// post the window since it; cohorts the baseline and canary cohorts'.
	recent, post rolling
	cohorts      [2]rolling
	// cohortsSeen is set once both cohorts sent data in this deployment.
	cohortsSeen bool
	strategy    string
	// phase is the phase at the last closed interval.
	phase deployevent.Phase

	// loadShifted: this interval's request rate is past its drift from the
	// baseline (a surge, a quiet hour); set by request_rate's judgement, the
	// first of every interval.
	loadShifted bool

	keyVerdict    Hysteresis
	cohortVerdict [2]Hysteresis
	lastEval      int64

	snapshot atomic.Pointer[Snapshot]
}

type indicatorState struct {
	det *detector.Detector
	// last is the detector's judgement of the last interval with a value.
	last      detector.Result
	lastValid bool
	// recent is an exponentially weighted mean of the last intervals'
	// values (about a minute): the present level, steadier than one interval.
	recent      float64
	recentValid bool
	// The strongest evidence since the last evaluation (steady keys are
	// evaluated once per several intervals).
	judged  bool
	harmful bool
	worst   detector.Result
}

func (e *Engine) newSeries(key Key) *Series {
	s := &Series{engine: e, key: key, window: indicators.NewWindow(e.cfg.IntervalActive, len(e.cfg.Indicators))}
	s.inds = make([]indicatorState, len(e.specs))
	s.fits = make([]*loadFit, len(e.specs))
	for i, sp := range e.specs {
		if sp.kind == kindGauge {
			s.fits[i] = &loadFit{}
		}
		cfg := detector.DefaultConfig()
		cfg.Direction = sp.dir
		s.inds[i].det = detector.New(cfg)
	}
	return s
}

// Lock and Unlock guard the series for the Add* calls.
func (s *Series) Lock()   { s.mu.Lock() }
func (s *Series) Unlock() { s.mu.Unlock() }

// AddSpans counts a resource's spans; the series must be locked.
func (s *Series) AddSpans(src *indicators.Source, scopes ptrace.ScopeSpansSlice) {
	s.seen(src.Now)
	s.engine.extractor.AddSpans(s.window, src, scopes, s)
}

// AddSpan counts one span whatever its kind (an edge's call); the series
// must be locked.
func (s *Series) AddSpan(src *indicators.Source, span ptrace.Span) {
	s.seen(src.Now)
	s.engine.extractor.AddSpan(s.window, src, span, s)
}

// AddCall counts one call whose failure the caller read
// (indicators.ReadCall); the series must be locked.
func (s *Series) AddCall(src *indicators.Source, span ptrace.Span, failed bool) {
	s.seen(src.Now)
	s.engine.extractor.AddSpanOutcome(s.window, src, span, failed, s)
}

// AddDependencyMetric counts the points of a client duration histogram
// that call dep (an edge's calls); the series must be locked.
func (s *Series) AddDependencyMetric(src *indicators.Source, m pmetric.Metric, dep indicators.DependencyName) {
	s.seen(src.Now)
	if s.streams == nil {
		s.streams = indicators.NewStreams(s.engine.limit)
	}
	s.engine.extractor.AddDependencyMetric(s.window, s.streams, src, m, dep, s)
}

// AddMetrics counts a resource's metrics; the series must be locked.
func (s *Series) AddMetrics(src *indicators.Source, scopes pmetric.ScopeMetricsSlice) {
	s.seen(src.Now)
	if s.streams == nil {
		s.streams = indicators.NewStreams(s.engine.limit)
	}
	s.engine.extractor.AddMetrics(s.window, s.streams, src, scopes, s)
}

// AddLogs counts a resource's log records; the series must be locked.
func (s *Series) AddLogs(src *indicators.Source, scopes plog.ScopeLogsSlice) {
	s.seen(src.Now)
	s.engine.extractor.AddLogs(s.window, src, scopes, s)
}

func (s *Series) seen(now int64) {
	s.lastSeen = now
	if s.window.Idle() {
		s.opened = now
	}
}

// closeStale closes the intervals that no data closed, CloseDelay after their
// end — once the key's data paused for CloseDelay, or its interval stayed open
// longer than an interval and the delay. While data keeps coming, data closes
// the intervals: a backfill (an agent's queue draining after an outage, a
// replay) brings old data faster than real time, and the clock must not chop
// its intervals into halves and made-up empty ones.
func (s *Series) closeStale(now int64) {
	e := s.engine
	if now-s.lastSeen < e.grace && now-s.opened < e.tick+e.grace {
		return
	}
	s.window.CloseStale(now, e.grace, s)
}

// CloseInterval judges the interval the window closes (indicators.Closer).
func (s *Series) CloseInterval(w *indicators.Window) {
	e := s.engine
	s.opened = max(s.opened, s.lastSeen)
	st := e.status(s.key)
	if st.Subject.Service == "" {
		st.Subject = s.key
	}
	active := st.Phase == deployevent.PhaseDuring || st.Phase == deployevent.PhasePost
	s.transition(st, active)

	end := time.Unix(0, w.End).UTC()
	info := intervalInfo{tickSeconds: float64(e.tick) / 1e9, spans: w.SpanSource(), logs: w.LogSource()}
	all := [indicators.NumCohorts]*indicators.Accumulator{&w.Cur[0], &w.Cur[1], &w.Cur[2]}

	values := s.values(w, all[:], &info)
	load, loadNoise := s.smoothLoad(all[:], &info, w.Partial)
	for i := range e.specs {
		s.judge(i, end, values[i])
		if f := s.fits[i]; f != nil && !math.IsNaN(load) && !math.IsNaN(values[i]) {
			if s.frozen {
				f.judge(load, values[i])
			} else {
				f.learn(load, loadNoise, values[i])
			}
		}
	}

	if !s.frozen {
		s.recent.roll(w.Start, w.End, e.window)
		s.recent.newer.add(all[:], &info, e.cfg.Indicators)
	} else {
		s.post.roll(w.Start, w.End, e.window)
		s.post.newer.add(all[:], &info, e.cfg.Indicators)
		b, c := w.Cur[indicators.CohortBaseline].HasRequests(), w.Cur[indicators.CohortCanary].HasRequests()
		if b && c {
			s.cohortsSeen = true
		}
		if s.cohortsSeen || b || c {
			for k := range s.cohorts {
				s.cohorts[k].roll(w.Start, w.End, e.window)
				s.cohorts[k].newer.add(all[k+1:k+2], &info, e.cfg.Indicators)
			}
		}
	}

	due := active || st.Phase == deployevent.PhasePre || w.End%e.steady == 0 || w.End-s.lastEval >= e.steady
	if due {
		s.evaluate(st, w.End)
	}
}

// transition freezes the baselines when a deployment starts to be judged,
// and thaws them when the key is back to steady.
func (s *Series) transition(st Status, active bool) {
	switch {
	case active && (!s.frozen || st.DeploymentID != s.judged):
		if !s.frozen {
			for i := range s.inds {
				s.inds[i].det.Freeze()
			}
			s.frozen = true
		}
		// A new deployment (even one superseding a running one) is judged
		// against the state before the first: the last known good.
		s.judged = st.DeploymentID
		s.post.reset()
		for k := range s.cohorts {
			s.cohorts[k].reset()
		}
		s.cohortsSeen = false
		s.resetVerdicts()
	case active && st.Phase == deployevent.PhasePost && s.phase == deployevent.PhaseDuring:
		// The rollout is over: from now on the new version serves alone, so
		// the window after the deployment starts afresh, undiluted.
		s.post.reset()
	case !active && s.frozen:
		for i := range s.inds {
			s.inds[i].det.Unfreeze()
		}
		s.frozen, s.judged = false, ""
		s.recent.reset()
		s.post.reset()
		for k := range s.cohorts {
			s.cohorts[k].reset()
		}
		s.cohortsSeen = false
		s.resetVerdicts()
	}
	s.strategy = st.Strategy
	s.phase = st.Phase
}

func (s *Series) resetVerdicts() {
	for _, f := range s.fits {
		if f != nil {
			f.resetJudged()
		}
	}
	s.keyVerdict = Hysteresis{}
	s.cohortVerdict = [2]Hysteresis{}
	for i := range s.inds {
		s.inds[i].judged, s.inds[i].harmful = false, false
	}
}

// smoothLoad returns the load gauges are fitted on: the request rate per
// instance, smoothed over about five intervals (a rate counted over ten
// seconds is mostly counting noise), and the sampling variance left in it.
// NaN without request data over a whole interval.
func (s *Series) smoothLoad(all []*indicators.Accumulator, info *intervalInfo, partial bool) (float64, float64) {
	x := tallyOf(all, info)
	if partial || x.requests == 0 || !(x.instanceSeconds > 0) {
		return math.NaN(), 0
	}
	rate := float64(x.requests) / x.instanceSeconds
	// A rate from N requests over T instance-seconds varies by rate/T.
	noise := rate / x.instanceSeconds
	if s.loadN == 0 {
		s.load, s.loadNoise = rate, noise
	} else {
		s.load += loadSmoothing * (rate - s.load)
		s.loadNoise += loadSmoothing * (noise - s.loadNoise)
	}
	s.loadN++
	// An exponential mean keeps w/(2-w) of its inputs' variance.
	return s.load, s.loadNoise * loadSmoothing / (2 - loadSmoothing)
}

// loadSmoothing is the weight of the last interval in the smoothed load.
const loadSmoothing = 1.0 / 3

// values computes each indicator's value over the interval (all cohorts);
// NaN where the interval has too little data for it.
func (s *Series) values(w *indicators.Window, all []*indicators.Accumulator, info *intervalInfo) []float64 {
	e := s.engine
	if len(s.valueBuf) != len(e.specs) {
		s.valueBuf = make([]float64, len(e.specs))
	}
	out := s.valueBuf
	var requests, errors, logErrors uint64
	var metricRate float64
	metricPoints := 0
	for _, a := range all {
		requests += a.Requests
		errors += a.Errors
		logErrors += a.LogErrors
		metricRate += a.MetricRate
		metricPoints += a.MetricPoints
	}
	enough := requests >= uint64(e.cfg.MinRequests)
	for i, sp := range e.specs {
		v := math.NaN()
		switch sp.kind {
		case kindRequestRate:
			switch {
			case info.spans && !w.Partial:
				v = float64(requests) / info.tickSeconds
			case !info.spans && metricPoints > 0:
				v = metricRate
			}
		case kindErrorRatio:
			if enough {
				v = float64(errors) / float64(requests)
			}
		case kindLatency:
			if enough {
				bins := e.getBins()
				*bins, _ = appendBins(*bins, all[0].Latency, all[1].Latency, all[2].Latency)
				v = quantileOfBins(*bins, 0.95)
				e.putBins(bins)
			}
		case kindLogErrorRate:
			if info.logs && !w.Partial {
				v = float64(logErrors) / info.tickSeconds
			}
		default:
			var sum, total float64
			points := 0
			for _, a := range all {
				sum += a.Custom[sp.custom].Sum
				total += a.Custom[sp.custom].Total
				points += a.Custom[sp.custom].Points
			}
			switch {
			case points == 0:
			case sp.kind == kindGauge:
				v = sum / total
			case sp.kind == kindRate:
				v = sum
			case total > 0:
				v = sum / total
			}
		}
		out[i] = v
	}
	return out
}

// judge runs indicator i's detector on the interval's value and keeps the
// strongest evidence until the next evaluation.
func (s *Series) judge(i int, end time.Time, v float64) {
	e := s.engine
	ind := &s.inds[i]
	if math.IsNaN(v) {
		if e.specs[i].kind == kindRequestRate {
			s.loadShifted = false
		}
		return
	}
	res := ind.det.Update(end, v)
	ind.last, ind.lastValid = res, true
	if !ind.recentValid {
		ind.recent, ind.recentValid = v, true
	} else {
		ind.recent += recentWeight * (v - ind.recent)
	}
	if !res.Ready {
		return
	}
	sp := &e.specs[i]
	tickSeconds := float64(e.tick) / 1e9
	switch sp.kind {
	case kindRequestRate:
		// Below MinRequests expected per interval, a rate is too noisy to judge.
		if res.Baseline*tickSeconds < float64(e.cfg.MinRequests) {
			return
		}
	case kindLogErrorRate:
		if res.Baseline*tickSeconds < minLogEvents {
			return
		}
	}
	ind.judged = true
	if sp.kind == kindRequestRate {
		s.loadShifted = beyondTolerance(v, res.Baseline, tolRateDrift, detector.Both)
	}
	// Harmful only where the detector itself calls the sample anomalous, and beyond tolerance.
	if !res.Anomalous() || !beyondTolerance(v, res.Baseline, sp.tolerance, sp.dir) {
		return
	}
	if s.loadShifted && (sp.kind == kindGauge || sp.kind == kindLogErrorRate) {
		return // the load moved past its drift this interval: it explains load-driven indicators
	}
	if !ind.harmful || res.PValue < ind.worst.PValue {
		ind.harmful, ind.worst = true, res
	}
}

// loadComparable tells whether the cohorts' instances take equal shares of
// traffic, so that load-dependent indicators (rate per instance, gauges such
// as CPU) compare: not so under canary or blue-green routing, where the
// router sets the canary's share.
func (s *Series) loadComparable() bool {
	switch deployevent.Strategy(s.strategy) {
	case deployevent.StrategyCanary, deployevent.StrategyBlueGreen:
		return false
	}
	return true
}
