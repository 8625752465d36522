package kafkago_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	fetchAPI "github.com/segmentio/kafka-go/protocol/fetch"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue (review finding 3): Run returns even if a handler ignores its
// context and never returns (see adaptertest).
func TestRunReturnsWhenAHandlerIgnoresCtx(t *testing.T) {
	adaptertest.CheckRunReturnsWhenAHandlerIgnoresCtx(t, func(ctx context.Context, c *kafkatest.Cluster, group, topic string, revoke time.Duration, h adaptertest.Handler) error {
		cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic}, append(fastOpts(slogDiscard()), kafkago.WithRevokeTimeout(revoke))...)
		if err != nil {
			return err
		}
		return cons.Run(ctx, func(hctx context.Context, m kafka.Message) error { return h(hctx, int32(m.Partition), m.Offset) })
	})
}

// failingReader yields n records of the real response, then an error, like
// a corrupt record would.
type failingReader struct {
	inner protocol.RecordReader
	n     int
}

func (r *failingReader) ReadRecord() (*protocol.Record, error) {
	if r.n == 0 {
		return nil, errors.New("test: corrupt record")
	}
	r.n--
	return r.inner.ReadRecord()
}

// Issue (review finding 4): an error while delivering a fetch response (an
// unreadable record) does not stop the partition for the rest of the
// generation: it is logged and the partition refetched from the first
// offset not yet delivered.
func TestDeliveryErrorRefetchesInsteadOfStoppingThePartition(t *testing.T) {
	const n = 400
	c, ctx := adaptertest.StartProduced(t, "bad", 2, n, 60*time.Second)
	var injected atomic.Int64
	hook := kafkago.WithFetchHook(func(tp kafkago.TopicPartition, offset int64, part *fetchAPI.ResponsePartition) {
		// Twice on partition 0: at the first fetch, and at a later one.
		if tp.Partition != 0 || part.RecordSet.Records == nil || injected.Load() >= 2 {
			return
		}
		if injected.Load() == 0 || offset > 0 {
			injected.Add(1)
			part.RecordSet.Records = &failingReader{inner: part.RecordSet.Records, n: 3}
		}
	})
	cons, err := kafkago.NewConsumer(c.Addrs(), "bad-group", []string{"bad"},
		append(fastOpts(slogDiscard()), kafkago.WithFetchMaxBytes(2000), hook)...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "bad-group", "bad"); return ok })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if injected.Load() != 2 {
		t.Fatalf("%d errors injected, want 2", injected.Load())
	}
	if got, d := rec.Distinct(), rec.Dups(); got != n || d != 0 {
		t.Fatalf("handled %d distinct messages (%d duplicates), want %d once each", got, d, n)
	}
}

// seedCommit commits offset for group's partition 0 of topic as a simple
// (non-member) commit.
func seedCommit(ctx context.Context, t *testing.T, c *kafkatest.Cluster, group, topic string, offset int64) {
	t.Helper()
	cl := &kafka.Client{Addr: kafka.TCP(c.Addrs()...)}
	resp, err := cl.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: 0, Offset: offset}}}})
	if err != nil || resp.Topics[topic][0].Error != nil {
		t.Fatalf("seed commit: %v %+v", err, resp)
	}
}

// partStats returns the stats of partition p, if owned.
func partStats(cons *kafkago.Consumer, p int32) (kafkago.PartitionStats, bool) {
	for _, s := range cons.Stats() {
		if s.Partition == p {
			return s, true
		}
	}
	return kafkago.PartitionStats{}, false
}

// Issue (review finding 5): a committed offset above the log end (the topic
// was recreated or truncated) would stall the partition forever; the start
// offset policy applies instead.
func TestCommittedOffsetAboveLogEndAppliesStartOffset(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "trunc", 1, 40, 60*time.Second)
	t.Run("FirstOffset starts at the log start", func(t *testing.T) {
		seedCommit(ctx, t, c, "trunc-first", "trunc", 500)
		cons, err := kafkago.NewConsumer(c.Addrs(), "trunc-first", []string{"trunc"}, fastOpts(slogDiscard())...)
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
		adaptertest.WaitFor(ctx, t, "commit at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "trunc-first", "trunc"); return ok })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if got := rec.Distinct(); got != 40 {
			t.Fatalf("handled %d messages, want all 40", got)
		}
	})
	t.Run("LastOffset starts at the log end", func(t *testing.T) {
		seedCommit(ctx, t, c, "trunc-last", "trunc", 500)
		cons, err := kafkago.NewConsumer(c.Addrs(), "trunc-last", []string{"trunc"},
			append(fastOpts(slogDiscard()), kafkago.WithStartOffset(kafkago.Latest))...)
		if err != nil {
			t.Fatal(err)
		}
		rec := newRecorder()
		stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
		adaptertest.WaitFor(ctx, t, "partition assigned", func() bool { _, ok := partStats(cons, 0); return ok })
		if s, _ := partStats(cons, 0); s.Committed != 40 {
			t.Fatalf("started at %d, want the log end 40", s.Committed)
		}
		if _, err := c.Produce(ctx, "trunc", 5, kafkatest.FirstIndex(40)); err != nil {
			t.Fatal(err)
		}
		adaptertest.WaitFor(ctx, t, "commit at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "trunc-last", "trunc"); return ok })
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if seen := rec.Seen(); len(seen) != 5 || seen[adaptertest.PO{P: 0, O: 40}] != 1 || seen[adaptertest.PO{P: 0, O: 44}] != 1 {
			t.Fatalf("handled %v, want offsets 40..44", seen)
		}
	})
}

// Issue (review finding 6): read_committed with WithStartOffset(LastOffset)
// starts at the last stable offset, not the high watermark, so that the
// records of a transaction open at assignment are consumed once it commits.
func TestReadCommittedLastOffsetStartsAtLastStableOffset(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "lso", 1, 10, 60*time.Second)
	end, err := c.OpenTxn(ctx, "lso", 5, kafkatest.FirstIndex(10))
	if err != nil {
		t.Fatal(err)
	}
	ended := false
	t.Cleanup(func() {
		if !ended {
			_ = end(context.Background(), false)
		}
	})
	cons, err := kafkago.NewConsumer(c.Addrs(), "lso-group", []string{"lso"},
		append(fastOpts(slogDiscard()), kafkago.WithReadCommitted(true), kafkago.WithStartOffset(kafkago.Latest))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
	adaptertest.WaitFor(ctx, t, "partition assigned", func() bool { _, ok := partStats(cons, 0); return ok })
	if s, _ := partStats(cons, 0); s.Committed != 10 {
		t.Fatalf("started at %d, want the last stable offset 10 (high watermark 15)", s.Committed)
	}
	ended = true
	if err := end(ctx, true); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "commit at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "lso-group", "lso"); return ok })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	values := rec.Values()
	for _, v := range []string{"10", "11", "12", "13", "14"} {
		if values[v] != 1 {
			t.Errorf("transactional record %s handled %d times, want 1", v, values[v])
		}
	}
}

// dupBalancer assigns every partition twice to the first member: an
// assignment the adapter cannot take.
type dupBalancer struct{}

func (dupBalancer) ProtocolName() string      { return "dup" }
func (dupBalancer) UserData() ([]byte, error) { return nil, nil }
func (dupBalancer) AssignGroups(members []kafka.GroupMember, parts []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	for _, m := range members {
		out[m.ID] = map[string][]int{}
	}
	for _, p := range parts {
		id := members[0].ID
		out[id][p.Topic] = append(out[id][p.Topic], p.ID, p.ID)
	}
	return out
}

// Issue (review finding 8): a partition of the assignment that cannot be
// taken makes Run return an error naming it, instead of leaving it owned
// and not consumed.
func TestAssignErrorStopsRun(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("dup", 1))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := kafkago.NewConsumer(c.Addrs(), "dup-group", []string{"dup"},
		append(fastOpts(slogDiscard()), kafkago.WithGroupBalancers(dupBalancer{}))...)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second) // hang guard only
	defer cancel()
	err = cons.Run(rctx, func(context.Context, kafka.Message) error { return nil })
	if !errors.Is(err, kafkago.ErrAssign) || rctx.Err() != nil {
		t.Fatalf("Run = %v, want ErrAssign before the guard", err)
	}
}

// Issue: a full window on one partition is back-pressure on that partition
// only: the other partition is consumed and committed to its end meanwhile,
// and the blocked partition never runs more than the window ahead.
func TestFullWindowBlocksOnlyItsPartition(t *testing.T) {
	const window = 8
	c := kafkatest.Start(t, kafkatest.WithTopic("bp", 2))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	counts, err := c.Produce(ctx, "bp", 400)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	cons, err := kafkago.NewConsumer(c.Addrs(), "bp-group", []string{"bp"},
		append(fastOpts(slogDiscard()), kafkago.WithWindow(window))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error {
		if m.Partition == 0 && m.Offset == 0 {
			<-release
		}
		rec.add(m)
		return nil
	})
	adaptertest.WaitFor(ctx, t, "partition 1 committed to its end", func() bool {
		com, err := c.Committed(ctx, "bp-group", "bp")
		return err == nil && com[1].Offset == counts[1]
	})
	s, ok := partStats(cons, 0)
	if !ok {
		t.Fatal("partition 0 not owned")
	}
	if s.CommitPoint != 0 || s.High > window || s.Pending > window {
		t.Fatalf("blocked partition: %+v, want commit point 0 and at most %d fetched", s, window)
	}
	p0 := 0
	for k := range rec.Seen() {
		if k.P == 0 {
			p0++
		}
	}
	if p0 > window-1 {
		t.Fatalf("%d messages of the blocked partition handled, want at most %d", p0, window-1)
	}
	releaseOnce.Do(func() { close(release) })
	adaptertest.WaitFor(ctx, t, "everything committed", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "bp-group", "bp"); return ok })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := rec.Distinct(); got != 400 {
		t.Fatalf("handled %d, want 400", got)
	}
}

// Issue: shutdown while a handler runs: the drain waits for it (its context
// is still alive), then the final commit includes it.
func TestShutdownWaitsForRunningHandlerAndCommitsIt(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "sd", 1, 20, 60*time.Second)
	started, release := make(chan struct{}), make(chan struct{})
	ctxErrc := make(chan error, 1) // the handler's ctx.Err() when released
	cons, err := kafkago.NewConsumer(c.Addrs(), "sd-group", []string{"sd"}, fastOpts(slogDiscard())...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(hctx context.Context, m kafka.Message) error {
		if m.Offset == 10 {
			close(started)
			<-release
			ctxErrc <- hctx.Err()
		}
		rec.add(m)
		return nil
	})
	<-started
	adaptertest.WaitFor(ctx, t, "everything else handled", func() bool { return rec.Distinct() == 19 })
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Let the shutdown reach the drain (setup, not an assertion: the commit
	// must include offset 10 whenever the handler returns).
	time.Sleep(300 * time.Millisecond)
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if err := <-ctxErrc; err != nil {
		t.Fatalf("handler's context ended during the drain: %v", err)
	}
	com, err := c.Committed(ctx, "sd-group", "sd")
	if err != nil {
		t.Fatal(err)
	}
	if com[0].Offset != 20 {
		t.Fatalf("committed %d, want 20 (including the message handled during shutdown)", com[0].Offset)
	}
}

// Issue: no goroutine of kafka-go, the engine or the adapter outlives Run,
// including after a rebalance (the drain heartbeat, its coordinator
// connection).
func TestNoGoroutineLeftAfterRun(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "leak", 2, 200, 60*time.Second)
	before, _ := clientGoroutines()
	var gens sync.Map
	newMember := func(name string) func() error {
		cons, err := kafkago.NewConsumer(c.Addrs(), "leak-group", []string{"leak"},
			append(fastOpts(slogDiscard()), kafkago.WithGenerationHook(func(_ string, gen int32, _ []kafkago.TopicPartition) {
				gens.Store(name, gen)
			}))...)
		if err != nil {
			t.Fatal(err)
		}
		return runConsumer(t, cons, func(context.Context, kafka.Message) error { return nil })
	}
	a := newMember("a")
	adaptertest.WaitFor(ctx, t, "a's first generation", func() bool { _, ok := gens.Load("a"); return ok })
	b := newMember("b")
	adaptertest.WaitFor(ctx, t, "a and b in one generation", func() bool {
		ga, oka := gens.Load("a")
		gb, okb := gens.Load("b")
		return oka && okb && ga == gb
	})
	adaptertest.WaitFor(ctx, t, "everything committed", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "leak-group", "leak"); return ok })
	if n, _ := clientGoroutines(); n <= before {
		t.Fatalf("%d client goroutines while running, %d before: the leak check would see nothing", n, before)
	}
	if err := errors.Join(b(), a()); err != nil {
		t.Fatal(err)
	}
	checkNoLeak(t, before)
}
