package engine

import (
	"slices"
	"testing"
	"time"
)

// A worker's run: the owner and a thief that finds nothing else claim every
// message exactly once, the thief the ones the owner has not reached, and
// each releases what it claimed.
func TestRunIsStolenFromAndReleasedOnce(t *testing.T) {
	c := DefaultConfig()
	c.Concurrency = 2
	r := newRunq[int64](c, nil)
	defer r.stop()
	p := &Part{TP: TopicPartition{Topic: "t", Partition: 0}}
	offs := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	if n := r.pushBatch(p, offs, offs); n != len(offs) {
		t.Fatalf("pushBatch queued %d, want %d", n, len(offs))
	}
	owner, thief := r.newWorker(), r.newWorker()
	if !r.next(owner, maxRun) {
		t.Fatal("next returned false")
	}
	if owner.size() != len(offs) {
		t.Fatalf("the owner took a run of %d, want all %d (no worker parked)", owner.size(), len(offs))
	}
	q := p.sq.(*partQ[int64])
	if q.running != len(offs) || r.s.nready != 0 {
		t.Fatalf("running %d, ready %d after the run was taken, want %d and 0", q.running, r.s.nready, len(offs))
	}
	var got []int64
	next := func(w *workerRun[int64]) *job[int64] {
		j, _ := w.next()
		return j
	}
	got = append(got, next(owner).offset, next(owner).offset) // the owner reaches 0 and 1

	// The thief finds the queue empty and takes what the owner has not
	// reached, one per visit; the owner goes on meanwhile.
	var stolen []int64
	for range 3 {
		ok := make(chan bool, 1)
		go func() { ok <- r.next(thief, 1) }()
		select {
		case got := <-ok:
			if !got {
				t.Fatal("thief: next returned false")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the thief found nothing to take: it parked although the owner's run had messages it had not reached")
		}
		j := next(thief)
		stolen = append(stolen, j.offset)
		if next(thief) != nil {
			t.Fatal("the thief got more than one message per visit")
		}
		got = append(got, next(owner).offset)
	}
	for j := next(owner); j != nil; j = next(owner) {
		got = append(got, j.offset)
	}
	all := slices.Concat(got, stolen)
	slices.Sort(all)
	if !slices.Equal(all, offs) {
		t.Fatalf("owner claimed %v, thief %v: want every offset once", got, stolen)
	}
	if slices.ContainsFunc(stolen, func(o int64) bool { return o < 2 }) {
		t.Fatalf("the thief took %v, which the owner had claimed", stolen)
	}

	// The owner releases its own messages only; the thief its last one
	// when it comes back. Nothing is left running or ready.
	release := func(w *workerRun[int64]) {
		r.mu.Lock()
		r.releaseLocked(w)
		r.mu.Unlock()
	}
	release(owner)
	if want := 1; q.running != want { // the thief's last message
		t.Fatalf("running %d after the owner released its run, want %d", q.running, want)
	}
	release(thief)
	if q.running != 0 || r.s.nready != 0 || len(r.open) != 0 {
		t.Fatalf("running %d, ready %d, open runs %d at the end, want 0", q.running, r.s.nready, len(r.open))
	}
	// The run read its messages in the queue's block (reserved, not
	// copied under the lock): released, the block is back in the pool,
	// cleared, and no worker holds a reservation.
	if len(r.s.blocks) != 1 {
		t.Fatalf("%d blocks in the pool after the release, want the queue's 1", len(r.s.blocks))
	}
	if b := r.s.blocks[0]; b.readers != 0 || b.retired || b.jobs != ([qblockLen]job[int64]{}) {
		t.Fatalf("pooled block: readers %d, retired %v, cleared %v; want 0, false, true",
			b.readers, b.retired, b.jobs == ([qblockLen]job[int64]{}))
	}
	if len(owner.segs) != 0 || len(thief.segs) != 0 {
		t.Fatalf("reservations left: owner %d, thief %d", len(owner.segs), len(thief.segs))
	}
}

// A block given back while a run still reads slots of it is not reused
// before that run's release: a retried message inserted at the queue's
// front does not go into the slot the run reads (the head's messages move
// to a block of their own), and the block is freed by the release.
func TestReservedBlockOutlivesItsQueue(t *testing.T) {
	c := DefaultConfig()
	c.Concurrency = 2
	r := newRunq[int64](c, nil)
	defer r.stop()
	p := &Part{TP: TopicPartition{Topic: "t", Partition: 0}}
	offs := []int64{0, 1, 2, 3, 4, 5, 6, 7}
	r.pushBatch(p, offs, offs)
	q := p.sq.(*partQ[int64])
	w := r.newWorker()
	r.mu.Lock()
	locked := true
	defer func() {
		if locked {
			r.mu.Unlock() // a failed check: let stop lock
		}
	}()
	t0, _ := r.s.take()
	w.tasks = append(w.tasks, t0)
	w.segs, w.nres = r.s.reserveMore(q, w.segs, 3) // offsets 1-3: the block stays the queue's head
	b := w.segs[0].b
	if b.readers != 1 || q.fifo.head != b {
		t.Fatalf("readers %d, head is the block %v; want 1, true", b.readers, q.fifo.head == b)
	}
	// A retry of offset 0 goes in front: not into the reserved slots.
	q.fifo.insert(r.s, job[int64]{offset: 0, msg: 100})
	if q.fifo.head == b || !b.retired {
		t.Fatalf("the queue's head is still the block a run reads (%v), or it is not retired (%v)", q.fifo.head == b, b.retired)
	}
	if got := b.jobs[1].msg; got != 1 {
		t.Fatalf("reserved slot 1 holds %d, want message 1", got)
	}
	var queued []int64
	for q.fifo.n > 0 {
		queued = append(queued, q.fifo.pop(r.s).msg)
	}
	if want := []int64{100, 4, 5, 6, 7}; !slices.Equal(queued, want) {
		t.Fatalf("queue after the insert: %v, want %v", queued, want)
	}
	if len(r.s.blocks) != 1 || b.jobs[3].msg != 3 { // the new head's block only
		t.Fatalf("%d blocks pooled, reserved slot 3 = %d; want 1 (not the reserved block), 3", len(r.s.blocks), b.jobs[3].msg)
	}
	r.mu.Unlock()
	locked = false
	for i := range w.size() {
		j, p := w.job(i)
		if j.offset != int64(i) || j.msg != int64(i) || p != t0.p {
			t.Fatalf("message %d of the run: offset %d msg %d; want %d", i, j.offset, j.msg, i)
		}
	}
	r.mu.Lock()
	r.releaseLocked(w)
	r.mu.Unlock()
	if len(r.s.blocks) != 2 || b.retired || b.readers != 0 || b.jobs != ([qblockLen]job[int64]{}) {
		t.Fatalf("after the release: %d pooled, retired %v, readers %d; want 2, false, 0, cleared",
			len(r.s.blocks), b.retired, b.readers)
	}

	// Revoked while a run reads the head block: the drop gives the queue's
	// blocks back, but the reserved slots stay intact until the release.
	r.pushBatch(p, offs, offs)
	r.mu.Lock()
	locked = true
	t0, _ = r.s.take()
	w.tasks = append(w.tasks, t0)
	w.segs, w.nres = r.s.reserveMore(q, w.segs, 3)
	b = w.segs[0].b
	r.s.drop(q)
	if !b.retired || b.jobs[1].msg != 1 || b.jobs[3].msg != 3 || b.jobs[4].msg != 0 {
		t.Fatalf("after the drop: retired %v, slots 1, 3, 4 = %d, %d, %d; want true, 1, 3, 0 (queued slots cleared)",
			b.retired, b.jobs[1].msg, b.jobs[3].msg, b.jobs[4].msg)
	}
	r.mu.Unlock()
	locked = false
	if j, _ := w.job(3); j.msg != 3 {
		t.Fatalf("message 3 of the run holds %d, want 3", j.msg)
	}
	r.mu.Lock()
	r.releaseLocked(w)
	r.mu.Unlock()
	if b.retired || b.readers != 0 || b.jobs != ([qblockLen]job[int64]{}) || !slices.Contains(r.s.blocks, b) {
		t.Fatalf("after the release: retired %v, readers %d; want false, 0, cleared and pooled", b.retired, b.readers)
	}
}
