// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package score

import (
	"time"

	"github.com/deploylens/deploylens/internal/deployevent"
)

// IsFact reports whether an alert name states a fact of another kind than a
// regression (failed, stuck): a faulty deployment may raise one beside its
// one regression alert, so they are not counted.
func IsFact(name string) bool { return !deployevent.IsJudgement(name) }

// Tally follows the alerts about each deployment and remembers the most
// that fired at once and when the first one was seen. It is fed either with
// state changes (firing and resolved signals as the processor writes
// them, one emission at a time: Apply) or with whole snapshots (Seen: the
// active alerts of one poll).
type Tally struct {
	firing map[string]map[string]bool
	most   map[string]int
	first  map[string]time.Time
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{firing: map[string]map[string]bool{}, most: map[string]int{}, first: map[string]time.Time{}}
}

// Change is one alert signal: the alert fingerprint is firing or not.
type Change struct {
	Fingerprint, Name string
	Firing            bool
}

// Apply records the alert signals about deployment written together at at
// (one emission), then counts: an alert replaced in one emission (the old
// label set resolved, the new one firing) is never two at once, whatever
// the order of the records. Fact alerts are ignored.
func (t *Tally) Apply(deployment string, changes []Change, at time.Time) {
	set := t.firing[deployment]
	if set == nil {
		set = map[string]bool{}
		t.firing[deployment] = set
	}
	for _, c := range changes {
		switch {
		case IsFact(c.Name):
		case c.Firing:
			set[c.Fingerprint] = true
		default:
			delete(set, c.Fingerprint)
		}
	}
	t.count(deployment, len(set), at)
}

// Seen records the fingerprints of alerts about deployment active at at,
// by fingerprint and name; fact alerts are ignored.
func (t *Tally) Seen(deployment string, names map[string]string, at time.Time) {
	n := 0
	for _, name := range names {
		if !IsFact(name) {
			n++
		}
	}
	t.count(deployment, n, at)
}

func (t *Tally) count(deployment string, n int, at time.Time) {
	if n == 0 {
		return
	}
	if n > t.most[deployment] {
		t.most[deployment] = n
	}
	if first, ok := t.first[deployment]; !ok || at.Before(first) {
		t.first[deployment] = at
	}
}

// Max is the most alerts about deployment firing at once (0: none ever).
func (t *Tally) Max(deployment string) int { return t.most[deployment] }

// First is when an alert about deployment was first seen firing (zero: never).
func (t *Tally) First(deployment string) time.Time { return t.first[deployment] }
