// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

//go:build !linux

package loadtest

import "errors"

// Pin is Linux-only: the load tools read the collector's CPU from /proc.
func Pin(int, ...int) error { return errors.New("loadtest: pinning needs Linux") }
