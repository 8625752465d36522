package engine_test

// The scheduler's batches (sched.takeBatch) under random pushes, batch
// takes, outcomes (all done, a BatchError: done up to an index, that one
// failed and waiting for its retry, the tail queued again) and clock
// moves: per lane (ByKey: a key of a partition; ByPartition: a partition),
// a batch starts with the lane's lowest message not handled, holds the
// lane's messages in offset order, no two batches or retries hold a lane at
// once, and in the end every message is handled once.

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"testing"

	"github.com/inorder/inorder/adapters/internal/engine"
)

func TestSchedBatchesKeepLaneOrder(t *testing.T) {
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey, engine.ByPartition} {
		for seed := range uint64(20) {
			t.Run(fmt.Sprintf("ordering=%v/seed=%d", mode, seed), func(t *testing.T) {
				schedBatchRun(t, mode, seed)
			})
		}
	}
}

func schedBatchRun(t *testing.T, mode engine.Ordering, seed uint64) {
	const parts, keys, workers, maxSize = 3, 4, 3, 5
	rng := rand.New(rand.NewPCG(seed, 9))
	ms := maphash.MakeSeed()
	s := engine.NewTestSched(mode, false, workers, func(k []byte) uint64 { return maphash.Bytes(ms, k) })
	ps := make([]*engine.Part, parts)
	for i := range ps {
		ps[i] = engine.NewTestPart(int32(i))
	}
	next := make([]int64, parts)
	laneOf := func(p int32, k []byte) string {
		switch mode {
		case engine.ByKey:
			return fmt.Sprintf("%d/%s", p, k)
		case engine.ByPartition:
			return fmt.Sprint(p)
		}
		return ""
	}
	laneOffs := map[string][]int64{} // pushed, by offset
	handled := map[[2]int64]int{}
	laneDone := map[string]int{} // messages of the lane handled (a prefix)
	holder := map[string]int{}   // batch id or -1-retry holding the lane
	var batches [][]engine.TestTask
	var ids []int
	waiting := map[string]int{} // lane -> retries waiting
	nextID := 0
	start := func(b []engine.TestTask, id int) {
		seen := map[string]int{}
		for _, x := range b {
			p := x.Part().TP.Partition
			l := laneOf(p, x.Key())
			if l == "" {
				continue
			}
			if h, ok := holder[l]; ok && h != id && seen[l] == 0 {
				t.Fatalf("%d/%d: lane %q taken while held by %d", p, x.Offset(), l, h)
			}
			if waiting[l] > 0 {
				t.Fatalf("%d/%d: lane %q taken while a retry waits", p, x.Offset(), l)
			}
			i := laneDone[l] + seen[l]
			if offs := laneOffs[l]; i >= len(offs) || offs[i] != x.Offset() {
				t.Fatalf("%d/%d: lane %q out of order (want its message #%d of %v)", p, x.Offset(), l, i, offs)
			}
			seen[l]++
			holder[l] = id
		}
	}
	finish := func(i int) {
		b, id := batches[i], ids[i]
		batches, ids = append(batches[:i], batches[i+1:]...), append(ids[:i], ids[i+1:]...)
		cut := len(b)
		if rng.IntN(3) == 0 {
			cut = rng.IntN(len(b))
		}
		for j, x := range b {
			p := x.Part().TP.Partition
			l := laneOf(p, x.Key())
			if l != "" && holder[l] == id {
				delete(holder, l)
			}
			switch {
			case j < cut:
				handled[[2]int64{int64(p), x.Offset()}]++
				laneDone[l]++
				s.Done(x)
			case j == cut:
				waiting[l]++
				s.Fail(x, int64(1+rng.IntN(3)))
			default:
				s.Requeue(x)
			}
		}
	}
	for step := 0; step < 400; step++ {
		switch r := rng.IntN(10); {
		case r < 4:
			pi := rng.IntN(parts)
			k := []byte(fmt.Sprint("k", rng.IntN(keys)))
			o := next[pi]
			next[pi]++
			if !s.Push(ps[pi], o, k) {
				t.Fatal("push refused")
			}
			l := laneOf(int32(pi), k)
			laneOffs[l] = append(laneOffs[l], o)
		case r < 7:
			if len(batches) < workers {
				b := s.TakeBatch(nil, maxSize)
				if rng.IntN(2) == 0 && len(b) > 0 { // the fill takes more
					b = s.TakeBatch(b, maxSize)
				}
				if len(b) > 0 {
					start(b, nextID)
					batches, ids = append(batches, b), append(ids, nextID)
					nextID++
				}
			}
		case r < 9:
			if len(batches) > 0 {
				finish(rng.IntN(len(batches)))
			}
		default:
			advance(s, waiting)
		}
	}
	for len(batches) > 0 || s.Waiting() > 0 || s.Ready() > 0 {
		for len(batches) > 0 {
			finish(0)
		}
		advance(s, waiting)
		if b := s.TakeBatch(nil, maxSize); len(b) > 0 {
			start(b, nextID)
			batches, ids = append(batches, b), append(ids, nextID)
			nextID++
		}
	}
	total := 0
	for _, n := range next {
		total += int(n)
	}
	if len(handled) != total {
		t.Fatalf("%d messages handled, want %d", len(handled), total)
	}
	for id, n := range handled {
		if n != 1 {
			t.Fatalf("message %v handled %d times", id, n)
		}
	}
}

// advance moves the clock by 3 ticks (every retry waits at most 3): each
// retry due frees its lane.
func advance(s *engine.TestSched, waiting map[string]int) {
	s.Advance(3)
	clear(waiting)
}
