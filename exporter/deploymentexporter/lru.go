package deploymentexporter

import "container/list"

// recency orders the keys of a bounded map from least to most recently
// touched, so the entry to evict at the limit is found in O(1) instead of by
// scanning the map.
type recency[K comparable] struct {
	order    *list.List // of K, front is the least recently touched
	elements map[K]*list.Element
}

func newRecency[K comparable]() *recency[K] {
	return &recency[K]{order: list.New(), elements: map[K]*list.Element{}}
}

// touch marks key as the most recently touched, adding it when new.
func (r *recency[K]) touch(key K) {
	if e, ok := r.elements[key]; ok {
		r.order.MoveToBack(e)
		return
	}
	r.elements[key] = r.order.PushBack(key)
}

// remove forgets key; a key not tracked is ignored.
func (r *recency[K]) remove(key K) {
	if e, ok := r.elements[key]; ok {
		r.order.Remove(e)
		delete(r.elements, key)
	}
}

// oldest is the least recently touched key; ok is false when there is none.
func (r *recency[K]) oldest() (key K, ok bool) {
	e := r.order.Front()
	if e == nil {
		return key, false
	}
	return e.Value.(K), true
}
