package franz_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark/metadata"
)

// Issue: every produced record is handled and the final committed offsets
// equal the log end offsets, with handlers finishing in random order; no
// goroutine of kgo, the engine or the adapter is left after Run.
func TestEveryRecordHandledAndCommittedToLogEnd(t *testing.T) {
	const n = 20000
	c, ctx := adaptertest.StartProduced(t, "a", 4, n, 90*time.Second)
	before, _ := clientGoroutines()
	var pauses atomic.Int64
	cons, err := franz.NewConsumer(c.Addrs(), "g", []string{"a"},
		append(stableOpts(testLogger(t)), franz.WithConcurrency(32), franz.WithWindow(500),
			franz.WithPauseHook(func(_ franz.TopicPartition, paused bool) {
				if paused {
					pauses.Add(1)
				}
			}))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(ctx context.Context, m *kgo.Record) error {
		if m.Offset%97 == 0 {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) // some slow, out of order
		}
		rec.add(m)
		return nil
	})
	adaptertest.WaitFor(ctx, t, "all records handled", func() bool { return rec.Distinct() == n })
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "g", "a"); return ok })
	stats := cons.Stats()
	if len(stats) != 4 {
		t.Fatalf("Stats while running: %d partitions, want 4: %+v", len(stats), stats)
	}
	for i, s := range stats {
		if s.Topic != "a" || s.Partition != int32(i) || s.CommitPoint != n/4 ||
			s.Committed != n/4 || s.LogEnd != n/4 || s.Lag != 0 || s.Pending != 0 || s.Commits == 0 {
			t.Errorf("Stats %+v, want commit point, committed and log end %d, nothing pending", s, n/4)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if ok, why := adaptertest.CommittedAtEnd(ctx, c, "g", "a"); !ok {
		t.Fatal(why)
	}
	if d := rec.Dups(); d != 0 {
		t.Errorf("%d duplicates without any crash or rebalance", d)
	}
	if pauses.Load() == 0 {
		t.Error("no partition was paused: the window of 500 never filled")
	}
	if s := cons.Stats(); s != nil {
		t.Errorf("Stats after Run = %v, want nil", s)
	}
	checkNoLeak(t, before)
}

// Issue: a topic written by a transactional producer with committed and
// aborted transactions is consumed to its end, read-committed by default:
// aborted records and markers are gaps (never handed to the handler), and
// the commit reaches the log end (a commit marker is the last offset).
// Read-uncommitted hands out every record, never a marker.
func TestTransactionsMarkersAndAbortedAreGapsCommitToEnd(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("tx", 3))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	var txns []kafkatest.Txn
	for i := range 30 {
		txns = append(txns, kafkatest.Txn{Records: 1 + i%7, Abort: i%3 == 1})
	}
	txns = append(txns, kafkatest.Txn{Records: 5}) // the log ends with commit markers
	if _, err := c.ProduceTxn(ctx, "tx", txns); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{} // values of committed records
	i := 0
	for _, tx := range txns {
		for range tx.Records {
			if !tx.Abort {
				want[strconv.Itoa(i)] = true
			}
			i++
		}
	}
	for _, mode := range []string{"default (read committed)", "read uncommitted"} {
		t.Run(mode, func(t *testing.T) {
			group := adaptertest.NextGroup("tx")
			opts := append(stableOpts(testLogger(t)), franz.WithConcurrency(8))
			if mode == "read uncommitted" {
				opts = append(opts, franz.WithReadCommitted(false))
			}
			cons, err := franz.NewConsumer(c.Addrs(), group, []string{"tx"}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			stop := runConsumer(t, cons, rec.handle)
			adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, "tx"); return ok })
			if err := stop(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			values := rec.Values()
			for v := range values {
				if _, err := strconv.Atoi(v); err != nil {
					t.Fatalf("handler got a non-record value %q (a transaction marker?)", v)
				}
			}
			if mode == "read uncommitted" {
				if len(values) != i {
					t.Errorf("read uncommitted handled %d records, want all %d", len(values), i)
				}
				return
			}
			for v := range want {
				if values[v] == 0 {
					t.Errorf("committed record %s not handled", v)
				}
			}
			for v := range values {
				if !want[v] {
					t.Errorf("aborted record %s handled under read committed", v)
				}
			}
		})
	}
}

// Issue: an assignment restores from the commit metadata: the offsets it
// marks done are not handed to the handler; metadata another client wrote
// is ignored (everything from the committed offset comes).
func TestAssignRestoresFromCommitMetadata(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "r", 1, 40, 60*time.Second)
	done := ordset.New()
	done.AddRange(12, 14)
	done.Add(15)
	done.Add(45) // beyond the log end: must be dropped
	meta, complete, err := metadata.Encode(10, done, 4096)
	if err != nil || !complete {
		t.Fatalf("Encode: %v %v", complete, err)
	}
	// OffsetCommit v10+ names topics by id: stay below it to name "r".
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.MaxVersions(kversion.V3_8_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, tc := range []struct {
		group, meta string
		skipped     []int64
	}{
		{"ours", meta, []int64{12, 13, 15}},
		{"foreign", "written by some other client", nil},
	} {
		t.Run(tc.group, func(t *testing.T) {
			req := kmsg.NewPtrOffsetCommitRequest()
			req.Group = tc.group
			req.Generation = -1
			rt := kmsg.NewOffsetCommitRequestTopic()
			rt.Topic = "r"
			rp := kmsg.NewOffsetCommitRequestTopicPartition()
			rp.Offset, rp.Metadata, rp.LeaderEpoch = 10, &tc.meta, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, admin)
			if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
				t.Fatalf("seed commit: %v %+v", err, resp)
			}
			cons, err := franz.NewConsumer(c.Addrs(), tc.group, []string{"r"}, stableOpts(testLogger(t))...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			stop := runConsumer(t, cons, rec.handle)
			adaptertest.WaitFor(ctx, t, "commit at the log end", func() bool {
				ok, _ := adaptertest.CommittedAtEnd(ctx, c, tc.group, "r")
				return ok
			})
			// Every record was delivered before the commit reached the end.
			var restored int64 = -1
			if st := cons.Stats(); len(st) == 1 {
				restored = st[0].Restored
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			skipped := map[int64]bool{}
			for _, o := range tc.skipped {
				skipped[o] = true
			}
			for o := int64(0); o < 40; o++ {
				want := 1
				if o < 10 || skipped[o] {
					want = 0
				}
				if got := rec.Times(0, o); got != want {
					t.Errorf("offset %d handled %d times, want %d", o, got, want)
				}
			}
			if restored != int64(len(tc.skipped)) {
				t.Errorf("Stats.Restored = %d, want %d", restored, len(tc.skipped))
			}
			com, err := c.Committed(ctx, tc.group, "r")
			if err != nil {
				t.Fatal(err)
			}
			if com[0].Offset != 40 || com[0].Metadata != "" {
				t.Errorf("final commit %+v, want offset 40 with empty metadata (nothing above it is done)", com[0])
			}
		})
	}
}

// Issue: the error policy. Default: log and ack. StopOnError: Run returns
// the error and nothing at or past the failed record is committed. A panic
// is an error.
func TestHandlerErrorPolicies(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "e", 2, 400, 90*time.Second)
	boom := errors.New("boom")
	failing := func(panics bool) func(context.Context, *kgo.Record) error {
		var below atomic.Int64 // partition 1's offsets below 50 handled
		return func(_ context.Context, m *kgo.Record) error {
			switch {
			case m.Partition == 1 && m.Offset < 50:
				below.Add(1)
			case m.Partition == 1 && m.Offset == 50:
				for below.Load() < 50 {
					time.Sleep(time.Millisecond)
				}
				if panics {
					panic("handler bug")
				}
				return boom
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name   string
		policy franz.ErrorPolicy
		panics bool
		want   error
	}{
		{"error is logged and acked by default", franz.LogAndAck, false, nil},
		{"panic stops Run without committing past it", franz.StopOnError, true, franz.ErrPanic},
		{"error stops Run without committing past it", franz.StopOnError, false, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group := strings.ReplaceAll(tc.name, " ", "-")
			cons, err := franz.NewConsumer(c.Addrs(), group, []string{"e"},
				append(stableOpts(slogDiscard()), franz.WithErrorPolicy(tc.policy))...)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				stop := runConsumer(t, cons, failing(tc.panics))
				adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, "e"); return ok })
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				return
			}
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			err = cons.Run(rctx, failing(tc.panics))
			if !errors.Is(err, franz.ErrHandler) || !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want ErrHandler wrapping %v", err, tc.want)
			}
			com, err := c.Committed(ctx, group, "e")
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := com[1]; !ok || got.Offset != 50 {
				t.Errorf("partition 1 committed %+v (present %v), want 50: up to the failed offset, not past it", got, ok)
			}
		})
	}
}

// Issue: a commit carries our metadata (the done offsets above the commit
// point, not the member id kgo writes by default) and the leader epoch of
// the records, while a slow record holds the commit point.
func TestCommitCarriesMetadataAndLeaderEpoch(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "m", 1, 40, 60*time.Second)
	cons, err := franz.NewConsumer(c.Addrs(), "gm", []string{"m"}, stableOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var epoch atomic.Int32
	epoch.Store(-2)
	stop := runConsumer(t, cons, func(_ context.Context, m *kgo.Record) error {
		epoch.Store(m.LeaderEpoch)
		if m.Offset == 5 {
			<-release
		}
		return nil
	})
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var got kmsg.OffsetFetchResponseGroupTopicPartition
	adaptertest.WaitFor(ctx, t, "a commit at 5 with the done offsets above it", func() bool {
		req := kmsg.NewPtrOffsetFetchRequest()
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = "gm"
		req.Groups = append(req.Groups, g)
		resp, err := req.RequestWith(ctx, admin)
		if err != nil || len(resp.Groups) != 1 || len(resp.Groups[0].Topics) != 1 {
			return false
		}
		got = resp.Groups[0].Topics[0].Partitions[0]
		if got.Offset != 5 || got.Metadata == nil {
			return false
		}
		done, err := metadata.Decode(*got.Metadata, 5)
		return err == nil && done != nil && done.Contains(6) && done.Contains(39)
	})
	close(release)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if e := epoch.Load(); got.LeaderEpoch != e || e < 0 {
		t.Errorf("committed leader epoch %d, want the records' %d", got.LeaderEpoch, e)
	}
}

// Issue 12: a commit carries the leader epoch of the record before the
// committed offset, not of the last record fetched: a leader change while a
// slow record holds the commit point leaves the commit at the old epoch
// until the commit point passes the change.
func TestCommitCarriesTheEpochOfTheRecordBeforeIt(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithBrokers(2), kafkatest.WithTopic("e", 1))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	if _, err := c.Produce(ctx, "e", 20); err != nil {
		t.Fatal(err)
	}
	cons, err := franz.NewConsumer(c.Addrs(), "ge", []string{"e"}, stableOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	epochs := map[int64]int32{}
	stop := runConsumer(t, cons, func(_ context.Context, m *kgo.Record) error {
		mu.Lock()
		epochs[m.Offset] = m.LeaderEpoch
		mu.Unlock()
		if m.Offset == 10 {
			<-release
		}
		return nil
	})
	handled := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(epochs) >= n }
	}
	adaptertest.WaitFor(ctx, t, "the first 20 records handled", handled(20))
	// A new leader, a new epoch: the next records carry it.
	leader := c.Fake().LeaderFor("e", 0)
	other := int32(0)
	if leader == 0 {
		other = 1
	}
	if err := c.Fake().MoveTopicPartition("e", 0, other); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Produce(ctx, "e", 20, kafkatest.FirstIndex(20)); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "the next 20 records handled", handled(40))
	mu.Lock()
	old, cur := epochs[9], epochs[39]
	mu.Unlock()
	if cur <= old {
		t.Fatalf("epochs %d then %d after the leader moved, want a higher one", old, cur)
	}
	committed := func(offset int64) kafkatest.Commit {
		var got kafkatest.Commit
		adaptertest.WaitFor(ctx, t, fmt.Sprintf("a commit at %d", offset), func() bool {
			com, err := c.Committed(ctx, "ge", "e")
			got = com[0]
			return err == nil && got.Offset == offset
		})
		return got
	}
	// Record 10 holds the commit point: the commit covers records 0..9.
	if got := committed(10); got.LeaderEpoch != old {
		t.Errorf("commit at 10 carries epoch %d, want %d, record 9's (the last fetched record's is %d)", got.LeaderEpoch, old, cur)
	}
	close(release)
	if got := committed(40); got.LeaderEpoch != cur {
		t.Errorf("commit at 40 carries epoch %d, want %d, record 39's", got.LeaderEpoch, cur)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
