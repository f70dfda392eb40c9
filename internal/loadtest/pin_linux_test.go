// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package loadtest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// Pin binds a running process to the CPU asked for, as the kernel reports it.
func TestPinBindsTheProcess(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	last := runtime.NumCPU() - 1
	require.NoError(t, Pin(cmd.Process.Pid, last))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	require.NoError(t, err)
	require.Contains(t, string(status), fmt.Sprintf("Cpus_allowed_list:\t%d\n", last))
	require.Error(t, Pin(1<<30, 0), "no such process")
}
