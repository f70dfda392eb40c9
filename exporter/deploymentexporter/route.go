// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentexporter // import "github.com/deploylens/deploylens/exporter/deploymentexporter"

import (
	"sort"
	"time"
)

// router picks an alert's channels: the first route whose matchers all
// match, and of its channels the ones due after the alert has fired for a
// while (escalation).
type router struct {
	routes []compiledRoute
}

type compiledRoute struct {
	severities    map[string]bool
	services      map[string]bool
	environments  map[string]bool
	channels      []string
	escalateAfter time.Duration
}

func set(vals []string) map[string]bool {
	if len(vals) == 0 {
		return nil
	}
	m := make(map[string]bool, len(vals))
	for _, v := range vals {
		m[v] = true
	}
	return m
}

// newRouter compiles the routes; without routes, every alert goes to every
// channel at once.
func newRouter(cfg *Config) router {
	var r router
	for _, rc := range cfg.Routes {
		r.routes = append(r.routes, compiledRoute{
			severities:    set(rc.Severities),
			services:      set(rc.Services),
			environments:  set(rc.Environments),
			channels:      rc.Channels,
			escalateAfter: rc.EscalateAfter,
		})
	}
	if len(r.routes) == 0 && len(cfg.Channels) > 0 {
		all := make([]string, 0, len(cfg.Channels))
		for name := range cfg.Channels {
			all = append(all, name)
		}
		sort.Strings(all)
		r.routes = append(r.routes, compiledRoute{channels: all})
	}
	return r
}

func (cr *compiledRoute) matches(a *alertSignal) bool {
	return (cr.severities == nil || cr.severities[a.Severity]) &&
		(cr.services == nil || cr.services[a.Key.Service]) &&
		(cr.environments == nil || cr.environments[a.Key.Environment])
}

// dueChannel is a channel an alert is due at, and its escalation level (its
// index in the route: 0 is notified at once).
type dueChannel struct {
	name  string
	level int
}

// due returns the channels a has reached after firing for firingFor: the
// first channel of its route at once, one more per escalate_after.
func (r *router) due(a *alertSignal, firingFor time.Duration) []dueChannel {
	for i := range r.routes {
		cr := &r.routes[i]
		if !cr.matches(a) {
			continue
		}
		n := len(cr.channels)
		if cr.escalateAfter > 0 {
			n = min(int(max(firingFor, 0)/cr.escalateAfter)+1, len(cr.channels))
		}
		out := make([]dueChannel, 0, n)
		for lvl, name := range cr.channels[:n] {
			level := lvl
			if cr.escalateAfter == 0 {
				level = 0
			}
			out = append(out, dueChannel{name: name, level: level})
		}
		return out
	}
	return nil
}
