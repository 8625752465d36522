package confluent_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
	"github.com/inorder/inorder/watermark/metadata"
)

// brokerDone returns the number of offsets the group's committed metadata
// for partition 0 of topic marks done, and the committed offset.
func brokerDone(ctx context.Context, c *kafkatest.Cluster, group, topic string) (int64, int64) {
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		return -1, -1
	}
	cm, ok := com[0]
	if !ok {
		return -1, -1
	}
	set, err := metadata.Decode(cm.Metadata, cm.Offset)
	if err != nil || set == nil {
		return 0, cm.Offset
	}
	return set.Len(), cm.Offset
}

// Issue: a commit whose offset did not move but whose done-set grew
// (metadata only) reaches the broker. librdkafka's Commit sends a stored
// offset only when it is greater than the committed one; were the change
// dropped while recorded as sent, everything handled after the first commit
// behind a slow message would be redelivered after a crash.
func TestMetadataOnlyCommitReachesTheBroker(t *testing.T) {
	const (
		topic = "metaonly"
		group = "metaonly-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 1, 50, 60*time.Second)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithConcurrency(4))...)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	stop := runConsumer(t, cons, func(hctx context.Context, m *kafka.Message) error {
		if m.TopicPartition.Offset == 0 {
			select {
			case <-release:
			case <-hctx.Done():
			}
		}
		return nil
	})
	adaptertest.WaitFor(ctx, t, "offsets 1..49 committed as done above offset 0", func() bool {
		n, off := brokerDone(ctx, c, group, topic)
		return off == 0 && n == 49
	})
	if _, err := c.Produce(ctx, topic, 50, kafkatest.FirstIndex(50)); err != nil {
		t.Fatal(err)
	}
	// Fails (times out) if the metadata-only commits never reach the broker.
	adaptertest.WaitFor(ctx, t, "offsets 1..99 committed as done above offset 0", func() bool {
		n, off := brokerDone(ctx, c, group, topic)
		return off == 0 && n == 99
	})
	close(release)
	adaptertest.WaitFor(ctx, t, "the commit at the log end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Issue: a partition whose committed offset librdkafka could not read
// (a per-partition error in Committed's result) is never started as if it
// had no commit (at the log end with Latest: messages never handled).
// Issue 25: nor does the error, transient, end Run once RequestTimeout has
// passed: the assignment waits, and starts at the commit once it is read.
func TestCommittedPartitionErrorWaitsForTheCommit(t *testing.T) {
	const (
		topic = "committed-err"
		group = "committed-err-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, 20, 60*time.Second)
	commitAt(t, c.Addrs(), group, topic, 1, 3)
	var failing atomic.Bool
	failing.Store(true)
	var failed atomic.Int64
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)),
			confluent.WithStartOffset(confluent.Latest),
			confluent.WithRequestTimeout(500*time.Millisecond),
			confluent.WithRetryBackoff(20*time.Millisecond),
			confluent.WithCommittedHook(func(ktps []kafka.TopicPartition) {
				if !failing.Load() {
					return
				}
				for i := range ktps {
					if ktps[i].Partition == 1 {
						ktps[i].Error = kafka.NewError(kafka.ErrCoordinatorLoadInProgress, "injected", false)
						failed.Add(1)
					}
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	errc := make(chan error, 1)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		errc <- cons.Run(rctx, rec.handle)
	}()
	// Failing past RequestTimeout: about 5 reads in the callback's 500 ms
	// (backoff from 20 ms, doubling), then one read per backoff.
	adaptertest.WaitFor(ctx, t, "the commit read failing past RequestTimeout", func() bool {
		select {
		case err := <-errc:
			t.Fatalf("Run ended while the commit was unreadable: %v", err)
		default:
		}
		return failed.Load() >= 9
	})
	if rec.Distinct() != 0 {
		t.Fatalf("%d messages handled before the commit of %s[1] was read", rec.Distinct(), topic)
	}
	failing.Store(false)
	// Partition 1 resumes at its commit (3); partition 0, without one,
	// starts at its log end.
	adaptertest.WaitFor(ctx, t, "partition 1 handled from its commit", func() bool {
		return rec.Distinct() >= 7
	})
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
	for po := range rec.Seen() {
		if po.P != 1 || po.O < 3 {
			t.Errorf("handled %s[%d] at %d: want only partition 1 from its commit (3)", topic, po.P, po.O)
		}
	}
	if rec.Distinct() != 7 {
		t.Errorf("%d distinct messages handled, want 7 (%s[1] 3..9)", rec.Distinct(), topic)
	}
}

// Issue: a commit is bounded. The broker holds every OffsetCommit without
// answering; the commit gives up when librdkafka does (socket.timeout.ms,
// set from RequestTimeout; kafka.ErrTimedOut, nothing recorded as
// committed) instead of blocking for ever under the commit lock. Once the
// broker answers again, Run stops and commits.
func TestCommitGivesUpAtItsTimeout(t *testing.T) {
	const (
		topic = "commit-held"
		group = "commit-held-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 1, 20, 90*time.Second)
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	var held atomic.Int64
	c.Fake().ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		if kreq.(*kmsg.OffsetCommitRequest).Group == group {
			held.Add(1)
			c.Fake().SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	var timedOut atomic.Bool
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)),
			confluent.WithSessionTimeout(45*time.Second),
			confluent.WithRebalanceTimeout(60*time.Second),
			confluent.WithRequestTimeout(time.Second),
			confluent.WithCommitHook(func(_ []confluent.Offset, errs []error) {
				for _, err := range errs {
					var kerr kafka.Error
					if errors.As(err, &kerr) && kerr.Code() == kafka.ErrTimedOut {
						timedOut.Store(true)
					}
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, func(context.Context, *kafka.Message) error { return nil })
	adaptertest.WaitFor(ctx, t, "a commit held by the broker", func() bool { return held.Load() > 0 })
	// Fails (times out) if the commit waits for the broker for ever.
	adaptertest.WaitFor(ctx, t, "the held commit to give up at librdkafka's timeout", timedOut.Load)
	releaseAll()
	adaptertest.WaitFor(ctx, t, "the commit at the log end once the broker answers", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
