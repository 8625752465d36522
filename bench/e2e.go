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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	queues := make([]chan int64, ackers)
	ackErr := make(chan int, ackers)
	for g := range queues {
		queues[g] = make(chan int64, ackerQueue)
		go func(q chan int64) {
			errs := 0
			for lo := range q {
				if n := total - lo; n < chunk {
					errs += im.ackAll(lo, inOrder[:n])
				} else {
					errs += im.ackAll(lo, chunkOrder)
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
	for lo, i := int64(0), 0; lo < total; lo, i = lo+chunk, i+1 {
		hi := min(lo+chunk, total)
		if canWait {
			err = wt.trackWaitRange(ctx, lo, hi)
		} else if errs := im.trackAll(lo, inOrder[:hi-lo]); errs != 0 {
			err = fmt.Errorf("%d Track errors", errs)
		}
		if err != nil {
			break
		}
		queues[i%ackers] <- lo
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
func E2E(b *testing.B, impl string) {
	im := New(impl, 1, watermark.DefaultWindow)
	defer im.Close()
	b.ReportAllocs()
	b.ResetTimer()
	d, reads, err := EndToEnd(im, runtime.GOMAXPROCS(0), int64(b.N))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/d.Seconds()/1e6, "Moffsets/s")
	b.ReportMetric(float64(reads)/float64(b.N)*1e6, "commits/Moffset")
}
