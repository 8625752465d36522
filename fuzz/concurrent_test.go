// FuzzPartitionConcurrent: acks split across goroutines over a window small
// enough to wrap many times, late duplicates replayed laps later, while a
// checker verifies the safety invariant as it runs.
package fuzz_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/watermark"
)

// concMaxOffsets bounds the work of one input (a few milliseconds).
const concMaxOffsets = 3000

// FuzzPartitionConcurrent interprets the input as: window (1 + b%64),
// ackers (2 + b%3; with b&0x10, the offsets are tracked with TrackBatch
// in batches of up to 1+4*(b>>5)^2, dealt to the ackers round-robin), then
// one byte per offset, repeated until
// concMaxOffsets or 16 times the input: b%11 == 0 makes the offset a gap
// (a Skip over it when b&0x20 is set, else an untracked hole), (b>>2)%ackers
// picks the goroutine that acks it, b&0x80 makes that goroutine replay an old
// ack (a late duplicate, likely laps behind), and b&0x40 lets it hold the
// offset for a while (acks out of order).
func FuzzPartitionConcurrent(f *testing.F) {
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) < 3 {
			return
		}
		window := 1 + int(prog[0]%64)
		ackers := 2 + int(prog[1]%3)
		batchMax := 0 // 0: Track each offset; else TrackBatch batches of up to batchMax
		if prog[1]&0x10 != 0 {
			batchMax = 1 + int(prog[1]>>5)*int(prog[1]>>5)*4
		}
		body := prog[2:]
		n := min(concMaxOffsets, 16*len(body))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // catches hangs only
		defer cancel()

		p := watermark.NewPartition(0, watermark.WithWindow(window))
		acked := make([]atomic.Bool, n) // set BEFORE Ack is called
		gap := make([]atomic.Bool, n)   // set before the offsets after it are published
		type job struct {
			off          int64
			hold, replay bool
		}
		queues := make([]chan job, ackers)
		var wg sync.WaitGroup
		for g := range queues {
			queues[g] = make(chan job, 8)
			wg.Add(1)
			go func(q chan job) {
				defer wg.Done()
				var held, old []int64
				ack := func(o int64) {
					acked[o].Store(true)
					if err := p.Ack(o); err != nil {
						t.Errorf("Ack(%d) = %v", o, err)
					}
					old = append(old, o)
					if len(old) > 256 {
						old = old[128:]
					}
				}
				release := func() {
					for len(held) > 0 {
						ack(held[len(held)-1])
						held = held[:len(held)-1]
					}
				}
				for {
					var j job
					var ok bool
					select {
					case j, ok = <-q:
					default:
						// Nothing queued: release what is held (the producer
						// may be waiting for room), then block.
						release()
						j, ok = <-q
					}
					if !ok {
						break
					}
					if j.hold && len(held) < 4 {
						held = append(held, j.off)
					} else {
						ack(j.off)
						if len(held) > 0 && !j.hold {
							ack(held[0])
							held = held[1:]
						}
					}
					if j.replay && len(old) > 0 {
						// A late duplicate: the offset is done, laps may
						// have passed; it must change nothing.
						if err := p.Ack(old[int(j.off)%len(old)]); err != nil {
							t.Errorf("late Ack = %v", err)
						}
					}
				}
				release()
			}(queues[g])
		}

		stop := make(chan struct{})
		checkerDone := make(chan struct{})
		go func() {
			defer close(checkerDone)
			var last int64
			for {
				c := p.Committable()
				if c < last {
					t.Errorf("commit point went down %d -> %d", last, c)
					return
				}
				for o := last; o < c && o < int64(n); o++ {
					if !gap[o].Load() && !acked[o].Load() {
						t.Errorf("commit point %d passed offset %d, neither acked nor a gap (window %d)", c, o, window)
						return
					}
				}
				last = c
				select {
				case <-stop:
					return
				default:
				}
			}
		}()

		var trackErr error
		var batch []int64
		var batchJobs []job
		flush := func() {
			// Hand out each tracked prefix before waiting for room: the room
			// comes from its acks.
			for b, js := batch, batchJobs; len(b) > 0 && trackErr == nil; {
				k, err := p.TrackBatch(b)
				for _, j := range js[:k] {
					queues[int(j.off)%ackers] <- j
				}
				b, js = b[k:], js[k:]
				switch {
				case err == watermark.ErrWindowFull:
					trackErr = p.WaitRoom(ctx, b[0])
				case err != nil:
					trackErr = fmt.Errorf("TrackBatch(%v) = %d, %w", b, k, err)
				}
			}
			batch, batchJobs = batch[:0], batchJobs[:0]
		}
		for o := int64(0); o < int64(n) && trackErr == nil; o++ {
			b := body[int(o)%len(body)]
			if b%11 == 0 {
				gap[o].Store(true)
				if b&0x20 != 0 {
					// Declare the gap now, waiting for room if needed.
					if flush(); trackErr == nil {
						if trackErr = p.WaitRoom(ctx, o); trackErr == nil {
							trackErr = p.Skip(o + 1)
						}
					}
				}
				continue
			}
			j := job{off: o, hold: b&0x40 != 0, replay: b&0x80 != 0}
			if batchMax > 0 {
				batch, batchJobs = append(batch, o), append(batchJobs, j)
				if len(batch) >= batchMax {
					flush()
				}
				continue
			}
			if trackErr = p.TrackWait(ctx, o); trackErr != nil {
				break
			}
			queues[int(b>>2)%ackers] <- j
		}
		flush()
		for _, q := range queues {
			close(q)
		}
		wg.Wait()
		if trackErr == nil {
			trackErr = p.WaitRoom(ctx, int64(n))
		}
		if trackErr == nil {
			trackErr = p.Skip(int64(n)) // a trailing gap, if any
		}
		if trackErr == nil {
			trackErr = p.Drain(ctx)
		}
		close(stop)
		<-checkerDone
		if trackErr != nil {
			t.Fatalf("window %d, %d ackers: %v", window, ackers, trackErr)
		}
		if c := p.Committable(); c != int64(n) {
			t.Fatalf("window %d, %d ackers: final commit point %d, want %d", window, ackers, c, n)
		}
		if pd := p.Pending(); pd != 0 {
			t.Fatalf("window %d: Pending = %d after Drain", window, pd)
		}
	})
}
