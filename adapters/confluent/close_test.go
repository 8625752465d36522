package confluent_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// closeBound is the hang guard for one Close: RevokeTimeout (2s) plus
// librdkafka's leave; far above what a Close takes.
const closeBound = 20 * time.Second

// Issue: many Close calls in a row must all return within a bound: members
// of one group, alternately EAGER and COOPERATIVE, are started and closed
// one after the other — before they own anything, while they own
// partitions with slow messages in flight — each Close called from several
// goroutines at once and again after Run returned. Every commit they leave
// is below only handled messages, and no goroutine is left behind.
func TestManyClosesInARowAllReturn(t *testing.T) {
	const (
		topic = "close"
		group = "close-group"
		n     = 4000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 4, n, 150*time.Second)
	// The broker's admin client is up (Produce); goroutines counted from
	// here must all be gone after the members closed.
	baseline := runtime.NumGoroutine()
	rec := newRecorder()
	handler := func(_ context.Context, m *kafka.Message) error {
		d := time.Duration(rand.IntN(500)) * time.Microsecond
		if rand.IntN(50) == 0 {
			d = 50 * time.Millisecond
		}
		time.Sleep(d)
		rec.add(m)
		return nil
	}
	for i := range 8 {
		strat := "range"
		if i%2 == 1 {
			strat = "cooperative-sticky"
		}
		cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
			append(fastOpts(testLogger(t)), strategy(strat), confluent.WithConcurrency(8))...)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- cons.Run(context.Background(), handler) }()
		if i%4 != 0 { // i%4 == 0: close at once, probably mid-join
			before := rec.Count()
			adaptertest.WaitFor(ctx, t, "the member to consume", func() bool {
				return len(cons.Stats()) > 0 && rec.Count() > before
			})
		}
		closeStart := time.Now()
		var wg sync.WaitGroup
		var dumpOnce sync.Once
		for range 5 {
			wg.Go(func() {
				done := make(chan struct{})
				go func() { _ = cons.Close(); close(done) }()
				select {
				case <-done:
				case <-time.After(closeBound):
					dumpOnce.Do(dumpGoroutines)
					t.Errorf("member %d: Close did not return within %v", i, closeBound)
				}
			})
		}
		wg.Wait()
		select {
		case err := <-errc:
			// i%4 == 0: the Closes may come before Run has started (Run
			// then refuses to start) or before the group answered (Run
			// then says it never joined).
			early := errors.Is(err, confluent.ErrClosed) || errors.Is(err, confluent.ErrNeverJoined)
			if err != nil && (i%4 != 0 || !early) {
				t.Fatalf("member %d: Run = %v", i, err)
			}
		case <-time.After(closeBound):
			dumpOnce.Do(dumpGoroutines)
			t.Fatalf("member %d: Run did not return after Close", i)
		}
		if err := cons.Close(); err != nil {
			t.Fatalf("Close after Run returned: %v", err)
		}
		t.Logf("member %d (%s): closed in %v", i, strat, time.Since(closeStart).Round(time.Millisecond))
		// Safety: every offset below a commit was handled.
		com, err := c.Committed(ctx, group, topic)
		if err != nil {
			t.Fatal(err)
		}
		seen := rec.Seen()
		for p, cm := range com {
			for o := int64(0); o < cm.Offset; o++ {
				if seen[adaptertest.PO{P: p, O: o}] == 0 {
					t.Fatalf("member %d: partition %d committed at %d but offset %d was never handled", i, p, cm.Offset, o)
				}
			}
		}
	}
	adaptertest.WaitFor(ctx, t, "the members' goroutines to end", func() bool { return runtime.NumGoroutine() <= baseline })
}

// dumpGoroutines writes every goroutine's stack to stderr: a hung Close is
// diagnosed from where the Run goroutine waits.
func dumpGoroutines() {
	_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 2)
}

// Issue: Run returns after a close without hanging, even when every worker
// is stuck in a handler that ignores its context and the partition is
// paused with messages held for room (its window full behind the stuck
// messages): the stuck message and everything after it stay uncommitted.
func TestCloseReturnsWhileHandlersHang(t *testing.T) {
	const (
		topic = "hang"
		group = "hang-group"
		stuck = 5
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, 1))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	if _, err := c.Produce(ctx, topic, 5000); err != nil { // far more than the window
		t.Fatal(err)
	}
	release := make(chan struct{})
	defer close(release) // lets the abandoned handler goroutine end
	var paused atomic.Int64
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(slogDiscard()), confluent.WithConcurrency(2), confluent.WithWindow(64),
			confluent.WithPauseHook(func(_ confluent.TopicPartition, p bool) {
				if p {
					paused.Add(1)
				} else {
					paused.Add(-1)
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	var reached sync.WaitGroup
	reached.Add(2)
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(context.Background(), func(_ context.Context, m *kafka.Message) error {
			if o := m.TopicPartition.Offset; o == stuck || o == stuck+1 {
				reached.Done()
				<-release // ignores its context
			}
			return nil
		})
	}()
	reached.Wait() // both workers are stuck
	// ... and the window fills behind them: the partition is paused with
	// messages held.
	adaptertest.WaitFor(ctx, t, "the partition to be paused, its window full", func() bool { return paused.Load() > 0 })
	closed := make(chan struct{})
	go func() { _ = cons.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(closeBound):
		dumpGoroutines()
		t.Fatal("Close did not return while handlers hang")
	}
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := com[0].Offset; got > stuck {
		t.Fatalf("committed %d, past the stuck offset %d", got, stuck)
	}
}

// A cooperative member whose Run ends while a revoke is queued behind its
// back (it stopped polling, then a member joined) gives its partitions
// back before kafka.Consumer.Close, never inside it: inside, librdkafka
// 2.11.1 queues a second revoke behind the first and can drop the unassign
// for it as the group terminates, and Close never returns (seen in CI as a
// Run stuck in IncrementalUnassign 30 s after cancel). Nothing is lost: the
// member that joined consumes and commits everything.
func TestCooperativeCloseWithARevokeQueued(t *testing.T) {
	const (
		topic = "cq"
		group = "cq-group"
		n     = 3000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 6, n, 90*time.Second)
	rec := newRecorder()
	var (
		mu                   sync.Mutex
		canceled, closing    bool
		beforeClose, inClose int // A's revokes after cancel: before kafka.Consumer.Close, inside it
		hold                 = make(chan struct{})
		holding              = make(chan struct{})
		holdOnce             sync.Once
		armed                atomic.Bool
	)
	a, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), strategy("cooperative-sticky"), confluent.WithConcurrency(4),
			confluent.WithRevokeTimeout(5*time.Second),
			confluent.WithRevokeStartHook(func([]confluent.TopicPartition, bool) {
				mu.Lock()
				defer mu.Unlock()
				switch {
				case closing:
					inClose++
				case canceled:
					beforeClose++
				}
			}),
			confluent.WithCallHook(func(call string, enter bool) {
				if call == "close" {
					mu.Lock()
					closing = true
					mu.Unlock()
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	stopA := runConsumer(t, a, func(_ context.Context, m *kafka.Message) error {
		if armed.Load() {
			holdOnce.Do(func() { close(holding); <-hold }) // keeps A's shutdown in its drain
		}
		rec.add(m)
		return nil
	})
	adaptertest.WaitFor(ctx, t, "A to consume", func() bool { return rec.Count() > 100 })
	armed.Store(true)
	<-holding

	// A stops polling (its drain waits for the held message); B joins, and
	// the rebalance queues a revoke for A that A's poll loop will not serve.
	errA := make(chan error, 1)
	mu.Lock()
	canceled = true
	mu.Unlock()
	go func() { errA <- stopA() }()
	bAssigned := make(chan struct{})
	var bOnce sync.Once
	b, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), strategy("cooperative-sticky"), confluent.WithConcurrency(4),
			confluent.WithAssignHook(func(string, []confluent.TopicPartition) { bOnce.Do(func() { close(bAssigned) }) }))...)
	if err != nil {
		t.Fatal(err)
	}
	stopB := runConsumer(t, b, rec.handle)
	select {
	case <-bAssigned: // B's first assignment came with A's revoke
	case <-ctx.Done():
		t.Fatal("B was never assigned")
	}
	time.Sleep(300 * time.Millisecond) // A's main thread queues the revoke
	close(hold)
	if err := <-errA; err != nil {
		t.Fatalf("member A: %v", err)
	}
	mu.Lock()
	t.Logf("A's revokes after cancel: %d before kafka.Consumer.Close, %d inside it", beforeClose, inClose)
	if inClose != 0 {
		t.Errorf("%d revokes ran inside kafka.Consumer.Close, want 0 (all before it)", inClose)
	}
	if beforeClose < 2 {
		t.Errorf("A served %d revokes between its cancel and kafka.Consumer.Close, want 2: the one queued while it drained, and its last", beforeClose)
	}
	mu.Unlock()

	adaptertest.WaitFor(ctx, t, "everything handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && rec.Distinct() == n
	})
	if err := stopB(); err != nil {
		t.Fatalf("member B: %v", err)
	}
}
