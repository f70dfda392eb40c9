// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package fuzzattrs turns a fuzzed string into attributes of any value type,
// so fuzz targets reach decoders with missing keys, huge strings and wrong
// value types.
package fuzzattrs

import (
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Put puts one attribute per "key=value" line of lines; a value prefixed
// "i:", "f:", "b:" or "m:" goes in as an int, double, bool or map.
func Put(m pcommon.Map, lines string) {
	for _, line := range strings.Split(lines, "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch {
		case strings.HasPrefix(v, "i:"):
			m.PutInt(k, int64(len(v))*7-100)
		case strings.HasPrefix(v, "f:"):
			m.PutDouble(k, float64(len(v))/3)
		case strings.HasPrefix(v, "b:"):
			m.PutBool(k, len(v)%2 == 0)
		case strings.HasPrefix(v, "m:"):
			m.PutEmptyMap(k).PutStr("v", v)
		default:
			m.PutStr(k, v)
		}
	}
}
