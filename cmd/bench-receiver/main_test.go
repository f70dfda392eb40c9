// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSign(t *testing.T) {
	// GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
	assert.Equal(t, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
		sign("It's a Secret to Everybody", []byte("Hello, World!")))
}

func TestParseLevels(t *testing.T) {
	got, err := parseLevels("1, 16,64")
	require.NoError(t, err)
	assert.Equal(t, []int{1, 16, 64}, got)
	for _, bad := range []string{"", "1,,2", "0", "-3", "x"} {
		_, err := parseLevels(bad)
		assert.Error(t, err, bad)
	}
}

func TestPayloadIsADeploymentStatus(t *testing.T) {
	assert.Contains(t, string(payload), `"deployment_status"`)
}
