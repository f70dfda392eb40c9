// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package otlpsend

import (
	"testing"

	"go.uber.org/goleak"
)

// The sender and the in-process collector must leave no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
