package franz_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// outputOf is the output record of input record m (adaptertest.OutputValue).
func outputOf(topic string, m *kgo.Record) *kgo.Record {
	return &kgo.Record{Topic: topic, Key: m.Key, Value: adaptertest.OutputValue(m.Partition, m.Offset)}
}

func checkExactlyOnce(ctx context.Context, t *testing.T, c *kafkatest.Cluster, out string, ends map[int32]int64) {
	t.Helper()
	adaptertest.CheckOutputsOnce(ctx, t, c, out, ends)
}

// Issue 23: each input's outputs become visible exactly once, also when
// handler calls fail and are retried (their outputs discarded), finish out
// of order, and the consumer is stopped and started again; Produce outside
// a handler call, or after it returned, is refused.
func TestTxnOutputsExactlyOnceRetriesDiscardedProduceAfterReturnRefused(t *testing.T) {
	const n = 2000
	c, ctx := adaptertest.StartProduced(t, "txn-in", 4, n, 60*time.Second)
	if err := c.CreateTopic(ctx, "txn-out", 3); err != nil {
		t.Fatal(err)
	}
	group := adaptertest.NextGroup("txn")
	if err := franz.Produce(ctx, &kgo.Record{Topic: "txn-out"}); !errors.Is(err, franz.ErrNotTransactional) {
		t.Errorf("Produce outside a handler: %v, want ErrNotTransactional", err)
	}

	var (
		failed   sync.Map // partition/offset → failed once already
		stashMu  sync.Mutex
		stashed  []context.Context
		handled  atomic.Int64
		produced atomic.Int64
	)
	handler := func(ctx context.Context, m *kgo.Record) error {
		handled.Add(1)
		key := fmt.Sprintf("%d/%d", m.Partition, m.Offset)
		if m.Offset%97 == 0 {
			stashMu.Lock()
			stashed = append(stashed, ctx)
			stashMu.Unlock()
		}
		if m.Offset%10 == 3 {
			if _, again := failed.LoadOrStore(key, true); !again {
				// Outputs of a failed call are discarded.
				if err := franz.Produce(ctx, &kgo.Record{Topic: "txn-out", Value: []byte("poison " + key)}); err != nil {
					return err
				}
				return errors.New("first attempt fails")
			}
		}
		if m.Offset%50 == 7 {
			time.Sleep(30 * time.Millisecond) // out of order: later records finish first
		}
		produced.Add(1)
		return franz.Produce(ctx, outputOf("txn-out", m))
	}
	run := func(until func() bool) {
		cons, err := franz.NewConsumer(c.Addrs(), group, []string{"txn-in"},
			append(stableOpts(testLogger(t)), franz.WithTransactionalID("txn-test-1"), franz.WithConcurrency(32),
				franz.WithRetry(franz.Retry{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}))...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runConsumer(t, cons, handler)
		adaptertest.WaitFor(ctx, t, "the consumer to get far enough", until)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	// Stop halfway, then run to the end with a new consumer of the same
	// transactional id.
	run(func() bool { return handled.Load() >= n/2 })
	run(func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, "txn-in"); return ok })

	ends, err := c.LogEnd(ctx, "txn-in")
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(ctx, t, c, "txn-out", ends)
	stashMu.Lock()
	defer stashMu.Unlock()
	if len(stashed) == 0 {
		t.Fatal("no handler context stashed")
	}
	for _, hctx := range stashed {
		if err := franz.Produce(hctx, &kgo.Record{Topic: "txn-out"}); !errors.Is(err, franz.ErrHandlerReturned) {
			t.Fatalf("Produce after the handler returned: %v, want ErrHandlerReturned", err)
		}
	}
}

// Issue 23: a transaction the broker refuses (its offset commit, then its
// end, then an end whose outcome the client cannot know) is aborted: none of its outputs is ever visible, and the outputs of
// its records reach the output topic exactly once in a later one.
func TestTxnRefusedTransactionAbortedOutputsOnceLater(t *testing.T) {
	const n = 1000
	c, ctx := adaptertest.StartProduced(t, "txnf-in", 2, n, 60*time.Second)
	if err := c.CreateTopic(ctx, "txnf-out", 2); err != nil {
		t.Fatal(err)
	}
	group := adaptertest.NextGroup("txnf")
	var handled atomic.Int64
	first := make(chan struct{})
	var once sync.Once
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{"txnf-in"},
		append(stableOpts(testLogger(t)), franz.WithTransactionalID("txnf-1"))...)
	if err != nil {
		t.Fatal(err)
	}
	// Refuse the first transactional offset commit and the first end of a
	// transaction (with a non-retriable error: the commit is refused).
	h := c.Fake().Fault(
		kfake.Fault{Keys: []kmsg.Key{kmsg.TxnOffsetCommit}, Err: kerr.InvalidTxnState, Count: 1},
		kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.InvalidTxnState, Count: 1,
			When: func(r kmsg.Request) bool { return r.(*kmsg.EndTxnRequest).Commit }},
		// An unknown outcome (kgo cannot tell whether it committed): the
		// abort reloads the producer id, and the group's offsets read
		// back say it did not.
		kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.UnknownServerError, Count: 1,
			When: func(r kmsg.Request) bool { return r.(*kmsg.EndTxnRequest).Commit }},
	)
	defer h.Remove()
	stop := runConsumer(t, cons, func(ctx context.Context, m *kgo.Record) error {
		once.Do(func() { close(first) })
		if handled.Add(1) < n/2 {
			time.Sleep(time.Millisecond) // several transactions
		}
		return franz.Produce(ctx, outputOf("txnf-out", m))
	})
	adaptertest.WaitFor(ctx, t, "everything committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, "txnf-in")
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if hits := h.Hits(); hits < 3 {
		t.Fatalf("the faults were hit %d times, want 3", hits)
	}
	ends, err := c.LogEnd(ctx, "txnf-in")
	if err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(ctx, t, c, "txnf-out", ends)
	// The aborted transactions wrote records that read_uncommitted sees.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.ReadN(rctx, "txnf-out", n+1); err != nil {
		t.Errorf("read_uncommitted sees no more than the %d committed outputs: no aborted transaction wrote any (%v)", n, err)
	}
}

// Issue 23: WithTransactionalID refuses an empty id, and RunBatch.
func TestTxnOptionsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []franz.Option
		want string
	}{
		{"empty id", []franz.Option{franz.WithTransactionalID("")}, "transactional id is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := franz.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"}, tc.opts...)
			if !errors.Is(err, franz.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewConsumer: %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
	cons, err := franz.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"}, franz.WithTransactionalID("x"))
	if err != nil {
		t.Fatal(err)
	}
	err = cons.RunBatch(context.Background(), func(context.Context, []*kgo.Record) error { return nil })
	if !errors.Is(err, franz.ErrInvalidConfig) {
		t.Fatalf("RunBatch with WithTransactionalID: %v, want ErrInvalidConfig", err)
	}
}

// Issue 23: partitions move between two exactly-once members (one joins,
// then the first leaves) under each rebalance protocol: the revokes commit
// what is done in their transactions, and each input's output is visible
// exactly once.
func TestTxnRebalanceOutputsExactlyOnce(t *testing.T) {
	for _, bal := range []string{"range", "cooperative"} {
		t.Run(bal, func(t *testing.T) {
			const n = 4000
			in, out := "txr-in-"+bal, "txr-out-"+bal
			c, ctx := adaptertest.StartProduced(t, in, 4, n, 90*time.Second)
			if err := c.CreateTopic(ctx, out, 4); err != nil {
				t.Fatal(err)
			}
			group := adaptertest.NextGroup("txr")
			var handled, byB atomic.Int64
			start := func(id string, count *atomic.Int64) (*franz.Consumer, func() error) {
				cons, err := franz.NewConsumer(c.Addrs(), group, []string{in},
					append(fastOpts(testLogger(t)), balancer(bal), franz.WithConcurrency(8),
						franz.WithTransactionalID(id))...)
				if err != nil {
					t.Fatal(err)
				}
				return cons, runConsumer(t, cons, func(ctx context.Context, m *kgo.Record) error {
					handled.Add(1)
					count.Add(1)
					time.Sleep(5 * time.Millisecond)
					return franz.Produce(ctx, outputOf(out, m))
				})
			}
			var byA atomic.Int64
			_, stopA := start("txr-a-"+bal, &byA)
			adaptertest.WaitFor(ctx, t, "a tenth handled", func() bool { return handled.Load() >= n/10 })
			consB, stopB := start("txr-b-"+bal, &byB)
			adaptertest.WaitFor(ctx, t, "the second member to handle", func() bool { return byB.Load() > 0 })
			if err := stopA(); err != nil {
				t.Fatal(err)
			}
			adaptertest.WaitFor(ctx, t, "everything committed", func() bool {
				ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, in)
				return ok
			})
			if len(consB.Stats()) != 4 {
				t.Errorf("the second member owns %d partitions after the first left, want 4", len(consB.Stats()))
			}
			if err := stopB(); err != nil {
				t.Fatal(err)
			}
			t.Logf("handled by the first member %d, by the second %d", byA.Load(), byB.Load())
			ends, err := c.LogEnd(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			checkExactlyOnce(ctx, t, c, out, ends)
		})
	}
}

// Issue 23: a dead-lettered record's dead-letter record goes in the
// transaction that commits it as done (adaptertest.CheckTxnDeadLetters).
func TestTxnDeadLetterRecordInTheTransaction(t *testing.T) {
	adaptertest.CheckTxnDeadLetters(t, adaptertest.TxnDeadLetterConsumer{
		Start: func(t *testing.T, addrs []string, group, id, src, out, dlq string, handled func(int32, int64) bool) func() error {
			cons, err := franz.NewConsumer(addrs, group, []string{src},
				append(stableOpts(testLogger(t)), franz.WithTransactionalID(id), franz.WithDeadLetter(dlq))...)
			if err != nil {
				t.Fatal(err)
			}
			return runConsumer(t, cons, func(ctx context.Context, m *kgo.Record) error {
				if handled(m.Partition, m.Offset) {
					if err := franz.Produce(ctx, &kgo.Record{Topic: out, Value: fmt.Appendf(nil, "poison %d/%d", m.Partition, m.Offset)}); err != nil {
						return err
					}
					return errors.New("always fails")
				}
				return franz.Produce(ctx, outputOf(out, m))
			})
		},
	})
}
