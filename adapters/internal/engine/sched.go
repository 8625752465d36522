package engine

// This file holds the scheduler between the deliveries and the workers: the
// ready messages of each partition, kept by ordering mode, and the choice of
// the next message for a free worker (the partition with the fewest handler
// calls running first, round-robin among equals; within a partition the
// lowest offset that may start). sched is the data structure alone, with no
// lock and no goroutine, so that the model test and the fuzz target can drive
// it step by step; runq adds the lock and the parking of idle workers.

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Ordering says which handler calls of one partition may overlap. Handler
// calls of different partitions always may.
type Ordering int

const (
	// Unordered lets any messages of a partition be handled at the same
	// time, in any order. Default.
	Unordered Ordering = iota
	// ByKey handles the messages of one key (compared by bytes) of a
	// partition one at a time, in offset order; different keys run
	// concurrently. See Config.KeylessOrdered for messages without a key.
	ByKey
	// ByPartition handles the messages of a partition one at a time, in
	// offset order.
	ByPartition
)

func (o Ordering) String() string {
	switch o {
	case Unordered:
		return "Unordered"
	case ByKey:
		return "ByKey"
	case ByPartition:
		return "ByPartition"
	}
	return fmt.Sprintf("Ordering(%d)", int(o))
}

type job[M any] struct {
	offset int64
	msg    M
	rt     *retry[M] // nil until the message fails
	h      uint64    // ByKey: hash of the key
}

// task is a job handed to a worker, with what done needs to release.
type task[M any] struct {
	job[M]
	p     *Part     // the assignment the message belongs to (q.p when taken)
	q     *partQ[M] // its lane
	kq    *keyQ[M]  // ByKey, keyed message: the key it holds
	again bool      // set by the worker: not handled, queue it again (BatchError's tail)
}

// fifo is a ring-buffer queue; its buffer is kept when it empties.
type fifo[T any] struct {
	buf  []T // length a power of two, or nil
	head int
	n    int
}

func (f *fifo[T]) push(v T) {
	if f.n == len(f.buf) {
		f.grow()
	}
	f.buf[(f.head+f.n)&(len(f.buf)-1)] = v
	f.n++
}

func (f *fifo[T]) grow() {
	nb := make([]T, max(2, 2*len(f.buf)))
	k := copy(nb, f.buf[f.head:])
	copy(nb[k:], f.buf[:f.head])
	f.buf, f.head = nb, 0
}

// insert puts v before the first element that is not before it: near the
// front for a retried message, which is older than most of the queue.
func (f *fifo[T]) insert(v T, before func(a, b *T) bool) {
	if f.n == len(f.buf) {
		f.grow()
	}
	mask := len(f.buf) - 1
	f.head = (f.head - 1) & mask
	f.n++
	i := f.head
	for k := 1; k < f.n; k++ {
		next := (i + 1) & mask
		if !before(&f.buf[next], &v) {
			break
		}
		f.buf[i] = f.buf[next]
		i = next
	}
	f.buf[i] = v
}

func (f *fifo[T]) peek() *T { return &f.buf[f.head] }

func (f *fifo[T]) pop() T {
	var zero T
	v := f.buf[f.head]
	f.buf[f.head] = zero
	f.head = (f.head + 1) & (len(f.buf) - 1)
	f.n--
	return v
}

// reset empties f, releasing its messages, and its buffer if larger than
// keep. The slots outside head..head+n are zero already (pop).
func (f *fifo[T]) reset(keep int) {
	switch {
	case len(f.buf) > keep:
		f.buf = nil
	case f.n > 0:
		clear(f.buf)
	}
	f.head, f.n = 0, 0
}

// jobq is a partition's queue of messages: a chain of fixed blocks that
// are taken from and given back to the scheduler's pool as the queue grows
// and shrinks, so a queue that fills and drains (a fetch at a time) copies
// nothing and, once warm, allocates nothing; an empty queue holds no block.
// Every block but the head is filled from its first slot.
type jobq[M any] struct {
	head, tail *qblock[M]
	hi, ti     int // the first message in head; the next free slot in tail
	n          int
}

// qblockLen is the number of messages in a block of a jobq.
const qblockLen = 64

type qblock[M any] struct {
	jobs [qblockLen]job[M]
	next *qblock[M]

	// Slots of it reserved by runs (see sched.reserveMore), whose
	// workers read them there, outside the scheduler's lock: while any
	// is, the block is not reused, and a block given back meanwhile
	// (retired) is freed by the last run's release.
	readers int
	retired bool
}

// maxFreeBlocks bounds the blocks the scheduler keeps for reuse.
const maxFreeBlocks = 1024

func (s *sched[M]) newBlock() *qblock[M] {
	if n := len(s.blocks); n > 0 {
		b := s.blocks[n-1]
		s.blocks[n-1] = nil
		s.blocks = s.blocks[:n-1]
		return b
	}
	return new(qblock[M])
}

// freeBlock takes back a block whose messages are cleared, once no run
// holds a reservation of it.
func (s *sched[M]) freeBlock(b *qblock[M]) {
	if b.readers > 0 {
		b.retired = true // see unreserve
		return
	}
	b.next, b.retired = nil, false
	if len(s.blocks) < maxFreeBlocks {
		s.blocks = append(s.blocks, b)
	}
}

// slot returns the next free slot of q and counts it queued.
func (q *jobq[M]) slot(s *sched[M]) *job[M] { return &q.room(s, 1)[0] }

// room returns the next up to n free slots of q (n > 0), all in its tail
// block, adding a block if the tail is full, and counts them queued.
func (q *jobq[M]) room(s *sched[M], n int) []job[M] {
	if q.tail == nil || q.ti == qblockLen {
		b := s.newBlock()
		if q.tail == nil {
			q.head, q.hi = b, 0
		} else {
			q.tail.next = b
		}
		q.tail, q.ti = b, 0
	}
	m := min(n, qblockLen-q.ti)
	js := q.tail.jobs[q.ti : q.ti+m]
	q.ti += m
	q.n += m
	return js
}

func (q *jobq[M]) push(s *sched[M], j job[M]) { *q.slot(s) = j }

func (q *jobq[M]) peek() *job[M] { return &q.head.jobs[q.hi] }

func (q *jobq[M]) pop(s *sched[M]) job[M] {
	b := q.head
	j := b.jobs[q.hi]
	b.jobs[q.hi] = job[M]{}
	q.hi++
	q.n--
	q.retire(s, b)
	return j
}

// retire gives back b, the head block, if the queue is empty or b's last
// message was taken.
func (q *jobq[M]) retire(s *sched[M], b *qblock[M]) {
	switch {
	case q.n == 0:
		s.freeBlock(b)
		*q = jobq[M]{}
	case q.hi == qblockLen:
		q.head, q.hi = b.next, 0
		s.freeBlock(b)
	}
}

// popRun appends the next k messages (k <= q.n) to out as tasks of pq, a
// block's slots at a time.
func (q *jobq[M]) popRun(s *sched[M], pq *partQ[M], out []task[M], k int) []task[M] {
	for k > 0 {
		b := q.head
		end := qblockLen
		if b == q.tail {
			end = q.ti
		}
		m := min(k, end-q.hi)
		n := len(out)
		out = slices.Grow(out, m)[:n+m]
		for i, j := range b.jobs[q.hi : q.hi+m] {
			out[n+i] = task[M]{job: j, p: pq.p, q: pq}
		}
		clear(b.jobs[q.hi : q.hi+m])
		q.hi += m
		q.n -= m
		k -= m
		q.retire(s, b)
	}
	return out
}

// seg is the slots [lo, hi) of b, reserved by a run (see sched.reserve).
type seg[M any] struct {
	b      *qblock[M]
	lo, hi int
}

// reserve takes the next k messages of q's queue (k <= q.fifo.n) for a
// run, appending them to out as reserved slots, which the run's worker
// reads in place (see workerRun).
func (q *jobq[M]) reserve(s *sched[M], k int, out []seg[M]) []seg[M] {
	for k > 0 {
		b := q.head
		end := qblockLen
		if b == q.tail {
			end = q.ti
		}
		m := min(k, end-q.hi)
		b.readers++
		out = append(out, seg[M]{b, q.hi, q.hi + m})
		q.hi += m
		q.n -= m
		k -= m
		q.retire(s, b)
	}
	return out
}

// unreserve releases g: its slots are cleared, and its block freed if it
// was given back meanwhile and no other run reads it.
func (s *sched[M]) unreserve(g seg[M]) {
	b := g.b
	clear(b.jobs[g.lo:g.hi])
	b.readers--
	if b.readers == 0 && b.retired {
		s.freeBlock(b)
	}
}

// insert puts v before the first message that is not before it by offset:
// near the front for a retried message, which is older than most of the
// queue.
func (q *jobq[M]) insert(s *sched[M], v job[M]) {
	if q.n == 0 {
		q.push(s, v)
		return
	}
	if q.hi > 0 && q.head.readers > 0 {
		// A run reads the slots before the head's first message: the
		// head's messages move to a block of their own, at the same slots.
		b, nb := q.head, s.newBlock()
		end := qblockLen
		if b == q.tail {
			end, q.tail = q.ti, nb
		}
		copy(nb.jobs[q.hi:end], b.jobs[q.hi:end])
		clear(b.jobs[q.hi:end])
		nb.next, q.head = b.next, nb
		s.freeBlock(b) // retired: the run's release frees it
	}
	if q.hi == 0 { // a block in front; the old head is full from slot 0
		b := s.newBlock()
		b.next = q.head
		q.head, q.hi = b, qblockLen
	}
	q.hi--
	q.n++
	b, i := q.head, q.hi // the hole
	for k := 1; k < q.n; k++ {
		nb, ni := b, i+1
		if ni == qblockLen {
			nb, ni = b.next, 0
		}
		if !jobBefore(&nb.jobs[ni], &v) {
			break
		}
		b.jobs[i] = nb.jobs[ni]
		b, i = nb, ni
	}
	b.jobs[i] = v
}

// clear empties q, giving its blocks back (the head's slots before q.hi
// may be reserved by a run: its release clears them).
func (q *jobq[M]) clear(s *sched[M]) {
	for b, i := q.head, q.hi; b != nil; i = 0 {
		next := b.next
		clear(b.jobs[i:])
		s.freeBlock(b)
		b = next
	}
	*q = jobq[M]{}
}

// keyQ is a busy key of a partition (ByKey): messages of it are running or
// wait for their retry (its holds), or messages of it met while it was
// busy are parked behind. It exists while the key is busy, and after that
// as an idle record (idle; at most maxIdle in the scheduler) that the key's
// next message takes again; it sits in its lane's heap iff holds is 0 and
// it has parked messages.
type keyQ[M any] struct {
	hash  uint64
	key   []byte
	jobs  fifo[job[M]] // parked messages, by offset
	holds int          // messages of the key in a worker or waiting for a retry
	idle  bool         // not busy, nothing parked: kept for the key's next message
	tok   uint64       // the batch (sched.tok) that took it last
}

// heapEnt is a key that may start, in a partition's heap: the offset of its
// head beside it, so that sifting reads only the heap's array.
type heapEnt[M any] struct {
	head int64
	kq   *keyQ[M]
}

// keyQs returned to the pool keep buffers up to these sizes.
const (
	keepJobs = 16
	keepKey  = 256
)

// partQ is the lane of one topic-partition: its ready work, and what its
// handler calls hold. A lane outlives the partition's assignments: a
// partition revoked and assigned again gets the same lane, whose busy keys
// (ByKey) and running count (ByPartition) still hold the calls of the
// earlier assignment, so its new messages wait for them.
type partQ[M any] struct {
	p          *Part     // the current assignment
	next, prev *partQ[M] // ring of the bucket it is in
	bucket     int       // handler calls running when it was placed; -1: in no bucket
	running    int       // handler calls running
	ready      int       // messages a worker may take now (its share of sched.nready)
	dropped    bool      // revoked: nothing is queued or taken any more
	held       int       // ByPartition: messages waiting for a retry (at most one)
	waiting    []*retry[M]

	// Every queued message, by offset; with ByKey, but those parked
	// behind their busy key.
	fifo jobq[M]

	// ByKey.
	keys keyTable[M]  // busy keys and kept idle ones
	heap []heapEnt[M] // idle keys with parked messages, by the offset of their head
}

// sched is the scheduler's state; the caller serialises every call.
//
// Ready partitions sit in buckets by the number of their handler calls
// running: take serves the lowest non-empty bucket, from its head, and puts
// the partition back at the tail of its new bucket. So a free worker goes to
// a partition with the fewest calls running, round-robin among equals: a
// partition of slow handlers cannot hold more than its share of the workers
// while others have work ready, and a quiet partition's new message gets the
// next worker that frees up.
type sched[M any] struct {
	mode    Ordering
	keyless bool // KeylessOrdered
	key     func(M) []byte
	buckets []*partQ[M]
	minB    int          // no bucket below it is non-empty
	nready  int          // sum of the partitions' ready
	free    []*keyQ[M]   // key records for reuse, at most maxFree
	idle    int          // records of idle keys kept in the lanes, at most maxIdle
	blocks  []*qblock[M] // queue blocks for reuse, at most maxFreeBlocks
	timers  []*retry[M]  // messages waiting for a retry, by due time
	lanes   map[TopicPartition]*partQ[M]
	tok     uint64 // while takeBatch fills a batch: its token (ByKey); else 0
	ntok    uint64 // the last token given

	// The buffered-bytes accounting (flow.go) of the messages dropped
	// here; nil in the scheduler's own tests.
	size  func(*M) int
	bytes func(p *Part, n int64)
}

// freeBytes counts the bytes of msgs dropped from p.
func (s *sched[M]) freeBytes(p *Part, msgs ...M) {
	if s.size == nil {
		return
	}
	var n int64
	for i := range msgs {
		n += int64(s.size(&msgs[i]))
	}
	s.bytes(p, -n)
}

func newSched[M any](mode Ordering, keylessOrdered bool, workers int, key func(M) []byte) *sched[M] {
	return &sched[M]{
		mode:    mode,
		keyless: keylessOrdered,
		key:     key,
		buckets: make([]*partQ[M], workers+1),
		lanes:   make(map[TopicPartition]*partQ[M]),
	}
}

// partOf returns p's lane, at p's first message the lane of its
// topic-partition, which p then owns: what an earlier assignment left
// queued there is dropped, what it left running keeps holding its keys
// (ByKey) or the partition (ByPartition) until it returns.
func (s *sched[M]) partOf(p *Part) *partQ[M] {
	if q, _ := p.sq.(*partQ[M]); q != nil {
		return q
	}
	q := s.lanes[p.TP]
	if q == nil {
		q = &partQ[M]{bucket: -1}
		s.lanes[p.TP] = q
	}
	if q.p != nil && q.p != p && !q.dropped {
		addUnackable(q.p, s.drop(q))
	}
	q.p, q.dropped = p, false
	p.sq = q
	return q
}

// forget deletes q from the lanes once nothing of it is left: dropped
// and no call running.
func (s *sched[M]) forget(q *partQ[M]) {
	if q.dropped && q.running == 0 && q.keys.n == 0 && s.lanes[q.p.TP] == q {
		delete(s.lanes, q.p.TP)
	}
}

// pushBatch queues the messages msgs at offsets offs (ByKey: whose keys
// hash to hs; nil otherwise), all or none, and places p once. It returns
// false, queueing nothing, if p is revoked.
func (s *sched[M]) pushBatch(p *Part, offs []int64, msgs []M, hs []uint64) bool {
	q := s.partOf(p)
	if q.dropped || p.revoking.Load() {
		return false
	}
	for i := 0; i < len(offs); {
		js := q.fifo.room(s, len(offs)-i) // cleared slots: rt is nil
		for x := range js {
			js[x].offset, js[x].msg = offs[i+x], msgs[i+x]
		}
		if hs != nil {
			for x := range js {
				js[x].h = hs[i+x]
			}
		}
		i += len(js)
	}
	s.place(q)
	return true
}

// take hands out the next message, or returns false if no message may start.
// A revoked partition met on the way is dropped (see drop).
func (s *sched[M]) take() (task[M], bool) {
	for {
		for s.minB < len(s.buckets) && s.buckets[s.minB] == nil {
			s.minB++
		}
		if s.minB == len(s.buckets) {
			return task[M]{}, false
		}
		q := s.buckets[s.minB]
		if q.p.revoking.Load() {
			addUnackable(q.p, s.drop(q))
			continue
		}
		var t task[M]
		if s.mode == ByKey {
			var ok bool
			if t, ok = s.takeByKey(q); !ok {
				s.place(q) // it had nothing that may start after all
				continue
			}
		} else {
			t = task[M]{job: q.fifo.pop(s), p: q.p, q: q}
		}
		q.running++
		s.place(q)
		return t, true
	}
}

// takeMore appends to out up to n more messages of q, the lane of a
// message take just handed out, and counts them running: a worker whose
// handler calls are short takes a run of them under one lock (see
// Engine.worker). Unordered: the next messages of q's queue. ByKey: the
// next messages that may start, each of a key the run does not hold
// already, so that any of them may be stolen (see runq.steal) and each is
// released on its own once its call returns (see runq.reap). ByPartition
// takes one at a time.
func (s *sched[M]) takeMore(q *partQ[M], out []task[M], n int) []task[M] {
	if s.mode == ByPartition || n <= 0 || q.dropped || q.p.revoking.Load() {
		return out
	}
	k := 0
	if s.mode == ByKey {
		for ; k < n; k++ {
			t, ok := s.takeByKey(q)
			if !ok {
				break
			}
			out = append(out, t)
		}
	} else if k = min(n, q.fifo.n); k > 0 {
		out = q.fifo.popRun(s, q, out, k)
	}
	q.running += k
	s.place(q)
	return out
}

// reserveMore is takeMore for an Unordered run (see runq.next): it appends
// to segs up to n more messages of q, reserved in q's queue blocks instead
// of copied (jobq.reserve), counts them running, and returns how many.
func (s *sched[M]) reserveMore(q *partQ[M], segs []seg[M], n int) ([]seg[M], int) {
	if n <= 0 || q.dropped || q.p.revoking.Load() {
		return segs, 0
	}
	k := min(n, q.fifo.n)
	if k > 0 {
		segs = q.fifo.reserve(s, k, segs)
	}
	q.running += k
	s.place(q)
	return segs, k
}

// takeByKey returns the lowest offset of q that may start: the first
// message of q.fifo whose key is not busy, or the head of the idle key with
// the oldest parked message. Messages met at the head of q.fifo whose key is
// busy are parked behind it on the way (each message at most once).
func (s *sched[M]) takeByKey(q *partQ[M]) (task[M], bool) {
	for q.fifo.n > 0 {
		j := q.fifo.peek()
		if len(q.heap) > 0 && q.heap[0].head < j.offset {
			break
		}
		k := s.key(j.msg)
		if len(k) == 0 && !s.keyless {
			return task[M]{job: q.fifo.pop(s), p: q.p, q: q}, true // not ordered
		}
		kq := q.lookup(j.h, k)
		if kq == nil { // idle key: it runs now
			kq = s.newKey(j.h, k)
			q.insertKey(kq)
			kq.holds, kq.tok = 1, s.tok
			return task[M]{job: q.fifo.pop(s), p: q.p, q: q, kq: kq}, true
		}
		if kq.idle { // its record kept (see unhold)
			kq.idle = false
			s.idle--
			kq.holds, kq.tok = 1, s.tok
			return task[M]{job: q.fifo.pop(s), p: q.p, q: q, kq: kq}, true
		}
		if s.tok != 0 && kq.tok == s.tok && kq.jobs.n == 0 {
			// Held by the batch being filled, nothing older parked: the
			// batch takes it too, behind the key's earlier messages.
			kq.holds++
			return task[M]{job: q.fifo.pop(s), p: q.p, q: q, kq: kq}, true
		}
		kq.jobs.push(q.fifo.pop(s)) // busy, or older messages parked: behind them
	}
	if len(q.heap) == 0 {
		return task[M]{}, false
	}
	kq := q.heapPop()
	kq.holds, kq.tok = 1, s.tok
	return task[M]{job: kq.jobs.pop(), p: q.p, q: q, kq: kq}, true
}

// takeBatch appends to out up to max-len(out) messages that may start, as
// take hands them out one by one (each counted running), and reports
// whether it appended any. ByKey: a key taken also gives its parked
// messages, and its later messages met in the lane's queue, in offset
// order while there is room: the key is held for the whole batch (one hold
// per message). ByPartition: the lane's next messages after the first
// (the lane is held while any runs), one lane per batch: called again
// with out not empty, only that lane's. Unordered: any messages, across
// lanes.
func (s *sched[M]) takeBatch(out []task[M], max int) ([]task[M], bool) {
	n0 := len(out)
	if s.mode == ByKey {
		s.ntok++
		s.tok = s.ntok
		defer func() { s.tok = 0 }()
	}
	if s.mode == ByPartition && n0 > 0 {
		// Only the lane of the batch: its next messages, which it holds.
		q := out[0].q
		if k := min(max-n0, q.fifo.n); k > 0 && !q.dropped && !q.p.revoking.Load() {
			out = q.fifo.popRun(s, q, out, k)
			q.running += k
			s.place(q)
		}
		return out, len(out) > n0
	}
	for len(out) < max {
		t, ok := s.take()
		if !ok {
			break
		}
		out = append(out, t)
		q := t.q
		switch {
		case t.kq != nil:
			kq := t.kq
			k := 0
			for kq.jobs.n > 0 && len(out) < max {
				out = append(out, task[M]{job: kq.jobs.pop(), p: q.p, q: q, kq: kq})
				kq.holds++
				k++
			}
			if k > 0 {
				q.running += k
				s.place(q)
			}
		case s.mode == Unordered: // the lane's next messages at once
			out = s.takeMore(q, out, max-len(out))
		case s.mode == ByPartition:
			k := min(max-len(out), q.fifo.n)
			if k > 0 {
				out = q.fifo.popRun(s, q, out, k)
				q.running += k
				s.place(q)
			}
			return out, true // one partition per batch
		}
	}
	return out, len(out) > n0
}

// done releases what t held once its handler call is over, or, if the
// worker marked it pending a retry, makes it wait until now plus its wait
// (the message keeps holding its key or partition). The caller settles t's
// lane.
func (s *sched[M]) done(t *task[M], now int64) {
	q := t.q
	q.running--
	if rt := t.rt; rt != nil && rt.pending {
		rt.pending = false
		if !q.dropped && t.p == q.p {
			s.hold(t, now)
			return
		}
		addUnackable(t.p, 1) // revoked while it ran: dropped like the queue
		s.freeBytes(t.p, t.msg)
	}
	if kq := t.kq; kq != nil {
		s.unhold(q, kq)
	}
}

// settle places q, and forgets it if nothing of it is left, after done or
// requeue released messages of it: once per lane and run (see
// runq.release).
func (s *sched[M]) settle(q *partQ[M]) {
	s.place(q)
	s.forget(q)
}

// unhold releases one hold of kq, a key of q: once none is left the key is
// free, its next parked message may start.
func (s *sched[M]) unhold(q *partQ[M], kq *keyQ[M]) {
	kq.holds--
	switch {
	case kq.holds > 0:
	case q.dropped:
		q.removeKey(kq) // drop kept it while it was held
		s.freeKey(kq)
	case kq.jobs.n > 0:
		q.heapPush(heapEnt[M]{kq.jobs.peek().offset, kq})
	case s.idle < maxIdle:
		// Idle: its record stays in the lane, so that the key's next
		// message finds it (no insert and delete per call).
		kq.idle = true
		s.idle++
	default:
		q.removeKey(kq)
		s.freeKey(kq)
	}
}

// requeue puts t, taken and not handled (the messages of a batch behind a
// BatchError's Index), back at its offset's place, without an attempt
// counted: behind its key's earlier messages (ByKey), in its lane's queue
// otherwise. A message of a lane dropped meanwhile is dropped like the
// queue.
func (s *sched[M]) requeue(t *task[M]) {
	q := t.q
	q.running--
	t.again = false
	switch {
	case q.dropped || t.p != q.p:
		addUnackable(t.p, 1)
		s.freeBytes(t.p, t.msg)
		if t.kq != nil {
			s.unhold(q, t.kq)
		}
	case t.kq != nil:
		t.kq.jobs.insert(t.job, jobBefore)
		s.unhold(q, t.kq)
	default:
		q.fifo.insert(s, t.job)
	}
}

// doneRun releases the tasks of a run (one partition's), and more
// messages of the first one's lane (reserved ones, see workerRun.plain),
// at once if they are of one lane and none holds a key, waits for a retry
// or is to be queued again (the caller checks that none was stolen), and
// reports whether it did;
// else the caller releases them one by one.
func (s *sched[M]) doneRun(run []task[M], more int) bool {
	for i := range run {
		if run[i].again || run[i].kq != nil || run[i].rt != nil && run[i].rt.pending ||
			run[i].q != run[0].q { // a batch (takeBatch) may span lanes

			return false
		}
	}
	q := run[0].q
	q.running -= len(run) + more
	s.place(q)
	s.forget(q)
	return true
}

func (s *sched[M]) hold(t *task[M], now int64) {
	q, rt := t.q, t.rt
	rt.due = now + int64(rt.wait)
	rt.t = *t // its key's hold is now the retry's
	if s.mode == ByPartition {
		q.held++
	}
	rt.pidx = len(q.waiting)
	q.waiting = append(q.waiting, rt)
	s.timerPush(rt)
}

// expire queues again the messages whose retry is due at now, and returns
// how many.
func (s *sched[M]) expire(now int64) int {
	n := 0
	for len(s.timers) > 0 && s.timers[0].due <= now {
		rt := s.timers[0]
		s.timerRemove(rt)
		s.unwait(rt)
		t := rt.t
		rt.t = task[M]{}
		q := t.q
		switch {
		case t.kq != nil:
			t.kq.jobs.insert(t.job, jobBefore)
			s.unhold(q, t.kq)
		case s.mode == ByPartition:
			q.held--
			q.fifo.insert(s, t.job)
		default:
			q.fifo.insert(s, t.job)
		}
		s.place(q)
		n++
	}
	return n
}

func jobBefore[M any](a, b *job[M]) bool { return a.offset < b.offset }

// nextDue returns when the first retry is due.
func (s *sched[M]) nextDue() (int64, bool) {
	if len(s.timers) == 0 {
		return 0, false
	}
	return s.timers[0].due, true
}

// unwait removes rt from its partition's waiting list.
func (s *sched[M]) unwait(rt *retry[M]) {
	q := rt.t.q
	last := len(q.waiting) - 1
	q.waiting[rt.pidx] = q.waiting[last]
	q.waiting[rt.pidx].pidx = rt.pidx
	q.waiting[last] = nil
	q.waiting = q.waiting[:last]
}

// drop empties p's queue for good (p is revoked) and returns how many
// messages it held, those waiting for a retry included; they are never
// handed out. Later pushes are refused.
func (s *sched[M]) drop(q *partQ[M]) int64 {
	if q.dropped {
		return 0
	}
	n := int64(q.fifo.n + len(q.waiting))
	if s.size != nil {
		var b int64
		for blk, i := q.fifo.head, q.fifo.hi; blk != nil; blk, i = blk.next, 0 {
			end := qblockLen
			if blk == q.fifo.tail {
				end = q.fifo.ti
			}
			for ; i < end; i++ {
				b += int64(s.size(&blk.jobs[i].msg))
			}
		}
		for _, rt := range q.waiting {
			b += int64(s.size(&rt.t.msg))
		}
		for _, e := range q.keys.slots {
			if kq := e.kq; kq != nil {
				for k := range kq.jobs.n {
					b += int64(s.size(&kq.jobs.buf[(kq.jobs.head+k)&(len(kq.jobs.buf)-1)].msg))
				}
			}
		}
		s.bytes(q.p, -b)
	}
	q.fifo.clear(s)
	for _, rt := range q.waiting {
		s.timerRemove(rt)
		if kq := rt.t.kq; kq != nil {
			kq.holds-- // freed with the other keys below if no call holds it
		}
		rt.t = task[M]{}
	}
	q.waiting, q.held = nil, 0
	// The keys held by running calls stay in the lane, their parked
	// messages dropped: done frees them, or a new assignment's messages of
	// those keys wait for them.
	var running []*keyQ[M]
	for _, e := range q.keys.slots {
		kq := e.kq
		if kq == nil {
			continue
		}
		n += int64(kq.jobs.n)
		if kq.idle {
			s.idle--
		}
		kq.jobs.reset(keepJobs)
		if kq.holds > 0 {
			running = append(running, kq)
		} else {
			s.freeKey(kq)
		}
	}
	q.keys.reset()
	for _, kq := range running {
		q.insertKey(kq)
	}
	q.heap = nil
	q.dropped = true
	s.place(q)
	s.forget(q)
	return n
}

// place recounts q's ready messages and moves q to the bucket they call
// for; q keeps its place in the ring if the bucket does not change.
func (s *sched[M]) place(q *partQ[M]) {
	r := 0
	if !q.dropped {
		switch s.mode {
		case Unordered:
			r = q.fifo.n
		case ByKey:
			// An upper bound: messages of q.fifo whose key is busy are
			// parked when a take meets them, and q leaves its bucket if
			// nothing may start.
			r = len(q.heap) + q.fifo.n
		case ByPartition:
			if q.running == 0 && q.held == 0 && q.fifo.n > 0 {
				r = 1
			}
		}
	}
	s.nready += r - q.ready
	q.ready = r
	want := -1
	if r > 0 {
		want = q.running
	}
	if want == q.bucket {
		return
	}
	if q.bucket >= 0 {
		s.unlink(q)
	}
	if want >= 0 {
		s.link(q, want)
	}
}

func (s *sched[M]) link(q *partQ[M], b int) {
	for b >= len(s.buckets) {
		s.buckets = append(s.buckets, nil)
	}
	if h := s.buckets[b]; h == nil {
		q.next, q.prev = q, q
		s.buckets[b] = q
	} else { // at the tail
		q.next, q.prev = h, h.prev
		h.prev.next = q
		h.prev = q
	}
	q.bucket = b
	s.minB = min(s.minB, b)
}

func (s *sched[M]) unlink(q *partQ[M]) {
	b := q.bucket
	if q.next == q {
		s.buckets[b] = nil
	} else {
		q.prev.next, q.next.prev = q.next, q.prev
		if s.buckets[b] == q {
			s.buckets[b] = q.next
		}
	}
	q.next, q.prev, q.bucket = nil, nil, -1
}

// maxFree bounds the key records kept for reuse; maxIdle those of idle
// keys kept in their lanes (sched.idle).
const (
	maxFree = 1024
	maxIdle = 4096
)

func (s *sched[M]) newKey(h uint64, k []byte) *keyQ[M] {
	var kq *keyQ[M]
	if n := len(s.free); n > 0 {
		kq = s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
	} else {
		kq = &keyQ[M]{}
	}
	kq.hash, kq.key = h, append(kq.key[:0], k...)
	return kq
}

func (s *sched[M]) freeKey(kq *keyQ[M]) {
	kq.jobs.reset(keepJobs)
	if cap(kq.key) > keepKey {
		kq.key = nil
	}
	kq.holds, kq.tok, kq.idle = 0, 0, false
	if len(s.free) < maxFree {
		s.free = append(s.free, kq)
	}
}

func (q *partQ[M]) lookup(h uint64, k []byte) *keyQ[M] { return q.keys.get(h, k) }

func (q *partQ[M]) insertKey(kq *keyQ[M]) { q.keys.put(kq) }

func (q *partQ[M]) removeKey(kq *keyQ[M]) { q.keys.del(kq) }

// keyTable is a lane's key records (ByKey) by the hash of the key, which
// the intake computed once per message (runq.pushBatch): open addressing
// with linear probing, so that a lookup is a probe of this array (a Go map
// would hash its uint64 key again and cost 3 to 4 times as much per
// message, each message inserting and deleting its key). Keys with equal
// hashes sit in their own slots, told apart by their bytes.
type keyTable[M any] struct {
	slots []keySlot[M] // a power of two long, at most half full; nil when empty
	n     int
}

type keySlot[M any] struct {
	h  uint64
	kq *keyQ[M] // nil: empty
}

func (t *keyTable[M]) get(h uint64, k []byte) *keyQ[M] {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		e := &t.slots[i]
		if e.kq == nil {
			return nil
		}
		if e.h == h && bytes.Equal(e.kq.key, k) {
			return e.kq
		}
	}
}

func (t *keyTable[M]) put(kq *keyQ[M]) {
	if 2*(t.n+1) > len(t.slots) {
		old := t.slots
		t.slots = make([]keySlot[M], max(16, 2*len(old)))
		t.n = 0
		for _, e := range old {
			if e.kq != nil {
				t.put(e.kq)
			}
		}
	}
	mask := uint64(len(t.slots) - 1)
	i := kq.hash & mask
	for t.slots[i].kq != nil {
		i = (i + 1) & mask
	}
	t.slots[i] = keySlot[M]{kq.hash, kq}
	t.n++
}

// del removes kq, which is in t, and moves back the slots after it that
// probed past it, so that no probe stops early at the hole.
func (t *keyTable[M]) del(kq *keyQ[M]) {
	mask := uint64(len(t.slots) - 1)
	i := kq.hash & mask
	for t.slots[i].kq != kq {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; t.slots[j].kq != nil; j = (j + 1) & mask {
		// The slot at j may fill the hole at i if its home is not in (i, j].
		if (j-t.slots[j].h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = keySlot[M]{}
	t.n--
}

// reset empties t, keeping its slots.
func (t *keyTable[M]) reset() {
	clear(t.slots)
	t.n = 0
}

func (q *partQ[M]) heapPush(x heapEnt[M]) {
	q.heap = append(q.heap, x)
	h := q.heap
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].head <= x.head {
			break
		}
		h[i] = h[parent]
		i = parent
	}
	h[i] = x
}

func (q *partQ[M]) heapPop() *keyQ[M] {
	h := q.heap
	top := h[0].kq
	last := len(h) - 1
	x := h[last]
	h[last] = heapEnt[M]{}
	h = h[:last]
	q.heap = h
	if last == 0 {
		return top
	}
	i := 0
	for {
		small := 2*i + 1
		if small >= last {
			break
		}
		if r := small + 1; r < last && h[r].head < h[small].head {
			small = r
		}
		if x.head <= h[small].head {
			break
		}
		h[i] = h[small]
		i = small
	}
	h[i] = x
	return top
}

func (s *sched[M]) timerPush(rt *retry[M]) {
	rt.hidx = len(s.timers)
	s.timers = append(s.timers, rt)
	s.timerUp(rt.hidx)
}

func (s *sched[M]) timerRemove(rt *retry[M]) {
	h := s.timers
	i, last := rt.hidx, len(h)-1
	if i != last {
		h[i] = h[last]
		h[i].hidx = i
	}
	h[last] = nil
	s.timers = h[:last]
	if i != last {
		s.timerDown(i)
		s.timerUp(i)
	}
}

func (s *sched[M]) timerUp(i int) {
	h := s.timers
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].due <= h[i].due {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		h[i].hidx, h[parent].hidx = i, parent
		i = parent
	}
}

func (s *sched[M]) timerDown(i int) {
	h := s.timers
	for {
		small := 2*i + 1
		if small >= len(h) {
			return
		}
		if r := small + 1; r < len(h) && h[r].due < h[small].due {
			small = r
		}
		if h[i].due <= h[small].due {
			return
		}
		h[i], h[small] = h[small], h[i]
		h[i].hidx, h[small].hidx = i, small
		i = small
	}
}

// addUnackable counts n queued messages of p that were dropped.
func addUnackable(p *Part, n int64) {
	if n > 0 {
		p.unackable.Add(n - 1)
		p.addUnackable() // the last one wakes a waiting drain
	}
}

// runq is the scheduler behind a lock, with the idle workers parked on a
// condition variable. A push wakes one parked worker per message it makes
// ready, unless a worker that found nothing is still looking (it yields a
// few times before it parks: fewer futex wake-ups when messages trickle in
// one by one); a worker's done and its next take share one critical
// section.
type runq[M any] struct {
	mu       sync.Mutex
	cond     sync.Cond
	s        *sched[M]
	seed     maphash.Seed
	idle     int // workers parked and not signalled
	signaled int // workers signalled that have not taken the lock again
	spinning int // workers that found nothing and look again before parking
	stopped  bool
	open     []*workerRun[M] // runs of more than one message, maybe not all claimed
	keyed    []*workerRun[M] // ByKey runs of more than one message: reap releases their finished calls
	run      int             // the length of the last run taken: how many messages a worker takes
	fillc    chan struct{}   // closed when batch fillers may fill (fillWake); nil: none waits
	fillNeed int             // the fewest messages a waiting filler lacks

	t0       time.Time   // the scheduler's clock counts from it
	timer    *time.Timer // fires when the first retry is due; nil until one waits
	armed    bool
	armedDue int64
}

func newRunq[M any](cfg Config, key func(M) []byte) *runq[M] {
	r := &runq[M]{
		s:    newSched(cfg.Ordering, cfg.KeylessOrdered, cfg.Concurrency, key),
		seed: maphash.MakeSeed(),
		t0:   time.Now(),
	}
	r.cond.L = &r.mu
	return r
}

// hashChunk is how many keys pushBatch hashes (outside the lock) per
// critical section with ByKey.
const hashChunk = 64

// pushBatch queues msgs at offsets offs (equal lengths, offsets of p in
// order) under one lock, or with ByKey one per hashChunk messages, and wakes
// a parked worker if none is on its way (see wakeOne). It returns how many
// of them it queued, a prefix: fewer than len(offs) if p is revoked or the
// engine stopped meanwhile.
func (r *runq[M]) pushBatch(p *Part, offs []int64, msgs []M) int {
	if r.s.mode != ByKey {
		r.mu.Lock()
		ok := !r.stopped && r.s.pushBatch(p, offs, msgs, nil)
		r.fillWake()
		n := r.wakeOne()
		r.mu.Unlock()
		for range n {
			r.cond.Signal()
		}
		if !ok {
			return 0
		}
		return len(offs)
	}
	var hs [hashChunk]uint64
	done := 0
	for done < len(offs) {
		k := min(len(offs)-done, hashChunk)
		for i := range k {
			hs[i] = maphash.Bytes(r.seed, r.s.key(msgs[done+i]))
		}
		r.mu.Lock()
		ok := !r.stopped && r.s.pushBatch(p, offs[done:done+k], msgs[done:done+k], hs[:k])
		r.fillWake()
		n := r.wakeOne()
		r.mu.Unlock()
		for range n {
			r.cond.Signal()
		}
		if !ok {
			break
		}
		done += k
	}
	return done
}

// wakes reserves the idle workers the ready messages need (under mu).
//
// Workers taking runs (Unordered) take up to r.run messages each, the size
// of the last run taken: a worker is woken per r.run ready messages, not
// per message (a worker woken for nothing spins and parks again, which
// costs more than the message).
func (r *runq[M]) wakes() int { return r.wakeUpTo(r.idle) }

// wakeOne is wakes for a producer (push, pushBatch): at most one worker,
// and none while one is on its way (signaled or spinning). The worker that
// takes the messages wakes the others they need (next), so a producer,
// often the one poll goroutine that bounds the consumer's throughput, makes
// at most one wake-up call per batch and the rest are made off its path.
func (r *runq[M]) wakeOne() int {
	if r.signaled+r.spinning > 0 {
		return 0
	}
	return r.wakeUpTo(1)
}

// wakeUpTo is wakes reserving at most limit workers.
func (r *runq[M]) wakeUpTo(limit int) int {
	ready := r.s.nready
	if r.run > 1 {
		ready = (ready + r.run - 1) / r.run
	}
	n := min(r.idle, limit, ready-r.signaled-r.spinning)
	if n <= 0 {
		return 0
	}
	r.idle -= n
	r.signaled += n
	return n
}

// workerRun is the messages a worker took in one visit to the scheduler:
// one, or a run of several (see runq.next). The worker claims them one by
// one with claim; so may a free worker that finds nothing else to do
// (steal), so that no message waits behind a slow handler call while a
// worker is free.
//
// An Unordered run's messages after the first are not copied: they are
// reserved in their lane's queue blocks (segs, sched.reserveMore), where
// the worker, a thief and the release read them; the release gives the
// blocks back. The run's i-th message is tasks[i], or for i >= len(tasks)
// the (i-len(tasks))-th reserved one, of tasks[0]'s partition and lane.
type workerRun[M any] struct {
	tasks  []task[M]    // written under runq.mu only
	segs   []seg[M]     // the reserved messages (under runq.mu)
	nres   int          // how many
	claim  atomic.Int32 // next index of the run to claim
	fin    atomic.Int32 // ByKey: tasks before it are finished (or stolen)
	cur    int          // the index next claimed last (the worker's own)
	rel    int          // tasks before it are released (under runq.mu)
	open   int          // index in runq.open, or -1
	keyed  int          // index in runq.keyed, or -1
	stolen uint64       // messages (a run has at most maxRun) claimed by a thief, which releases them
	fillT  *time.Timer  // a batch worker's fill wait (nextBatch)
	_      [64]byte     // claim is bumped per message: keep other workers' off its line
}

// plain reports whether no reserved message of the run waits for a retry
// (under runq.mu, after the run: see doneRun).
func (w *workerRun[M]) plain() bool {
	for _, g := range w.segs {
		for i := g.lo; i < g.hi; i++ {
			if rt := g.b.jobs[i].rt; rt != nil && rt.pending {
				return false
			}
		}
	}
	return true
}

// size is the number of messages of the run.
func (w *workerRun[M]) size() int { return len(w.tasks) + w.nres }

// job returns the run's i-th message (i < size) and its partition. A
// reserved message is read in its block: its slot is the claimer's until
// the release, which reads it (rt) there.
func (w *workerRun[M]) job(i int) (*job[M], *Part) {
	if i < len(w.tasks) {
		return &w.tasks[i].job, w.tasks[i].p
	}
	i -= len(w.tasks)
	for _, g := range w.segs {
		if i < g.hi-g.lo {
			return &g.b.jobs[g.lo+i], w.tasks[0].p
		}
		i -= g.hi - g.lo
	}
	panic("engine: workerRun.job: index past the run")
}

// at returns the run's i-th message as a task (a copy of a reserved one).
func (w *workerRun[M]) at(i int) task[M] {
	if i < len(w.tasks) {
		return w.tasks[i]
	}
	j, p := w.job(i)
	return task[M]{job: *j, p: p, q: w.tasks[0].q}
}

// next claims the next message of the run and returns it and its
// partition, or nil.
func (w *workerRun[M]) next() (*job[M], *Part) {
	i := int(w.claim.Add(1)) - 1
	if i >= w.size() {
		return nil, nil
	}
	w.cur = i
	return w.job(i)
}

// finished tells, ByKey, that the call of the message next returned last
// is over (its outcome written into it): the next worker to visit the
// scheduler releases it (see runq.reap), so that its key is free before
// the run ends.
func (w *workerRun[M]) finished() { w.fin.Store(int32(w.cur + 1)) }

func (r *runq[M]) newWorker() *workerRun[M] {
	return &workerRun[M]{tasks: make([]task[M], 0, maxRun), open: -1, keyed: -1}
}

// next releases the messages of w's last run (all of them claimed) and
// fills w with the next: one message, and with Unordered up to want of one
// partition when no worker is parked (see sched.takeMore), or else one
// stolen from another worker's run; it waits for one, and returns false
// once the engine stopped.
func (r *runq[M]) next(w *workerRun[M], want int) bool {
	r.mu.Lock()
	prev := r.releaseLocked(w)
	spun := 0
	for !r.stopped {
		r.reap()
		t, ok := r.s.take()
		stolen := false
		if !ok {
			t, ok = r.steal()
			stolen = ok
		}
		if ok {
			w.tasks = append(w.tasks, t)
			if want > 1 && r.idle == 0 {
				// Leave enough for the workers already on their way.
				k := min(want-1, t.q.fifo.n/(1+r.signaled+r.spinning))
				if r.s.mode == Unordered && !stolen {
					w.segs, w.nres = r.s.reserveMore(t.q, w.segs, k)
				} else {
					w.tasks = r.s.takeMore(t.q, w.tasks, k)
				}
			}
			if pm := t.p.m; pm != nil && !stolen { // a stolen one was counted with its run
				pm.consumed.Add(int64(w.size()))
			}
			if w.size() > 1 {
				w.open = len(r.open)
				r.open = append(r.open, w)
				if r.s.mode == ByKey {
					w.keyed = len(r.keyed)
					r.keyed = append(r.keyed, w)
				}
			}
			if !stolen {
				r.run = w.size() // what workers take now: wakes counts by it
			}
			if spun > 0 {
				r.spinning--
			}
			n := r.wakes()
			r.mu.Unlock()
			for range n {
				r.cond.Signal()
			}
			if len(w.tasks) < prev {
				clear(w.tasks[len(w.tasks):prev]) // release the last run's messages
			}
			return true
		}
		if spun < spins {
			// Yield and look again before parking: a message pushed
			// meanwhile is taken here, without waking a parked worker.
			if spun == 0 {
				r.spinning++
			}
			spun++
			r.mu.Unlock()
			runtime.Gosched()
			r.mu.Lock()
			continue
		}
		if spun > 0 {
			r.spinning--
			spun = 0
		}
		r.idle++
		r.cond.Wait()
		if r.stopped {
			break
		}
		r.signaled--
	}
	r.mu.Unlock()
	clear(w.tasks[:prev])
	return false
}

// releaseLocked releases the messages of w's last run (under mu) and
// empties it, keeping the buffer; it returns how many tasks it had (the
// caller clears those not overwritten).
func (r *runq[M]) releaseLocked(w *workerRun[M]) int {
	if w.open >= 0 {
		r.closeRun(w)
	}
	if w.keyed >= 0 {
		r.unkey(w)
	}
	n := len(w.tasks)
	if size := w.size(); size <= 1 || w.rel > 0 || w.stolen != 0 || !w.plain() || !r.s.doneRun(w.tasks, w.nres) {
		r.release(w, w.rel, size)
	}
	for _, g := range w.segs {
		r.s.unreserve(g)
	}
	clear(w.segs)
	w.segs, w.nres = w.segs[:0], 0
	w.tasks = w.tasks[:0]
	w.claim.Store(0)
	w.fin.Store(0)
	w.rel, w.stolen = 0, 0
	return n
}

// release releases w.tasks[from:to], tasks whose calls are over (under
// mu).
func (r *runq[M]) release(w *workerRun[M], from, to int) {
	var now int64
	var q *partQ[M] // the lane to settle: one per run but for batches
	for i := from; i < to; i++ {
		var t *task[M]
		if i < len(w.tasks) {
			t = &w.tasks[i]
		} else {
			tk := w.at(i) // reserved: a copy, with what the worker wrote in its slot
			t = &tk
		}
		if t.q != q {
			if q != nil {
				r.s.settle(q)
			}
			q = t.q
		}
		switch {
		case i < maxRun && w.stolen&(1<<i) != 0: // the thief releases it
		case t.again:
			r.s.requeue(t)
		case t.rt != nil && t.rt.pending:
			if now == 0 {
				now = r.now()
			}
			r.s.done(t, now)
		default:
			r.s.done(t, 0) // no clock needed
		}
	}
	if q != nil {
		r.s.settle(q)
	}
	if now != 0 {
		r.arm()
	}
}

// reap releases the finished calls of the ByKey runs still running (under
// mu), so that no key is held by a call that returned, nor counted
// running, when a worker looks for work: every visit to the scheduler
// reaps before it takes.
func (r *runq[M]) reap() {
	for _, w := range r.keyed {
		if fin := int(w.fin.Load()); fin > w.rel {
			r.release(w, w.rel, fin)
			w.rel = fin
		}
	}
}

// unkey takes w out of the keyed runs (under mu).
func (r *runq[M]) unkey(w *workerRun[M]) {
	last := len(r.keyed) - 1
	r.keyed[w.keyed] = r.keyed[last]
	r.keyed[w.keyed].keyed = w.keyed
	r.keyed[last] = nil
	r.keyed = r.keyed[:last]
	w.keyed = -1
}

// steal claims a message of another worker's run that its worker has not
// reached yet (under mu); the thief releases it.
func (r *runq[M]) steal() (task[M], bool) {
	for len(r.open) > 0 {
		w := r.open[len(r.open)-1]
		if i := int(w.claim.Add(1)) - 1; i < w.size() {
			w.stolen |= 1 << i
			return w.at(i), true
		}
		r.closeRun(w) // all claimed
	}
	return task[M]{}, false
}

// closeRun takes w out of the open runs (under mu).
func (r *runq[M]) closeRun(w *workerRun[M]) {
	last := len(r.open) - 1
	r.open[w.open] = r.open[last]
	r.open[w.open].open = w.open
	r.open[last] = nil
	r.open = r.open[:last]
	w.open = -1
}

// spins is how many times a worker that found nothing yields and looks
// again before it parks.
const spins = 2

func (r *runq[M]) now() int64 { return int64(time.Since(r.t0)) }

// arm sets the timer for the first retry due, if it is not set for it or
// earlier (under mu).
func (r *runq[M]) arm() {
	due, ok := r.s.nextDue()
	if !ok || r.stopped || r.armed && r.armedDue <= due {
		return
	}
	d := time.Duration(due - r.now())
	if r.timer == nil {
		r.timer = time.AfterFunc(d, r.fire)
	} else {
		r.timer.Reset(d)
	}
	r.armed, r.armedDue = true, due
}

// fire queues the retries that are due and wakes workers for them.
func (r *runq[M]) fire() {
	r.mu.Lock()
	r.armed = false
	if r.stopped {
		r.mu.Unlock()
		return
	}
	r.s.expire(r.now())
	r.arm()
	n := r.wakes()
	r.mu.Unlock()
	for range n {
		r.cond.Signal()
	}
}

// drop drops p's queued messages (p is revoked) and counts them unackable.
func (r *runq[M]) drop(p *Part) {
	r.mu.Lock()
	var n int64
	if q, _ := p.sq.(*partQ[M]); q != nil && q.p == p {
		n = r.s.drop(q)
	} // else nothing was queued, or a newer assignment took the lane (and dropped p's queue)
	r.mu.Unlock()
	addUnackable(p, n)
}

// stop makes every worker return from next; queued messages stay queued.
func (r *runq[M]) stop() {
	r.mu.Lock()
	r.stopped = true
	r.fillWake()
	r.idle = 0
	if r.timer != nil {
		r.timer.Stop()
	}
	r.mu.Unlock()
	r.cond.Broadcast()
}
