// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package realtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deploylens/deploylens/internal/scenario"
	"github.com/deploylens/deploylens/internal/scenario/otlpsend"
	"github.com/deploylens/deploylens/internal/scenario/score"
)

// Config is one real-time run.
type Config struct {
	Stack StackConfig
	// Scenarios are replayed; their services must be unique across the run
	// (Unique renames them), as one collector judges them all.
	Scenarios []scenario.Scenario
	// Observe is how long each deployment is watched from its start (default 4m).
	Observe time.Duration
	// Wave is how many deployments run at once (default: all).
	Wave int
	// Lead is the time from starting a wave to its first deployment start,
	// in which the warm-ups are fast-forwarded (default 60s).
	Lead time.Duration
	// Stagger separates the deployment starts within a wave (default 3s).
	Stagger time.Duration
	// Poll is how often Alertmanager is asked for its alerts (default 2s).
	Poll time.Duration
	// FastForward is how many warm-ups are sent at once (default 2).
	FastForward int
	// Progress gets a line per wave (nil: none).
	Progress io.Writer
}

// Outcome is what the stack said about one scenario.
type Outcome struct {
	score.Outcome
	// Verdict and Reasons are the gate's answer at the end of the observation.
	Verdict string
	Reasons []string
	// MinScore is the lowest deployment_health_score (any cohort) Prometheus
	// scraped for the service from the collector's start to the end of its
	// observation; NaN when it saw none. MinScoreSeries names its series
	// (cohort, phase, verdict: what the processor labels it with).
	MinScore       float64
	MinScoreSeries string
	// SteadyAlarm: an alert about the service before its deployment started.
	SteadyAlarm bool
	// AlertNames are the alert names seen about the deployment; FirstSummary
	// is the summary annotation of the first one seen (its evidence).
	AlertNames   []string
	FirstSummary string
	// Late is how long after its deployment start the scenario's warm-up was
	// fully sent (0: in time); a late one's delays are inflated.
	Late time.Duration
	Err  error
}

// Result is a run's outcomes and their figures.
type Result struct {
	Outcomes []Outcome
	Summary  score.Summary
	// MinCleanScore is the lowest MinScore of the clean deployments (NaN: none seen).
	MinCleanScore float64
	Elapsed       time.Duration
}

// Lines are detect-bench's bar lines, then min_clean_score.
func (r *Result) Lines() string {
	return r.Summary.Lines() + fmt.Sprintf("min_clean_score: %.0f\n", r.MinCleanScore)
}

// Unique renames a scenario's services with a suffix, so scenarios that
// drew the same service names can share one collector.
func Unique(sc scenario.Scenario, suffix string) scenario.Scenario {
	sc.Services = append([]scenario.Service(nil), sc.Services...)
	for i := range sc.Services {
		if sc.Services[i].Name == sc.Deployment.Service {
			sc.Deployment.Service += suffix
		}
		sc.Services[i].Name += suffix
	}
	return sc
}

// IsMissing reports whether err is a binary of the stack not being installed.
func IsMissing(err error) bool { return errors.Is(err, errMissing) }

// Run starts the stack, replays the scenarios wave by wave in real time
// (each warm-up fast-forwarded with its real, past timestamps), watches
// Alertmanager throughout, asks the gate at the end of each observation and
// Prometheus at the end, and scores it all.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	begin := time.Now()
	stack, err := StartStack(ctx, cfg.Stack)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = stack.Stop()
		}
	}()
	sender, err := otlpsend.New(ctx, otlpsend.Config{
		Endpoint:       fmt.Sprintf("127.0.0.1:%d", stack.OTLPPort),
		DeploymentsURL: fmt.Sprintf("http://127.0.0.1:%d/v1/deployments", stack.WebhookPort),
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = sender.Shutdown(context.Background()) }()

	w := &watch{stack: stack, tally: score.NewTally(), byService: map[string]int{}}
	w.outcomes = make([]Outcome, len(cfg.Scenarios))
	scenarios := append([]scenario.Scenario(nil), cfg.Scenarios...)
	pollCtx, stopPolling := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		w.poll(pollCtx, cfg.Poll)
	}()

	for first := 0; first < len(scenarios); first += cfg.Wave {
		wave := scenarios[first:min(first+cfg.Wave, len(scenarios))]
		t0 := time.Now().Add(cfg.Lead).Truncate(time.Second)
		for i := range wave {
			sc := &wave[i]
			sc.Start = t0.Add(time.Duration(i)*cfg.Stagger - sc.WarmUp)
			w.add(first+i, sc.Label())
		}
		if cfg.Progress != nil {
			_, _ = fmt.Fprintf(cfg.Progress, "wave %d: %d deployments from %s, watched %s each\n", first/cfg.Wave+1, len(wave), t0.Format("15:04:05"), cfg.Observe)
		}
		fastForward := make(chan struct{}, cfg.FastForward)
		var wg sync.WaitGroup
		for i := range wave {
			wg.Add(1)
			go func() {
				defer wg.Done()
				late, err := replay(ctx, sender, &wave[i], cfg.Observe, fastForward)
				verdict, reasons, verr := stack.Verdict(ctx, wave[i].Label().Service, wave[i].Label().Namespace, wave[i].Label().Environment)
				w.finish(first+i, late, verdict, reasons, errors.Join(err, verr))
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			stopPolling()
			<-polled
			return nil, err
		}
	}
	// One poll more: the last alerts of the last wave.
	w.pollOnce(ctx)
	stopPolling()
	<-polled

	res := &Result{Outcomes: w.outcomes, MinCleanScore: math.NaN()}
	for i := range res.Outcomes {
		o := &res.Outcomes[i]
		o.MinScore, o.MinScoreSeries = minScore(ctx, stack, o.Label, begin, cfg.Observe)
		if !o.Label.Regressed && !math.IsNaN(o.MinScore) && (math.IsNaN(res.MinCleanScore) || o.MinScore < res.MinCleanScore) {
			res.MinCleanScore = o.MinScore
		}
	}
	scored := make([]score.Outcome, len(res.Outcomes))
	for i := range res.Outcomes {
		scored[i] = res.Outcomes[i].Outcome
	}
	res.Summary = score.Summarize(scored)
	stopped = true
	if err := stack.Stop(); err != nil {
		return res, err
	}
	res.Elapsed = time.Since(begin)
	return res, nil
}

func (cfg *Config) defaults() {
	if cfg.Observe <= 0 {
		cfg.Observe = 4 * time.Minute
	}
	if cfg.Wave <= 0 {
		cfg.Wave = len(cfg.Scenarios)
	}
	if cfg.Lead <= 0 {
		cfg.Lead = time.Minute
	}
	if cfg.Stagger < 0 {
		cfg.Stagger = 0
	} else if cfg.Stagger == 0 {
		cfg.Stagger = 3 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.FastForward <= 0 {
		cfg.FastForward = 2
	}
	if cfg.Stack.Alertmanager == "" {
		cfg.Stack.Alertmanager = AlertmanagerBinary
	}
	if cfg.Stack.Prometheus == "" {
		cfg.Stack.Prometheus = PrometheusBinary
	}
	if cfg.Stack.Dir == "" {
		cfg.Stack.Dir = os.TempDir()
	}
}

// replay sends the scenario's warm-up as fast as the collector takes it
// (holding a fastForward slot), then its steps at wall-clock pace until
// observe after the deployment start. It returns how late the warm-up ended.
func replay(ctx context.Context, sender *otlpsend.Sender, sc *scenario.Scenario, observe time.Duration, fastForward chan struct{}) (time.Duration, error) {
	label := sc.Label()
	end := label.DeploymentStart.Add(observe)
	steps, err := sc.Steps()
	if err != nil {
		return 0, err
	}
	select {
	case fastForward <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	holding := true
	release := func() {
		if holding {
			holding = false
			<-fastForward
		}
	}
	defer release()
	var late time.Duration
	timed := false
	for st := range steps {
		if st.Time.After(end) {
			break
		}
		if holding && (!st.Time.Before(label.DeploymentStart) || st.Time.After(time.Now())) {
			// The past of the warm-up is sent: the rest is real time (data
			// stamped in the future would be counted as arriving now).
			release()
		}
		if !timed && !st.Time.Before(label.DeploymentStart) {
			timed = true
			late = max(0, time.Since(label.DeploymentStart))
		}
		if wait := time.Until(st.Time); !holding && wait > 0 {
			select {
			case <-ctx.Done():
				return late, ctx.Err()
			case <-time.After(wait):
			}
		}
		if err := sender.Send(ctx, st); err != nil {
			return late, fmt.Errorf("%s: %w", label.Scenario, err)
		}
	}
	return late, nil
}

// watch follows Alertmanager for every scenario of the run.
type watch struct {
	stack     *Stack
	mu        sync.Mutex
	tally     *score.Tally
	outcomes  []Outcome
	byService map[string]int
	// watched marks the scenarios whose observation has begun and not ended.
	watched []bool
}

func (w *watch) add(i int, label scenario.Label) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.outcomes[i].Label = label
	w.outcomes[i].MinScore = math.NaN()
	w.byService[label.Service] = i
	for len(w.watched) <= i {
		w.watched = append(w.watched, false)
	}
	w.watched[i] = true
}

func (w *watch) finish(i int, late time.Duration, verdict string, reasons []string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	o := &w.outcomes[i]
	o.Late, o.Verdict, o.Reasons, o.Err = late, verdict, reasons, err
	o.Alarm = w.tally.First(o.Label.DeploymentID)
	o.Alerts = w.tally.Max(o.Label.DeploymentID)
	w.watched[i] = false
}

func (w *watch) poll(ctx context.Context, every time.Duration) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			w.pollOnce(ctx)
		}
	}
}

// pollOnce reads the active alerts and counts, per watched deployment in its
// observation window, the distinct alerts about it.
func (w *watch) pollOnce(ctx context.Context) {
	now := time.Now()
	alerts, err := w.stack.ActiveAlerts(ctx, now)
	if err != nil {
		return // a missed poll; the next one sees the same alerts
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	names := map[int]map[string]string{}
	for _, a := range alerts {
		i, ok := w.byService[a.Labels["service"]]
		if !ok || !w.watched[i] {
			continue
		}
		o := &w.outcomes[i]
		if now.Before(o.Label.DeploymentStart) {
			o.SteadyAlarm = o.SteadyAlarm || !score.IsFact(a.Labels["alertname"])
			continue
		}
		if names[i] == nil {
			names[i] = map[string]string{}
		}
		names[i][a.Fingerprint] = a.Labels["alertname"]
		if o.FirstSummary == "" && !score.IsFact(a.Labels["alertname"]) {
			o.FirstSummary = a.Labels["alertname"] + ": " + a.Annotations["summary"]
		}
		if !slices.Contains(o.AlertNames, a.Labels["alertname"]) {
			o.AlertNames = append(o.AlertNames, a.Labels["alertname"])
			sort.Strings(o.AlertNames)
		}
	}
	for i, n := range names {
		w.tally.Seen(w.outcomes[i].Label.DeploymentID, n, now)
	}
}

// minScore is the lowest health score of the service, any cohort, from the
// run's begin to the end of its observation (NaN: none), leaving out points
// labelled inconclusive (no judgement; newer processors write none then).
// The score series lose and gain labels as the processor changes, so the
// query aggregates them away; a missing verdict label matches != too.
func minScore(ctx context.Context, stack *Stack, label scenario.Label, begin time.Time, observe time.Duration) (float64, string) {
	end := label.End
	if observed := label.DeploymentStart.Add(observe); observed.Before(end) {
		end = observed
	}
	window := int(math.Ceil(end.Sub(begin).Seconds())) + 1
	q := fmt.Sprintf(`min by (deployment_cohort, deployment_phase, deployment_health_verdict) (min_over_time(deployment_health_score{service_name=%q,deployment_health_verdict!="inconclusive"}[%ds]))`,
		label.Service, window)
	samples, err := stack.QueryAt(ctx, q, end)
	if err != nil || len(samples) == 0 {
		return math.NaN(), ""
	}
	lowest := samples[0]
	for _, s := range samples[1:] {
		if s.Value < lowest.Value {
			lowest = s
		}
	}
	var series []string
	for _, k := range []string{"deployment_cohort", "deployment_phase", "deployment_health_verdict"} {
		if v := lowest.Labels[k]; v != "" {
			series = append(series, k+"="+v)
		}
	}
	return lowest.Value, strings.Join(series, ",")
}

// Verdicts counts the scenarios whose gate verdict was the expected one:
// fail for a regression, pass for a clean deployment (low traffic aside,
// where inconclusive is right too).
func (r *Result) Verdicts() (right, of int) {
	for i := range r.Outcomes {
		of++
		if verdictRight(&r.Outcomes[i]) {
			right++
		}
	}
	return right, of
}

func verdictRight(o *Outcome) bool {
	switch {
	case o.Label.Regressed && o.Verdict == "fail",
		!o.Label.Regressed && o.Verdict == "pass",
		o.Label.LowTraffic() && o.Verdict == "inconclusive":
		return true
	}
	return false
}

// Report writes one line per scenario: what it was and what the stack said.
func (r *Result) Report(w io.Writer) {
	for i := range r.Outcomes {
		o := &r.Outcomes[i]
		l := &o.Label
		status := "quiet"
		if !o.Alarm.IsZero() {
			status = fmt.Sprintf("ALERT +%.0fs", o.Alarm.Sub(l.DeploymentStart).Seconds())
		}
		_, _ = fmt.Fprintf(w, "%-30s %-22s %-10s alerts_at_once=%d verdict=%s min_score=%.0f steady_alarm=%v late=%s %s\n",
			l.Scenario, l.Signals, status, o.Alerts, o.Verdict, o.MinScore, o.SteadyAlarm, o.Late.Round(time.Second), strings.Join(o.AlertNames, ","))
		if !o.Label.Regressed && o.MinScoreSeries != "" {
			_, _ = fmt.Fprintf(w, "    min_score series: %s\n", o.MinScoreSeries)
		}
		if o.FirstSummary != "" {
			_, _ = fmt.Fprintf(w, "    first: %s\n", o.FirstSummary)
		}
		if o.Verdict != "" && !verdictRight(o) {
			_, _ = fmt.Fprintf(w, "    verdict: %s\n", strings.Join(o.Reasons, "; "))
		}
		if o.Err != nil {
			_, _ = fmt.Fprintf(w, "    error: %v\n", o.Err)
		}
	}
}
