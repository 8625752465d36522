package confluent_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: three members of one group join and leave while 6 partitions are
// consumed, once with the EAGER protocol (range) and once with COOPERATIVE
// (cooperative-sticky): nothing lost, the offsets the broker accepts never
// decrease (checked on every accepted commit and by polling the group), no
// member commits a partition it does not own, and the partitions, paused
// all the time by a small window, are resumed after moving away and back
// (or the test would not finish).
func TestRebalanceThreeMembersJoinAndLeave(t *testing.T) {
	for _, tc := range []struct{ strategy, protocol string }{
		{"range", "EAGER"},
		{"cooperative-sticky", "COOPERATIVE"},
	} {
		t.Run("protocol="+tc.protocol, func(t *testing.T) {
			testRebalance(t, tc.strategy, tc.protocol)
		})
	}
}

func testRebalance(t *testing.T, strat, protocol string) {
	const (
		topic = "rb"
		group = "rb-group"
		n     = 12000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 6, n, 120*time.Second)

	var (
		mu        sync.Mutex
		accepted  = map[int32]int64{}
		refused   int
		wire      int
		rewinds   []string
		notOwned  []string
		protocols = map[string]int{}
		pauses    int
		assigns   int
	)
	// Every OffsetCommit the broker receives, for the count. (Refused ones
	// are on the wire too, so the monotonic check is on what the broker
	// accepted: the commit hook and the group's committed offsets.)
	c.Fake().ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		if req := kreq.(*kmsg.OffsetCommitRequest); req.Group == group {
			mu.Lock()
			wire++
			mu.Unlock()
		}
		return nil, nil, false
	})

	watch := adaptertest.WatchCommits(ctx, t, c, group, topic, "group: ")

	rec := newRecorder()
	handler := func(_ context.Context, m *kafka.Message) error {
		time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond) // ~2000 msgs/s: consumption spans the membership changes
		rec.add(m)
		return nil
	}
	member := 0
	newMember := func() func() error {
		member++
		name := fmt.Sprint("member-", member)
		owned := map[confluent.TopicPartition]bool{}
		cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
			append(fastOpts(testLogger(t)), strategy(strat),
				confluent.WithConcurrency(4), confluent.WithWindow(8),
				confluent.WithAssignHook(func(proto string, tps []confluent.TopicPartition) {
					mu.Lock()
					defer mu.Unlock()
					protocols[proto]++
					assigns++
					for _, tp := range tps {
						owned[tp] = true
					}
				}),
				confluent.WithRevokeHook(func(tps []confluent.TopicPartition, _ bool) {
					mu.Lock()
					defer mu.Unlock()
					for _, tp := range tps {
						delete(owned, tp)
					}
				}),
				confluent.WithCommitHook(func(offs []confluent.Offset, errs []error) {
					mu.Lock()
					defer mu.Unlock()
					for i, o := range offs {
						if errs[i] != nil {
							refused++
							continue
						}
						if !owned[o.TP] {
							notOwned = append(notOwned, fmt.Sprintf("%s committed %v at %d", name, o.TP, o.Offset))
						}
						if o.Offset < accepted[o.TP.Partition] {
							rewinds = append(rewinds, fmt.Sprintf("accepted: %s committed partition %d at %d after %d",
								name, o.TP.Partition, o.Offset, accepted[o.TP.Partition]))
						}
						accepted[o.TP.Partition] = max(accepted[o.TP.Partition], o.Offset)
					}
				}),
				confluent.WithPauseHook(func(_ confluent.TopicPartition, paused bool) {
					if paused {
						mu.Lock()
						pauses++
						mu.Unlock()
					}
				}))...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, handler)
	}
	midStream := 0 // membership changes while messages were still unhandled
	pause := func() {
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		if rec.Distinct() < n {
			midStream++
		}
	}

	// Join and leave: A; A+B; A+B+C; B+C; B+C+A'; C+A'; A' alone to the end.
	a := newMember()
	pause()
	b := newMember()
	pause()
	cm := newMember()
	pause()
	if err := a(); err != nil {
		t.Fatalf("member A: %v", err)
	}
	pause()
	a2 := newMember()
	pause()
	if err := b(); err != nil {
		t.Fatalf("member B: %v", err)
	}
	pause()
	if err := cm(); err != nil {
		t.Fatalf("member C: %v", err)
	}
	adaptertest.WaitFor(ctx, t, "everything handled and committed", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && rec.Distinct() == n
	})
	if err := a2(); err != nil {
		t.Fatalf("member A': %v", err)
	}
	groupRewinds := watch.Stop()

	if got := rec.Distinct(); got != n {
		t.Errorf("handled %d distinct messages, want %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	rewinds = append(rewinds, groupRewinds...)
	if len(rewinds) > 0 {
		t.Errorf("committed offsets went down: %v", rewinds[:min(5, len(rewinds))])
	}
	if len(notOwned) > 0 {
		t.Errorf("commits for partitions not owned: %v", notOwned[:min(5, len(notOwned))])
	}
	if len(protocols) != 1 || protocols[protocol] == 0 {
		t.Errorf("assignments by protocol %v, want only %s", protocols, protocol)
	}
	if assigns < 6 {
		t.Errorf("only %d assignments: the members did not rebalance as planned", assigns)
	}
	if midStream < 3 {
		t.Errorf("only %d of 6 membership changes happened while consuming", midStream)
	}
	if wire == 0 {
		t.Error("no commit seen on the wire")
	}
	if pauses == 0 {
		t.Error("no partition was ever paused: the window did not fill")
	}
	t.Logf("%d assignments, %d commit requests (%d partition commits refused by the broker), %d handled (%d duplicates), %d pauses, %d changes mid-stream",
		assigns, wire, refused, rec.Count(), rec.Count()-rec.Distinct(), pauses, midStream)
}
