package brokerfault_test

import (
	"context"
	"fmt"
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
	return join(t, addrs, member, 30*time.Second, 2*time.Second, wait, "t")
}

// join is stuckJoin with the member's session and rebalance timeouts and
// the topics it subscribes to.
func join(t *testing.T, addrs []string, member string, session, rebalance, wait time.Duration, topics ...string) *kmsg.JoinGroupResponse {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = "g"
	req.MemberID = member
	req.SessionTimeoutMillis = int32(session.Milliseconds())
	req.RebalanceTimeoutMillis = int32(rebalance.Milliseconds())
	req.ProtocolType = "consumer"
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = topics
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
// Real Kafka fixes the deadline when the rebalance starts (the classic
// GroupCoordinator's prepareRebalance creates the DelayedJoin only when
// group.canRebalance, that is not while PreparingRebalance; a JoinGroup or
// a member removal then only runs checkAndComplete on it), so x is evicted
// and y answered one rebalance timeout (2 s) after y's first JoinGroup.
func TestKfakeRejoinsPostponeTheRebalanceDeadline(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	addrs := fake.ListenAddrs()
	state := func() (string, []string) { return groupMembers(fake) }
	newID := func() string { return newMemberID(t, addrs) }

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

// syncGroup sends member's SyncGroup for generation (the leader's carries
// assign) on a client of its own and returns an error unless it is
// answered without error.
func syncGroup(addrs []string, member string, generation int32, assign []string, wait time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Group, req.MemberID, req.Generation = "g", member, generation
	req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	for _, m := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m})
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err == nil && resp.ErrorCode != 0 {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("%s's SyncGroup: %w", member, err)
	}
	return nil
}

// A second divergence seen in the same chaos run (issue 25; no code of this
// module involved): kfake keeps a member's session timer running while the
// member waits for its JoinGroup answer. A member that had joined before
// and rejoins (its generation ended) is evicted when its session timeout
// passes during the rebalance, although its JoinGroup is parked at the
// coordinator, and that JoinGroup is never answered: the client gives up
// only at its request timeout (librdkafka: max.poll.interval.ms + 3 s) and
// comes back under a new member id. A rebalance that waits for a slow
// member longer than the session timeout thus throws out every member that
// rejoined in time. Here: x and y are Stable at generation 2 (session 30 s
// for x, 1 s for y; rebalance timeout 2 s), y rejoins and waits; x stays
// silent. y is dropped from the group about 1 s later while its JoinGroup
// waits, the rebalance ends with the group Empty, and y's JoinGroup gets no
// answer (in 5 s). Real Kafka keeps a member that is not new and awaits its
// JoinGroup (or SyncGroup) answer alive whatever its session timeout
// (MemberMetadata.hasSatisfiedHeartbeat: "Members that are awaiting a
// rebalance automatically satisfy expected heartbeats"): x is evicted at the
// rebalance timeout and y answered as the only member of generation 3.
func TestKfakeEvictsAMemberWaitingInJoinGroup(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	addrs := fake.ListenAddrs()
	const rebalance = 2 * time.Second
	members := func() (string, []string) { return groupMembers(fake) }

	// x alone at generation 1; y joins: x rejoins, both are answered at
	// generation 2 and sync.
	x, y, jx, jy := twoMembers(t, fake, addrs, time.Second, rebalance)
	if jx.Generation != jy.Generation {
		t.Fatalf("generation 2 JoinGroups: x %+v, y %+v", jx, jy)
	}
	leader, follower := x, y
	if jy.LeaderID == y {
		leader, follower = y, x
	}
	fc := make(chan error, 1)
	go func() { fc <- syncGroup(addrs, follower, jx.Generation, nil, 10*time.Second) }() // parks until the leader's sync
	if err := syncGroup(addrs, leader, jx.Generation, []string{x, y}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-fc; err != nil {
		t.Fatal(err)
	}
	if st, ids := members(); st != "Stable" || len(ids) != 2 {
		t.Fatalf("generation 2: %s %v, want Stable with x and y", st, ids)
	}
	// y rejoins with a new subscription (a rebalance, as for a member
	// whose generation ended) and waits; x stays silent.
	yc := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { yc <- join(t, addrs, y, time.Second, rebalance, 5*time.Second, "t", "u") }()
	var evicted bool
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !evicted; {
		st, ids := members()
		evicted = st == "PreparingRebalance" && !slices.Contains(ids, y)
		time.Sleep(10 * time.Millisecond)
	}
	resp := <-yc
	st, ids := members()
	t.Logf("y dropped while its JoinGroup waited: %v; y's JoinGroup answer: %+v; group after: %s %v", evicted, resp, st, ids)
	if !evicted {
		t.Errorf("y stayed in the group while its JoinGroup waited (the kfake bug is fixed?)")
	}
	if resp != nil {
		t.Errorf("y's JoinGroup answered (error %d, generation %d): the kfake bug is fixed?", resp.ErrorCode, resp.Generation)
	}
}

// A third divergence found reading the same code (issue 25; no code of this
// module involved): kfake counts the members whose JoinGroup it holds
// (nJoining) and decrements that count when it removes a member with any
// parked request, a SyncGroup included, although the count was reset when
// the JoinGroups were answered. A member that leaves (or is evicted) while
// its SyncGroup waits for the leader's thus leaves the count one short for
// the next rebalance: when every member has rejoined, kfake still waits
// for the rebalance deadline (and, with the re-arming above, for as long as
// JoinGroups keep coming). Here: x (leader) and y at generation 2, y's
// SyncGroup waits for x's, y leaves; x, now the only member, rejoins: its
// JoinGroup is not answered (in 2 s) though every member has joined; x's
// next JoinGroup is answered at the (re-armed) rebalance deadline, 4 s after
// it. (y's parked SyncGroup is not answered either.) Real Kafka answers x
// at once (the DelayedJoin completes when group.hasAllMembersJoined).
func TestKfakeLeaveDuringSyncMiscountsJoiners(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	addrs := fake.ListenAddrs()
	const rebalance = 4 * time.Second
	members := func() (string, []string) { return groupMembers(fake) }

	x, y, jx, jy := twoMembers(t, fake, addrs, 30*time.Second, rebalance)
	if jx.LeaderID != x {
		t.Fatalf("generation 2 JoinGroups: x %+v, y %+v (want x the leader)", jx, jy)
	}

	// y's SyncGroup reaches the broker and waits for x's.
	arrived := make(chan struct{})
	fake.ControlKey(kmsg.SyncGroup.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		close(arrived)
		return nil, nil, false
	})
	sc := make(chan error, 1)
	go func() { sc <- syncGroup(addrs, y, jy.Generation, nil, time.Second) }()
	<-arrived
	// y leaves.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	leave := kmsg.NewPtrLeaveGroupRequest()
	leave.Group = "g"
	leave.Members = []kmsg.LeaveGroupRequestMember{{MemberID: y}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := leave.RequestWith(ctx, cl); err != nil || resp.ErrorCode != 0 {
		t.Fatalf("y's LeaveGroup: %v %+v", err, resp)
	}
	if st, ids := members(); st != "PreparingRebalance" || !slices.Equal(ids, []string{x}) {
		t.Fatalf("after y left: %s %v, want PreparingRebalance [%s]", st, ids, x)
	}
	if err := <-sc; err == nil {
		t.Fatal("y's SyncGroup answered without error after y left")
	}

	// x, the only member, rejoins: every member has joined.
	start := time.Now()
	if resp := join(t, addrs, x, 30*time.Second, rebalance, rebalance/2, "t"); resp != nil {
		t.Fatalf("x's JoinGroup answered at once (error %d, generation %d): the kfake bug is fixed?", resp.ErrorCode, resp.Generation)
	}
	st, ids := members()
	if st != "PreparingRebalance" || !slices.Equal(ids, []string{x}) {
		t.Fatalf("%v after x's rejoin: %s %v, want PreparingRebalance [%s] (the kfake bug is fixed?)", time.Since(start).Round(time.Millisecond), st, ids, x)
	}
	// The deadline still ends it: x rejoins again and is answered.
	resp := join(t, addrs, x, 30*time.Second, rebalance, 3*rebalance, "t")
	if resp == nil || resp.ErrorCode != 0 {
		t.Fatalf("x's JoinGroup after the deadline: %+v", resp)
	}
	t.Logf("x's JoinGroup unanswered for %v with x the only member and joined; the next one answered %v after x's first rejoin (generation %d)",
		rebalance/2, time.Since(start).Round(time.Millisecond), resp.Generation)
}

// newMemberID asks the broker for a member id of group "g" (a JoinGroup
// without one, answered MEMBER_ID_REQUIRED).
// twoMembers makes a new member x (session 30 s) the group's only one at
// generation 1, joined and synced, then lets a new member y (session
// ySession) join: x rejoins, and it returns both JoinGroup answers of
// generation 2 (not synced), failing t unless both are answered without an
// error.
func twoMembers(t *testing.T, fake *kfake.Cluster, addrs []string, ySession, rebalance time.Duration) (x, y string, jx, jy *kmsg.JoinGroupResponse) {
	t.Helper()
	x = newMemberID(t, addrs)
	jx = join(t, addrs, x, 30*time.Second, rebalance, 5*time.Second, "t")
	if jx == nil || jx.ErrorCode != 0 {
		t.Fatalf("x's JoinGroup: %+v", jx)
	}
	if err := syncGroup(addrs, x, jx.Generation, []string{x}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	y = newMemberID(t, addrs)
	yc := make(chan *kmsg.JoinGroupResponse, 1)
	go func() { yc <- join(t, addrs, y, ySession, rebalance, 10*time.Second, "t") }()
	for st, _ := groupMembers(fake); st != "PreparingRebalance"; st, _ = groupMembers(fake) {
		time.Sleep(10 * time.Millisecond)
	}
	jx = join(t, addrs, x, 30*time.Second, rebalance, 10*time.Second, "t")
	jy = <-yc
	if jx == nil || jx.ErrorCode != 0 || jy == nil || jy.ErrorCode != 0 {
		t.Fatalf("generation 2 JoinGroups: x %+v, y %+v", jx, jy)
	}
	return x, y, jx, jy
}

func newMemberID(t *testing.T, addrs []string) string {
	t.Helper()
	resp := stuckJoin(t, addrs, "", 5*time.Second)
	if resp == nil || resp.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("first JoinGroup: want MEMBER_ID_REQUIRED, got %+v", resp)
	}
	return resp.MemberID
}

// groupMembers returns group "g"'s state and member ids, as kfake has them.
func groupMembers(fake *kfake.Cluster) (string, []string) {
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
