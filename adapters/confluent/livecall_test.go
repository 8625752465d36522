package confluent_test

// Tests that Close never destroys a librdkafka handle under a live call: a
// commit still inside librdkafka, and a dead-letter produce of a handler
// that Run abandoned.

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
)

// liveCalls counts the librdkafka calls the Consumer's call hook reports
// as running, and what was running when a handle was destroyed. Safe for
// concurrent use.
type liveCalls struct {
	mu      sync.Mutex
	running map[string]int // by call ("commit", "deadletter")
	entered map[string]int
	// at holds, for each destruction ("close", "deadletter-close"), the
	// calls running at that moment.
	at map[string]map[string]int
	// since is when the running calls of each kind started (the first);
	// longest the longest call of each kind (for the log).
	since   map[string]time.Time
	longest map[string]time.Duration
}

func newLiveCalls() *liveCalls {
	return &liveCalls{running: map[string]int{}, entered: map[string]int{}, at: map[string]map[string]int{},
		since: map[string]time.Time{}, longest: map[string]time.Duration{}}
}

func (l *liveCalls) hook(call string, enter bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch call {
	case "close", "deadletter-close":
		snap := map[string]int{}
		for k, v := range l.running {
			snap[k] = v
		}
		l.at[call] = snap
	default:
		if enter {
			if l.running[call] == 0 {
				l.since[call] = time.Now()
			}
			l.running[call]++
			l.entered[call]++
		} else {
			l.running[call]--
			l.longest[call] = max(l.longest[call], time.Since(l.since[call]))
		}
	}
}

// runningNow returns how many call are running.
func (l *liveCalls) runningNow(call string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running[call]
}

// runningAt returns the calls running when handle was destroyed, and
// whether it was.
func (l *liveCalls) runningAt(handle string) (map[string]int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.at[handle]
	return m, ok
}

// holdRequests makes the broker hold every request of key that match
// until the test ends, and returns how many it held so far.
func holdRequests(t *testing.T, c *kafkatest.Cluster, key kmsg.Key, match func(kmsg.Request) bool) *atomic.Int64 {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var held atomic.Int64
	c.Fake().ControlKey(int16(key), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		if match(kreq) {
			held.Add(1)
			c.Fake().SleepControl(func() { <-release })
		}
		return nil, nil, false
	})
	return &held
}

// Issue: Close destroyed the librdkafka consumer while a commit was still
// inside librdkafka (the commit ran on a goroutine of its own, abandoned
// when its context ended; Run waited RequestTimeout for it, then closed the
// handle anyway). The broker holds every OffsetCommit without answering
// for the whole test: each commit returns only when librdkafka gives up on
// it (socket.timeout.ms, from RequestTimeout). Close, called while a commit
// is inside librdkafka, must return only after that call and every later
// one returned, and the consumer handle is destroyed with none running.
func TestCloseWaitsForACommitInsideLibrdkafka(t *testing.T) {
	const (
		topic = "live-commit"
		group = "live-commit-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 1, 20, 120*time.Second)
	held := holdRequests(t, c, kmsg.OffsetCommit, func(kreq kmsg.Request) bool {
		return kreq.(*kmsg.OffsetCommitRequest).Group == group
	})
	calls := newLiveCalls()
	var timedOut atomic.Bool
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)),
			// The held OffsetCommits share librdkafka's coordinator
			// connection with the heartbeats: a long session keeps the
			// member in the group meanwhile.
			confluent.WithSessionTimeout(45*time.Second),
			confluent.WithRebalanceTimeout(60*time.Second),
			confluent.WithRequestTimeout(time.Second),
			confluent.WithCallHook(calls.hook),
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
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(context.Background(), func(context.Context, *kafka.Message) error { return nil })
	}()
	adaptertest.WaitFor(ctx, t, "a commit held by the broker, inside librdkafka", func() bool {
		return held.Load() > 0 && calls.runningNow("commit") > 0
	})
	closed := make(chan struct{})
	go func() {
		_ = cons.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		dumpGoroutines()
		t.Fatal("Close did not return")
	}
	if err := <-errc; err != nil {
		t.Errorf("Run = %v", err)
	}
	at, ok := calls.runningAt("close")
	switch {
	case !ok:
		t.Fatal("the consumer handle was never destroyed")
	case at["commit"] != 0:
		t.Fatalf("the consumer handle was destroyed with %d commit calls inside librdkafka", at["commit"])
	}
	if n := calls.runningNow("commit"); n != 0 {
		t.Fatalf("%d commit calls still inside librdkafka after Close returned", n)
	}
	// The held commits ended at librdkafka's own timeout, not abandoned.
	if !timedOut.Load() {
		t.Error("no commit ended with librdkafka's timeout (kafka.ErrTimedOut)")
	}
	calls.mu.Lock()
	t.Logf("%d commit calls, the longest %v (socket.timeout.ms %v)", calls.entered["commit"],
		calls.longest["commit"].Round(time.Millisecond), cons.ConfigValue("socket.timeout.ms"))
	calls.mu.Unlock()
}

// Issue: Run closed the dead-letter producer as soon as the engine stopped,
// even when a handler the engine abandoned (it outlived RevokeTimeout) was
// still inside a dead-letter produce, so librdkafka's producer could be
// destroyed under that call. The broker holds the producer's metadata
// request for the dead-letter topic: the produce is inside librdkafka
// (GetMetadata) until its RequestTimeout. Close must destroy the producer
// only after that call returned.
func TestCloseWaitsForADeadLetterCallInsideLibrdkafka(t *testing.T) {
	const (
		topic = "live-dl"
		dlq   = "live-dl-dlq"
		group = "live-dl-group"
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, 1), kafkatest.WithTopic(dlq, 1))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	if _, err := c.Produce(ctx, topic, 5); err != nil {
		t.Fatal(err)
	}
	held := holdRequests(t, c, kmsg.Metadata, func(kreq kmsg.Request) bool {
		ts := kreq.(*kmsg.MetadataRequest).Topics
		return len(ts) == 1 && ts[0].Topic != nil && *ts[0].Topic == dlq
	})
	calls := newLiveCalls()
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)),
			confluent.WithRevokeTimeout(500*time.Millisecond),
			// The produce waits for its metadata this long: well past the
			// drain and the engine's stop (each RevokeTimeout).
			confluent.WithRequestTimeout(5*time.Second),
			confluent.WithDeadLetter(dlq),
			confluent.WithCallHook(calls.hook))...)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- cons.Run(context.Background(), func(_ context.Context, m *kafka.Message) error {
			if m.TopicPartition.Offset == 0 {
				return errors.New("poison")
			}
			return nil
		})
	}()
	adaptertest.WaitFor(ctx, t, "a dead-letter produce inside librdkafka, its metadata held", func() bool {
		return held.Load() > 0 && calls.runningNow("deadletter") > 0
	})
	closed := make(chan struct{})
	go func() {
		_ = cons.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		dumpGoroutines()
		t.Fatal("Close did not return")
	}
	if err := <-errc; err != nil {
		t.Errorf("Run = %v", err)
	}
	at, ok := calls.runningAt("deadletter-close")
	switch {
	case !ok:
		t.Fatal("the dead-letter producer was never closed")
	case at["deadletter"] != 0:
		t.Fatalf("the dead-letter producer was closed with %d produce calls inside librdkafka", at["deadletter"])
	}
	// Nothing was dead-lettered: offset 0 is not committed.
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := com[0].Offset; got > 0 {
		t.Fatalf("committed %d, past the message whose dead letter never landed", got)
	}
}
