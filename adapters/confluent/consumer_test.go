package confluent_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
	"github.com/inorder/inorder/watermark/metadata"
)

// Issue: every message handled, final commits at the log end; a restart of
// the group hands nothing out again.
func TestEveryMessageHandledAndFinalCommitsAtLogEnd(t *testing.T) {
	const (
		topic = "basic"
		group = "basic-group"
		n     = 5000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 4, n, 90*time.Second)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), confluent.WithConcurrency(16))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m *kafka.Message) error {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // finish out of order
		rec.add(m)
		return nil
	})
	adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return rec.Distinct() == n && ok
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	values := rec.Values()
	for v := range n {
		if values[strconv.Itoa(v)] == 0 {
			t.Fatalf("value %d never handled", v)
		}
	}
	if ok, why := adaptertest.CommittedAtEnd(ctx, c, group, topic); !ok {
		t.Fatal(why)
	}
	// The final commits carry no done set above them (nothing is above the
	// log end), in our format or empty.
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, cm := range com {
		set, err := metadata.Decode(cm.Metadata, cm.Offset)
		if err != nil || (set != nil && set.Len() != 0) {
			t.Fatalf("partition %d: final metadata %q decodes to %v, %v", p, cm.Metadata, set, err)
		}
	}

	// A second run of the group finds nothing to do.
	again, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	stop2 := runConsumer(t, again, func(context.Context, *kafka.Message) error {
		handled.Add(1)
		return nil
	})
	// Every partition tracked to its log end with nothing pending: a wrong
	// start below the commit would have had its messages tracked and
	// handled (counted) by then.
	adaptertest.WaitFor(ctx, t, "the second run to fetch every partition to its end", func() bool {
		ends, err := c.LogEnd(ctx, topic)
		if err != nil {
			return false
		}
		st := again.Stats()
		if len(st) != len(ends) {
			return false
		}
		for _, s := range st {
			if s.High != ends[s.Partition] || s.Pending != 0 {
				return false
			}
		}
		return true
	})
	if err := stop2(); err != nil {
		t.Fatal(err)
	}
	if h := handled.Load(); h != 0 {
		t.Fatalf("second run handled %d messages, want 0", h)
	}
}

// Issue: a transactional topic (committed and aborted transactions, with
// their markers) is read committed to its end: aborted records never reach
// the handler and the commits reach the log end, past the trailing markers.
func TestTransactionalTopicReadCommittedToItsEnd(t *testing.T) {
	const (
		topic = "txn"
		group = "txn-group"
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, 3))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	txns := []kafkatest.Txn{{Records: 300}, {Records: 200, Abort: true}, {Records: 300}, {Records: 150, Abort: true}}
	visible, err := c.ProduceTxn(ctx, topic, txns)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, v := range visible {
		want += int(v)
	}
	if want != 600 {
		t.Fatalf("ProduceTxn made %d records visible, want 600", want)
	}
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), confluent.WithReadCommitted(true))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, rec.handle)
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if rec.Count() != want || rec.Distinct() != want {
		t.Fatalf("handled %d (%d distinct), want %d committed records", rec.Count(), rec.Distinct(), want)
	}
	// Committed transactions hold values 0..299 and 500..799.
	for v := range rec.Values() {
		i, _ := strconv.Atoi(v)
		if (i >= 300 && i < 500) || i >= 800 {
			t.Fatalf("aborted record %d was handled", i)
		}
	}
}

// Issue: a window so small that pausing happens constantly: every message is
// handled exactly once, never more than Window messages of a partition are
// in flight, and the commits reach the log end.
func TestTinyWindowPausesConstantly(t *testing.T) {
	const (
		topic  = "tiny"
		group  = "tiny-group"
		n      = 1000
		window = 3
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, 2))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	// Many small record batches: with one batch per fetch, the partitions
	// run dry, resume, fetch and fill the window again all the time.
	for i := 0; i < n; i += 20 {
		if _, err := c.Produce(ctx, topic, 20, kafkatest.FirstIndex(i)); err != nil {
			t.Fatal(err)
		}
	}
	var pauses atomic.Int64
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithConcurrency(16), confluent.WithWindow(window),
			confluent.WithFetchMaxBytes(1), // one record batch per fetch: pause, resume, fetch, pause, ...
			confluent.WithPauseHook(func(TopicPartition confluent.TopicPartition, paused bool) {
				if paused {
					pauses.Add(1)
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	var mu sync.Mutex
	inflight := map[int32]map[int64]bool{0: {}, 1: {}}
	var spanErr atomic.Value
	stop := runConsumer(t, cons, func(_ context.Context, m *kafka.Message) error {
		p, o := m.TopicPartition.Partition, int64(m.TopicPartition.Offset)
		mu.Lock()
		inflight[p][o] = true
		lo := o
		for x := range inflight[p] {
			lo = min(lo, x)
		}
		if o-lo >= window {
			spanErr.Store("partition " + strconv.Itoa(int(p)) + ": offsets " + strconv.FormatInt(lo, 10) +
				" and " + strconv.FormatInt(o, 10) + " in flight together, window " + strconv.Itoa(window))
		}
		mu.Unlock()
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		rec.add(m)
		mu.Lock()
		delete(inflight[p], o)
		mu.Unlock()
		return nil
	})
	adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return rec.Distinct() == n && ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := spanErr.Load(); s != nil {
		t.Fatal(s)
	}
	if rec.Count() != n {
		t.Fatalf("handled %d messages for %d distinct offsets: redelivered within one run", rec.Count(), n)
	}
	if pauses.Load() < 5 {
		t.Fatalf("partitions paused %d times, want pausing all the time with window %d", pauses.Load(), window)
	}
	t.Logf("%d pauses", pauses.Load())
}

// A partition's messages gathered between Poll and Offer are counted by
// neither librdkafka's queue nor the engine's budget: the batch is offered
// once its bytes reach a sixteenth of MaxBufferedBytes, not only at 256
// messages.
func TestBatchBoundedByBytes(t *testing.T) {
	const (
		topic  = "batchbytes"
		group  = "batchbytes-g"
		n      = 300
		size   = 16 << 10
		budget = 2 << 20 // a batch offered at 128 KiB: 8 messages
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, 1))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	if _, err := c.Produce(ctx, topic, n, kafkatest.ValueSize(size)); err != nil {
		t.Fatal(err)
	}
	var most, mostBytes, offers atomic.Int64
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithMaxBufferedBytes(budget),
			confluent.WithOfferHook(func(_ confluent.TopicPartition, msgs, bytes int) {
				offers.Add(1)
				for v := most.Load(); int64(msgs) > v && !most.CompareAndSwap(v, int64(msgs)); v = most.Load() {
				}
				for v := mostBytes.Load(); int64(bytes) > v && !mostBytes.CompareAndSwap(v, int64(bytes)); v = mostBytes.Load() {
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	handleAll(ctx, t, c, cons, group, topic, n)
	t.Logf("%d offers, at most %d messages, %d bytes", offers.Load(), most.Load(), mostBytes.Load())
	if limit := int64(budget/16 + size); mostBytes.Load() > limit {
		t.Fatalf("a batch of %d bytes (%d messages) was gathered before it was offered, want at most %d (a sixteenth of the budget, plus one message)",
			mostBytes.Load(), most.Load(), limit)
	}
}
