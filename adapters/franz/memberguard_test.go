package franz_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue 25 (chaos -faults, franz cooperative: partitions committed 2208 and
// 2589 after 2682 and 3086): kgo stamps a commit with the member id it has
// when it sends, and a commit made while a join is in progress waits in
// kgo until the sync. If the join finds the member evicted (JoinGroup
// answers UNKNOWN_MEMBER_ID, which kgo handles inside the join: it rejoins
// under a new id without calling OnPartitionsLost), the commit goes out
// under the new member id, and the coordinator accepts offsets decided for
// the old member, whose partitions may be another member's by then.
//
// Here the member's heartbeat is told a rebalance is in progress; its
// JoinGroup under the old id is held in the broker until the engine has
// made a commit for the old member (it waits in kgo behind the join), then
// answered UNKNOWN_MEMBER_ID. kgo rejoins under a new id, and the waiting
// commit must not be sent under it.
func TestCommitNotSentUnderANewMember(t *testing.T) {
	const (
		topic = "guard"
		group = "guard-group"
		n     = 4000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 2, n, 60*time.Second)
	var (
		mu       sync.Mutex
		member1  string // the first member id
		heldSent string // the member id the held commit was sent (or refused) under
		heldErrs []error
		heldDone bool
		pending  bool // the next commit hook call is the held commit's

		armed    atomic.Bool // the next heartbeat answers REBALANCE_IN_PROGRESS
		joining  atomic.Bool // the member's JoinGroup under member1 is held
		forged   atomic.Bool // that JoinGroup was answered UNKNOWN_MEMBER_ID
		made     = make(chan struct{})
		madeOnce sync.Once
		handled  atomic.Int64
	)
	first := func() string {
		mu.Lock()
		defer mu.Unlock()
		return member1
	}
	c.Fake().ControlKey(int16(kmsg.Heartbeat), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.HeartbeatRequest)
		if req.Group != group || !armed.CompareAndSwap(true, false) {
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = 27 // REBALANCE_IN_PROGRESS: kgo rejoins, keeping its partitions (cooperative)
		return resp, nil, true
	})
	c.Fake().ControlKey(int16(kmsg.JoinGroup), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.JoinGroupRequest)
		m1 := first()
		if req.Group != group || m1 == "" || req.MemberID != m1 || forged.Load() {
			return nil, nil, false
		}
		// kgo holds its join lock now: a commit made from here on waits
		// in kgo until the sync.
		joining.Store(true)
		c.Fake().SleepControl(func() {
			select {
			case <-made:
			case <-time.After(20 * time.Second): // caught below: no commit was held
			}
		})
		forged.Store(true)
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = 25 // UNKNOWN_MEMBER_ID: evicted meanwhile
		return resp, nil, true
	})
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
		append(fastOpts(testLogger(t)), franz.WithConcurrency(4),
			franz.WithSessionTimeout(time.Second),
			franz.WithHeartbeatInterval(100*time.Millisecond),
			franz.WithRebalanceTimeout(3*time.Second),
			franz.WithRevokeTimeout(time.Second),
			balancer("cooperative"),
			franz.WithAssignHook(func(member string, _ int32, _ []franz.TopicPartition) {
				mu.Lock()
				defer mu.Unlock()
				if member1 == "" {
					member1 = member
				}
			}),
			franz.WithCommitMadeHook(func(member string) {
				mu.Lock()
				defer mu.Unlock()
				if heldDone || pending || !joining.Load() || member != member1 {
					return
				}
				pending = true
				madeOnce.Do(func() { close(made) })
			}),
			franz.WithCommitHook(func(member string, _ int32, _ []franz.Offset, errs []error) {
				mu.Lock()
				defer mu.Unlock()
				if !pending {
					return
				}
				pending, heldDone = false, true
				heldSent, heldErrs = member, errs
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m *kgo.Record) error {
		if handled.Add(1) == n/10 {
			armed.Store(true)
		}
		time.Sleep(time.Millisecond)
		rec.add(m)
		return nil
	})
	adaptertest.WaitFor(ctx, t, "the commit made during the join answered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return heldDone
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
	if !forged.Load() {
		t.Fatal("the JoinGroup under the first member id was not answered UNKNOWN_MEMBER_ID: the rejoin did not happen")
	}
	if heldSent == "" || heldSent == member1 {
		t.Fatalf("the commit made for member %q during the join was stamped %q (errors %v), not with the new member id: it did not wait in kgo across the rejoin",
			member1, heldSent, heldErrs)
	}
	for _, e := range heldErrs {
		if !errors.Is(e, franz.ErrMemberChanged) {
			t.Fatalf("the commit made for member %q went out under the new member %q (result %v): offsets decided for an evicted member were committed",
				member1, heldSent, e)
		}
	}
	if len(heldErrs) == 0 {
		t.Fatal("the commit made during the join had no offsets")
	}
	t.Logf("commit made for %s, refused under %s: %v", member1, heldSent, heldErrs[0])
}
