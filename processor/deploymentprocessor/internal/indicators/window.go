// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package indicators // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/indicators"

import (
	"math"
	"math/bits"
	"time"

	"github.com/deploylens/deploylens/internal/stats"
)

// Sketch settings: 2% relative accuracy. Latency sketches keep 192 bins, a
// factor of 2 000 between the fastest and the slowest value kept apart (5 ms
// under a 10 s timeout; faster ones merge into the lowest bin: slow tails are
// what matters), about 1.6 KiB; gauge values (utilizations, queue depths)
// span less and get 96 bins (a factor of 45).
const (
	sketchAccuracy = stats.DefaultSketchAccuracy
	latencyBins    = 192
	gaugeBins      = 96
)

// NewLatencySketch returns an empty latency sketch; every latency sketch of
// the engine has these settings, so that they merge and their bins line up.
func NewLatencySketch() *stats.Sketch {
	s, err := stats.NewSketchWith(sketchAccuracy, latencyBins)
	if err != nil {
		panic(err) // constant, valid settings
	}
	return s
}

// NewGaugeSketch returns an empty sketch for gauge values.
func NewGaugeSketch() *stats.Sketch {
	s, err := stats.NewSketchWith(sketchAccuracy, gaugeBins)
	if err != nil {
		panic(err) // constant, valid settings
	}
	return s
}

// Accumulator sums one cohort's data over one interval.
type Accumulator struct {
	// Requests and Errors count requests: SERVER/CONSUMER spans, or the
	// increase of request-duration histograms.
	Requests, Errors uint64
	// Latency is the requests' latency distribution in seconds; nil until the
	// first latency.
	Latency *stats.Sketch
	// MetricRate is the request rate from histograms: each point adds its
	// increase divided by the longer of its own span and the interval, so
	// exports more or less frequent than the interval both give a rate.
	// It is meaningful when MetricPoints > 0.
	MetricRate   float64
	MetricPoints int
	// LogRecords counts application log records, LogErrors those with
	// severity ERROR or above.
	LogRecords, LogErrors uint64
	// Instances estimates the distinct instances that sent requests.
	Instances InstanceSet
	// Active measures how long each instance served requests in the
	// interval (from its spans), so that rates per instance compare across
	// an instance's replacement; nil without spans.
	Active *ActiveTable
	// InstanceSeconds sums, over the resources whose histograms counted
	// requests, the time their points cover: instance-seconds of service.
	InstanceSeconds float64
	// Custom holds the user-declared indicators, in definition order.
	Custom []CustomAccumulator
}

// CustomAccumulator sums one user-declared indicator over one interval.
type CustomAccumulator struct {
	// Sum is, for a gauge, the sum of the points' values; for a rate, the sum
	// of per-second contributions (as MetricRate); for a ratio, the numerator.
	Sum float64
	// Total is, for a gauge, the number of points; for a rate, the raw
	// increase (events); for a ratio, the denominator.
	Total float64
	// Points counts the data points that contributed.
	Points int
	// Values holds a gauge's point values (for comparing distributions);
	// nil for other kinds.
	Values *stats.Sketch
}

func (a *Accumulator) latency() *stats.Sketch {
	if a.Latency == nil {
		a.Latency = NewLatencySketch()
	}
	return a.Latency
}

// HasRequests tells whether the accumulator saw request data (spans or histogram points).
func (a *Accumulator) HasRequests() bool { return a.Requests > 0 || a.MetricPoints > 0 }

// reset empties a, keeping its memory.
func (a *Accumulator) reset() {
	a.Requests, a.Errors = 0, 0
	if a.Latency != nil {
		a.Latency.Reset()
	}
	a.MetricRate, a.MetricPoints = 0, 0
	a.LogRecords, a.LogErrors = 0, 0
	a.Instances = InstanceSet{}
	a.InstanceSeconds = 0
	if a.Active != nil {
		a.Active.reset()
	}
	for i := range a.Custom {
		c := &a.Custom[i]
		c.Sum, c.Total, c.Points = 0, 0, 0
		if c.Values != nil {
			c.Values.Reset()
		}
	}
}

// clearRED forgets the request data (when spans take over from histograms).
func (a *Accumulator) clearRED() {
	a.Requests, a.Errors = 0, 0
	if a.Latency != nil {
		a.Latency.Reset()
	}
	a.MetricRate, a.MetricPoints = 0, 0
	a.InstanceSeconds = 0
}

// activeInstances is how many instances an ActiveTable follows one by one.
const activeInstances = 8

// ActiveTable estimates, per instance, for how long it served in an
// interval: n requests ending between first and last, from a Poisson stream,
// span about (last-first)·(n+1)/(n-1). Instances beyond the first eight, and
// those with a single request, count for the whole interval.
type ActiveTable struct {
	n        int
	entries  [activeInstances]activeEntry
	overflow InstanceSet
}

type activeEntry struct {
	hash        uint64
	first, last int64
	requests    uint32
}

func (t *ActiveTable) reset() {
	t.n = 0
	t.overflow = InstanceSet{}
}

// Add records a request of instance hash ending at ts.
func (t *ActiveTable) Add(hash uint64, ts int64) {
	if hash == 0 {
		return
	}
	for i := range t.n {
		e := &t.entries[i]
		if e.hash == hash {
			e.first, e.last = min(e.first, ts), max(e.last, ts)
			e.requests++
			return
		}
	}
	if t.n == activeInstances {
		t.overflow.Add(hash)
		return
	}
	t.entries[t.n] = activeEntry{hash: hash, first: ts, last: ts, requests: 1}
	t.n++
}

// Seconds is the estimated instance-seconds of service in an interval of tick ns.
func (t *ActiveTable) Seconds(tick int64) float64 {
	total := t.overflow.Count() * float64(tick)
	for i := range t.n {
		e := &t.entries[i]
		span := float64(tick)
		if e.requests > 1 {
			span = min(span, float64(e.last-e.first)*float64(e.requests+1)/float64(e.requests-1))
		}
		total += span
	}
	return total / 1e9
}

// InstanceSet estimates how many distinct instances it saw, in 16 bytes:
// linear counting over a 128-bit bitmap (exact but for rare collisions below
// ten instances, within a few percent up to a hundred).
type InstanceSet struct{ bits [2]uint64 }

// Add records an instance by the hash of its identity (0: unknown, ignored).
func (s *InstanceSet) Add(hash uint64) {
	if hash == 0 {
		return
	}
	bit := hash & 127
	s.bits[bit>>6] |= 1 << (bit & 63)
}

// Merge adds o's instances.
func (s *InstanceSet) Merge(o InstanceSet) {
	s.bits[0] |= o.bits[0]
	s.bits[1] |= o.bits[1]
}

// Count is the estimated number of distinct instances.
func (s *InstanceSet) Count() float64 {
	set := bits.OnesCount64(s.bits[0]) + bits.OnesCount64(s.bits[1])
	switch {
	case set == 0:
		return 0
	case set >= 128:
		return 128 * math.Log(128)
	}
	return -128 * math.Log1p(-float64(set)/128)
}

// Closer judges an interval when it closes. It reads w.Cur, w.Start and
// w.End; the window resets the accumulators after it returns.
type Closer interface {
	CloseInterval(w *Window)
}

// MaxGap is how many empty intervals a gap in the data closes (as intervals
// without data) before the window jumps ahead or goes idle: a service that
// stops sending for a minute shows as a minute without requests, one that
// is gone for longer is not judged on made-up zeros.
const MaxGap = 6

// Window is a key's current evaluation interval, in data time, with one
// accumulator per cohort. It is not safe for concurrent use.
type Window struct {
	// Tick is the interval length, in nanoseconds.
	Tick int64
	// Start and End bound the current interval, [Start, End), in unix
	// nanoseconds; Start is 0 while the window is idle.
	Start, End int64
	// Partial is set on an interval opened by data after idleness: it does
	// not cover its whole length, so rates from it are not judged.
	Partial bool
	// Cur holds the current interval's data, by cohort.
	Cur [NumCohorts]Accumulator
	// HasData is set once a datum was counted in the current interval.
	HasData bool
	// LastData is the latest data time seen, unix nanoseconds.
	LastData int64
	// LastSpan is the data time of the latest request span: request data
	// from histograms is ignored while spans report (no double count).
	LastSpan int64
	// LastLog is the data time of the latest application log record: a key
	// that sends logs has a log error rate (zero when no error comes).
	LastLog int64
	// Late counts data stamped before the current interval (counted in it).
	Late uint64
}

// NewWindow returns an idle window of the given interval, with room for
// customs user-declared indicators.
func NewWindow(tick time.Duration, customs int) *Window {
	w := &Window{Tick: int64(tick)}
	for c := range w.Cur {
		if customs > 0 {
			w.Cur[c].Custom = make([]CustomAccumulator, customs)
		}
	}
	return w
}

// Idle tells whether no interval is open.
func (w *Window) Idle() bool { return w.Start == 0 }

func (w *Window) floor(ts int64) int64 { return ts - ((ts%w.Tick)+w.Tick)%w.Tick }

// Place makes ts countable: it opens the first interval, or closes the current
// one (and up to MaxGap empty ones) when ts is at or past its end. Data before
// the current interval stays countable in it (late data).
func (w *Window) Place(ts int64, c Closer) {
	switch {
	case w.Start == 0:
		w.Start = w.floor(ts)
		w.End = w.Start + w.Tick
		w.Partial = true
	case ts >= w.End:
		w.advance(ts, c)
	case ts < w.Start:
		w.Late++
	}
	if ts > w.LastData {
		w.LastData = ts
	}
}

// advance closes the current interval and the empty ones up to ts.
func (w *Window) advance(ts int64, c Closer) {
	w.closeCurrent(c)
	for gaps := 0; ts >= w.End && gaps < MaxGap; gaps++ {
		w.closeCurrent(c)
	}
	if ts >= w.End {
		w.Start = w.floor(ts)
		w.End = w.Start + w.Tick
		w.Partial = true
	}
}

// closeCurrent hands the current interval to c and opens the next one.
func (w *Window) closeCurrent(c Closer) {
	c.CloseInterval(w)
	for i := range w.Cur {
		w.Cur[i].reset()
	}
	w.HasData = false
	w.Partial = false
	w.Start = w.End
	w.End += w.Tick
}

// CloseStale closes the current interval when now is at least grace past its
// end, as data past it would have. Intervals keep closing while the data is
// at most MaxGap intervals old; then the window goes idle. It reports whether
// it closed anything.
func (w *Window) CloseStale(now, grace int64, c Closer) bool {
	closed := false
	for w.Start != 0 && now >= w.End+grace {
		if !w.HasData && w.End-w.LastData > int64(MaxGap)*w.Tick {
			w.Start, w.End = 0, 0
			break
		}
		w.closeCurrent(c)
		closed = true
	}
	return closed
}

// useSpans switches the key's request data to spans, dropping what histograms
// counted in the current interval.
func (w *Window) useSpans(ts int64) {
	if w.LastSpan == 0 || ts-w.LastSpan >= spanHold*w.Tick {
		for i := range w.Cur {
			if w.Cur[i].MetricPoints > 0 {
				w.Cur[i].clearRED()
			}
		}
	}
	if ts > w.LastSpan {
		w.LastSpan = ts
	}
}

// spansReport tells whether request spans reported recently (histograms are then ignored).
func (w *Window) spansReport(ts int64) bool {
	return w.LastSpan != 0 && ts-w.LastSpan < spanHold*w.Tick
}

// SpanSource tells whether the current interval's request data comes from
// spans (an interval without any is then a zero rate) rather than from
// histograms (an interval without points is then no data).
func (w *Window) SpanSource() bool { return w.spansReport(w.End - 1) }

// LogSource tells whether the key sends application logs: an interval without
// error records then has a zero error log rate.
func (w *Window) LogSource() bool {
	return w.LastLog != 0 && w.End-1-w.LastLog < spanHold*w.Tick
}

// spanHold is how many intervals spans keep precedence over histograms after the last one.
const spanHold = 6
