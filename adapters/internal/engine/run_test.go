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
	if len(owner.tasks) != len(offs) {
		t.Fatalf("the owner took a run of %d, want all %d (no worker parked)", len(owner.tasks), len(offs))
	}
	q := p.sq.(*partQ[int64])
	if q.running != len(offs) || r.s.nready != 0 {
		t.Fatalf("running %d, ready %d after the run was taken, want %d and 0", q.running, r.s.nready, len(offs))
	}
	var got []int64
	got = append(got, owner.next().offset, owner.next().offset) // the owner reaches 0 and 1

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
		j := thief.next()
		stolen = append(stolen, j.offset)
		if thief.next() != nil {
			t.Fatal("the thief got more than one message per visit")
		}
		got = append(got, owner.next().offset)
	}
	for j := owner.next(); j != nil; j = owner.next() {
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
}
