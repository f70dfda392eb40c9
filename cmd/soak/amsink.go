// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// amSink is an Alertmanager API v2 receiver: it keeps, per alert (label
// set), the service and the endsAt of the latest POST, as Alertmanager would.
type amSink struct {
	mu       sync.Mutex
	alerts   map[string]*amAlert
	posts    int
	received int
}

type amAlert struct {
	service string
	endsAt  time.Time
}

type postedAlert struct {
	Labels   map[string]string `json:"labels"`
	StartsAt time.Time         `json:"startsAt"`
	EndsAt   time.Time         `json:"endsAt"`
}

func newAMSink() *amSink { return &amSink{alerts: map[string]*amAlert{}} }

func (s *amSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" {
		http.NotFound(w, r)
		return
	}
	var batch []postedAlert
	if err := json.NewDecoder(r.Body).Decode(&batch); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.record(batch)
	w.WriteHeader(http.StatusOK)
}

func (s *amSink) record(batch []postedAlert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	for _, a := range batch {
		s.received++
		key := labelKey(a.Labels)
		s.alerts[key] = &amAlert{service: a.Labels["service"], endsAt: a.EndsAt}
	}
}

// labelKey identifies an alert the way Alertmanager does: by its label set.
func labelKey(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

// firing counts the alerts active at now (endsAt zero or after now), and
// those among them whose service stopped reporting before forgottenBefore.
func (s *amSink) firing(now time.Time, vanished map[string]time.Time, forgottenBefore time.Time) (all, forgotten int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.alerts {
		if !a.endsAt.IsZero() && !a.endsAt.After(now) {
			continue
		}
		all++
		if last, gone := vanished[a.service]; gone && last.Before(forgottenBefore) {
			forgotten++
		}
	}
	return all, forgotten
}

func (s *amSink) counts() (posts, received, distinct int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posts, s.received, len(s.alerts)
}
