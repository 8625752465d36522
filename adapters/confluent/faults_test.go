package confluent_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: the reads of an assignment (committed offsets, log start and end)
// that fail for a transient reason are retried with backoff: the member
// consumes everything, and Run does not stop.
func TestTransientAssignReadErrorsAreRetried(t *testing.T) {
	const (
		topic = "read-retry"
		group = "read-retry-group"
		n     = 100
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
	var committedReads, watermarkReads atomic.Int64
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithRetryBackoff(10*time.Millisecond),
			confluent.WithReadHook(func(what string, _ confluent.TopicPartition) error {
				switch {
				case what == "committed" && committedReads.Add(1) <= 2:
					return kafka.NewError(kafka.ErrTimedOut, "injected", false)
				case what == "watermarks" && watermarkReads.Add(1) <= 2:
					return kafka.NewError(kafka.ErrNotLeaderForPartition, "injected", false)
				}
				return nil
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	handleAll(ctx, t, c, cons, group, topic, n)
	if committedReads.Load() < 3 || watermarkReads.Load() < 3 {
		t.Fatalf("reads: %d committed, %d watermarks; want the failed ones retried", committedReads.Load(), watermarkReads.Load())
	}
}

// Issue: an authorization error at an assignment stops Run at once with
// ErrAssign, wrapping librdkafka's error so that errors.As finds it.
func TestAuthorizationErrorAtAssignStopsRun(t *testing.T) {
	const (
		topic = "read-denied"
		group = "read-denied-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 1, 10, 60*time.Second)
	var reads atomic.Int64
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(slogDiscard()),
			confluent.WithReadHook(func(what string, _ confluent.TopicPartition) error {
				reads.Add(1)
				return kafka.NewError(kafka.ErrGroupAuthorizationFailed, "injected", false)
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cons.Run(ctx, func(context.Context, *kafka.Message) error { return nil }) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		t.Fatal("Run did not stop")
	}
	var kerr kafka.Error
	if !errors.Is(err, confluent.ErrAssign) || !errors.As(err, &kerr) || kerr.Code() != kafka.ErrGroupAuthorizationFailed {
		t.Fatalf("Run = %v, want ErrAssign wrapping a kafka.Error GROUP_AUTHORIZATION_FAILED", err)
	}
	if reads.Load() != 1 {
		t.Fatalf("%d reads, want 1: an authorization error is not retried", reads.Load())
	}
}

// Issue: a broker refusing commits (REBALANCE_IN_PROGRESS, several times
// in a row) loses nothing: the commits are made again, the group ends
// committed at the log end, every message handled once.
func TestRefusedCommitsAreRetried(t *testing.T) {
	const (
		topic = "commit-refused"
		group = "commit-refused-group"
		n     = 200
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
	refused := c.Fake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: group,
		Err: kerr.RebalanceInProgress, Count: 6})
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(slogDiscard()), confluent.WithRetryBackoff(20*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, rec.handle)
	adaptertest.WaitFor(ctx, t, "the commit at the log end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if refused.Hits() != 6 {
		t.Fatalf("the broker refused %d commits, want 6", refused.Hits())
	}
	if rec.Distinct() != n || rec.Dups() != 0 {
		t.Fatalf("%d handled, %d duplicates, want %d and 0", rec.Distinct(), rec.Dups(), n)
	}
}

// Issue: a topic deleted while consumed does not stop Run: its partitions
// are revoked, the other subscribed topic goes on being consumed.
func TestTopicDeletedWhileConsumed(t *testing.T) {
	const (
		gone  = "deleted"
		kept  = "kept"
		group = "deleted-group"
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(gone, 2), kafkatest.WithTopic(kept, 2))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	for _, topic := range []string{gone, kept} {
		if _, err := c.Produce(ctx, topic, 50); err != nil {
			t.Fatal(err)
		}
	}
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{gone, kept},
		append(stableOpts(testLogger(t)),
			confluent.WithConfigMap(kafka.ConfigMap{"topic.metadata.refresh.interval.ms": 500}))...)
	if err != nil {
		t.Fatal(err)
	}
	var keptHandled atomic.Int64
	stop := runConsumer(t, cons, func(_ context.Context, m *kafka.Message) error {
		if *m.TopicPartition.Topic == kept {
			keptHandled.Add(1)
		}
		return nil
	})
	adaptertest.WaitFor(ctx, t, "both topics committed at their end", func() bool {
		a, _ := adaptertest.CommittedAtEnd(ctx, c, group, gone)
		b, _ := adaptertest.CommittedAtEnd(ctx, c, group, kept)
		return a && b
	})
	if err := c.Fake().DeleteTopic(gone); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "the deleted topic's partitions revoked", func() bool {
		for _, s := range cons.Stats() {
			if s.Topic == gone {
				return false
			}
		}
		return len(cons.Stats()) == 2
	})
	if _, err := c.Produce(ctx, kept, 50, kafkatest.FirstIndex(50)); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "the kept topic consumed to its end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, kept)
		return ok && keptHandled.Load() >= 100
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// Issue: partitions added to a topic while it is consumed are consumed
// after the next rebalance (librdkafka sees them at its metadata refresh).
func TestPartitionsAddedWhileConsumed(t *testing.T) {
	const (
		topic = "grown"
		group = "grown-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, 40, 90*time.Second)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)),
			confluent.WithConfigMap(kafka.ConfigMap{"topic.metadata.refresh.interval.ms": 500}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, rec.handle)
	adaptertest.WaitFor(ctx, t, "the first partitions consumed", func() bool { return rec.Distinct() == 40 })
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": strings.Join(c.Addrs(), ","), "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	res, err := admin.CreatePartitions(ctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: 4}})
	if err == nil && res[0].Error.Code() != kafka.ErrNoError {
		err = res[0].Error
	}
	if err != nil {
		t.Fatal(err)
	}
	// 10 more to each of the 4 partitions (the cluster's own producer
	// would not know the new partitions yet).
	prod, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": strings.Join(c.Addrs(), ","), "log_level": 3})
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	reports := make(chan kafka.Event, 40)
	for i := range 40 {
		tp := kafka.TopicPartition{Topic: new(topic), Partition: int32(i % 4)}
		if err := prod.Produce(&kafka.Message{TopicPartition: tp, Value: []byte(strconv.Itoa(40 + i))}, reports); err != nil {
			t.Fatal(err)
		}
	}
	for range 40 {
		select {
		case ev := <-reports:
			if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatalf("produce to %v: %v", m.TopicPartition, m.TopicPartition.Error)
			}
		case <-ctx.Done():
			t.Fatal("produce: no delivery report")
		}
	}
	adaptertest.WaitFor(ctx, t, "the new partitions assigned and everything consumed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && len(cons.Stats()) == 4 && rec.Distinct() == 80
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// Issue: a SASL authentication failure (wrong password) stops Run with a
// clear error wrapping librdkafka's, instead of retrying silently for ever.
// The same setup with the right password consumes, so the failure is the
// password's.
func TestSASLWrongPasswordStopsRun(t *testing.T) {
	const (
		topic = "sasl"
		user  = "alice"
		pass  = "right"
	)
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", user, pass), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	ctx := adaptertest.Timeout(t, 60*time.Second)
	sasl := func(password string) confluent.Option {
		return confluent.WithConfigMap(kafka.ConfigMap{"security.protocol": "SASL_PLAINTEXT",
			"sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": password})
	}

	cons, err := confluent.NewConsumer(fake.ListenAddrs(), "sasl-group", []string{topic},
		append(stableOpts(slogDiscard()), sasl("wrong"))...)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cons.Run(ctx, func(context.Context, *kafka.Message) error { return nil }) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		t.Fatal("Run kept retrying a wrong password")
	}
	var kerr kafka.Error
	if !errors.Is(err, confluent.ErrClient) || !errors.As(err, &kerr) {
		t.Fatalf("Run = %v, want ErrClient wrapping a kafka.Error", err)
	}
	if !strings.Contains(err.Error(), "SASL authentication") {
		t.Fatalf("Run = %v, want an error naming the SASL authentication", err)
	}

	good, err := confluent.NewConsumer(fake.ListenAddrs(), "sasl-group", []string{topic},
		append(stableOpts(testLogger(t)), sasl(pass))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, good, func(context.Context, *kafka.Message) error { return nil })
	adaptertest.WaitFor(ctx, t, "the right password to get the partition assigned", func() bool { return len(good.Stats()) == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// Issue: a normal consume (join, consume, commit, close) logs librdkafka's
// routine chatter at Debug only, and nothing at all at Warn or above.
func TestNormalConsumeLogsNothingAboveDebug(t *testing.T) {
	const (
		topic = "quiet"
		group = "quiet-group"
		n     = 200
	)
	c, ctx := adaptertest.StartProduced(t, topic, 3, n, 60*time.Second)
	logs := newCapture()
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(slog.New(logs)),
			// librdkafka's telemetry, group and fetch chatter, all of it.
			confluent.WithConfigMap(kafka.ConfigMap{"debug": "cgrp,topic,fetch,telemetry"}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, rec.handle)
	adaptertest.WaitFor(ctx, t, "everything handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && rec.Distinct() == n
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if len(logs.records(func(r logRecord) bool { return strings.HasPrefix(r.msg, "librdkafka: ") })) == 0 {
		t.Fatal("no librdkafka line captured at all: the test sees nothing")
	}
	for _, r := range logs.records(func(r logRecord) bool {
		return r.level > slog.LevelDebug && (strings.HasPrefix(r.msg, "librdkafka: ") || r.level >= slog.LevelWarn)
	}) {
		t.Errorf("%v %s %v", r.level, r.msg, r.attrs)
	}
}

// Issue 25: a partition whose leader epoch moved on after the member last
// saw its metadata (a leader election while another member owned it) is
// assigned: librdkafka's admin ListOffsets answers FENCED_LEADER_EPOCH until
// its metadata cache is refreshed, which it does not do by itself for
// minutes. The read of the log start and end refreshes it and goes on;
// Run does not stop with ErrAssign.
func TestAssignAfterLeaderEpochMoved(t *testing.T) {
	const (
		topic = "epoch-moved"
		group = "epoch-moved-group"
		n     = 100
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
	var watermarkReads atomic.Int64
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithRetryBackoff(10*time.Millisecond),
			confluent.WithReadHook(func(what string, _ confluent.TopicPartition) error {
				if what == "watermarks" && watermarkReads.Add(1) == 1 {
					// The member knows the partitions' metadata (it
					// subscribed); the leaders are elected anew twice
					// before it reads their offsets.
					c.Fake().ShufflePartitionLeaders()
					c.Fake().ShufflePartitionLeaders()
				}
				return nil
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	handleAll(ctx, t, c, cons, group, topic, n)
	if watermarkReads.Load() < 2 {
		t.Fatalf("%d reads of the log bounds; want the fenced one retried", watermarkReads.Load())
	}
}

// Issue 25: the connection of the log-bounds read at an assignment is cut
// once: librdkafka's admin ListOffsets then answers "no offset" (-1001)
// with no error. That answer is retried, not taken as the log start (which
// made the engine refuse the assignment and Run stop with ErrAssign).
func TestAssignWhenListOffsetsIsCut(t *testing.T) {
	const (
		topic = "offsets-cut"
		group = "offsets-cut-group"
		n     = 100
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
	var watermarkReads atomic.Int64
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithRetryBackoff(10*time.Millisecond),
			confluent.WithReadHook(func(what string, _ confluent.TopicPartition) error {
				if what == "watermarks" && watermarkReads.Add(1) == 1 {
					c.Fake().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
						return nil, errors.New("connection cut"), true
					})
				}
				return nil
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	handleAll(ctx, t, c, cons, group, topic, n)
	if watermarkReads.Load() < 2 {
		t.Fatalf("%d reads of the log bounds; want the cut one retried", watermarkReads.Load())
	}
}

// Issue 25: the log start and end of an assignment cannot be read (a
// transient error that lasts: here injected; seen in the chaos command
// after a broker came back): partitions that all have a commit start at
// their commits, unchecked, after a quarter of RequestTimeout, and Run
// goes on instead of stopping with ErrAssign.
func TestAssignWithUnreadableLogBoundsStartsAtCommits(t *testing.T) {
	const (
		topic = "bounds-unreadable"
		group = "bounds-unreadable-group"
		n     = 100
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
	commitAt(t, c.Addrs(), group, topic, 0, 10)
	commitAt(t, c.Addrs(), group, topic, 1, 20)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithRetryBackoff(10*time.Millisecond),
			confluent.WithRequestTimeout(2*time.Second),
			confluent.WithReadHook(func(what string, _ confluent.TopicPartition) error {
				if what == "watermarks" {
					return kafka.NewError(kafka.ErrNotLeaderForPartition, "injected", false)
				}
				return nil
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, rec.handle)
	adaptertest.WaitFor(ctx, t, "every message above the commits handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && rec.Distinct() == n-10-20
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// Issue 25 (chaos, broker faults): the log bounds of newly assigned
// partitions without a commit stay unreadable for longer than
// RequestTimeout (every ListOffsets connection is cut, so librdkafka's
// admin ListOffsets answers "no offset, no error" or times out), then the
// broker heals. Run does not end with ErrAssign: the partitions wait,
// paused, and start by the start policy once their bounds are read; every
// message is handled and the commits reach the log end. One Warn names the
// waiting partitions, however many reads fail.
func TestAssignWaitsOutUnreadableLogBounds(t *testing.T) {
	for _, strat := range []string{"range", "cooperative-sticky"} {
		t.Run(strat, func(t *testing.T) {
			var (
				topic = "bounds-wait-" + strat
				group = topic + "-group"
			)
			const n = 100
			c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
			var cut atomic.Bool
			cut.Store(true)
			var cuts atomic.Int64
			c.Fake().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
				c.Fake().KeepControl()
				if !cut.Load() {
					return nil, nil, false
				}
				cuts.Add(1)
				return nil, errors.New("connection cut"), true
			})
			logs := newCapture()
			var assigned atomic.Int64
			cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
				append(stableOpts(slog.New(logs)), strategy(strat),
					confluent.WithRetryBackoff(20*time.Millisecond),
					confluent.WithRequestTimeout(500*time.Millisecond),
					confluent.WithAssignHook(func(_ string, tps []confluent.TopicPartition) {
						assigned.Add(int64(len(tps)))
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
			// Cut for several RequestTimeouts (failing reads counted, not
			// timed), with Run still going.
			adaptertest.WaitFor(ctx, t, "log-bound reads failing past RequestTimeout", func() bool {
				select {
				case err := <-errc:
					t.Fatalf("Run ended while the bounds were unreadable: %v", err)
				default:
				}
				return len(logs.records(func(r logRecord) bool {
					return strings.Contains(r.msg, "still unreadable")
				})) >= 3
			})
			if got := assigned.Load(); got != 0 || rec.Distinct() != 0 {
				t.Fatalf("%d partitions started, %d messages handled before their start was read", got, rec.Distinct())
			}
			cut.Store(false)
			adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
				ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
				return ok && rec.Distinct() == n
			})
			cancel()
			if err := <-errc; err != nil {
				t.Fatalf("Run = %v", err)
			}
			warns := logs.records(func(r logRecord) bool {
				return r.level == slog.LevelWarn && strings.Contains(r.msg, "start of assigned partitions unreadable")
			})
			if len(warns) != 1 {
				t.Errorf("%d Warn lines for the waiting partitions, want 1: %v", len(warns), warns)
			}
		})
	}
}

// Issue 25: partitions waiting for their start (log bounds unreadable) are
// revoked when a second member joins: the first member forgets them (it
// handed out and committed nothing for them), Run goes on in both, and
// once the broker heals each partition is consumed by its owner from the
// start policy: every message handled, commits at the log end.
func TestRevokeWhileWaitingForTheStart(t *testing.T) {
	for _, strat := range []string{"range", "cooperative-sticky"} {
		t.Run(strat, func(t *testing.T) {
			var (
				topic = "revoke-waiting-" + strat
				group = topic + "-group"
			)
			const n = 200
			c, ctx := adaptertest.StartProduced(t, topic, 4, n, 60*time.Second)
			var cut atomic.Bool
			cut.Store(true)
			c.Fake().ControlKey(int16(kmsg.ListOffsets), func(kmsg.Request) (kmsg.Response, error, bool) {
				c.Fake().KeepControl()
				if !cut.Load() {
					return nil, nil, false
				}
				return nil, errors.New("connection cut"), true
			})
			rec := newRecorder()
			var mu sync.Mutex
			var revokedWaiting int // partitions revoked from the first member before it handled anything
			logsA := newCapture()
			start := func(first bool) func() error {
				log := testLogger(t)
				var hooks []confluent.Option
				if first {
					log = slog.New(logsA)
					hooks = append(hooks, confluent.WithRevokeHook(func(tps []confluent.TopicPartition, _ bool) {
						mu.Lock()
						if rec.Distinct() == 0 {
							revokedWaiting += len(tps)
						}
						mu.Unlock()
					}))
				}
				opts := append(stableOpts(log), strategy(strat),
					confluent.WithRetryBackoff(20*time.Millisecond),
					confluent.WithRequestTimeout(500*time.Millisecond))
				cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, append(opts, hooks...)...)
				if err != nil {
					t.Fatal(err)
				}
				return runConsumer(t, cons, rec.handle)
			}
			stopA := start(true)
			adaptertest.WaitFor(ctx, t, "the first member's partitions waiting for their start", func() bool {
				return len(logsA.records(func(r logRecord) bool {
					return strings.Contains(r.msg, "start of assigned partitions unreadable")
				})) > 0
			})
			stopB := start(false)
			adaptertest.WaitFor(ctx, t, "waiting partitions revoked from the first member", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return revokedWaiting > 0
			})
			if rec.Distinct() != 0 {
				t.Fatalf("%d messages handled while the log bounds were unreadable", rec.Distinct())
			}
			cut.Store(false)
			adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
				ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
				return ok && rec.Distinct() == n
			})
			if err := stopB(); err != nil {
				t.Errorf("second member: Run = %v", err)
			}
			if err := stopA(); err != nil {
				t.Errorf("first member: Run = %v", err)
			}
		})
	}
}

// A partition waiting for its start (pending.go) is read again on a
// goroutine of its own: while that read hangs, the poll loop goes on, and
// the member's other partitions are consumed. The member consumes the
// topic's two partitions; a third is added, and its start read fails (then
// hangs, held by the test) until the test lets it go. Messages produced to
// the first two meanwhile must be handled before the read is let go (on a
// poll loop that ran the read itself they waited for it).
func TestPendingReadDoesNotHoldThePollLoop(t *testing.T) {
	const (
		topic = "pending-async"
		group = topic + "-group"
		n     = 40
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 90*time.Second)
	const (
		pass = iota
		fail
		hang
	)
	var mode atomic.Int32
	hung := make(chan struct{}) // closed by the first read that hangs
	release := make(chan struct{})
	var hungOnce sync.Once
	logs := newCapture()
	var handled [3]atomic.Int64
	x, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(slog.New(logs)), strategy("cooperative-sticky"),
			confluent.WithRetryBackoff(20*time.Millisecond),
			confluent.WithRequestTimeout(500*time.Millisecond),
			confluent.WithConfigMap(kafka.ConfigMap{"topic.metadata.refresh.interval.ms": 200}),
			confluent.WithReadHook(func(string, confluent.TopicPartition) error {
				switch mode.Load() {
				case fail:
					return errors.New("injected: coordinator not reachable")
				case hang:
					hungOnce.Do(func() { close(hung) })
					<-release
				}
				return nil
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, x, func(_ context.Context, m *kafka.Message) error {
		handled[m.TopicPartition.Partition].Add(1)
		return nil
	})
	letGo := sync.OnceFunc(func() { close(release) })
	t.Cleanup(letGo) // before the consumer's (cleanups run last first)
	adaptertest.WaitFor(ctx, t, "both partitions consumed", func() bool {
		return handled[0].Load()+handled[1].Load() == n
	})
	mode.Store(fail)
	if err := c.AddPartitions(ctx, topic, 3); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "the new partition assigned, its start unreadable", func() bool {
		return len(logs.records(func(r logRecord) bool {
			return strings.Contains(r.msg, "start of assigned partitions unreadable")
		})) > 0
	})
	mode.Store(hang)
	select {
	case <-hung:
	case <-ctx.Done():
		t.Fatal("no read of the waiting partition's start")
	}
	if _, err := c.Produce(ctx, topic, 3*n, kafkatest.FirstIndex(3*n)); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second) // a hang bound, not a speed test
	adaptertest.WaitFor(wctx, t, "the first two partitions consumed while the new one's start read hangs", func() bool {
		return handled[0].Load()+handled[1].Load() == n+2*n
	})
	cancel()
	if got := handled[2].Load(); got != 0 {
		t.Fatalf("%d messages of the new partition handled before its start was read", got)
	}
	mode.Store(pass)
	letGo()
	adaptertest.WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && handled[2].Load() == n
	})
	if err := stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
