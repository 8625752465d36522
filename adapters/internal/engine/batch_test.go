package engine_test

// Batch delivery (Session.TryDeliverBatch, DeliverBatch) against delivery
// one message at a time: same messages handled, same restored count, same
// commit point; and its contracts: partial fit, restored offsets in the
// middle of a run, revoked partition, stopped engine, bad input.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
	"github.com/inorder/inorder/watermark/metadata"
)

// batchRun is one delivery scenario: the offsets fetched (with gaps), those
// commit metadata marks done, and the window.
type batchRun struct {
	start    int64
	offsets  []int64
	restored []int64
	window   int
}

func randomRun(rng *rand.Rand) batchRun {
	r := batchRun{start: int64(rng.IntN(100)), window: 4 + rng.IntN(60)}
	o := r.start
	for range 50 + rng.IntN(300) {
		if rng.IntN(5) == 0 {
			o += int64(1 + rng.IntN(3)) // a gap
		}
		r.offsets = append(r.offsets, o)
		if rng.IntN(6) == 0 {
			r.restored = append(r.restored, o)
		}
		o++
	}
	return r
}

func (r batchRun) meta(t *testing.T) string {
	if len(r.restored) == 0 {
		return ""
	}
	done := ordset.New()
	for _, o := range r.restored {
		done.Add(o)
	}
	meta, complete, err := metadata.Encode(r.start, done, 1<<20)
	if err != nil || !complete {
		t.Fatalf("Encode: complete %v, %v", complete, err)
	}
	return meta
}

// batchResult is what a delivery left: the handler calls in order, and the
// partition's statistics once everything is handled.
type batchResult struct {
	calls    []int64
	restored int64
	point    int64
	handled  int64
}

// deliverRun delivers r with mode's ordering, one message at a time
// (chunks nil) or in runs of the given lengths (cycled), and waits for
// every delivered message to be handled.
func deliverRun(t *testing.T, mode engine.Ordering, r batchRun, chunks []int) batchResult {
	t.Helper()
	c := cfg()
	c.Ordering = mode
	c.Window = r.window
	var mu sync.Mutex
	var res batchResult
	e := engine.New(c, func(_ context.Context, m kmsg) error {
		mu.Lock()
		res.calls = append(res.calls, m.off)
		mu.Unlock()
		return nil
	}, msgKey)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, err := s.Assign(tp, r.start, r.meta(t), -1)
	if err != nil {
		t.Fatal(err)
	}
	msgs := make([]kmsg, len(r.offsets))
	for i, o := range r.offsets {
		msgs[i] = kmsg{0, o, []byte{byte(o % 3)}}
	}
	ctx := context.Background()
	if chunks == nil {
		for i, o := range r.offsets {
			if err := s.Deliver(ctx, p, o, msgs[i]); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		for i, k := 0, 0; i < len(r.offsets); k++ {
			j := min(len(r.offsets), i+chunks[k%len(chunks)])
			n, err := s.DeliverBatch(ctx, p, r.offsets[i:j], msgs[i:j])
			if err != nil || n != j-i {
				t.Fatalf("DeliverBatch(%d offsets) = %d, %v", j-i, n, err)
			}
			i = j
		}
	}
	end := r.offsets[len(r.offsets)-1] + 1
	waitUntil(t, func() bool { return p.Watermark().Committable() == end })
	st := e.Stats()[0]
	res.restored, res.point, res.handled = st.Restored, st.CommitPoint, e.Handled()
	mu.Lock()
	defer mu.Unlock()
	res.calls = slices.Clone(res.calls)
	return res
}

// Model: batch delivery has the effect of delivery one message at a time,
// whatever the run lengths, windows (partial fits), gaps and restored
// offsets; with ByPartition in the same order.
func TestDeliverBatchEqualsDeliver(t *testing.T) {
	for _, mode := range []engine.Ordering{engine.Unordered, engine.ByKey, engine.ByPartition} {
		for seed := range uint64(6) {
			t.Run(fmt.Sprintf("ordering=%v/seed=%d", mode, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 14))
				r := randomRun(rng)
				chunks := []int{1 + rng.IntN(8), 1 + rng.IntN(200), 1 + rng.IntN(30), 70 + rng.IntN(100)}
				one := deliverRun(t, mode, r, nil)
				batch := deliverRun(t, mode, r, chunks)

				want := slices.DeleteFunc(slices.Clone(r.offsets), func(o int64) bool {
					return slices.Contains(r.restored, o)
				})
				for name, res := range map[string]batchResult{"one by one": one, "batch": batch} {
					got := slices.Clone(res.calls)
					if mode == engine.ByPartition && !slices.IsSorted(got) {
						t.Errorf("%s: ByPartition handled out of offset order", name)
					}
					slices.Sort(got)
					if !slices.Equal(got, want) {
						t.Errorf("%s: handled %d messages, want %d (each once, restored ones skipped)", name, len(got), len(want))
					}
					if res.handled != int64(len(want)) {
						t.Errorf("%s: Handled() = %d, want %d", name, res.handled, len(want))
					}
				}
				if one.restored != int64(len(r.restored)) || batch.restored != one.restored {
					t.Errorf("Restored: one by one %d, batch %d, want %d", one.restored, batch.restored, len(r.restored))
				}
				if batch.point != one.point {
					t.Errorf("commit point: batch %d, one by one %d", batch.point, one.point)
				}
			})
		}
	}
}

// blockingEngine starts an engine whose handler blocks on offset 0 until
// release is closed, and a session with tp assigned at 0 with meta.
func blockingEngine(t *testing.T, c engine.Config, meta string) (*engine.Engine[int64], *engine.Session[int64], *engine.Part, chan struct{}, *handledSet) {
	t.Helper()
	release := make(chan struct{})
	hs := &handledSet{m: map[int64]int{}}
	e := engine.New(c, func(_ context.Context, o int64) error {
		if o == 0 {
			<-release
		}
		hs.add(o)
		return nil
	}, nil)
	e.Start(context.Background())
	s := e.NewSession((&fakeBroker{}).commit)
	p, err := s.Assign(tp, 0, meta, -1)
	if err != nil {
		t.Fatal(err)
	}
	return e, s, p, release, hs
}

type handledSet struct {
	mu sync.Mutex
	m  map[int64]int
}

func (h *handledSet) add(o int64) {
	h.mu.Lock()
	h.m[o]++
	h.mu.Unlock()
}

func (h *handledSet) count(o int64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.m[o]
}

func seq(lo, hi int64) []int64 {
	var s []int64
	for o := lo; o < hi; o++ {
		s = append(s, o)
	}
	return s
}

// A run that fits the window only in part: the prefix that fits is
// delivered and counted, the rest refused unchanged with ErrWindowFull, and
// goes through once the head is handled.
func TestTryDeliverBatchPartialFit(t *testing.T) {
	c := cfg()
	c.Window = 4
	e, s, p, release, hs := blockingEngine(t, c, "")
	defer e.Stop()
	defer s.Close(context.Background())
	offs := seq(0, 10)
	n, err := s.TryDeliverBatch(p, offs, offs)
	if n != 4 || !errors.Is(err, watermark.ErrWindowFull) {
		t.Fatalf("TryDeliverBatch(10 offsets, window 4) = %d, %v; want 4, ErrWindowFull", n, err)
	}
	if h := p.Watermark().High(); h != 4 {
		t.Fatalf("High = %d, want 4", h)
	}
	waitUntil(t, func() bool { return hs.count(3) == 1 })
	if n, err := s.TryDeliverBatch(p, offs[4:], offs[4:]); n != 0 || !errors.Is(err, watermark.ErrWindowFull) {
		t.Fatalf("TryDeliverBatch with the head unhandled = %d, %v; want 0, ErrWindowFull", n, err)
	}
	close(release)
	n, err = s.DeliverBatch(context.Background(), p, offs[4:], offs[4:])
	if n != 6 || err != nil {
		t.Fatalf("DeliverBatch(rest) = %d, %v; want 6, nil", n, err)
	}
	waitUntil(t, func() bool { return p.Watermark().Committable() == 10 })
	for _, o := range offs {
		if hs.count(o) != 1 {
			t.Fatalf("offset %d handled %d times", o, hs.count(o))
		}
	}
}

// DeliverBatch waiting for room returns ctx's error, with what it consumed.
func TestDeliverBatchEndsWithCtx(t *testing.T) {
	c := cfg()
	c.Window = 4
	e, s, p, release, _ := blockingEngine(t, c, "")
	defer e.Stop()
	defer s.Close(context.Background())
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitUntil(t, func() bool { return p.Watermark().High() == 4 })
		cancel()
	}()
	offs := seq(0, 10)
	if n, err := s.DeliverBatch(ctx, p, offs, offs); n != 4 || !errors.Is(err, context.Canceled) {
		t.Fatalf("DeliverBatch with a cancelled wait = %d, %v; want 4, context.Canceled", n, err)
	}
}

// Offsets commit metadata marks done are consumed, counted and not
// handled, at the start, in the middle and at the end of a run.
func TestTryDeliverBatchSkipsRestored(t *testing.T) {
	done := ordset.New()
	for _, o := range []int64{1, 4, 5, 9} {
		done.Add(o)
	}
	meta, _, err := metadata.Encode(1, done, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	c := cfg()
	hs := &handledSet{m: map[int64]int{}}
	e := engine.New(c, func(_ context.Context, o int64) error { hs.add(o); return nil }, nil)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, err := s.Assign(tp, 1, meta, -1)
	if err != nil {
		t.Fatal(err)
	}
	offs := seq(1, 10)
	if n, err := s.TryDeliverBatch(p, offs, offs); n != len(offs) || err != nil {
		t.Fatalf("TryDeliverBatch = %d, %v; want %d, nil", n, err, len(offs))
	}
	waitUntil(t, func() bool { return p.Watermark().Committable() == 10 })
	for _, o := range offs {
		want := 1
		if done.Contains(o) {
			want = 0
		}
		if got := hs.count(o); got != want {
			t.Errorf("offset %d handled %d times, want %d", o, got, want)
		}
	}
	if r := e.Stats()[0].Restored; r != 4 {
		t.Errorf("Restored = %d, want 4", r)
	}
}

// Once the partition is revoking, a run is consumed but not handled (it is
// redelivered to the next owner), the commit does not pass it, and after
// the revoke the run is refused with ErrClosed.
func TestTryDeliverBatchToRevokedPartition(t *testing.T) {
	c := cfg()
	c.RevokeTimeout = 5e9 // the drain waits for the blocked handler
	fb := &fakeBroker{}
	release, started := make(chan struct{}), make(chan struct{})
	hs := &handledSet{m: map[int64]int{}}
	e := engine.New(c, func(_ context.Context, o int64) error {
		if o == 0 {
			close(started)
			<-release
		}
		hs.add(o)
		return nil
	}, nil)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession(fb.commit)
	defer s.Close(context.Background())
	p, _ := s.Assign(tp, 0, "", -1)
	offs := seq(0, 6)
	if n, err := s.TryDeliverBatch(p, offs[:2], offs[:2]); n != 2 || err != nil {
		t.Fatalf("TryDeliverBatch = %d, %v", n, err)
	}
	<-started // in a handler: the drain waits for it
	waitUntil(t, func() bool { return hs.count(1) == 1 })
	revoked := make(chan struct{})
	go func() {
		s.Revoke(context.Background(), tp)
		close(revoked)
	}()
	waitUntil(t, p.Revoked)
	if n, err := s.TryDeliverBatch(p, offs[2:], offs[2:]); n != 4 || err != nil {
		t.Fatalf("TryDeliverBatch while revoking = %d, %v; want 4, nil (dropped)", n, err)
	}
	close(release)
	<-revoked
	for _, o := range offs[2:] {
		if hs.count(o) != 0 {
			t.Errorf("offset %d delivered while revoking was handled", o)
		}
	}
	commits := fb.all()
	if len(commits) == 0 || commits[len(commits)-1].Offset != 2 {
		t.Fatalf("commits at revoke %v, want the last at offset 2", commits)
	}
	if n, err := s.TryDeliverBatch(p, []int64{6}, []int64{6}); n != 0 || !errors.Is(err, watermark.ErrClosed) {
		t.Fatalf("TryDeliverBatch after revoke = %d, %v; want 0, ErrClosed", n, err)
	}
}

// After the engine stopped, a run is consumed and refused with ErrStopped.
func TestTryDeliverBatchAfterStop(t *testing.T) {
	e := engine.New(cfg(), func(context.Context, int64) error { return nil }, nil)
	e.Start(context.Background())
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, _ := s.Assign(tp, 0, "", -1)
	e.Stop()
	offs := seq(0, 3)
	if n, err := s.TryDeliverBatch(p, offs, offs); n != 3 || !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("TryDeliverBatch after Stop = %d, %v; want 3, ErrStopped", n, err)
	}
}

// Bad input: offsets out of order stop the run at the offending offset;
// lengths that differ are a programmer error.
func TestTryDeliverBatchBadInput(t *testing.T) {
	e := engine.New(cfg(), func(context.Context, int64) error { return nil }, nil)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, _ := s.Assign(tp, 0, "", -1)
	offs := []int64{0, 1, 5, 3}
	if n, err := s.TryDeliverBatch(p, offs, offs); n != 3 || !errors.Is(err, watermark.ErrOutOfOrder) {
		t.Fatalf("TryDeliverBatch(0,1,5,3) = %d, %v; want 3, ErrOutOfOrder", n, err)
	}
	if n, err := s.TryDeliverBatch(p, nil, nil); n != 0 || err != nil {
		t.Fatalf("TryDeliverBatch(empty) = %d, %v; want 0, nil", n, err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("TryDeliverBatch with 2 offsets for 1 message did not panic")
		}
	}()
	_, _ = s.TryDeliverBatch(p, []int64{6, 7}, []int64{6})
}

// Unordered batch delivery and handling of a reused slice allocate nothing.
func TestUnorderedDeliverBatchDoesNotAllocate(t *testing.T) {
	const batch = 64
	c := cfg()
	c.Concurrency = 2
	var handled atomic.Int64
	e := engine.New(c, func(context.Context, int64) error {
		handled.Add(1)
		return nil
	}, nil)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, _ := s.Assign(tp, 0, "", -1)
	offs := make([]int64, batch)
	var o int64
	allocs := testing.AllocsPerRun(200, func() {
		for i := range offs {
			offs[i] = o + int64(i)
		}
		if n, err := s.TryDeliverBatch(p, offs, offs); n != batch || err != nil {
			t.Fatalf("TryDeliverBatch = %d, %v", n, err)
		}
		o += batch
		for handled.Load() < o {
			runtime.Gosched()
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per batch of %d, want 0", allocs, batch)
	}
}
