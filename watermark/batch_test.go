package watermark_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
)

func trackBatch(t *testing.T, p *watermark.Partition, offsets []int64, wantN int, wantErr error) {
	t.Helper()
	n, err := p.TrackBatch(offsets)
	if n != wantN || !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
		t.Fatalf("TrackBatch(%v) = %d, %v; want %d, %v", offsets, n, err, wantN, wantErr)
	}
}

func TestTrackBatch(t *testing.T) {
	t.Run("a batch is tracked as its offsets one by one, gaps included", func(t *testing.T) {
		p := watermark.NewPartition(10)
		trackBatch(t, p, []int64{10, 11, 12, 15, 16, 100, 101}, 7, nil)
		if p.High() != 102 || p.Pending() != 7 {
			t.Fatalf("High %d Pending %d, want 102 and 7", p.High(), p.Pending())
		}
		for _, o := range []int64{11, 10, 12, 16} {
			must(t, p.Ack(o))
		}
		wantCommit(t, p, 15)
		must(t, p.Ack(15))
		wantCommit(t, p, 100) // 17..99 are gaps
		wantErr(t, p.Ack(102), watermark.ErrNotTracked)
		trackBatch(t, p, []int64{102, 103}, 2, nil) // the fast path after a batch
		for _, o := range []int64{100, 101, 102, 103} {
			must(t, p.Ack(o))
		}
		wantCommit(t, p, 104)
	})
	t.Run("an empty batch does nothing", func(t *testing.T) {
		p := watermark.NewPartition(0)
		trackBatch(t, p, nil, 0, nil)
		p.Close()
		trackBatch(t, p, []int64{}, 0, nil)
	})
	t.Run("an offset out of order stops the batch after the ones before it", func(t *testing.T) {
		p := watermark.NewPartition(0)
		trackBatch(t, p, []int64{0, 1, 2, 2, 3}, 3, watermark.ErrOutOfOrder)
		if p.High() != 3 {
			t.Fatalf("High = %d, want 3", p.High())
		}
		trackBatch(t, p, []int64{1}, 0, watermark.ErrOutOfOrder)
		trackBatch(t, p, []int64{3}, 1, nil)
	})
	t.Run("a batch that fits only in part tracks the part that fits", func(t *testing.T) {
		p := watermark.NewPartition(0, watermark.WithWindow(100))
		batch := make([]int64, 150)
		for i := range batch {
			batch[i] = int64(i)
		}
		trackBatch(t, p, batch, 100, watermark.ErrWindowFull)
		if p.High() != 100 || p.Pending() != 100 {
			t.Fatalf("High %d Pending %d, want 100 and 100", p.High(), p.Pending())
		}
		for o := int64(0); o < 30; o++ {
			must(t, p.Ack(o))
		}
		trackBatch(t, p, batch[100:], 30, watermark.ErrWindowFull)
		for o := int64(30); o < 130; o++ {
			must(t, p.Ack(o))
		}
		trackBatch(t, p, batch[130:], 20, nil)
		wantCommit(t, p, 130)
	})
	t.Run("a batch larger than the window goes through WaitRoom as it is acked", func(t *testing.T) {
		p := watermark.NewPartition(0, watermark.WithWindow(40))
		batch := make([]int64, 100)
		for i := range batch {
			batch[i] = int64(i)
		}
		acks := make(chan []int64, 100)
		go func() {
			for offs := range acks {
				for _, o := range offs {
					if err := p.Ack(o); err != nil {
						t.Errorf("Ack(%d) = %v", o, err)
					}
				}
			}
		}()
		defer close(acks)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // catches hangs only
		defer cancel()
		calls := 0
		for b := batch; len(b) > 0; {
			n, err := p.TrackBatch(b)
			calls++
			acks <- b[:n] // hand out what is tracked before waiting
			b = b[n:]
			if errors.Is(err, watermark.ErrWindowFull) {
				must(t, p.WaitRoom(ctx, b[0]))
			} else {
				must(t, err)
			}
		}
		if calls < 3 {
			t.Fatalf("%d TrackBatch calls for 100 offsets through a window of 40", calls)
		}
		must(t, p.Drain(ctx))
		wantCommit(t, p, 100)
	})
	t.Run("a restored offset stops the batch, tracked and done", func(t *testing.T) {
		done := ordset.New()
		done.AddRange(3, 5)
		p := watermark.NewPartition(0)
		must(t, p.Restore(done))
		batch := []int64{0, 1, 3, 4, 6, 7}
		var handed []int64
		for len(batch) > 0 {
			n, err := p.TrackBatch(batch)
			handed = append(handed, batch[:n]...)
			switch {
			case errors.Is(err, watermark.ErrRestored):
				n++ // tracked and done: skip it
			case err != nil:
				t.Fatal(err)
			}
			batch = batch[n:]
		}
		if want := []int64{0, 1, 6, 7}; !equal(handed, want) {
			t.Fatalf("handed %v to the handler, want %v", handed, want)
		}
		must(t, p.Ack(0))
		must(t, p.Ack(1))
		wantCommit(t, p, 6) // 2 and 5 are gaps, 3 and 4 restored
	})
	t.Run("after Close a batch is refused", func(t *testing.T) {
		p := watermark.NewPartition(0)
		trackBatch(t, p, []int64{0, 1}, 2, nil)
		p.Close()
		trackBatch(t, p, []int64{2, 3}, 0, watermark.ErrClosed)
	})
	t.Run("a batch past a long gap with nothing in flight jumps the window", func(t *testing.T) {
		p := watermark.NewPartition(0, watermark.WithWindow(50))
		trackBatch(t, p, []int64{0, 1}, 2, nil)
		must(t, p.Ack(0))
		must(t, p.Ack(1))
		trackBatch(t, p, []int64{1_000_000, 1_000_001, 1_000_049}, 3, nil)
		wantCommit(t, p, 1_000_000)
		trackBatch(t, p, []int64{1_000_050}, 0, watermark.ErrWindowFull)
		for _, o := range []int64{1_000_000, 1_000_001, 1_000_049} {
			must(t, p.Ack(o))
		}
		wantCommit(t, p, 1_000_050)
	})
}

func TestTrackRange(t *testing.T) {
	t.Run("a range is tracked as its offsets one by one", func(t *testing.T) {
		p := watermark.NewPartition(5, watermark.WithWindow(1000))
		if n, err := p.TrackRange(7, 500); n != 493 || err != nil {
			t.Fatalf("TrackRange(7, 500) = %d, %v; want 493, nil", n, err)
		}
		if p.High() != 500 || p.Pending() != 493 {
			t.Fatalf("High %d Pending %d, want 500 and 493", p.High(), p.Pending())
		}
		wantCommit(t, p, 7) // 5 and 6 are gaps
		for o := int64(499); o >= 7; o-- {
			must(t, p.Ack(o))
		}
		wantCommit(t, p, 500)
		wantErr(t, p.Ack(500), watermark.ErrNotTracked)
	})
	t.Run("an empty range does nothing", func(t *testing.T) {
		p := watermark.NewPartition(0)
		if n, err := p.TrackRange(3, 3); n != 0 || err != nil {
			t.Fatalf("TrackRange(3, 3) = %d, %v", n, err)
		}
		if p.High() != 0 {
			t.Fatalf("High = %d", p.High())
		}
	})
	t.Run("a range that fits in part tracks the part that fits", func(t *testing.T) {
		p := watermark.NewPartition(0, watermark.WithWindow(100))
		n, err := p.TrackRange(0, 150)
		if n != 100 || !errors.Is(err, watermark.ErrWindowFull) {
			t.Fatalf("TrackRange(0, 150) = %d, %v; want 100, ErrWindowFull", n, err)
		}
		if n, err := p.TrackRange(50, 60); n != 0 || !errors.Is(err, watermark.ErrOutOfOrder) {
			t.Fatalf("TrackRange(50, 60) = %d, %v; want 0, ErrOutOfOrder", n, err)
		}
	})
	t.Run("a restored offset stops the range, tracked and done", func(t *testing.T) {
		done := ordset.New()
		done.Add(3)
		p := watermark.NewPartition(0)
		must(t, p.Restore(done))
		if n, err := p.TrackRange(0, 10); n != 3 || !errors.Is(err, watermark.ErrRestored) {
			t.Fatalf("TrackRange(0, 10) = %d, %v; want 3, ErrRestored", n, err)
		}
		if n, err := p.TrackRange(4, 10); n != 6 || err != nil {
			t.Fatalf("TrackRange(4, 10) = %d, %v; want 6, nil", n, err)
		}
		if p.Pending() != 9 {
			t.Fatalf("Pending = %d, want 9", p.Pending())
		}
	})
}

func TestTrackBatchDoesNotAllocate(t *testing.T) {
	p := watermark.NewPartition(0, watermark.WithWindow(1<<20))
	batch := make([]int64, 256)
	var next int64
	n := testing.AllocsPerRun(200, func() {
		for i := range batch {
			batch[i] = next
			next += 1 + int64(i%7/6) // a gap every 7 offsets
		}
		if _, err := p.TrackBatch(batch); err != nil {
			panic(err)
		}
	})
	if n != 0 {
		t.Errorf("TrackBatch allocates %v times per call", n)
	}
	if n := testing.AllocsPerRun(200, func() {
		if _, err := p.TrackRange(next, next+256); err != nil {
			panic(err)
		}
		next += 300
	}); n != 0 {
		t.Errorf("TrackRange allocates %v times per call", n)
	}
}

// TestTrackBatchPublishesInitialisedWords: ackers learn offsets only from the
// published high mark and ack each one as soon as it is published, while the
// tracker publishes batches with gaps (many crossing words) over a ring that
// wraps. An ack that landed in a word before it was initialised would be lost
// or overwritten: whenever the window is full the test waits until every
// published offset is acked and checks that the commit point reached the
// high mark, and it checks again at the end.
func TestTrackBatchPublishesInitialisedWords(t *testing.T) {
	const total = 150_000
	for _, window := range []int{300, 5000} {
		p := watermark.NewPartition(0, watermark.WithWindow(window))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // catches hangs only
		const ackers = 2
		var progress [ackers]atomic.Int64 // acker g has acked every published offset below it (of its class)
		var finished atomic.Bool
		var wg sync.WaitGroup
		for g := range ackers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := int64(g)
				for ctx.Err() == nil {
					end := finished.Load()
					h := p.High()
					if next >= h {
						if end {
							return
						}
						runtime.Gosched()
						continue
					}
					for ; next < h; next += ackers {
						if err := p.Ack(next); err != nil { // gaps included: a no-op
							t.Errorf("Ack(%d) = %v", next, err)
							return
						}
					}
					progress[g].Store(next)
				}
			}()
		}
		// allAcked waits until every offset below the high mark is acked and
		// checks the commit point is there.
		allAcked := func() {
			h := p.High()
			for g := range progress {
				for progress[g].Load() < h-ackers+1 && ctx.Err() == nil {
					runtime.Gosched()
				}
			}
			if c := p.Committable(); c != h {
				t.Fatalf("window %d: every offset below %d acked, but the commit point is %d (an ack was lost)", window, h, c)
			}
		}
		r := rand.New(rand.NewPCG(uint64(window), 5))
		batch := make([]int64, 0, 512)
		var o int64
		for o < total && !t.Failed() {
			batch = batch[:0]
			for k := 1 + r.IntN(256); k > 0 && o < total; k-- {
				batch = append(batch, o)
				o++
				switch r.IntN(40) {
				case 0, 1, 2, 3, 4:
					o += 39 + r.Int64N(3) // into the next word
				case 5, 6, 7, 8, 9:
					o += r.Int64N(90)
				case 10: // no gap in the rest of this batch: TrackRange may take it
					k = min(k, 1+r.IntN(200))
					for ; k > 1 && o < total; k-- {
						batch = append(batch, o)
						o++
					}
				}
			}
			for b := batch; len(b) > 0; {
				var n int
				var err error
				run := 1 // the leading run without gaps
				for run < len(b) && b[run] == b[0]+int64(run) {
					run++
				}
				if run > 1 && r.IntN(2) == 0 {
					var n64 int64
					n64, err = p.TrackRange(b[0], b[0]+int64(run))
					n = int(n64)
				} else {
					n, err = p.TrackBatch(b)
				}
				b = b[n:]
				if errors.Is(err, watermark.ErrWindowFull) {
					allAcked()
					continue
				}
				if err != nil {
					t.Fatalf("window %d: TrackBatch = %d, %v", window, n, err)
				}
			}
		}
		finished.Store(true)
		wg.Wait()
		allAcked()
		cancel()
	}
}
