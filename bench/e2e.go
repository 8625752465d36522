package bench

// This file holds the end-to-end harness: one producer tracks, N ackers ack,
// a committer reads the commit point, as a consumer does with a no-op
// handler. Offsets travel in chunks so that the harness measures the tracker,
// not the channels.

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/inorder/inorder/watermark"
)

const (
	// chunk is the number of offsets handed to an acker at once: one
	// channel send and receive (~100-200 ns) per 256 offsets.
	chunk = 256
	// ackerQueue is the capacity, in chunks, of each acker's channel. It
	// bounds the offsets in flight to ackers*(ackerQueue+1)*chunk, well
	// inside the default window.
	ackerQueue = 8
	// commitEvery is the committer's period.
	commitEvery = 100 * time.Microsecond
)

// waitTracker is implemented by the implementations whose Track can wait for
// room in the window (the watermark's TrackWait); the producer uses it.
type waitTracker interface {
	trackWaitRange(ctx context.Context, lo, hi int64) error
}

func (w *wmImpl) trackWaitRange(ctx context.Context, lo, hi int64) error {
	p := w.ps[0]
	for o := lo; o < hi; o++ {
		if err := p.TrackWait(ctx, o); err != nil {
			return err
		}
	}
	return nil
}

// batchTracker is implemented by the implementations that track a fetch
// batch at once (the watermark's TrackBatch, a baseline taking its lock once
// per batch, the or limit publishing the high mark once per batch).
type batchTracker interface {
	// trackBatch tracks the increasing offsets offs of partition 0 and
	// returns how many it tracked: fewer than len(offs) only when the
	// window is full (the caller hands those out, waits with waitRoom and
	// calls again with the rest), or on an error.
	trackBatch(offs []int64) (int, error)
	// waitRoom waits until offset fits in partition 0's window.
	waitRoom(ctx context.Context, offset int64) error
}

func (w *wmImpl) trackBatch(offs []int64) (int, error) {
	n, err := w.ps[0].TrackBatch(offs)
	if err == watermark.ErrWindowFull {
		err = nil
	}
	return n, err
}

func (w *wmImpl) waitRoom(ctx context.Context, o int64) error { return w.ps[0].WaitRoom(ctx, o) }

// trackRange is trackBatch for the offsets [lo, hi): TrackRange, which does
// not look at each offset.
func (w *wmImpl) trackRange(lo, hi int64) (int64, error) {
	n, err := w.ps[0].TrackRange(lo, hi)
	if err == watermark.ErrWindowFull {
		err = nil
	}
	return n, err
}

// rangeTracker is implemented by the implementations that track a batch
// without gaps from its bounds alone (the watermark's TrackRange; the or
// limit, whose trackBatch reads only the last offset, and the baselines,
// which insert each offset anyway, go through trackBatch).
type rangeTracker interface {
	trackRange(lo, hi int64) (int64, error)
}

// chunkOrder is the order in which an acker acks the offsets of a full
// chunk: a fixed random permutation (out of order within the chunk, as
// handlers of different durations finish).
var chunkOrder = func() []ref {
	// A fixed permutation: multiply by an odd number modulo chunk.
	refs := make([]ref, chunk)
	for i := range refs {
		refs[i].off = int32(i * 97 % chunk)
	}
	return refs
}()

// inOrder is offsets 0..chunk-1, for the last, partial chunk.
var inOrder = func() []ref {
	refs := make([]ref, chunk)
	for i := range refs {
		refs[i].off = int32(i)
	}
	return refs
}()

// EndToEnd runs total offsets of one partition through implementation im:
// one producer goroutine tracks them in order (TrackWait for the watermark)
// and deals chunks of 256 round-robin to ackers goroutines through buffered
// channels; each acker acks its chunk's offsets in a fixed shuffled order;
// a committer goroutine reads Committable every 100µs. It returns the time
// from the first Track until the committer saw the commit point reach total,
// and how many times the committer read it.
func EndToEnd(im Impl, ackers int, total int64) (time.Duration, int, error) {
	return endToEnd(im, ackers, total, modeEach)
}

// EndToEndBatch is EndToEnd with each chunk tracked as one fetch batch: the
// producer writes the chunk's offsets into a slice, as a fetch loop reads
// them from a fetch response, and hands it to the implementation's batch
// form (TrackBatch for the watermark). When the window is full mid-chunk,
// the tracked part goes to an acker before the producer waits for room. It
// returns an error for an implementation without a batch form.
func EndToEndBatch(im Impl, ackers int, total int64) (time.Duration, int, error) {
	return endToEnd(im, ackers, total, modeBatch)
}

// EndToEndRange is EndToEndBatch without the slice: each chunk is a batch
// without gaps, tracked from its bounds (TrackRange for the watermark).
func EndToEndRange(im Impl, ackers int, total int64) (time.Duration, int, error) {
	return endToEnd(im, ackers, total, modeRange)
}

// How the producer tracks a chunk.
const (
	modeEach  = iota // Track (TrackWait) per offset
	modeBatch        // the offsets in a slice, one batch call
	modeRange        // one range call from the bounds
)

// span is a run [lo, hi) of offsets handed to an acker.
type span struct{ lo, hi int64 }

func endToEnd(im Impl, ackers int, total int64, mode int) (time.Duration, int, error) {
	bt, canBatch := im.(batchTracker)
	if mode != modeEach && !canBatch {
		return 0, 0, fmt.Errorf("%s: no batch form", im.Name())
	}
	rt, canRange := im.(rangeTracker)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	queues := make([]chan span, ackers)
	ackErr := make(chan int, ackers)
	for g := range queues {
		queues[g] = make(chan span, ackerQueue)
		go func(q chan span) {
			errs := 0
			for s := range q {
				if n := s.hi - s.lo; n < chunk {
					errs += im.ackAll(s.lo, inOrder[:n])
				} else {
					errs += im.ackAll(s.lo, chunkOrder)
				}
			}
			ackErr <- errs
		}(queues[g])
	}
	commitDone := make(chan int)
	go func() {
		tick := time.NewTicker(commitEvery)
		defer tick.Stop()
		reads := 0
		for {
			reads++
			if c := im.Committable(0); c >= total || c < 0 { // < 0: a limit, no commit point
				commitDone <- reads
				return
			}
			select {
			case <-ctx.Done():
				commitDone <- reads
				return
			case <-tick.C:
			}
		}
	}()

	begin := time.Now()
	var err error
	wt, canWait := im.(waitTracker)
	offs := make([]int64, chunk)
	q := 0
	send := func(lo, hi int64) {
		queues[q%ackers] <- span{lo, hi}
		q++
	}
	for lo := int64(0); lo < total && err == nil; lo += chunk {
		hi := min(lo+chunk, total)
		switch {
		case mode == modeRange && canRange:
			for l := lo; l < hi; {
				var n int64
				if n, err = rt.trackRange(l, hi); err != nil {
					break
				}
				if n > 0 {
					send(l, l+n)
				}
				if l += n; l < hi {
					if err = bt.waitRoom(ctx, l); err != nil {
						break
					}
				}
			}
			continue
		case mode != modeEach:
			b := offs[:hi-lo]
			for i := range b {
				b[i] = lo + int64(i)
			}
			for len(b) > 0 {
				var n int
				if n, err = bt.trackBatch(b); err != nil {
					break
				}
				if n == len(b) {
					send(b[0], hi)
					break
				}
				if n > 0 {
					send(b[0], b[n])
				}
				b = b[n:]
				if err = bt.waitRoom(ctx, b[0]); err != nil {
					break
				}
			}
			continue
		case canWait:
			err = wt.trackWaitRange(ctx, lo, hi)
		default:
			if errs := im.trackAll(lo, inOrder[:hi-lo]); errs != 0 {
				err = fmt.Errorf("%d Track errors", errs)
			}
		}
		if err == nil {
			send(lo, hi)
		}
	}
	for _, q := range queues {
		close(q)
	}
	errs := 0
	for range queues {
		errs += <-ackErr
	}
	if err == nil && errs != 0 {
		err = fmt.Errorf("%d Ack errors", errs)
	}
	if err != nil {
		cancel()
		<-commitDone
		return 0, 0, fmt.Errorf("%s end to end: %w", im.Name(), err)
	}
	reads := <-commitDone
	return time.Since(begin), reads, nil
}

// E2E benchmarks EndToEnd for implementation impl with GOMAXPROCS ackers: one op is
// one offset tracked, acked and covered by the commit point. It reports
// offsets/s as Moffsets/s and how many times the committer read the commit
// point per million offsets. For the or limit (an atomic store of the high
// mark per Track, a bare Or per Ack, no commit point) it measures what the
// harness and the hardware cost: no tracker can beat it.
func E2E(b *testing.B, impl string) { e2e(b, impl, modeEach) }

// E2EBatch is E2E through EndToEndBatch: each chunk of 256 offsets is tracked
// as one fetch batch. Its or limit stores the high mark once per batch (and
// initialises each new word), then one bare Or per Ack.
func E2EBatch(b *testing.B, impl string) { e2e(b, impl, modeBatch) }

// E2ERange is E2E through EndToEndRange: each chunk is a batch without gaps,
// tracked from its bounds (the watermark's TrackRange; the or limit is the
// same as in E2EBatch, the baselines insert each offset under one lock).
func E2ERange(b *testing.B, impl string) { e2e(b, impl, modeRange) }

func e2e(b *testing.B, impl string, mode int) {
	im := New(impl, 1, watermark.DefaultWindow)
	defer im.Close()
	b.ReportAllocs()
	b.ResetTimer()
	d, reads, err := endToEnd(im, runtime.GOMAXPROCS(0), int64(b.N), mode)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/d.Seconds()/1e6, "Moffsets/s")
	b.ReportMetric(float64(reads)/float64(b.N)*1e6, "commits/Moffset")
}
