// FuzzTracker: assign, revoke and re-assign topic-partitions of a Tracker
// while goroutines holding the old *Partition keep acking. An ack to a
// revoked (closed) partition must never move the commit point of the new
// assignment: offsets of the new assignment that nobody acked hold it.
package fuzz_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/inorder/inorder/watermark"
)

// trackerGen is one assignment of a topic-partition.
type trackerGen struct {
	p       *watermark.Partition
	start   int64
	tracked []int64
	acked   []atomic.Bool // by offset-start; set BEFORE Ack is called
	high    int64
}

func (g *trackerGen) wasAcked(o int64) bool {
	i := o - g.start
	return i >= 0 && i < int64(len(g.acked)) && g.acked[i].Load()
}

// firstUnacked returns the lowest tracked offset nobody acked, or high.
func (g *trackerGen) firstUnacked() int64 {
	for _, o := range g.tracked {
		if !g.wasAcked(o) {
			return o
		}
	}
	return g.high
}

// FuzzTracker interprets the input as: window (1 + b%100), then 4-byte
// rounds (tp, start, count, mask): assign topic-partition tp%2 at a start
// near the previous assignment's (the same offsets again, as after a
// rebalance), track up to count offsets with gaps, ack those whose bit in
// mask is set from this goroutine, check the commit point exactly while the
// racers of every earlier assignment keep acking their (now closed)
// partitions, then start a racer on this assignment and, when tp&4 is set,
// revoke it instead of waiting for the next assignment to replace it.
func FuzzTracker(f *testing.F) {
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) < 5 {
			return
		}
		if len(prog) > 1+4*12 {
			prog = prog[:1+4*12]
		}
		window := 1 + int(prog[0]%100)
		tr := watermark.NewTracker(watermark.WithWindow(window))
		tps := []watermark.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}
		last := map[watermark.TopicPartition]*trackerGen{}
		var gens []*trackerGen
		stop := make(chan struct{})
		var racers sync.WaitGroup
		var stopOnce sync.Once
		halt := func() {
			stopOnce.Do(func() { close(stop) })
			racers.Wait()
		}
		defer halt()

		for i := 1; i+3 < len(prog); i += 4 {
			tp := tps[prog[i]%2]
			var start int64
			if prev := last[tp]; prev != nil {
				// Re-assigned at the old commit point or a little before it
				// (a commit that did not reach the broker): the old and the
				// new assignment share offsets.
				start = max(0, prev.p.Committable()-int64(prog[i+1]%8))
			} else {
				start = int64(prog[i+1] % 16)
			}
			g := &trackerGen{start: start, high: start}
			g.p = tr.Assign(tp, start)
			if prev := last[tp]; prev != nil && !prev.p.Closed() {
				t.Fatalf("round %d: Assign left the previous partition open", i)
			}
			if got, ok := tr.Partition(tp); !ok || got != g.p {
				t.Fatalf("round %d: Partition(%v) is not the new assignment", i, tp)
			}
			count := 1 + int(prog[i+2]%40)
			mask := prog[i+3]
			g.acked = make([]atomic.Bool, 3*count+8)
			o := start
			for k := 0; k < count; k++ {
				if k%3 == 2 {
					o++ // a gap
				}
				if err := g.p.Track(o); errors.Is(err, watermark.ErrWindowFull) {
					break
				} else if err != nil {
					t.Fatalf("round %d: Track(%d) = %v", i, o, err)
				}
				g.tracked = append(g.tracked, o)
				o++
				g.high = o
			}
			for k, o := range g.tracked {
				if mask&(1<<(k%8)) != 0 && k%5 != 4 {
					g.acked[o-start].Store(true)
					if err := g.p.Ack(o); err != nil {
						t.Fatalf("round %d: Ack(%d) = %v", i, o, err)
					}
				}
			}
			// Only this goroutine acked the new assignment so far: its
			// commit point is exact, whatever the old racers do.
			want := g.firstUnacked()
			for range 50 {
				if c := g.p.Committable(); c != want {
					t.Fatalf("round %d: new assignment's commit point %d, want %d (first offset nobody acked on it); racers of closed partitions moved it", i, c, want)
				}
			}
			last[tp] = g
			gens = append(gens, g)
			// A racer keeps acking this assignment's offsets (and some
			// around them) through the revoke or re-assignment to come.
			racers.Add(1)
			go func(g *trackerGen, seed int) {
				defer racers.Done()
				closed := false
				span := int64(len(g.acked))
				for k := 0; k < 20000; k++ {
					select {
					case <-stop:
						return
					default:
					}
					o := g.start - 2 + int64((seed+k*7)%int(span+2))
					if o >= g.start && o-g.start < span {
						g.acked[o-g.start].Store(true)
					}
					err := g.p.Ack(o)
					switch {
					case errors.Is(err, watermark.ErrClosed):
						closed = true
					case closed:
						t.Errorf("Ack(%d) after ErrClosed = %v, want ErrClosed", o, err)
						return
					case err != nil && !errors.Is(err, watermark.ErrNotTracked):
						t.Errorf("Ack(%d) = %v", o, err)
						return
					}
				}
			}(g, int(mask))
			if prog[i]&4 != 0 {
				p, ok := tr.Revoke(tp)
				if !ok || p != g.p || !p.Closed() {
					t.Fatalf("round %d: Revoke = %p, %v (closed %v), want the assignment, closed", i, p, ok, ok && p.Closed())
				}
				if _, ok := tr.Partition(tp); ok {
					t.Fatalf("round %d: Partition(%v) still there after Revoke", i, tp)
				}
			}
		}
		halt()
		// Every assignment: the commit point never passed an offset that
		// nobody acked, whatever raced with its Close.
		for k, g := range gens {
			if c, f := g.p.Committable(), g.firstUnacked(); c > f {
				t.Fatalf("assignment %d: commit point %d passed offset %d, never acked", k, c, f)
			}
		}
		n := 0
		for range tr.All() {
			n++
		}
		if n != tr.Len() {
			t.Fatalf("All yields %d partitions, Len %d", n, tr.Len())
		}
	})
}
