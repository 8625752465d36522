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
