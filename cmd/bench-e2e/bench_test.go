// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSustained(t *testing.T) {
	good := step{o: offered{spans: 1000, slots: 200}, accepted: 1000, sent: 1000}
	assert.True(t, good.sustained())
	for name, change := range map[string]func(*step){
		"backlog":          func(s *step) { s.o.missed = 3 },
		"send error":       func(s *step) { s.o.errors = 1 },
		"refused":          func(s *step) { s.refused = 500 },
		"failed":           func(s *step) { s.failed = 1 },
		"accepted less":    func(s *step) { s.accepted = 999 },
		"exported less":    func(s *step) { s.sent = 990 },
		"exported later":   func(s *step) { s.sent = 0 },
		"nothing accepted": func(s *step) { s.accepted, s.sent = 0, 0 },
	} {
		s := good
		change(&s)
		assert.False(t, s.sustained(), name)
	}
	hiccup := good
	hiccup.o.missed = 2 // 1 % of 200 slots
	assert.True(t, hiccup.sustained())
}
