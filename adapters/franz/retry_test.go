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
	st := retryStats(cons.Stats())
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	l.CheckRetries(t, msgs, maxAttempts, true)
	d.check(t, msgs)
	adaptertest.CheckRetryCounts(t, l, msgs, st)
}

func TestRetryHoldsTheCommitWhileTheDeadLetterFuncFails(t *testing.T) {
	const src, group, parts, maxAttempts = "orders", "billing", 2, 3
	c := kafkatest.Start(t, kafkatest.WithTopic(src, parts))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	msgs := adaptertest.ProduceRetryTopic(ctx, t, c, src, 200, 9, adaptertest.MixedKind)
	firstPoison := adaptertest.FirstPoison(t, msgs, parts)
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
	com := adaptertest.CheckHeldAtFirstPoison(ctx, t, c, group, src, l, msgs, firstPoison,
		func() adaptertest.RetryStats { return retryStats(cons.Stats()) })
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
