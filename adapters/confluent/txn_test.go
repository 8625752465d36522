package confluent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// outputOf is the output message of input message m (adaptertest.OutputValue).
func outputOf(topic string, m *kafka.Message) *kafka.Message {
	return &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key: m.Key, Value: adaptertest.OutputValue(m.TopicPartition.Partition, int64(m.TopicPartition.Offset))}
}

// Issue 23: each input's output becomes visible exactly once, also when
// handler calls fail and are retried (their outputs discarded), finish out
// of order, and the consumer is stopped and started again (EAGER, then
// COOPERATIVE); Produce outside a handler call, or after it returned, is
// refused.
func TestTxnOutputsExactlyOnceRetriesDiscardedProduceAfterReturnRefused(t *testing.T) {
	const n = 1000
	c, ctx := adaptertest.StartProduced(t, "ctxn-in", 4, n, 90*time.Second)
	if err := c.CreateTopic(ctx, "ctxn-out", 3); err != nil {
		t.Fatal(err)
	}
	group := adaptertest.NextGroup("ctxn")
	out := "ctxn-out"
	if err := confluent.Produce(ctx, outputOf(out, &kafka.Message{})); !errors.Is(err, confluent.ErrNotTransactional) {
		t.Errorf("Produce outside a handler: %v, want ErrNotTransactional", err)
	}
	var (
		failed  sync.Map
		stashMu sync.Mutex
		stashed []context.Context
		handled atomic.Int64
	)
	handler := func(ctx context.Context, m *kafka.Message) error {
		handled.Add(1)
		o := int64(m.TopicPartition.Offset)
		key := fmt.Sprintf("%d/%d", m.TopicPartition.Partition, o)
		if o%97 == 0 {
			stashMu.Lock()
			stashed = append(stashed, ctx)
			stashMu.Unlock()
		}
		if o%10 == 3 {
			if _, again := failed.LoadOrStore(key, true); !again {
				poison := outputOf(out, m)
				poison.Value = []byte("poison " + key)
				if err := confluent.Produce(ctx, poison); err != nil {
					return err
				}
				return errors.New("first attempt fails")
			}
		}
		if o%50 == 7 {
			time.Sleep(30 * time.Millisecond)
		}
		return confluent.Produce(ctx, outputOf(out, m))
	}
	run := func(strat string, until func(*confluent.Consumer) bool) {
		cons, err := confluent.NewConsumer(c.Addrs(), group, []string{"ctxn-in"},
			append(stableOpts(testLogger(t)), strategy(strat), confluent.WithTransactionalID("ctxn-1"),
				confluent.WithConcurrency(16),
				confluent.WithRetry(confluent.Retry{MaxAttempts: 3, Backoff: time.Millisecond, MaxBackoff: time.Millisecond}))...)
		if err != nil {
			t.Fatal(err)
		}
		stop := runConsumer(t, cons, handler)
		adaptertest.WaitFor(ctx, t, "the consumer to get far enough", func() bool { return until(cons) })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	run("range", func(*confluent.Consumer) bool { return handled.Load() >= n/2 })
	run("cooperative-sticky", func(cons *confluent.Consumer) bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, "ctxn-in")
		return ok && len(cons.Stats()) > 0 // joined: a Run that never joined is an error
	})
	ends, err := c.LogEnd(ctx, "ctxn-in")
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckOutputsOnce(ctx, t, c, out, ends)
	stashMu.Lock()
	defer stashMu.Unlock()
	if len(stashed) == 0 {
		t.Fatal("no handler context stashed")
	}
	for _, hctx := range stashed {
		if err := confluent.Produce(hctx, outputOf(out, &kafka.Message{})); !errors.Is(err, confluent.ErrHandlerReturned) {
			t.Fatalf("Produce after the handler returned: %v, want ErrHandlerReturned", err)
		}
	}
}

// Issue 23: WithTransactionalID refuses an empty id, and RunBatch.
func TestTxnOptionsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []confluent.Option
		want string
	}{
		{"empty id", []confluent.Option{confluent.WithTransactionalID("")}, "transactional id is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := confluent.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"}, tc.opts...)
			if !errors.Is(err, confluent.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewConsumer: %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
	cons, err := confluent.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"t"}, confluent.WithTransactionalID("x"))
	if err != nil {
		t.Fatal(err)
	}
	err = cons.RunBatch(context.Background(), func(context.Context, []*kafka.Message) error { return nil })
	if !errors.Is(err, confluent.ErrInvalidConfig) {
		t.Fatalf("RunBatch with WithTransactionalID: %v, want ErrInvalidConfig", err)
	}
}

// Issue 23: a dead-lettered message's dead-letter record goes in the
// transaction that commits it as done (adaptertest.CheckTxnDeadLetters).
func TestTxnDeadLetterRecordInTheTransaction(t *testing.T) {
	adaptertest.CheckTxnDeadLetters(t, adaptertest.TxnDeadLetterConsumer{
		Start: func(t *testing.T, addrs []string, group, id, src, out, dlq string, handled func(int32, int64) bool) func() error {
			cons, err := confluent.NewConsumer(addrs, group, []string{src},
				append(stableOpts(testLogger(t)), confluent.WithTransactionalID(id), confluent.WithDeadLetter(dlq))...)
			if err != nil {
				t.Fatal(err)
			}
			return runConsumer(t, cons, func(ctx context.Context, m *kafka.Message) error {
				p, o := m.TopicPartition.Partition, int64(m.TopicPartition.Offset)
				if handled(p, o) {
					poison := outputOf(out, m)
					poison.Value = fmt.Appendf(nil, "poison %d/%d", p, o)
					if err := confluent.Produce(ctx, poison); err != nil {
						return err
					}
					return errors.New("always fails")
				}
				return confluent.Produce(ctx, outputOf(out, m))
			})
		},
	})
}

// envTxnChild switches TestMain into the exactly-once crash child (its
// value: the brokers).
const envTxnChild = "INORDER_CONFLUENT_TXN_CHILD"

// txnCrashChild consumes ctxc-in exactly once, one output per input to
// ctxc-out, with the same transactional id in every incarnation (the parent
// starts one only after the previous one is dead). It prints "handling"
// once its first handler ran and exits 0 on SIGINT.
func txnCrashChild(brokers string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cons, err := confluent.NewConsumer([]string{brokers}, "ctxc-group", []string{"ctxc-in"},
		append(fastOpts(log), confluent.WithConcurrency(16), confluent.WithWindow(3000),
			confluent.WithTransactionalID("ctxc-member"))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	fmt.Println("ready")
	var first sync.Once
	err = cons.Run(ctx, func(ctx context.Context, m *kafka.Message) error {
		first.Do(func() { fmt.Println("handling") })
		d := time.Duration(rand.IntN(2000)) * time.Microsecond
		if rand.IntN(200) == 0 {
			d = 200 * time.Millisecond // a slow one: the messages after it are committed in the metadata
		}
		time.Sleep(d)
		return confluent.Produce(ctx, outputOf("ctxc-out", m))
	})
	if err != nil && !errors.Is(err, confluent.ErrNeverJoined) {
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	return 0
}

// lines reads r's lines into a channel, closed at EOF.
func lines(r *bufio.Reader) <-chan string {
	ch := make(chan string, 2)
	go func() {
		defer close(ch)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			ch <- line
		}
	}()
	return ch
}

// Issue 23: the exactly-once consumer runs in a child process SIGKILLed at
// random moments (mid-transaction too) and restarted with the same
// transactional id: the output topic, read committed, holds each input's
// output exactly once, and the commits reach the log end.
func TestTxnCrashRestartOutputsExactlyOnce(t *testing.T) {
	const (
		n     = 10000
		kills = 4
	)
	c, ctx := adaptertest.StartProduced(t, "ctxc-in", 4, n, 150*time.Second)
	if err := c.CreateTopic(ctx, "ctxc-out", 4); err != nil {
		t.Fatal(err)
	}
	for i := range kills {
		cmd, stdout := adaptertest.StartChild(t, envTxnChild+"="+c.Addrs()[0])
		ls := lines(stdout)
		handling, done := false, false
		for !handling && !done {
			select {
			case line, ok := <-ls:
				if !ok {
					t.Fatalf("child %d exited before handling", i)
				}
				handling = line == "handling\n"
			case <-time.After(100 * time.Millisecond):
				done, _ = adaptertest.CommittedAtEnd(ctx, c, "ctxc-group", "ctxc-in")
			case <-ctx.Done():
				t.Fatalf("child %d did not start handling", i)
			}
		}
		if handling {
			time.Sleep(time.Duration(100+rand.IntN(1000)) * time.Millisecond)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		if done {
			t.Logf("everything was committed after %d kills", i)
			break
		}
	}
	last, out := adaptertest.StartChild(t, envTxnChild+"="+c.Addrs()[0])
	if line, err := out.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("last child did not start: %q %v", line, err)
	}
	adaptertest.WaitFor(ctx, t, "the last child to commit everything", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, "ctxc-group", "ctxc-in")
		return ok
	})
	_ = last.Process.Signal(os.Interrupt)
	if err := last.Wait(); err != nil {
		t.Fatalf("last child: %v", err)
	}
	ends, err := c.LogEnd(ctx, "ctxc-in")
	if err != nil {
		t.Fatal(err)
	}
	adaptertest.CheckOutputsOnce(ctx, t, c, "ctxc-out", ends)
}
