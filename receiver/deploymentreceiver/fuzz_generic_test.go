// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package deploymentreceiver

import (
	"errors"
	"net/http"
	"testing"
)

func FuzzGeneric(f *testing.F) {
	for _, name := range []string{"generic/full.json", "generic/array.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"service":"a","state":"started"}`))
	f.Add([]byte(`[{"service":"a","state":"queued","timestamp":"2026-01-02T03:04:05Z"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := parseGeneric(http.Header{}, body)
		if err != nil {
			var reqErr *requestError
			if !errors.As(err, &reqErr) {
				t.Fatalf("error is not a client error: %T %v", err, err)
			}
			return
		}
		checkFuzzedEvents(t, events)
	})
}
