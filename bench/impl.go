package bench

// This file holds the implementations compared: the watermark Partition, the
// three ways a user would otherwise track in-flight offsets (a mutex-guarded
// B-tree, a mutex-guarded container/heap, a single owner goroutine fed by a
// channel), and the two physical limits (a bare atomic Or over the same
// words, a bare shared atomic Add).

import (
	"container/heap"
	"context"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/google/btree"

	"github.com/inorder/inorder/watermark"
)

// Implementation names, in table order. Trackers compute a commit point;
// Limits only touch memory the way the watermark does, and bound what any
// tracker can reach.
var (
	Trackers = []string{"watermark", "btree", "heap", "actor"}
	Limits   = []string{"or", "add"}
)

// Impl tracks the in-flight offsets of a fixed number of partitions. Track is
// called by one goroutine; Ack and Committable by any. Errors are the
// watermark's sentinels where the implementation can tell synchronously.
// The batch methods (unexported) run the hot loops with direct calls, so that
// no implementation pays an interface call per offset.
type Impl interface {
	// Name is the implementation name (see Trackers and Limits).
	Name() string
	// Track records offset of partition part as in flight.
	Track(part int, offset int64) error
	// Ack marks offset of partition part done.
	Ack(part int, offset int64) error
	// Committable returns the commit point of part (-1 for the limits,
	// which have none).
	Committable(part int) int64
	// Sync waits until every earlier call has taken effect (the actor
	// applies them asynchronously; the others return at once).
	Sync()
	// Close releases the implementation's goroutines, if any.
	Close()

	trackAll(base int64, refs []ref) (errs int)
	ackAll(base int64, refs []ref) (errs int)
}

// ref names one offset of a workload: a partition and the offset relative to
// the base of the round.
type ref struct {
	part int32
	off  int32
}

// New returns the implementation called name for parts partitions, the
// watermark ones (and the or limit's rings) sized for window offsets. It
// panics on an unknown name.
func New(name string, parts, window int) Impl {
	switch name {
	case "watermark":
		w := &wmImpl{ps: make([]*watermark.Partition, parts)}
		for i := range w.ps {
			w.ps[i] = watermark.NewPartition(0, watermark.WithWindow(window))
		}
		return w
	case "btree":
		b := &btreeImpl{ps: make([]btreePart, parts)}
		for i := range b.ps {
			b.ps[i].t = btree.NewOrderedG[int64](32)
		}
		return b
	case "heap":
		h := &heapImpl{ps: make([]heapPart, parts)}
		for i := range h.ps {
			h.ps[i].done = make(map[int64]struct{})
		}
		return h
	case "actor":
		return newActor(parts)
	case "or":
		// The same ring geometry as watermark.Partition: 40 offsets per
		// word, a power of two words covering the window plus one word.
		n := uint64(1) << bits.Len64(uint64((window+wordBits-1)/wordBits))
		o := &orImpl{rings: make([][]atomic.Uint64, parts), init: make([]int64, parts), high: make([]paddedInt64, parts), mask: n - 1}
		for i := range o.rings {
			o.rings[i] = make([]atomic.Uint64, n)
		}
		return o
	case "add":
		return &addImpl{}
	}
	panic(fmt.Sprintf("bench: unknown implementation %q", name))
}

// wordBits is the number of offsets per word of the watermark ring (its
// dataBits); the or limit maps offsets to words the same way.
const wordBits = 40

// --- watermark ---

type wmImpl struct{ ps []*watermark.Partition }

func (w *wmImpl) Name() string                  { return "watermark" }
func (w *wmImpl) Track(part int, o int64) error { return w.ps[part].Track(o) }
func (w *wmImpl) Ack(part int, o int64) error   { return w.ps[part].Ack(o) }
func (w *wmImpl) Committable(part int) int64    { return w.ps[part].Committable() }
func (w *wmImpl) Sync()                         {}
func (w *wmImpl) Close()                        {}

func (w *wmImpl) trackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		if w.ps[r.part].Track(base+int64(r.off)) != nil {
			errs++
		}
	}
	return errs
}

func (w *wmImpl) ackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		if w.ps[r.part].Ack(base+int64(r.off)) != nil {
			errs++
		}
	}
	return errs
}

// --- mutex + google/btree: the original design ---

// btreePart is one partition of the original design: the pending offsets in
// an ordered set; the commit point is its minimum, or the high mark when it
// is empty.
type btreePart struct {
	mu   sync.Mutex
	t    *btree.BTreeG[int64]
	high int64
	_    [40]byte // prevents false sharing between partitions
}

type btreeImpl struct{ ps []btreePart }

func (b *btreeImpl) Name() string { return "btree" }

func (b *btreeImpl) Track(part int, o int64) error {
	p := &b.ps[part]
	p.mu.Lock()
	defer p.mu.Unlock()
	if o < p.high {
		return watermark.ErrOutOfOrder
	}
	p.t.ReplaceOrInsert(o)
	p.high = o + 1
	return nil
}

func (b *btreeImpl) Ack(part int, o int64) error {
	p := &b.ps[part]
	p.mu.Lock()
	defer p.mu.Unlock()
	if o < 0 || o >= p.high {
		return watermark.ErrNotTracked
	}
	p.t.Delete(o)
	return nil
}

func (b *btreeImpl) Committable(part int) int64 {
	p := &b.ps[part]
	p.mu.Lock()
	defer p.mu.Unlock()
	if m, ok := p.t.Min(); ok {
		return m
	}
	return p.high
}

func (b *btreeImpl) Sync()  {}
func (b *btreeImpl) Close() {}

func (b *btreeImpl) trackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		if b.Track(int(r.part), base+int64(r.off)) != nil {
			errs++
		}
	}
	return errs
}

func (b *btreeImpl) ackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		if b.Ack(int(r.part), base+int64(r.off)) != nil {
			errs++
		}
	}
	return errs
}

// trackBatch is Track of each offset under one lock acquisition (a fetch
// batch). The tree has no window: it never waits for room.
func (b *btreeImpl) trackBatch(offs []int64) (int, error) {
	p := &b.ps[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range offs {
		if o < p.high {
			return i, watermark.ErrOutOfOrder
		}
		p.t.ReplaceOrInsert(o)
		p.high = o + 1
	}
	return len(offs), nil
}

func (b *btreeImpl) waitRoom(context.Context, int64) error { return nil }

// --- mutex + container/heap with lazy deletion ---

// offHeap is a min-heap of offsets for container/heap.
type offHeap []int64

func (h offHeap) Len() int           { return len(h) }
func (h offHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h offHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *offHeap) Push(x any)        { *h = append(*h, x.(int64)) }
func (h *offHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// heapPart is one partition tracked with a min-heap of pending offsets: Ack
// marks the offset done in a map (lazy deletion) and pops the done offsets
// off the head; the commit point is the head, or the high mark when empty.
type heapPart struct {
	mu   sync.Mutex
	h    offHeap
	done map[int64]struct{}
	high int64
	_    [24]byte // prevents false sharing between partitions
}

type heapImpl struct{ ps []heapPart }

func (h *heapImpl) Name() string { return "heap" }

func (h *heapImpl) Track(part int, o int64) error {
	p := &h.ps[part]
	p.mu.Lock()
	defer p.mu.Unlock()
	if o < p.high {
		return watermark.ErrOutOfOrder
	}
	heap.Push(&p.h, o) // boxes o: the allocation container/heap costs its users
	p.high = o + 1
	return nil
}

func (h *heapImpl) Ack(part int, o int64) error {
	p := &h.ps[part]
	p.mu.Lock()
	defer p.mu.Unlock()
	if o < 0 || o >= p.high {
		return watermark.ErrNotTracked
	}
	if len(p.h) == 0 || o < p.h[0] {
		return nil // below the commit point: stale
	}
	p.done[o] = struct{}{}
	for len(p.h) > 0 {
		if _, ok := p.done[p.h[0]]; !ok {
			break
		}
		delete(p.done, p.h[0])
		heap.Pop(&p.h)
	}
	if len(p.h) == 0 {
		clear(p.done) // acks of gaps are never popped
	}
	return nil
}

func (h *heapImpl) Committable(part int) int64 {
	p := &h.ps[part]
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.h) > 0 {
		return p.h[0]
	}
	return p.high
}

func (h *heapImpl) Sync()  {}
func (h *heapImpl) Close() {}

func (h *heapImpl) trackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		if h.Track(int(r.part), base+int64(r.off)) != nil {
			errs++
		}
	}
	return errs
}

func (h *heapImpl) ackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		if h.Ack(int(r.part), base+int64(r.off)) != nil {
			errs++
		}
	}
	return errs
}

// trackBatch is Track of each offset under one lock acquisition.
func (h *heapImpl) trackBatch(offs []int64) (int, error) {
	p := &h.ps[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, o := range offs {
		if o < p.high {
			return i, watermark.ErrOutOfOrder
		}
		heap.Push(&p.h, o)
		p.high = o + 1
	}
	return len(offs), nil
}

func (h *heapImpl) waitRoom(context.Context, int64) error { return nil }

// --- single owner goroutine fed by a channel (actor / GenServer) ---

const (
	msgTrack = iota
	msgAck
	msgSync
)

type actorMsg struct {
	kind  uint8
	part  int32
	off   int64
	reply chan struct{}
}

// paddedInt64 is an atomic.Int64 alone on its cache line.
type paddedInt64 struct {
	atomic.Int64
	_ [56]byte // prevents false sharing between partitions
}

// actorImpl is the shape of the original Elixir design: one goroutine owns
// the ordered sets and applies track and ack messages in arrival order; it
// publishes each partition's commit point in an atomic that anyone may read.
// Track and Ack only send a message: errors are not reported.
type actorImpl struct {
	ch      chan actorMsg
	commits []paddedInt64
	done    chan struct{}
}

func newActor(parts int) *actorImpl {
	a := &actorImpl{ch: make(chan actorMsg, 4096), commits: make([]paddedInt64, parts), done: make(chan struct{})}
	go a.run(parts)
	return a
}

func (a *actorImpl) run(parts int) {
	defer close(a.done)
	sets := make([]*btree.BTreeG[int64], parts)
	high := make([]int64, parts)
	for i := range sets {
		sets[i] = btree.NewOrderedG[int64](32)
	}
	for m := range a.ch {
		p := m.part
		switch m.kind {
		case msgTrack:
			if m.off < high[p] {
				continue
			}
			sets[p].ReplaceOrInsert(m.off)
			high[p] = m.off + 1
		case msgAck:
			if m.off < 0 || m.off >= high[p] {
				continue
			}
			sets[p].Delete(m.off)
		case msgSync:
			close(m.reply)
			continue
		}
		c, ok := sets[p].Min()
		if !ok {
			c = high[p]
		}
		a.commits[p].Store(c)
	}
}

func (a *actorImpl) Name() string { return "actor" }

func (a *actorImpl) Track(part int, o int64) error {
	a.ch <- actorMsg{kind: msgTrack, part: int32(part), off: o}
	return nil
}

func (a *actorImpl) Ack(part int, o int64) error {
	a.ch <- actorMsg{kind: msgAck, part: int32(part), off: o}
	return nil
}

func (a *actorImpl) Committable(part int) int64 { return a.commits[part].Load() }

func (a *actorImpl) Sync() {
	r := make(chan struct{})
	a.ch <- actorMsg{kind: msgSync, reply: r}
	<-r
}

func (a *actorImpl) Close() {
	close(a.ch)
	<-a.done
}

func (a *actorImpl) trackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		a.ch <- actorMsg{kind: msgTrack, part: r.part, off: base + int64(r.off)}
	}
	return 0
}

func (a *actorImpl) ackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		a.ch <- actorMsg{kind: msgAck, part: r.part, off: base + int64(r.off)}
	}
	return 0
}

// --- physical limits ---

// orImpl is the physical limit of Ack: one bare atomic Or per offset into a
// ring of words with the watermark's geometry (40 offsets per word, a power
// of two words per partition). Track initialises a word the first time an
// offset in it is tracked and publishes the high mark with an atomic store,
// as the watermark does (the least a tracker must do to hand an offset to
// another goroutine). No commit point.
type orImpl struct {
	rings [][]atomic.Uint64
	init  []int64 // per partition: words below init are initialised
	high  []paddedInt64
	mask  uint64
}

func (o *orImpl) Name() string { return "or" }

func (o *orImpl) Track(part int, off int64) error {
	if k := off / wordBits; k >= o.init[part] {
		o.rings[part][uint64(k)&o.mask].Store(0)
		o.init[part] = k + 1
	}
	o.high[part].Store(off + 1)
	return nil
}

func (o *orImpl) Ack(part int, off int64) error {
	o.rings[part][uint64(off/wordBits)&o.mask].Or(1 << uint64(off%wordBits))
	return nil
}

// trackBatch is the limit of a batch: initialise the new words, one store of
// the high mark.
func (o *orImpl) trackBatch(offs []int64) (int, error) {
	ring, last := o.rings[0], offs[len(offs)-1]/wordBits
	for k := o.init[0]; k <= last; k++ {
		ring[uint64(k)&o.mask].Store(0)
	}
	o.init[0] = max(o.init[0], last+1)
	o.high[0].Store(offs[len(offs)-1] + 1)
	return len(offs), nil
}

func (o *orImpl) waitRoom(context.Context, int64) error { return nil }

func (o *orImpl) Committable(int) int64 { return -1 }
func (o *orImpl) Sync()                 {}
func (o *orImpl) Close()                {}

func (o *orImpl) trackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		o.Track(int(r.part), base+int64(r.off))
	}
	return 0
}

func (o *orImpl) ackAll(base int64, refs []ref) (errs int) {
	for _, r := range refs {
		off := base + int64(r.off)
		o.rings[r.part][uint64(off/wordBits)&o.mask].Or(1 << uint64(off%wordBits))
	}
	return 0
}

// addImpl is the physical limit of any shared counter: one atomic Add on a
// single shared word per ack, whatever the partition.
type addImpl struct {
	_ [64]byte // prevents false sharing with whatever precedes it
	n atomic.Int64
	_ [56]byte // prevents false sharing with whatever follows it
}

func (a *addImpl) Name() string                  { return "add" }
func (a *addImpl) Track(int, int64) error        { return nil }
func (a *addImpl) Ack(int, int64) error          { a.n.Add(1); return nil }
func (a *addImpl) Committable(int) int64         { return -1 }
func (a *addImpl) Sync()                         {}
func (a *addImpl) Close()                        {}
func (a *addImpl) trackAll(int64, []ref) (e int) { return 0 }

func (a *addImpl) ackAll(_ int64, refs []ref) (errs int) {
	for range refs {
		a.n.Add(1)
	}
	return 0
}
