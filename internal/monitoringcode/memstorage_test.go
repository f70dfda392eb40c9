// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package monitoringcode

import (
	"slices"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// memStorage is a Queryable over float series held in memory: enough for the PromQL engine, without
// a TSDB (whose dependencies would reach every module that requires this one).
type memStorage struct {
	series map[string]*memSeries
}

type memSeries struct {
	labels  labels.Labels
	samples []chunks.Sample
}

func newMemStorage() *memStorage { return &memStorage{series: map[string]*memSeries{}} }

// add appends a sample; samples of a series must come in time order.
func (m *memStorage) add(lbls labels.Labels, tMillis int64, value float64) {
	key := lbls.String()
	s, ok := m.series[key]
	if !ok {
		s = &memSeries{labels: lbls}
		m.series[key] = s
	}
	s.samples = append(s.samples, floatSample{t: tMillis, f: value})
}

func (m *memStorage) Querier(mint, maxt int64) (storage.Querier, error) {
	return &storage.MockQuerier{SelectMockFunction: func(_ bool, _ *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
		var out []storage.Series
		for _, s := range m.series {
			if !matchesAll(s.labels, matchers) {
				continue
			}
			var in []chunks.Sample
			for _, smp := range s.samples {
				if smp.T() >= mint && smp.T() <= maxt {
					in = append(in, smp)
				}
			}
			if len(in) > 0 {
				out = append(out, storage.NewListSeries(s.labels, in))
			}
		}
		slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
		return &seriesList{series: out, next: -1}
	}}, nil
}

func matchesAll(lbls labels.Labels, matchers []*labels.Matcher) bool {
	for _, m := range matchers {
		if !m.Matches(lbls.Get(m.Name)) {
			return false
		}
	}
	return true
}

type seriesList struct {
	series []storage.Series
	next   int
}

func (l *seriesList) Next() bool                      { l.next++; return l.next < len(l.series) }
func (l *seriesList) At() storage.Series              { return l.series[l.next] }
func (*seriesList) Err() error                        { return nil }
func (*seriesList) Warnings() annotations.Annotations { return nil }
func (s floatSample) T() int64                        { return s.t }
func (floatSample) ST() int64                         { return 0 }
func (s floatSample) F() float64                      { return s.f }
func (floatSample) H() *histogram.Histogram           { return nil }
func (floatSample) FH() *histogram.FloatHistogram     { return nil }
func (floatSample) Type() chunkenc.ValueType          { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample             { return s }

type floatSample struct {
	t int64
	f float64
}
