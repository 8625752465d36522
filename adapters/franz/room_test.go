package franz_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// pollCounter counts the client's PollFetches calls (a kgo hook).
type pollCounter struct{ n atomic.Int64 }

func (p *pollCounter) OnPollStart(context.Context) { p.n.Add(1) }

// Issue 14: while a partition waits for room in its window (paused, its
// records stashed), the poll loop sleeps until the acks make room instead
// of polling on a short timer: with the partition's first record held by
// its handler for blockFor, the loop polls a handful of times (the 1 ms
// retry timer it replaced polled hundreds of times), and once the handler
// returns every record is handled and committed to the log end.
func TestBlockedPartitionDoesNotSpinThePollLoop(t *testing.T) {
	const (
		n        = 400
		window   = 8
		blockFor = 300 * time.Millisecond
	)
	c, ctx := adaptertest.StartProduced(t, "room", 1, n, 60*time.Second)
	before, _ := clientGoroutines()

	var (
		polls   pollCounter
		mu      sync.Mutex
		paused  bool                  // the partition is paused (window full) right now
		started = make(chan struct{}) // the handler of offset 0 holds it
		release = make(chan struct{})
		once    sync.Once
	)
	cons, err := franz.NewConsumer(c.Addrs(), "g", []string{"room"},
		append(stableOpts(testLogger(t)), franz.WithConcurrency(4), franz.WithWindow(window),
			franz.WithClientOptions(kgo.WithHooks(&polls)),
			franz.WithPauseHook(func(_ franz.TopicPartition, p bool) {
				mu.Lock()
				paused = p
				mu.Unlock()
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	isPaused := func() bool { mu.Lock(); defer mu.Unlock(); return paused }
	rec := newRecorder()
	stop := runConsumer(t, cons, func(ctx context.Context, m *kgo.Record) error {
		if m.Offset == 0 {
			once.Do(func() { close(started) })
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		rec.add(m)
		return nil
	})

	// Offset 0 holds the commit point: offsets 1..window-1 are handled,
	// window does not fit, the partition is paused.
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("timed out waiting for the handler of offset 0")
	}
	adaptertest.WaitFor(ctx, t, "the partition paused, window full", isPaused)
	adaptertest.WaitFor(ctx, t, "the other records of the window handled",
		func() bool { return rec.Distinct() == window-1 })
	p0, t0 := polls.n.Load(), time.Now()
	time.Sleep(blockFor)
	p1, elapsed := polls.n.Load(), time.Since(t0)
	if !isPaused() || rec.Distinct() != window-1 {
		t.Fatalf("the partition moved while offset 0 was held: paused %v, %d handled", isPaused(), rec.Distinct())
	}
	// The loop polls once per roomWaitMax (100 ms) while blocked, a
	// spinning one once per 1 ms: allow 8 plus one per 20 ms of the time
	// actually slept (a loaded machine oversleeps).
	if got, most := p1-p0, 8+int64(elapsed/(20*time.Millisecond)); got > most {
		t.Errorf("%d polls in %v while the partition waited for room, want at most %d: the loop spins",
			got, elapsed.Round(time.Millisecond), most)
	} else {
		t.Logf("%d polls in %v while the partition waited for room", got, elapsed.Round(time.Millisecond))
	}

	close(release)
	adaptertest.WaitFor(ctx, t, "all records handled", func() bool { return rec.Distinct() == n })
	adaptertest.WaitFor(ctx, t, "the partition resumed", func() bool { return !isPaused() })
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, "g", "room")
		return ok
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ok, why := adaptertest.CommittedAtEnd(ctx, c, "g", "room"); !ok {
		t.Fatal(why)
	}
	if d := rec.Dups(); d != 0 {
		t.Errorf("%d duplicates without any crash or rebalance", d)
	}
	checkNoLeak(t, before)
}
