package adaptertest

// The retry and dead-letter tests every adapter runs, through RetryConsumer.

import (
	"context"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// RetryConsumer is what the shared retry tests need of an adapter.
type RetryConsumer struct {
	// Start runs a consumer of topic src in group: ordering ByKey,
	// Retry{MaxAttempts: maxAttempts, Backoff: 5ms, MaxBackoff: 50ms},
	// dead letters to the topic dlq, a session long enough that a loaded
	// machine does not fence a member counting exact handler calls, its
	// log discarded if quiet. Its handler is l.Handle with the adapter's
	// Permanent. stats reads the consumer's Stats; stop ends the consumer
	// and returns Run's error.
	Start func(t *testing.T, addrs []string, group, src, dlq string, maxAttempts int, quiet bool, l *RetryLedger) (stats func() RetryStats, stop func() error)
	// Leaks, if not nil, is called before the consumer starts; the check
	// it returns runs after stop and fails t if goroutines were left.
	Leaks func() func(*testing.T)
}

// RetryStats is what the retry tests read of a consumer's Stats: the sums
// of its partitions' Retries, DeadLettered and DeadLetterFailures, and each
// partition's commit point.
type RetryStats struct {
	Retries, Dead, DeadFails int64
	CommitPoints             map[int32]int64
}

// CheckRetryByKeyDeadLetters: 4 partitions, 47 keys, 2,000 messages of the
// usual mix, ByKey, 3 attempts. Every message is handled as its kind says
// (attempts, order per key through the retries), the dead-letter topic
// holds exactly the poison and permanent messages with their headers, the
// stats count the retries and dead letters, and every commit reaches the
// log end.
func CheckRetryByKeyDeadLetters(t *testing.T, rc RetryConsumer) {
	t.Helper()
	const src, dlq, group, parts, maxAttempts = "orders", "orders-dlt", "billing", 4, 3
	c := kafkatest.Start(t, kafkatest.WithTopic(src, parts), kafkatest.WithTopic(dlq, parts))
	ctx := Timeout(t, 90*time.Second)
	msgs := ProduceRetryTopic(ctx, t, c, src, 2000, 47, MixedKind)
	var leakCheck func(*testing.T)
	if rc.Leaks != nil {
		leakCheck = rc.Leaks()
	}
	l := NewRetryLedger()
	stats, stop := rc.Start(t, c.Addrs(), group, src, dlq, maxAttempts, false, l)
	WaitFor(ctx, t, "every commit at the log end", func() bool {
		ok, _ := CommittedAtEnd(ctx, c, group, src)
		return ok
	})
	st := stats()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if leakCheck != nil {
		leakCheck(t)
	}
	l.CheckRetries(t, msgs, maxAttempts, false)
	CheckRetryCounts(t, l, msgs, st)
	n := CheckRetryDeadLetters(ctx, t, c, dlq, src, group, msgs, maxAttempts)
	t.Logf("%d dead-letter records", n)
}

// CheckRetryHoldsTheCommitWhileTheDeadLetterTopicIsMissing: while the
// dead-letter topic is missing, the commits stay at each partition's first
// poison message and later messages of that key are not handled; once it
// is created, everything is dead-lettered and committed to the log end.
func CheckRetryHoldsTheCommitWhileTheDeadLetterTopicIsMissing(t *testing.T, rc RetryConsumer) {
	t.Helper()
	const src, dlq, group, parts, maxAttempts = "orders", "late-dlt", "billing", 2, 3
	c := kafkatest.Start(t, kafkatest.WithTopic(src, parts))
	ctx := Timeout(t, 90*time.Second)
	msgs := ProduceRetryTopic(ctx, t, c, src, 200, 9, MixedKind)
	firstPoison := FirstPoison(t, msgs, parts)
	l := NewRetryLedger()
	// Quiet: every failed dead letter is logged.
	stats, stop := rc.Start(t, c.Addrs(), group, src, dlq, maxAttempts, true, l)
	com := CheckHeldAtFirstPoison(ctx, t, c, group, src, l, msgs, firstPoison, stats)
	t.Logf("committed while the topic is missing: %v (first poison %v)", com, firstPoison)
	if err := c.CreateTopic(ctx, dlq, parts); err != nil {
		t.Fatal(err)
	}
	WaitFor(ctx, t, "every commit at the log end", func() bool {
		ok, _ := CommittedAtEnd(ctx, c, group, src)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	l.CheckRetries(t, msgs, maxAttempts, false)
	CheckRetryDeadLetters(ctx, t, c, dlq, src, group, msgs, maxAttempts)
}

// CheckRetryCounts checks that l saw every message of msgs but the poison
// and permanent ones succeed, and that st (read once every commit reached
// the log end) counts two retries per poison and transient message and a
// dead letter per poison and permanent one (3 attempts).
func CheckRetryCounts(t *testing.T, l *RetryLedger, msgs []RetryMsg, st RetryStats) {
	t.Helper()
	poison, perm := Count(msgs, Poison), Count(msgs, Perm)
	transient := Count(msgs, Transient)
	t.Logf("%d messages: %d poison, %d permanent, %d transient; stats: %d retries, %d dead-lettered",
		len(msgs), poison, perm, transient, st.Retries, st.Dead)
	if got, want := l.Succeeded(msgs), len(msgs)-poison-perm; got != want {
		t.Errorf("%d messages handled successfully, want %d", got, want)
	}
	if want := int64(2 * (poison + transient)); st.Retries != want {
		t.Errorf("Stats: %d retries, want %d", st.Retries, want)
	}
	if want := int64(poison + perm); st.Dead != want {
		t.Errorf("Stats: %d dead-lettered, want %d", st.Dead, want)
	}
}

// FirstPoison returns each partition's first poison or permanent message
// of msgs, and fails t unless all parts partitions have one.
func FirstPoison(t *testing.T, msgs []RetryMsg, parts int) map[int32]int64 {
	t.Helper()
	first := map[int32]int64{}
	for _, m := range msgs {
		if _, ok := first[m.Partition]; !ok && (m.Kind == Poison || m.Kind == Perm) {
			first[m.Partition] = m.Offset
		}
	}
	if len(first) != parts {
		t.Fatalf("poison in partitions %v, want all %d", first, parts)
	}
	return first
}

// CheckHeldAtFirstPoison checks a consumer of src in group whose dead
// letters fail (l its ledger, stats its Stats): every message before its
// key's first poison message is handled; the commits reach the first
// poison message of each partition (firstPoison, two partitions) and stay
// there while more dead letters fail, as do the commit points; no message
// after a poison message of its key is handled. It returns the commits.
func CheckHeldAtFirstPoison(ctx context.Context, t *testing.T, c *kafkatest.Cluster, group, src string, l *RetryLedger, msgs []RetryMsg, firstPoison map[int32]int64, stats func() RetryStats) map[int32]kafkatest.Commit {
	t.Helper()
	parts := int64(len(firstPoison))
	free, held := SplitAtPoison(msgs)
	WaitFor(ctx, t, "every message before its key's first poison handled, failed dead letters", func() bool {
		return l.Succeeded(free) == len(free) && stats().DeadFails >= 4*parts
	})
	WaitFor(ctx, t, "commits at the first poison messages", func() bool {
		com, err := c.Committed(ctx, group, src)
		return err == nil && int64(len(com)) == parts && com[0].Offset == firstPoison[0] && com[1].Offset == firstPoison[1]
	})
	fails := stats().DeadFails
	WaitFor(ctx, t, "more failed dead letters", func() bool { return stats().DeadFails >= fails+8 })
	com, err := c.Committed(ctx, group, src)
	if err != nil {
		t.Fatal(err)
	}
	for p, first := range firstPoison {
		if com[p].Offset > first {
			t.Errorf("partition %d committed %d while its first poison message %d is not dead-lettered", p, com[p].Offset, first)
		}
	}
	for p, cp := range stats().CommitPoints {
		if cp > firstPoison[p] {
			t.Errorf("partition %d: commit point %d past the first poison message %d", p, cp, firstPoison[p])
		}
	}
	if n := l.Handled(held); n != 0 {
		t.Errorf("%d messages handled after a poison message of their key that is not dead-lettered", n)
	}
	return com
}
