package franz_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: three members of one group join and leave while 6 partitions are
// consumed, once with an eager balancer (range) and once with kgo's
// cooperative-sticky one: nothing lost, the offsets the broker accepts
// never decrease (checked on every accepted commit and by polling the
// group), every commit on the wire comes from a member that owns the
// partition in the generation it was sent with (per the assignments the
// group leader sent the broker; cooperative: or is revoking it), and the
// partitions,
// paused all the time by a small window, are resumed after moving away and
// back (or the test would not finish).
func TestRebalanceThreeMembersJoinAndLeave(t *testing.T) {
	for _, b := range []string{"range", "cooperative-sticky"} {
		t.Run("balancer="+b, func(t *testing.T) { testRebalance(t, b) })
	}
}

func testRebalance(t *testing.T, bal string) {
	const (
		topic = "rb"
		group = "rb-group"
		n     = 12000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 6, n, 120*time.Second)

	type memberGen struct {
		member string
		gen    int32
	}
	var (
		mu       sync.Mutex
		accepted = map[int32]int64{}
		refused  int
		wire     int
		rewinds  []string
		notOwned []string
		sentBy   = map[memberGen]bool{} // (member, generation) of every commit on the wire
		pauses   int
		assigns  int
		revokes  int
		kept     int // assignments that added partitions to a member that kept others: cooperative only
	)
	// The broker's truth: every generation's assignment, as the leader
	// sends it in SyncGroup, and every OffsetCommit it receives.
	assignment := map[memberGen]map[int32]bool{}
	var commits []*kmsg.OffsetCommitRequest
	c.Fake().ControlKey(int16(kmsg.SyncGroup), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		req := kreq.(*kmsg.SyncGroupRequest)
		if req.Group != group {
			return nil, nil, false
		}
		mu.Lock()
		defer mu.Unlock()
		for _, a := range req.GroupAssignment {
			var ma kmsg.ConsumerMemberAssignment
			if err := ma.ReadFrom(a.MemberAssignment); err != nil {
				t.Errorf("SyncGroup assignment of %s: %v", a.MemberID, err)
				continue
			}
			owned := map[int32]bool{}
			for _, tt := range ma.Topics {
				for _, p := range tt.Partitions {
					owned[p] = true
				}
			}
			assignment[memberGen{a.MemberID, req.Generation}] = owned
		}
		return nil, nil, false
	})
	c.Fake().ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		if req := kreq.(*kmsg.OffsetCommitRequest); req.Group == group {
			mu.Lock()
			wire++
			sentBy[memberGen{req.MemberID, req.Generation}] = true
			commits = append(commits, req)
			mu.Unlock()
		}
		return nil, nil, false
	})
	watch := adaptertest.WatchCommits(ctx, t, c, group, topic, "group: ")

	rec := newRecorder()
	handler := func(_ context.Context, m *kgo.Record) error {
		time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond) // ~2000 records/s: consumption spans the changes
		rec.add(m)
		return nil
	}
	reported := map[memberGen]bool{}
	member := 0
	newMember := func() func() error {
		member++
		name := fmt.Sprint("member-", member)
		owned := map[franz.TopicPartition]bool{}
		cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
			append(fastOpts(testLogger(t)), balancer(bal),
				franz.WithConcurrency(4), franz.WithWindow(8),
				franz.WithAssignHook(func(_ string, _ int32, tps []franz.TopicPartition) {
					mu.Lock()
					defer mu.Unlock()
					assigns++
					if len(owned) > 0 {
						kept++
					}
					for _, tp := range tps {
						owned[tp] = true
					}
				}),
				franz.WithRevokeHook(func(tps []franz.TopicPartition, _ bool) {
					mu.Lock()
					defer mu.Unlock()
					revokes++
					for _, tp := range tps {
						delete(owned, tp)
					}
				}),
				franz.WithCommitHook(func(m string, gen int32, offs []franz.Offset, errs []error) {
					mu.Lock()
					defer mu.Unlock()
					reported[memberGen{m, gen}] = true
					for i, o := range offs {
						if !owned[o.TP] {
							notOwned = append(notOwned, fmt.Sprintf("%s (%s gen %d) committed %v at %d", name, m, gen, o.TP, o.Offset))
						}
						if errs[i] != nil {
							refused++
							continue
						}
						if o.Offset < accepted[o.TP.Partition] {
							rewinds = append(rewinds, fmt.Sprintf("accepted: %s committed partition %d at %d after %d",
								name, o.TP.Partition, o.Offset, accepted[o.TP.Partition]))
						}
						accepted[o.TP.Partition] = max(accepted[o.TP.Partition], o.Offset)
					}
				}),
				franz.WithPauseHook(func(_ franz.TopicPartition, paused bool) {
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
	midStream := 0 // membership changes while records were still unhandled
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
		t.Errorf("handled %d distinct records, want %d", got, n)
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
	// Every commit on the wire, against the broker's assignments: the
	// member owns the partition in the generation the commit carries or,
	// cooperative only, owned it in the generation before and nobody owns
	// it in this one (it is being revoked: the second rebalance gives it
	// away only after this member's revoke, and so after its commit).
	ownedBy := func(p int32, gen int32) []string {
		var who []string
		for mg, owned := range assignment {
			if mg.gen == gen && owned[p] {
				who = append(who, mg.member)
			}
		}
		return who
	}
	var stray []string
	revoking := 0 // partition commits accepted as "being revoked" (cooperative)
	for _, req := range commits {
		mg := memberGen{req.MemberID, req.Generation}
		for _, tt := range req.Topics {
			for _, p := range tt.Partitions {
				if assignment[mg][p.Partition] {
					continue
				}
				prev := memberGen{req.MemberID, req.Generation - 1}
				if bal == "cooperative-sticky" && assignment[prev][p.Partition] && len(ownedBy(p.Partition, req.Generation)) == 0 {
					revoking++
					continue
				}
				stray = append(stray, fmt.Sprintf("member %s generation %d committed partition %d at %d; owners then: %v",
					req.MemberID, req.Generation, p.Partition, p.Offset, ownedBy(p.Partition, req.Generation)))
			}
		}
	}
	if len(stray) > 0 {
		t.Errorf("%d of %d commits on the wire for partitions the member did not own: %v", len(stray), len(commits), stray[:min(5, len(stray))])
	}
	if len(assignment) == 0 {
		t.Error("no SyncGroup assignment captured")
	}
	for mg := range sentBy {
		if !reported[mg] {
			t.Errorf("a commit on the wire from member %s generation %d that no commit of the adapter reported", mg.member, mg.gen)
		}
	}
	if assigns < 6 {
		t.Errorf("only %d assignments: the members did not rebalance as planned", assigns)
	}
	if midStream < 3 {
		t.Errorf("only %d of 6 membership changes happened while consuming", midStream)
	}
	if cooperative := bal == "cooperative-sticky"; cooperative != (kept > 0) {
		t.Errorf("%d assignments added to partitions a member kept, with balancer %s: the protocol is not the one asked for", kept, bal)
	}
	if wire == 0 {
		t.Error("no commit seen on the wire")
	}
	if pauses == 0 {
		t.Error("no partition was ever paused: the window did not fill")
	}
	t.Logf("%d assignments, %d revokes, %d commit requests (%d partition commits refused, %d of revoking partitions), %d handled (%d duplicates), %d pauses, %d changes mid-stream",
		assigns, revokes, wire, refused, revoking, rec.Count(), rec.Count()-rec.Distinct(), pauses, midStream)
}
