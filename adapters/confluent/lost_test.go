package confluent_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: AssignmentLost: close without committing. The poll goroutine
// stalled once past max.poll.interval.ms (a test hook sleeps in it) makes
// librdkafka leave the group; the revoke that follows reports the
// assignment lost, and the Consumer drops the partitions without
// committing them (another member may own them). It then rejoins and
// finishes the topic.
func TestLostAssignmentIsClosedWithoutCommit(t *testing.T) {
	const (
		topic = "lost"
		group = "lost-group"
		n     = 3000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 90*time.Second)
	var (
		mu          sync.Mutex
		lostRevokes int
		lostCommits int // commits attempted for lost partitions, refused
		acceptedAft int // commits accepted for a partition between its loss and its next assignment
		isLost      = map[confluent.TopicPartition]bool{}
		rec         = newRecorder()
		handled     atomic.Int64
		stalled     atomic.Bool
	)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		confluent.WithSessionTimeout(time.Second),
		confluent.WithHeartbeatInterval(100*time.Millisecond),
		confluent.WithRebalanceTimeout(1500*time.Millisecond),
		confluent.WithRevokeTimeout(time.Second),
		confluent.WithCommitInterval(50*time.Millisecond),
		confluent.WithFetchMaxWait(50*time.Millisecond),
		confluent.WithLogger(slogDiscard()),
		confluent.WithConcurrency(1),
		confluent.WithPollHook(func(*kafka.Consumer) {
			if handled.Load() >= 20 && stalled.CompareAndSwap(false, true) {
				time.Sleep(3 * time.Second) // > max.poll.interval.ms
			}
		}),
		confluent.WithAssignHook(func(_ string, tps []confluent.TopicPartition) {
			mu.Lock()
			for _, tp := range tps {
				delete(isLost, tp)
			}
			mu.Unlock()
		}),
		// Marked lost as the revoke starts, so that a commit the revoke
		// itself would let through is counted.
		confluent.WithRevokeStartHook(func(tps []confluent.TopicPartition, lost bool) {
			if !lost {
				return
			}
			mu.Lock()
			lostRevokes++
			for _, tp := range tps {
				isLost[tp] = true
			}
			mu.Unlock()
		}),
		confluent.WithCommitHook(func(offs []confluent.Offset, errs []error) {
			mu.Lock()
			defer mu.Unlock()
			for i, o := range offs {
				switch {
				case errs[i] != nil && strings.Contains(errs[i].Error(), "assignment lost"):
					lostCommits++
				case errs[i] == nil && isLost[o.TP]:
					acceptedAft++
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, cons, func(_ context.Context, m *kafka.Message) error {
		rec.add(m)
		handled.Add(1)
		return nil
	})
	adaptertest.WaitFor(ctx, t, "everything handled and committed after the rejoin", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok && rec.Distinct() == n
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if lostRevokes == 0 {
		t.Fatal("librdkafka never reported the assignment lost")
	}
	if acceptedAft != 0 {
		t.Fatalf("%d commits accepted for lost partitions", acceptedAft)
	}
	t.Logf("%d lost revokes, %d commits refused as lost, %d handled for %d messages", lostRevokes, lostCommits, rec.Count(), n)
}
