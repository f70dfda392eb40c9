// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package indicators

import "testing"

func BenchmarkIndicators(b *testing.B) {
	for _, mk := range []func() (Contender, error){Deployment, SpanMetrics} {
		c, err := mk()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.Name, c.Run)
		c.Close()
	}
}
