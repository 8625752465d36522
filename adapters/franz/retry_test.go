package franz_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// errDeadLetterDown is what the test's dead letter returns while it is
// unavailable.
var errDeadLetterDown = errors.New("dead letter unavailable")

// deadLetters is a test's dead letter: it records each call in the ledger
// and the messages it took with the handler's error.
type deadLetters struct {
	l    *adaptertest.RetryLedger
	down atomic.Bool // fail every call
	mu   sync.Mutex
	errs map[adaptertest.PO][]error // handler errors of the calls that succeeded
}

func (d *deadLetters) take(_ context.Context, r *kgo.Record, err error) error {
	return d.l.DeadLetter(r.Partition, r.Offset, func() error {
		if d.down.Load() {
			return errDeadLetterDown
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		po := adaptertest.PO{P: r.Partition, O: r.Offset}
		d.errs[po] = append(d.errs[po], err)
		return nil
	})
}

// check fails the test unless the dead letter took exactly the Poison and
// Perm messages of msgs, each at least once, with the handler's error
// (Perm: seen through Permanent).
func (d *deadLetters) check(t *testing.T, msgs []adaptertest.RetryMsg) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range msgs {
		errs := d.errs[adaptertest.PO{P: m.Partition, O: m.Offset}]
		var want error
		switch m.Kind {
		case adaptertest.Poison:
			want = adaptertest.PoisonError(m.Partition, m.Offset)
		case adaptertest.Perm:
			want = adaptertest.PermanentError(m.Partition, m.Offset)
		}
		if (want == nil) != (len(errs) == 0) {
			t.Errorf("%s at %d/%d: dead-lettered %d times", m.Value, m.Partition, m.Offset, len(errs))
		}
		for _, err := range errs {
			if want != nil && err.Error() != want.Error() {
				t.Errorf("%s at %d/%d: dead-lettered with %v, want %v", m.Value, m.Partition, m.Offset, err, want)
			}
		}
	}
}

// retryOpts are stableOpts (a single member counting exact handler calls
// must not be fenced by a loaded machine) with ByKey ordering, fast
// retries and d as the dead letter.
func retryOpts(t *testing.T, d *deadLetters, maxAttempts int) []franz.Option {
	return append(stableOpts(testLogger(t)),
		franz.WithOrdering(franz.ByKey),
		franz.WithRetry(franz.Retry{MaxAttempts: maxAttempts, Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}),
		franz.WithDeadLetterFunc(d.take))
}

// topicOpts are stableOpts with ByKey ordering, fast retries and the
// dead-letter topic dlq.
func topicOpts(t *testing.T, dlq string, maxAttempts int) []franz.Option {
	return append(stableOpts(testLogger(t)),
		franz.WithRequestTimeout(5*time.Second),
		franz.WithOrdering(franz.ByKey),
		franz.WithRetry(franz.Retry{MaxAttempts: maxAttempts, Backoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}),
		franz.WithDeadLetter(dlq))
}

// retryHandler runs l's handler for each record.
func retryHandler(l *adaptertest.RetryLedger) func(context.Context, *kgo.Record) error {
	return func(_ context.Context, r *kgo.Record) error {
		return l.Handle(r.Partition, r.Offset, r.Value, franz.Permanent)
	}
}

// sumStats adds up the retry counters of every partition.
func sumStats(ss []franz.PartitionStats) (retries, dead, deadFails int64) {
	for _, s := range ss {
		retries += s.Retries
		dead += s.DeadLettered
		deadFails += s.DeadLetterFailures
	}
	return
}

func TestRetryByKeyDeadLetterFuncTakesPoisonAndPermanentInKeyOrder(t *testing.T) {
	const src, group, parts, maxAttempts = "orders", "billing", 4, 3
	c := kafkatest.Start(t, kafkatest.WithTopic(src, parts))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	msgs := adaptertest.ProduceRetryTopic(ctx, t, c, src, 2000, 47, adaptertest.MixedKind)
	l := adaptertest.NewRetryLedger()
	d := &deadLetters{l: l, errs: map[adaptertest.PO][]error{}}
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{src}, retryOpts(t, d, maxAttempts)...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, retryHandler(l))
	adaptertest.WaitFor(ctx, t, "every commit at the log end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, src)
		return ok
	})
	retries, dead, _ := sumStats(cons.Stats())
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	poison, perm := adaptertest.Count(msgs, adaptertest.Poison), adaptertest.Count(msgs, adaptertest.Perm)
	transient := adaptertest.Count(msgs, adaptertest.Transient)
	t.Logf("%d messages: %d poison, %d permanent, %d transient; stats: %d retries, %d dead-lettered",
		len(msgs), poison, perm, transient, retries, dead)
	l.CheckRetries(t, msgs, maxAttempts, true)
	d.check(t, msgs)
	if got, want := l.Succeeded(msgs), len(msgs)-poison-perm; got != want {
		t.Errorf("%d messages handled successfully, want %d", got, want)
	}
	if want := int64(2 * (poison + transient)); retries != want {
		t.Errorf("Stats: %d retries, want %d", retries, want)
	}
	if want := int64(poison + perm); dead != want {
		t.Errorf("Stats: %d dead-lettered, want %d", dead, want)
	}
}

func TestRetryHoldsTheCommitWhileTheDeadLetterFuncFails(t *testing.T) {
	const src, group, parts, maxAttempts = "orders", "billing", 2, 3
	c := kafkatest.Start(t, kafkatest.WithTopic(src, parts))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	msgs := adaptertest.ProduceRetryTopic(ctx, t, c, src, 200, 9, adaptertest.MixedKind)
	firstPoison := map[int32]int64{}
	for _, m := range msgs {
		if _, ok := firstPoison[m.Partition]; !ok && (m.Kind == adaptertest.Poison || m.Kind == adaptertest.Perm) {
			firstPoison[m.Partition] = m.Offset
		}
	}
	if len(firstPoison) != parts {
		t.Fatalf("poison in partitions %v, want all %d", firstPoison, parts)
	}
	l := adaptertest.NewRetryLedger()
	d := &deadLetters{l: l, errs: map[adaptertest.PO][]error{}}
	d.down.Store(true)
	// Quiet: every failed dead letter is logged.
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{src},
		append(retryOpts(t, d, maxAttempts), franz.WithLogger(adaptertest.DiscardLogger()))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, retryHandler(l))
	free, held := adaptertest.SplitAtPoison(msgs)
	adaptertest.WaitFor(ctx, t, "every message before its key's first poison handled, failed dead letters", func() bool {
		_, _, fails := sumStats(cons.Stats())
		return l.Succeeded(free) == len(free) && fails >= 4*parts
	})
	// The commits reach the first poison message of each partition, and
	// stay there while more dead letters fail.
	adaptertest.WaitFor(ctx, t, "commits at the first poison messages", func() bool {
		com, err := c.Committed(ctx, group, src)
		return err == nil && len(com) == parts && com[0].Offset == firstPoison[0] && com[1].Offset == firstPoison[1]
	})
	_, _, fails := sumStats(cons.Stats())
	adaptertest.WaitFor(ctx, t, "more failed dead letters", func() bool {
		_, _, f := sumStats(cons.Stats())
		return f >= fails+8
	})
	com, err := c.Committed(ctx, group, src)
	if err != nil {
		t.Fatal(err)
	}
	for p, first := range firstPoison {
		if com[p].Offset > first {
			t.Errorf("partition %d committed %d while its first poison message %d is not dead-lettered", p, com[p].Offset, first)
		}
	}
	for _, s := range cons.Stats() {
		if s.CommitPoint > firstPoison[s.Partition] {
			t.Errorf("partition %d: commit point %d past the first poison message %d", s.Partition, s.CommitPoint, firstPoison[s.Partition])
		}
	}
	if n := l.Handled(held); n != 0 {
		t.Errorf("%d messages handled after a poison message of their key that is not dead-lettered", n)
	}
	t.Logf("committed while the dead letter fails: %v (first poison %v)", com, firstPoison)
	d.down.Store(false)
	adaptertest.WaitFor(ctx, t, "every commit at the log end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, src)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	l.CheckRetries(t, msgs, maxAttempts, true)
	d.check(t, msgs)
}

// retryConsumer runs this adapter for the shared retry tests.
func retryConsumer() adaptertest.RetryConsumer {
	return adaptertest.RetryConsumer{
		Start: func(t *testing.T, addrs []string, group, src, dlq string, maxAttempts int, quiet bool, l *adaptertest.RetryLedger) (func() adaptertest.RetryStats, func() error) {
			opts := topicOpts(t, dlq, maxAttempts)
			if quiet {
				opts = append(opts, franz.WithLogger(adaptertest.DiscardLogger()))
			}
			cons, err := franz.NewConsumer(addrs, group, []string{src}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			stop := runConsumer(t, cons, retryHandler(l))
			return func() adaptertest.RetryStats { return retryStats(cons.Stats()) }, stop
		},
	}
}

// retryStats reads what the retry tests need of Stats.
func retryStats(ss []franz.PartitionStats) adaptertest.RetryStats {
	st := adaptertest.RetryStats{CommitPoints: make(map[int32]int64, len(ss))}
	for _, s := range ss {
		st.Retries += s.Retries
		st.Dead += s.DeadLettered
		st.DeadFails += s.DeadLetterFailures
		st.CommitPoints[s.Partition] = s.CommitPoint
	}
	return st
}

func TestRetryByKeyDeadLettersPoisonAndPermanentInKeyOrder(t *testing.T) {
	adaptertest.CheckRetryByKeyDeadLetters(t, retryConsumer())
}

func TestRetryHoldsTheCommitWhileTheDeadLetterTopicIsMissing(t *testing.T) {
	adaptertest.CheckRetryHoldsTheCommitWhileTheDeadLetterTopicIsMissing(t, retryConsumer())
}
