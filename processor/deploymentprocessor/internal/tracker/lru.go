// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package tracker // import "github.com/deploylens/deploylens/processor/deploymentprocessor/internal/tracker"

// lruHeap is a min-heap of entries by lruStamp (container/heap.Interface).
type lruHeap []*entry

func (h lruHeap) Len() int { return len(h) }

func (h lruHeap) Less(i, j int) bool { return h[i].lruStamp < h[j].lruStamp }

func (h lruHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].lruIndex = i
	h[j].lruIndex = j
}

func (h *lruHeap) Push(x any) {
	e := x.(*entry)
	e.lruIndex = len(*h)
	*h = append(*h, e)
}

func (h *lruHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.lruIndex = -1
	return e
}
