// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tagging

import "testing"

func BenchmarkTagging(b *testing.B) {
	for _, mk := range []func() (Contender, error){
		func() (Contender, error) { return Deployment("span") },
		func() (Contender, error) { return Deployment("resource") },
		AttributesProcessor,
		func() (Contender, error) { return Floor(), nil },
	} {
		c, err := mk()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.Name, c.Run)
		c.Close()
	}
}
