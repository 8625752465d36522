package kafkago_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

type genKey struct {
	member string
	gen    int32
}

// Issue: three members of one group join and leave while 6 partitions are
// consumed: nothing lost, committed offsets never decrease, no commit from a
// member for a partition it no longer owns.
func TestRebalanceThreeMembersJoinAndLeave(t *testing.T) {
	const (
		topic = "rb"
		group = "rb-group"
		n     = 20000
	)
	c, ctx := adaptertest.StartProduced(t, topic, 6, n, 150*time.Second)

	var (
		mu    sync.Mutex
		owned = map[genKey]map[int32]bool{}
		wire  []*kmsg.OffsetCommitRequest
	)
	// Every OffsetCommit the broker receives, as sent on the wire.
	c.Fake().ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		if req := kreq.(*kmsg.OffsetCommitRequest); req.Group == group {
			mu.Lock()
			wire = append(wire, req)
			mu.Unlock()
		}
		return nil, nil, false
	})
	latest := map[string]int32{} // consumer name -> its latest generation
	onGen := func(name string) kafkago.Option {
		return kafkago.WithGenerationHook(func(member string, gen int32, tps []kafkago.TopicPartition) {
			m := map[int32]bool{}
			for _, tp := range tps {
				m[tp.Partition] = true
			}
			mu.Lock()
			owned[genKey{member, gen}] = m
			latest[name] = gen
			mu.Unlock()
		})
	}

	watch := adaptertest.WatchCommits(ctx, t, c, group, topic, "")

	rec := newRecorder()
	handler := func(_ context.Context, m kafka.Message) error {
		time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
		rec.add(m)
		return nil
	}
	newMember := func(name string) func() error {
		cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic},
			append(fastOpts(testLogger(t)), kafkago.WithConcurrency(4), kafkago.WithWindow(2000), onGen(name))...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, handler)
	}
	// Each membership change waits for consumption to progress (not for a
	// time), and then for a new generation made of exactly the members
	// running: no two changes can merge into one rebalance.
	midStream, step := 0, 0 // changes made while messages were still unhandled
	lastGen := int32(-1)
	settle := func(names ...string) {
		t.Helper()
		adaptertest.WaitFor(ctx, t, fmt.Sprintf("a generation of %v", names), func() bool {
			mu.Lock()
			defer mu.Unlock()
			g, ok := latest[names[0]]
			for _, n := range names[1:] {
				ok = ok && latest[n] == g
			}
			if ok && g > lastGen {
				lastGen = g
				return true
			}
			return false
		})
	}
	progress := func() {
		t.Helper()
		step++
		adaptertest.WaitFor(ctx, t, fmt.Sprintf("%d/8 of the messages handled", step), func() bool { return rec.Distinct() >= step*n/8 })
		if rec.Distinct() < n {
			midStream++
		}
	}

	// Join and leave: A; A+B; A+B+C; B+C; B+C+A'; C+A'; A' alone to the end.
	a := newMember("A")
	settle("A")
	progress()
	b := newMember("B")
	settle("A", "B")
	progress()
	cm := newMember("C")
	settle("A", "B", "C")
	progress()
	if err := a(); err != nil {
		t.Fatalf("member A: %v", err)
	}
	settle("B", "C")
	progress()
	a2 := newMember("A'")
	settle("B", "C", "A'")
	progress()
	if err := b(); err != nil {
		t.Fatalf("member B: %v", err)
	}
	settle("C", "A'")
	progress()
	if err := cm(); err != nil {
		t.Fatalf("member C: %v", err)
	}
	settle("A'")
	adaptertest.WaitFor(ctx, t, "everything committed", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic); return ok })
	if err := a2(); err != nil {
		t.Fatalf("member A': %v", err)
	}
	rewinds := watch.Stop()

	if got := rec.Distinct(); got != n {
		t.Errorf("handled %d distinct messages, want %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(rewinds) > 0 {
		t.Errorf("committed offsets went down: %v", rewinds)
	}
	gens := map[int32]bool{}
	for k := range owned {
		gens[k.gen] = true
	}
	if len(gens) < 7 {
		t.Errorf("only %d generations, want one per membership (7)", len(gens))
	}
	var bad []string
	for _, req := range wire {
		own, ok := owned[genKey{req.MemberID, req.Generation}]
		for _, tt := range req.Topics {
			for _, p := range tt.Partitions {
				if !ok || !own[p.Partition] {
					bad = append(bad, fmt.Sprintf("member %s generation %d committed %s[%d]=%d", req.MemberID, req.Generation, tt.Topic, p.Partition, p.Offset))
				}
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d commits for partitions not owned by the member in that generation: %v", len(bad), bad[:min(5, len(bad))])
	}
	if len(wire) == 0 {
		t.Error("no commit seen on the wire")
	}
	t.Logf("%d generations, %d commit requests, %d duplicates, %d changes mid-stream", len(gens), len(wire), rec.Dups(), midStream)
}
