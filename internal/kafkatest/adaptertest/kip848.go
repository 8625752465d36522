package adaptertest

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// NewConsumerProtocol returns the Run of a new consumer of topic in group
// on brokers speaking the consumer group protocol (KIP-848), with client id
// clientID, recording each handled message in rec and calling revoked after
// each revoke with its partitions and whether they were lost (nil: none).
type NewConsumerProtocol func(t testing.TB, brokers []string, group, topic, clientID string, rec *Recorder,
	revoked func(ps []int32, lost bool)) (run func(context.Context) error)

// CheckIncrementalRevoke checks the consumer protocol's incremental
// rebalance: a member owning every partition, joined by a second, revokes
// only the partitions that move to it (none lost), keeps the others, and
// the group handles and commits every message.
func CheckIncrementalRevoke(t *testing.T, newConsumer NewConsumerProtocol) {
	const topic = "kip848"
	c, ctx := StartProduced(t, topic, 4, 1000, 90*time.Second)
	group := NextGroup("kip848")
	var (
		mu      sync.Mutex
		revoked = map[int32]bool{}
		lost    int
	)
	recA, recB := NewRecorder(), NewRecorder()
	a := goRun(t, newConsumer(t, c.Addrs(), group, topic, "member-a", recA, func(ps []int32, l bool) {
		mu.Lock()
		defer mu.Unlock()
		if l {
			lost++
		}
		for _, p := range ps {
			revoked[p] = true
		}
	}))
	WaitFor(ctx, t, "the first member to own every partition", func() bool {
		g := c.Fake().GroupInfo(group)
		return g != nil && len(g.Members) == 1 && g.Members[0].NumAssigned() == 4 && recA.Count() > 0
	})
	b := goRun(t, newConsumer(t, c.Addrs(), group, topic, "member-b", recB, nil))
	var ownedA, ownedB []int32
	WaitFor(ctx, t, "both members owning partitions, all 4 assigned", func() bool {
		g := c.Fake().GroupInfo(group)
		if g == nil || len(g.Members) != 2 || g.NumAssigned() != 4 {
			return false
		}
		for _, m := range g.Members {
			if len(m.Assignment[topic]) == 0 {
				return false
			}
			if m.ClientID == "member-a" {
				ownedA = m.Assignment[topic]
			} else {
				ownedB = m.Assignment[topic]
			}
		}
		return true
	})
	if _, err := c.Produce(ctx, topic, 1000, kafkatest.FirstIndex(1000)); err != nil {
		t.Fatal(err)
	}
	WaitFor(ctx, t, "every message handled and committed", func() bool {
		ok, _ := CommittedAtEnd(ctx, c, group, topic)
		return ok && distinct(recA, recB) == 2000
	})
	mu.Lock()
	moved := maps.Clone(revoked) // the stops below revoke the rest
	nLost := lost
	mu.Unlock()
	if nLost != 0 {
		t.Errorf("%d revokes were losses", nLost)
	}
	if len(moved) == 0 || len(moved) != len(ownedB) {
		t.Errorf("the first member revoked %v; the second owns %v: only those should have moved", moved, ownedB)
	}
	for _, p := range ownedB {
		if !moved[p] {
			t.Errorf("partition %d moved to the second member without a revoke by the first", p)
		}
	}
	for _, p := range ownedA {
		if moved[p] {
			t.Errorf("partition %d was revoked from the first member though it kept it", p)
		}
	}
	for _, r := range []*running{b, a} {
		if err := r.stop(); err != nil {
			t.Error(err)
		}
	}
}
