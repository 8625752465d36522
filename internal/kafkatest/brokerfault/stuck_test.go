package brokerfault_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// stuckJoin sends one JoinGroup on a client of its own (kfake serves one
// request per connection at a time, so a parked JoinGroup blocks its
// connection) and gives up on the answer after wait, closing the
// connection, as librdkafka does when a JoinGroup times out. It returns
// the answer, or nil if none came within wait.
func stuckJoin(t *testing.T, addrs []string, member string, wait time.Duration) *kmsg.JoinGroupResponse {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = "g"
	req.MemberID = member
	req.SessionTimeoutMillis = 30000 // longer than the test: no member is evicted by its session
	req.RebalanceTimeoutMillis = 2000
	req.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{"t"}
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: meta.AppendTo(nil)}}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil
	}
	return resp
}

// The embedded broker's bug behind the group stuck in PreparingRebalance
// (issue 25; no code of this module involved): kfake restarts the group's
// rebalance deadline on every JoinGroup (and on every member removal) that
// arrives while the group is already PreparingRebalance (group.rebalance
// stops and re-arms tRebalance). A member that never rejoins (silent,
// frozen, dead: in the chaos run a ghost, see DESIGN.md) is then evicted
// only if no JoinGroup reaches the coordinator for a whole rebalance
// timeout. Members whose JoinGroup times out on the client and is sent
// again (librdkafka: after max.poll.interval.ms + 3 s) keep re-arming it,
// so the group stays PreparingRebalance for as long as they retry, and
// every JoinGroup times out. Here: member x joins and syncs (Stable, then
// silent, session 30 s), member y joins with rebalance timeout 2 s and
// sends its JoinGroup again every 250 ms for 5 s: the group is still
// PreparingRebalance with x in it the whole time; once y stops, the
// deadline expires, x is evicted and the group leaves PreparingRebalance.
// Real Kafka fixes the deadline when the rebalance starts (the DelayedJoin
// of prepareRebalance; a JoinGroup in PreparingRebalance only replaces the
// member's callback and cannot re-arm it), so x is evicted and y answered
// one rebalance timeout (2 s) after y's first JoinGroup.
func TestKfakeRejoinsPostponeTheRebalanceDeadline(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	addrs := fake.ListenAddrs()
	state := func() (string, []string) {
		gi := fake.GroupInfo("g")
		if gi == nil {
			return "", nil
		}
		var ids []string
		for _, m := range gi.Members {
			ids = append(ids, m.MemberID)
		}
		return gi.State, ids
	}
	newID := func() string {
		resp := stuckJoin(t, addrs, "", 5*time.Second)
		if resp == nil || resp.ErrorCode != kerr.MemberIDRequired.Code {
			t.Fatalf("first JoinGroup: want MEMBER_ID_REQUIRED, got %+v", resp)
		}
		return resp.MemberID
	}

	// x: the group's only member, Stable at generation 1, then silent.
	x := newID()
	jx := stuckJoin(t, addrs, x, 5*time.Second)
	if jx == nil || jx.ErrorCode != 0 {
		t.Fatalf("x's JoinGroup: %+v", jx)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "g", x, jx.Generation
	sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if sr, err := sync.RequestWith(ctx, cl); err != nil || sr.ErrorCode != 0 {
		t.Fatalf("x's SyncGroup: %v %+v", err, sr)
	}
	if st, ids := state(); st != "Stable" || !slices.Equal(ids, []string{x}) {
		t.Fatalf("after x's sync: %s %v, want Stable [%s]", st, ids, x)
	}

	// y joins, then sends its JoinGroup again every 250ms (each attempt
	// given up after 250ms) for 2.5 rebalance timeouts.
	y := newID()
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		if resp := stuckJoin(t, addrs, y, 250*time.Millisecond); resp != nil {
			t.Fatalf("y's JoinGroup answered %v after y's first join (error %d, generation %d): the rebalance deadline was not postponed",
				time.Since(start).Round(time.Millisecond), resp.ErrorCode, resp.Generation)
		}
		st, ids := state()
		if st != "PreparingRebalance" || !slices.Contains(ids, x) {
			t.Fatalf("%v after y's first join: %s %v: the rebalance completed (the kfake bug is fixed?)",
				time.Since(start).Round(time.Millisecond), st, ids)
		}
	}
	held := time.Since(start)

	// y stops: one more JoinGroup, waited for. With no JoinGroup after
	// it, the deadline (2s) expires: x is evicted and y answered.
	resp := stuckJoin(t, addrs, y, 20*time.Second)
	if resp == nil || resp.ErrorCode != 0 {
		t.Fatalf("y's last JoinGroup: %+v", resp)
	}
	st, ids := state()
	t.Logf("held in PreparingRebalance %v with a rebalance timeout of 2s; after y's rejoins stopped: %s %v (generation %d)",
		held.Round(time.Millisecond), st, ids, resp.Generation)
	if slices.Contains(ids, x) || !slices.Contains(ids, y) {
		t.Fatalf("after the deadline: members %v, want x (%s) evicted and y (%s) kept", ids, x, y)
	}
}
