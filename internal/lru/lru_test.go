// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package lru

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOrder(t *testing.T) {
	o := New[string]()
	_, ok := o.Oldest()
	assert.False(t, ok)
	o.Touch("a")
	o.Touch("b")
	o.Touch("c")
	o.Touch("a") // a is now the most recent
	oldest, ok := o.Oldest()
	require.True(t, ok)
	assert.Equal(t, "b", oldest)
	assert.True(t, o.Remove("b"))
	assert.False(t, o.Remove("b"))
	oldest, _ = o.Oldest()
	assert.Equal(t, "c", oldest)
	assert.Equal(t, 2, o.Len())
	o.Clear()
	assert.Equal(t, 0, o.Len())
	_, ok = o.Oldest()
	assert.False(t, ok)
}
