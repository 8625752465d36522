package engine_test

// The intake and the flow control (flow.go), the lanes that outlive an
// assignment, and a ByKey call that returns freeing its key on its own.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// flowRecorder is an adapter's client: the pauses ApplyFlow asks for.
type flowRecorder struct {
	paused map[engine.TopicPartition]bool
}

func (f *flowRecorder) apply(p *engine.Part, pause bool) {
	if f.paused == nil {
		f.paused = map[engine.TopicPartition]bool{}
	}
	f.paused[p.TP] = pause
}

func offsets(from, n int64) ([]int64, []int64) {
	offs := make([]int64, n)
	for i := range offs {
		offs[i] = from + int64(i)
	}
	return offs, append([]int64(nil), offs...)
}

func TestOfferKeepsWhatDoesNotFitTheWindowAndPausesThePartition(t *testing.T) {
	c := cfg()
	c.Window = 128
	release := make(chan struct{})
	var handled atomic.Int64
	e := engine.New(c, func(_ context.Context, o int64) error {
		<-release
		handled.Add(1)
		return nil
	}, nil)
	e.Start(context.Background())
	defer e.Stop()
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	offs, msgs := offsets(0, 1000)
	if stale, err := s.Offer(p, offs, msgs, 1005); err != nil || stale != 0 {
		t.Fatalf("Offer = %d, %v", stale, err)
	}
	if !p.Paused() {
		t.Fatal("a partition with messages beyond its window is not paused")
	}
	var f flowRecorder
	e.ApplyFlow(f.apply)
	if !f.paused[tp] || p.State() != engine.StatePaused {
		t.Fatalf("ApplyFlow paused %v, state %v; want paused", f.paused, p.State())
	}
	if p.Next() != 1005 {
		t.Fatalf("Next = %d, want 1005 (the gap up to the end included)", p.Next())
	}
	// Offered again after a seek: dropped, counted.
	if stale, err := s.Offer(p, offs[990:], msgs[990:], 0); err != nil || stale != 10 {
		t.Fatalf("Offer of refetched messages = %d, %v; want 10 stale", stale, err)
	}
	close(release)
	waitUntil(t, func() bool { return handled.Load() == 1000 && !p.Paused() })
	e.ApplyFlow(f.apply)
	if f.paused[tp] || p.State() == engine.StatePaused {
		t.Fatalf("not resumed once the backlog was handled: %v, state %v", f.paused, p.State())
	}
	s.Revoke(context.Background(), tp)
	if got := fb.all(); len(got) != 1 || got[0].Offset != 1005 {
		t.Fatalf("commits %+v, want one at 1005", got)
	}
	s.Close(context.Background())
}

func TestBudgetPausesThePartitionOverItsShareFirst(t *testing.T) {
	c := cfg()
	c.MaxBufferedBytes = 10_000 // a share of 5,000 for each of two partitions
	release := make(chan struct{})
	e := engine.New(c, func(_ context.Context, o int64) error {
		<-release
		return nil
	}, nil)
	e.SetSize(func(*int64) int { return 1000 })
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	hot, err := s.Assign(engine.TopicPartition{Topic: "t", Partition: 0}, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := s.Assign(engine.TopicPartition{Topic: "t", Partition: 1}, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	offs, msgs := offsets(0, 12)
	// Half the budget held, by a partition over its share: it is paused,
	// the other one is not.
	if _, err := s.Offer(hot, offs[:6], msgs[:6], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Offer(quiet, offs[:2], msgs[:2], 0); err != nil {
		t.Fatal(err)
	}
	if !hot.Paused() || quiet.Paused() {
		t.Fatalf("6,000 and 2,000 bytes of a 10,000 budget: paused %v and %v, want the first only", hot.Paused(), quiet.Paused())
	}
	// Over the whole budget every partition holding anything is paused;
	// what it fetched before the pause is taken.
	if _, err := s.Offer(quiet, offs[2:5], msgs[2:5], 0); err != nil {
		t.Fatal(err)
	}
	if !quiet.Paused() {
		t.Fatal("the consumer over its budget: a partition holding 5,000 bytes is not paused")
	}
	if got := e.Buffered(); got != 11_000 {
		t.Fatalf("Buffered = %d, want 11,000", got)
	}
	close(release)
	waitUntil(t, func() bool { return !hot.Paused() && !quiet.Paused() && e.Buffered() == 0 })
	s.Close(context.Background())
}

// A partition that holds nothing is never paused for the budget: however
// much a hot partition holds, the others still get their messages in.
func TestAPartitionHoldingNothingIsNeverPausedForTheBudget(t *testing.T) {
	c := cfg()
	c.MaxBufferedBytes = 10_000
	release := make(chan struct{})
	e := engine.New(c, func(_ context.Context, o int64) error {
		if o < 100 {
			<-release // the hot partition's messages
		}
		return nil
	}, nil)
	e.SetSize(func(o *int64) int {
		if *o < 100 {
			return 6000 // two hold more than the budget, on two of the four workers
		}
		return 1000
	})
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	hot, err := s.Assign(engine.TopicPartition{Topic: "t", Partition: 0}, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := s.Assign(engine.TopicPartition{Topic: "t", Partition: 1}, 100, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	offs, msgs := offsets(0, 2)
	if _, err := s.Offer(hot, offs, msgs, 0); err != nil {
		t.Fatal(err)
	}
	if quiet.Paused() {
		t.Fatal("a partition holding nothing is paused")
	}
	for round := range int64(5) {
		o := 100 + round
		if err := e.WaitFlow(context.Background(), quiet); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Offer(quiet, []int64{o}, []int64{o}, 0); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, func() bool { return quiet.Watermark().Committable() == o+1 })
	}
	if !hot.Paused() {
		t.Fatal("the hot partition holding 12,000 bytes of a 10,000 budget is not paused")
	}
	close(release)
	waitUntil(t, func() bool { return !hot.Paused() && e.Buffered() == 0 })
	s.Close(context.Background())
}

func TestAMessageLargerThanTheBudgetGoesThroughAlone(t *testing.T) {
	c := cfg()
	c.MaxBufferedBytes = 100
	var handled atomic.Int64
	e := engine.New(c, func(_ context.Context, o int64) error {
		handled.Add(1)
		return nil
	}, nil)
	e.SetSize(func(*int64) int { return 1 << 20 })
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	for o := int64(0); o < 5; o++ {
		if err := e.WaitFlow(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Offer(p, []int64{o}, []int64{o}, 0); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return handled.Load() == 5 && !p.Paused() && e.Buffered() == 0 })
	s.Close(context.Background())
}

// A revoked partition's backlog is dropped (never handed out, its bytes
// freed), and the commit stops at what was tracked.
func TestRevokeDropsTheBacklog(t *testing.T) {
	c := cfg()
	c.Window = 128
	c.RevokeTimeout = 10 * time.Second // the drain ends when the 128 are handled
	release := make(chan struct{})
	var handled atomic.Int64
	e := engine.New(c, func(_ context.Context, o int64) error {
		<-release
		handled.Add(1)
		return nil
	}, nil)
	e.SetSize(func(*int64) int { return 10 })
	e.Start(context.Background())
	defer e.Stop()
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	offs, msgs := offsets(0, 1000)
	if _, err := s.Offer(p, offs, msgs, 0); err != nil {
		t.Fatal(err)
	}
	go func() {
		for !p.Revoked() {
			time.Sleep(time.Millisecond)
		}
		close(release)
	}()
	s.Revoke(context.Background(), tp)
	// The calls running at the revoke finish; what was queued behind them
	// and the backlog are dropped, for the next owner.
	committed := int64(0)
	if got := fb.all(); len(got) == 1 {
		committed = got[0].Offset
	}
	if committed != handled.Load() || handled.Load() > int64(c.Concurrency) {
		t.Fatalf("commit at %d after %d handled: want one at what the %d workers had taken", committed, handled.Load(), c.Concurrency)
	}
	if _, err := s.Offer(p, []int64{1000}, []int64{1000}, 0); err == nil {
		t.Fatal("Offer to a revoked partition succeeded")
	}
	waitUntil(t, func() bool { return e.Buffered() == 0 })
	s.Close(context.Background())
}

// ByKey: a call that hangs holds its own key only. Every message of the
// other keys runs, on the other workers, while it hangs. The hung call is
// far into the partition, where workers with short calls took runs of
// messages (a run used to hold the keys of all its messages until its
// slowest call returned).
func TestAHungCallHoldsOnlyItsKey(t *testing.T) {
	c := cfg()
	c.Ordering = engine.ByKey
	c.Concurrency = 4
	c.RevokeTimeout = 100 * time.Millisecond
	const n, keys, hungAt = 4000, 400, 2000
	var handled atomic.Int64
	hung := make(chan struct{})
	e := engine.New(c, func(ctx context.Context, m kmsg) error {
		if m.off == hungAt {
			close(hung)
			<-ctx.Done() // until the revoke gives up on it
			return ctx.Err()
		}
		handled.Add(1)
		return nil
	}, msgKey)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	offs := make([]int64, n)
	msgs := make([]kmsg, n)
	for i := range msgs {
		offs[i] = int64(i)
		msgs[i] = kmsg{off: int64(i), key: fmt.Appendf(nil, "k%d", i%keys)}
	}
	if _, err := s.Offer(p, offs, msgs, 0); err != nil {
		t.Fatal(err)
	}
	<-hung
	want := int64(n - 1 - (n-1-hungAt)/keys) // all but the hung call and its key's after it
	waitUntil(t, func() bool { return handled.Load() >= want })
	if got := handled.Load(); got != want {
		t.Fatalf("%d handled, want %d: a message of the hung key ran", got, want)
	}
	s.Close(context.Background())
}

// A revoke tells the calls still running at its deadline to stop: their
// context ends once the partition is committed and closed.
func TestRevokeCancelsTheContextOfCallsStillRunning(t *testing.T) {
	c := cfg()
	c.RevokeTimeout = 100 * time.Millisecond
	started := make(chan struct{})
	stopped := make(chan error, 1)
	e := engine.New(c, func(ctx context.Context, o int64) error {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return ctx.Err()
	}, nil)
	e.Start(context.Background())
	defer e.Stop()
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Offer(p, []int64{0}, []int64{0}, 0); err != nil {
		t.Fatal(err)
	}
	<-started
	s.Revoke(context.Background(), tp)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the running call's context did not end at the revoke")
	}
	for _, o := range fb.all() {
		if o.Offset != 0 {
			t.Fatalf("commit at %d: the cancelled call is not done", o.Offset)
		}
	}
	s.Close(context.Background())
}

// A partition revoked while a call of key A ignores its context, and
// assigned back (an eager rebalance): the redelivered messages of A wait
// for that call; other keys do not.
func TestAReassignedKeyWaitsForTheCallOfTheEarlierAssignment(t *testing.T) {
	for _, mode := range []engine.Ordering{engine.ByKey, engine.ByPartition} {
		t.Run(mode.String(), func(t *testing.T) {
			c := cfg()
			c.Ordering = mode
			c.RevokeTimeout = 100 * time.Millisecond
			var mu sync.Mutex
			running := map[string]int{}
			var overlap atomic.Bool
			release := make(chan struct{})
			first := make(chan struct{})
			var firstOnce sync.Once
			var handledB atomic.Int64
			e := engine.New(c, func(ctx context.Context, m kmsg) error {
				k := string(m.key)
				mu.Lock()
				running[k]++
				if running[k] > 1 || mode == engine.ByPartition && len(running) > 1 && running["A"]+running["B"] > 1 {
					overlap.Store(true)
				}
				mu.Unlock()
				if k == "A" && m.part == 0 {
					firstOnce.Do(func() { close(first) })
					<-release // ignores ctx
				}
				if k == "B" {
					handledB.Add(1)
				}
				mu.Lock()
				running[k]--
				if running[k] == 0 {
					delete(running, k)
				}
				mu.Unlock()
				return nil
			}, msgKey)
			e.Start(context.Background())
			defer e.Stop()
			s := e.NewSession((&fakeBroker{}).commit)
			p, err := s.Assign(tp, 0, "", -1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Offer(p, []int64{0}, []kmsg{{part: 0, off: 0, key: []byte("A")}}, 0); err != nil {
				t.Fatal(err)
			}
			<-first
			s.Revoke(context.Background(), tp) // gives up on the call at RevokeTimeout
			p2, err := s.Assign(tp, 0, "", -1)
			if err != nil {
				t.Fatal(err)
			}
			// part 1 marks the second assignment's messages.
			if _, err := s.Offer(p2, []int64{0, 1}, []kmsg{{part: 1, off: 0, key: []byte("A")}, {part: 1, off: 1, key: []byte("B")}}, 0); err != nil {
				t.Fatal(err)
			}
			if mode == engine.ByKey {
				waitUntil(t, func() bool { return handledB.Load() == 1 }) // another key runs
			}
			time.Sleep(20 * time.Millisecond) // give a wrong scheduler time to start A
			if p2.Watermark().Committable() != 0 {
				t.Fatalf("the second assignment's A ran while the first one's still runs")
			}
			close(release)
			waitUntil(t, func() bool { return p2.Watermark().Committable() == 2 })
			if overlap.Load() {
				t.Fatal("two calls of one key (or partition) overlapped")
			}
			s.Close(context.Background())
		})
	}
}

// Random offers against a small window and budget, with refetched
// (stale) runs and gaps: every message offered once is handled once, the
// commit point reaches the end, and nothing stays buffered or paused.
func TestOfferRandomized(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			c := cfg()
			c.Window = 64 << rng.IntN(3)
			c.MaxBufferedBytes = int64(100 + rng.IntN(5000))
			c.Concurrency = 1 + rng.IntN(8)
			var mu sync.Mutex
			seen := map[int64]int{}
			e := engine.New(c, func(_ context.Context, o int64) error {
				if rng := o % 7; rng == 0 {
					time.Sleep(50 * time.Microsecond)
				}
				mu.Lock()
				seen[o]++
				mu.Unlock()
				return nil
			}, nil)
			e.SetSize(func(o *int64) int { return int(*o%50) + 1 })
			e.Start(context.Background())
			defer e.Stop()
			s := e.NewSession((&fakeBroker{}).commit)
			p, err := s.Assign(tp, 0, "", -1)
			if err != nil {
				t.Fatal(err)
			}
			want := map[int64]bool{}
			next := int64(0)
			for range 200 {
				if rng.IntN(4) == 0 && next > 0 { // a refetch of what was offered
					from := max(0, next-int64(rng.IntN(20)))
					offs, msgs := offsets(from, next-from)
					if _, err := s.Offer(p, offs, msgs, 0); err != nil {
						t.Fatal(err)
					}
				}
				var offs []int64
				for range rng.IntN(30) {
					next += 1 + int64(rng.IntN(3)) // gaps between messages
					offs = append(offs, next-1)
				}
				end := int64(0)
				if rng.IntN(3) == 0 {
					next += int64(rng.IntN(4))
					end = next // a gap at the end (a marker)
				}
				for _, o := range offs {
					want[o] = true
				}
				if _, err := s.Offer(p, offs, append([]int64(nil), offs...), end); err != nil {
					t.Fatal(err)
				}
			}
			end := max(next, p.Next())
			waitUntil(t, func() bool { return p.Watermark().Committable() == end })
			waitUntil(t, func() bool { return e.Buffered() == 0 && !p.Paused() })
			mu.Lock()
			defer mu.Unlock()
			for o, n := range seen {
				if !want[o] || n != 1 {
					t.Fatalf("offset %d handled %d times (offered: %v)", o, n, want[o])
				}
			}
			if len(seen) != len(want) {
				t.Fatalf("%d handled, %d offered", len(seen), len(want))
			}
			s.Close(context.Background())
		})
	}
}
