package otlpsend

import (
	"testing"

	"go.uber.org/goleak"
)

// The sender and the in-process collector must leave no goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
