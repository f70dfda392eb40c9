// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

// Package lru is the recency order of a bounded map: which key was touched
// least recently, in O(1) for every operation (a container/list and an index).
// The map it orders stays with its owner; Order only says what to drop first.
package lru // import "github.com/deploylens/deploylens/internal/lru"

import "container/list"

// Order ranks keys from least to most recently touched. Not safe for
// concurrent use: its owner's lock guards it with the map it orders.
type Order[K comparable] struct {
	list  list.List
	index map[K]*list.Element
}

// New returns an empty order.
func New[K comparable]() *Order[K] {
	return &Order[K]{index: map[K]*list.Element{}}
}

// Touch makes key the most recently touched, adding it when absent.
func (o *Order[K]) Touch(key K) {
	if el, ok := o.index[key]; ok {
		o.list.MoveToBack(el)
		return
	}
	o.index[key] = o.list.PushBack(key)
}

// Remove drops key; it reports whether key was there.
func (o *Order[K]) Remove(key K) bool {
	el, ok := o.index[key]
	if !ok {
		return false
	}
	o.list.Remove(el)
	delete(o.index, key)
	return true
}

// Oldest is the least recently touched key, false when empty.
func (o *Order[K]) Oldest() (K, bool) {
	el := o.list.Front()
	if el == nil {
		var zero K
		return zero, false
	}
	return el.Value.(K), true
}

// Len is the number of keys.
func (o *Order[K]) Len() int { return len(o.index) }

// Clear drops every key.
func (o *Order[K]) Clear() {
	o.list.Init()
	clear(o.index)
}
