package franz_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: a lost assignment (the coordinator answers a heartbeat with
// UNKNOWN_MEMBER_ID: kgo calls OnPartitionsLost) is dropped without a
// commit: from the loss until the partitions are assigned again, no
// OffsetCommit for them reaches the broker. The Consumer rejoins and
// finishes the topic.
func TestLostAssignmentIsDroppedWithoutCommit(t *testing.T) {
	const (
		topic = "lost"
		group = "lost-group"
		n     = 4000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 90*time.Second)
	var (
		mu       sync.Mutex
		lost     = map[int32]bool{} // partitions lost and not assigned again
		losses   int
		stray    []string
		armed    atomic.Bool // the next heartbeat fails
		failed   atomic.Int64
		handled  atomic.Int64
		revoked  int
		assigned int
	)
	c.Fake().ControlKey(int16(kmsg.Heartbeat), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.HeartbeatRequest)
		if req.Group != group || !armed.CompareAndSwap(true, false) {
			return nil, nil, false
		}
		failed.Add(1)
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = 25 // UNKNOWN_MEMBER_ID
		return resp, nil, true
	})
	c.Fake().ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.OffsetCommitRequest)
		if req.Group != group {
			return nil, nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		for _, tt := range req.Topics {
			for _, p := range tt.Partitions {
				if lost[p.Partition] {
					stray = append(stray, fmt.Sprintf("member %s generation %d committed lost partition %d at %d",
						req.MemberID, req.Generation, p.Partition, p.Offset))
				}
			}
		}
		return nil, nil, false
	})
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), franz.WithConcurrency(4),
			franz.WithAssignHook(func(_ string, _ int32, tps []franz.TopicPartition) {
				mu.Lock()
				defer mu.Unlock()
				assigned++
				for _, tp := range tps {
					delete(lost, tp.Partition)
				}
			}),
			// Marked lost as the loss starts, so that a commit the loss
			// itself would let through is caught.
			franz.WithRevokeStartHook(func(tps []franz.TopicPartition, isLost bool) {
				mu.Lock()
				defer mu.Unlock()
				if !isLost {
					revoked++
					return
				}
				losses++
				for _, tp := range tps {
					lost[tp.Partition] = true
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m *kgo.Record) error {
		if handled.Add(1) == n/4 {
			armed.Store(true) // lose the assignment a quarter of the way
		}
		time.Sleep(200 * time.Microsecond)
		rec.add(m)
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
	if failed.Load() == 0 || losses == 0 {
		t.Fatalf("%d heartbeats failed, %d losses reported: the loss did not happen", failed.Load(), losses)
	}
	if len(stray) > 0 {
		t.Errorf("%d commits for lost partitions: %v", len(stray), stray[:min(5, len(stray))])
	}
	t.Logf("%d losses, %d revokes, %d assignments, %d handled for %d records", losses, revoked, assigned, rec.Count(), n)
}

// Issue 25: kgo treats a failed heartbeat, JoinGroup or SyncGroup as a lost
// session: the partitions are dropped without a commit and, rejoining,
// the member usually gets the same ones back. The records it had handled
// are not handled again (before, a member redid all its work since its
// last commit: 2,498 duplicates of one partition in a chaos -faults run).
// Here no commit lands before the loss, every record is handled before it,
// and the same partitions come back: nothing is handled twice, and the
// commit reaches the log end.
func TestLostAndBackDoesNotRedoItsWork(t *testing.T) {
	const (
		topic = "lostback"
		group = "lostback-group"
		n     = 2000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
	var (
		armed     atomic.Bool // the next heartbeat fails
		refusing  atomic.Bool // commits are refused
		losses    atomic.Int64
		reassigns atomic.Int64
	)
	refusing.Store(true)
	c.Fake().ControlKey(int16(kmsg.Heartbeat), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.HeartbeatRequest)
		if req.Group != group || !armed.CompareAndSwap(true, false) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = 25 // UNKNOWN_MEMBER_ID
		return resp, nil, true
	})
	c.Fake().ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.OffsetCommitRequest)
		if req.Group != group || !refusing.Load() {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = 14 // COORDINATOR_LOAD_IN_PROGRESS
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), franz.WithConcurrency(4),
			franz.WithAssignHook(func(string, int32, []franz.TopicPartition) {
				if losses.Load() > 0 {
					reassigns.Add(1)
					refusing.Store(false)
				}
			}),
			franz.WithRevokeStartHook(func(_ []franz.TopicPartition, isLost bool) {
				if isLost {
					losses.Add(1)
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, rec.handle)
	adaptertest.WaitFor(ctx, t, "every record handled", func() bool { return rec.Distinct() == n })
	armed.Store(true)
	adaptertest.WaitFor(ctx, t, "the partitions lost and assigned again", func() bool { return reassigns.Load() > 0 })
	adaptertest.WaitFor(ctx, t, "the commit at the log end after the return", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := rec.Count(); got != n {
		t.Fatalf("%d records handled for %d after the loss and the return (%d losses): the member redid its own work", got, n, losses.Load())
	}
}
