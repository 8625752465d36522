package confluent_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue 25: a periodic Commit that librdkafka keeps (waiting for a
// coordinator, a request timing out) holds the engine's commit lock, and a
// Commit cannot be cancelled. A revoke used to wait for it without a bound:
// the rebalance callback held the poll loop past max.poll.interval.ms,
// librdkafka left the group and the member lost every partition, the ones
// it kept too (chaos -faults, confluent-cooperative: thousands of
// duplicates per event). Here member A's periodic commit is held 9s
// (longer than the rebalance timeout, 6s) when member B joins and A
// revokes half of its partitions cooperatively: A's revoke ends within its
// RevokeTimeout, A keeps its other partitions (no lost assignment), and
// the group finishes the topic.
func TestRevokeBehindAStuckCommitKeepsTheMember(t *testing.T) {
	const (
		topic = "stuckcommit"
		group = "stuckcommit-group"
		n     = 6000
		hold  = 9 * time.Second
	)
	c, ctx := adaptertest.StartProduced(t, topic, 4, n, 90*time.Second)
	rec := newRecorder()
	handler := func(_ context.Context, m *kafka.Message) error {
		time.Sleep(2 * time.Millisecond)
		rec.add(m)
		return nil
	}
	var (
		mu      sync.Mutex
		lostA   int
		revokes []time.Duration // A's revokes (not lost): how long each took
		started time.Time
		armed   atomic.Bool // A's next commit call is held
		held    atomic.Bool
	)
	free := make(chan struct{})
	optsA := append(fastOpts(testLogger(t)), strategy("cooperative-sticky"), confluent.WithConcurrency(4),
		confluent.WithCallHook(func(call string, enter bool) {
			if call == "commit" && enter && armed.CompareAndSwap(true, false) {
				held.Store(true)
				select {
				case <-free:
				case <-time.After(hold):
				}
			}
		}),
		confluent.WithRevokeStartHook(func(_ []confluent.TopicPartition, lost bool) {
			mu.Lock()
			defer mu.Unlock()
			if lost {
				lostA++
			}
			started = time.Now()
		}),
		confluent.WithRevokeHook(func(_ []confluent.TopicPartition, lost bool) {
			mu.Lock()
			defer mu.Unlock()
			if !lost {
				revokes = append(revokes, time.Since(started))
			}
		}))
	a, err := confluent.NewConsumer(c.Addrs(), group, []string{topic}, optsA...)
	if err != nil {
		t.Fatal(err)
	}
	stopA := runConsumer(t, a, handler)
	defer close(free)
	adaptertest.WaitFor(ctx, t, "A consuming", func() bool { return rec.Count() >= 300 })
	armed.Store(true)
	adaptertest.WaitFor(ctx, t, "A's commit held", held.Load)
	b, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), strategy("cooperative-sticky"), confluent.WithConcurrency(4))...)
	if err != nil {
		t.Fatal(err)
	}
	stopB := runConsumer(t, b, handler)
	adaptertest.WaitFor(ctx, t, "A's revoke", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(revokes) > 0 || lostA > 0
	})
	adaptertest.WaitFor(ctx, t, "everything handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && rec.Distinct() == n
	})
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if lostA > 0 {
		t.Errorf("A lost its assignment %d times behind its held commit: the revoke held the poll loop past max.poll.interval.ms", lostA)
	}
	t.Logf("A's revokes took %v; %d handled for %d records", revokes, rec.Count(), n)
}
