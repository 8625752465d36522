package watermark_test

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/inorder/inorder/fuzz"
	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
)

// TestPartitionAgainstModel runs random programs of Track (with gaps), Skip,
// Ack (fresh, duplicate, stale, never tracked, after Close), Restore and Close
// against the reference, comparing every result and the commit point after
// every step.
func TestPartitionAgainstModel(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		window := 1 + r.IntN(150)
		start := r.Int64N(200)
		p := watermark.NewPartition(start, watermark.WithWindow(window))
		m := fuzz.NewPartitionModel(start, int64(window))
		if r.IntN(3) == 0 {
			for i := 0; i < 5; i++ {
				lo := start - 10 + r.Int64N(400)
				m.Restored.AddRange(lo, lo+r.Int64N(30))
			}
			want := error(nil)
			if err := p.Restore(m.Restored); !errors.Is(err, want) {
				t.Fatalf("seed %d: Restore = %v", seed, err)
			}
		}
		var last int64 = start
		for step := 0; step < 600; step++ {
			var op string
			var got, want error
			switch k := r.IntN(100); {
			case k < 35:
				o := m.High + r.Int64N(4)
				if r.IntN(30) == 0 {
					o = m.High + r.Int64N(3*int64(window)+50) // long gap
				} else if r.IntN(40) == 0 {
					o = m.High - 1 - r.Int64N(5) // out of order
				}
				op = "Track"
				got, want = p.Track(o), m.Track(o)
			case k < 40 && k >= 36: // a batch: small gaps, sometimes long ones or out of order
				batch := make([]int64, 1+r.IntN(12))
				o := m.High + r.Int64N(3)
				for j := range batch {
					switch x := r.IntN(40); {
					case j == 0:
					case x == 0:
						o -= r.Int64N(3) // not increasing
					case x == 1:
						o += r.Int64N(3*int64(window) + 50)
					default:
						o += 1 + r.Int64N(3)
					}
					batch[j] = o
				}
				if r.IntN(3) == 0 { // TrackRange over the batch's span instead
					lo, hi := batch[0], batch[len(batch)-1]+1
					op = "TrackRange"
					n, err := p.TrackRange(lo, hi)
					wn, werr := m.TrackRange(lo, hi)
					if n != wn {
						t.Fatalf("seed %d step %d: TrackRange(%d, %d) tracked %d, model %d", seed, step, lo, hi, n, wn)
					}
					got, want = err, werr
					break
				}
				op = "TrackBatch"
				n, err := p.TrackBatch(batch)
				wn, werr := m.TrackBatch(batch)
				if n != wn {
					t.Fatalf("seed %d step %d: TrackBatch(%v) tracked %d, model %d", seed, step, batch, n, wn)
				}
				got, want = err, werr
			case k < 40:
				to := m.High + r.Int64N(2*int64(window)+3) - 2
				op = "Skip"
				got, want = p.Skip(to), m.Skip(to)
			case k < 95:
				var o int64
				switch j := r.IntN(10); {
				case j < 6: // a pending one, if any
					o = m.High - 1 - r.Int64N(int64(window)+1)
					if v, ok := m.Pending.Min(); ok && r.IntN(2) == 0 {
						o = v + r.Int64N(int64(window))
					}
				case j < 8: // stale or duplicate
					o = m.Commit() - r.Int64N(3*int64(window)+5)
				default: // never tracked
					o = m.High + r.Int64N(100)
					if r.IntN(5) == 0 {
						o = -1 - r.Int64N(5)
					}
				}
				op = "Ack"
				got, want = p.Ack(o), m.Ack(o)
			case k < 96:
				op = "Close"
				if r.IntN(4) == 0 {
					p.Close()
					m.Closed = true
				}
			default:
				op = "Committable"
			}
			if !errors.Is(got, want) || (got == nil) != (want == nil) {
				t.Fatalf("seed %d step %d: %s = %v, model says %v", seed, step, op, got, want)
			}
			c := p.Committable()
			if c != m.Commit() {
				t.Fatalf("seed %d step %d after %s: Committable = %d, model %d", seed, step, op, c, m.Commit())
			}
			if c < last {
				t.Fatalf("seed %d step %d: commit point went down %d -> %d", seed, step, last, c)
			}
			last = c
			if got, want := p.Pending(), m.Pending.Len(); got != want {
				t.Fatalf("seed %d step %d: Pending = %d, model %d", seed, step, got, want)
			}
			if p.High() != m.High {
				t.Fatalf("seed %d step %d: High = %d, model %d", seed, step, p.High(), m.High)
			}
			if step%20 == 0 {
				snap := ordset.New()
				if sc := p.Snapshot(snap); sc != c {
					t.Fatalf("seed %d: Snapshot commit %d != %d", seed, sc, c)
				}
				for o := c; o < m.High+50; o++ {
					want := (o < m.High && !m.Pending.Contains(o)) || (o >= m.High && m.Restored.Contains(o))
					if snap.Contains(o) != want {
						t.Fatalf("seed %d step %d: Snapshot has %d = %v, want %v", seed, step, o, snap.Contains(o), want)
					}
				}
			}
		}
	}
}

// TestPartitionConcurrentSafety tracks offsets (with gaps) through a window
// small enough to wrap thousands of times while several goroutines ack them
// out of order and replay late duplicates; a checker verifies while it runs
// that the commit point never passes an offset that was not acked.
func TestPartitionConcurrentSafety(t *testing.T) {
	const n = 60_000
	for _, window := range []int{7, 64, 300} {
		p := watermark.NewPartition(0, watermark.WithWindow(window))
		var acked [n + 1]atomic.Bool // set before Ack is called
		var gap [n + 1]bool          // written before the offset's Track publishes it
		work := make(chan int64, 64)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, 3))
				var held, old []int64
				ackOne := func(i int) {
					x := held[i]
					held[i] = held[len(held)-1]
					held = held[:len(held)-1]
					acked[x].Store(true)
					if err := p.Ack(x); err != nil {
						t.Errorf("Ack(%d) = %v", x, err)
					}
					old = append(old, x)
				}
				for {
					var o int64
					var ok bool
					select {
					case o, ok = <-work:
					default:
						// Nothing new: release what is held (the producer
						// may be waiting for room), then block.
						for len(held) > 0 {
							ackOne(r.IntN(len(held)))
						}
						o, ok = <-work
					}
					if !ok {
						break
					}
					held = append(held, o)
					for len(held) > 0 && (r.IntN(3) == 0 || len(held) > 8) {
						ackOne(r.IntN(len(held)))
					}
					if len(old) > 0 && r.IntN(2) == 0 { // late duplicate, maybe laps ago
						if err := p.Ack(old[r.IntN(len(old))]); err != nil {
							t.Errorf("late Ack = %v", err)
						}
						if len(old) > 4096 {
							old = old[2048:]
						}
					}
				}
				for len(held) > 0 {
					ackOne(0)
				}
			}(uint64(w))
		}
		var checked atomic.Int64
		checkerDone := make(chan struct{})
		go func() {
			defer close(checkerDone)
			var last int64
			for {
				select {
				case <-stop:
					return
				default:
				}
				c := p.Committable()
				if c < last {
					t.Errorf("commit point went down %d -> %d", last, c)
					return
				}
				for o := last; o < c; o++ {
					if !gap[o] && !acked[o].Load() {
						t.Errorf("commit point %d passed unacked offset %d", c, o)
						return
					}
				}
				last = c
				checked.Store(c)
			}
		}()
		r := rand.New(rand.NewPCG(uint64(window), 9))
		for o := int64(0); o < n; o++ {
			if r.IntN(10) == 0 {
				gap[o] = true // never delivered
				continue
			}
			if err := p.TrackWait(t.Context(), o); err != nil {
				t.Fatal(err)
			}
			work <- o
		}
		close(work)
		wg.Wait()
		if err := p.Drain(t.Context()); err != nil {
			t.Fatal(err)
		}
		close(stop)
		<-checkerDone
		want := int64(n)
		if gap[n-1] {
			for want > 0 && gap[want-1] {
				want--
			}
		}
		if c := p.Committable(); c != want {
			t.Fatalf("window %d: final commit point %d, want %d", window, c, want)
		}
	}
}
