package kafkago_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark/metadata"
)

// Issue: every produced message is handled and the final committed offsets
// equal the log end offsets, with handlers finishing in random order.
func TestEveryMessageHandledAndCommittedToLogEnd(t *testing.T) {
	const n = 20000
	c, ctx := adaptertest.StartProduced(t, "a", 4, n, 90*time.Second)
	cons, err := kafkago.NewConsumer(c.Addrs(), "g", []string{"a"},
		append(fastOpts(testLogger(t)), kafkago.WithConcurrency(32), kafkago.WithWindow(2000),
			// A loaded machine (go test runs packages in parallel) can
			// delay a heartbeat past fastOpts' 1.5s: the rebalance that
			// follows redelivers, and this test is about a run without one.
			kafkago.WithSessionTimeout(10*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(ctx context.Context, m kafka.Message) error {
		if m.Offset%97 == 0 {
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) // some slow, out of order
		}
		rec.add(m)
		return nil
	})
	adaptertest.WaitFor(ctx, t, "all messages handled", func() bool { return rec.Distinct() == n })
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, "g", "a"); return ok })
	// The only member owns the 4 partitions, everything handled and committed.
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
	if s := cons.Stats(); s != nil {
		t.Errorf("Stats after Run = %v, want nil", s)
	}
}

// Issue: a topic written by a transactional producer with committed and
// aborted transactions is consumed read-committed to its end, and the commit
// reaches the log end offset (including a trailing marker).
func TestReadCommittedSkipsAbortedAndMarkersAndCommitsToEnd(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("tx", 3))
	ctx := adaptertest.Timeout(t, 90*time.Second)
	var txns []kafkatest.Txn
	for i := range 30 {
		txns = append(txns, kafkatest.Txn{Records: 1 + i%7, Abort: i%3 == 1})
	}
	txns = append(txns, kafkatest.Txn{Records: 5}) // the log ends with commit markers
	committed, err := c.ProduceTxn(ctx, "tx", txns)
	if err != nil {
		t.Fatal(err)
	}
	// The values of committed records, in ProduceTxn's numbering.
	want := map[string]bool{}
	i := 0
	for _, tx := range txns {
		for range tx.Records {
			if !tx.Abort {
				want[strconv.Itoa(i)] = true
			}
			i++
		}
	}
	var wantN int64
	for _, n := range committed {
		wantN += n
	}
	if int(wantN) != len(want) {
		t.Fatalf("ProduceTxn committed %d, expected %d", wantN, len(want))
	}

	for _, mode := range []string{"read_committed", "read_uncommitted"} {
		t.Run(mode, func(t *testing.T) {
			group := "g-" + mode
			opts := append(fastOpts(testLogger(t)), kafkago.WithConcurrency(8))
			opts = append(opts, kafkago.WithReadCommitted(mode == "read_committed")) // the default is read_committed
			cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{"tx"}, opts...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error {
				rec.add(m)
				return nil
			})
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
			if mode == "read_committed" {
				for v := range want {
					if values[v] == 0 {
						t.Errorf("committed record %s not handled", v)
					}
				}
				for v := range values {
					if !want[v] {
						t.Errorf("aborted record %s handled under read_committed", v)
					}
				}
			} else if len(values) != i {
				t.Errorf("read_uncommitted handled %d records, want all %d", len(values), i)
			}
		})
	}
}

// Issue: restore on assign skips the offsets the commit metadata marks done;
// foreign metadata is ignored (everything from the committed offset comes).
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
	cl := &kafka.Client{Addr: kafka.TCP(c.Addrs()...)}
	for _, tc := range []struct {
		group, meta string
		skipped     []int64
	}{
		{"ours", meta, []int64{12, 13, 15}},
		{"foreign", "written by some other client", nil},
	} {
		t.Run(tc.group, func(t *testing.T) {
			resp, err := cl.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: tc.group, GenerationID: -1,
				Topics: map[string][]kafka.OffsetCommit{"r": {{Partition: 0, Offset: 10, Metadata: tc.meta}}}})
			if err != nil || resp.Topics["r"][0].Error != nil {
				t.Fatalf("seed commit: %v %+v", err, resp)
			}
			cons, err := kafkago.NewConsumer(c.Addrs(), tc.group, []string{"r"}, fastOpts(testLogger(t))...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			var restored atomic.Int64
			stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error {
				rec.add(m)
				return nil
			})
			adaptertest.WaitFor(ctx, t, "commit at the log end", func() bool {
				for _, s := range cons.Stats() {
					restored.Store(s.Restored)
				}
				ok, _ := adaptertest.CommittedAtEnd(ctx, c, tc.group, "r")
				return ok
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			skipped := map[int64]bool{}
			for _, o := range tc.skipped {
				skipped[o] = true
			}
			for o := int64(0); o < 40; o++ {
				got := rec.Times(0, o)
				want := 1
				if o < 10 || skipped[o] {
					want = 0
				}
				if got != want {
					t.Errorf("offset %d handled %d times, want %d", o, got, want)
				}
			}
			if restored.Load() != int64(len(tc.skipped)) {
				t.Errorf("Stats.Restored = %d, want %d", restored.Load(), len(tc.skipped))
			}
		})
	}
}

// Issue: the error policy. Default: log and ack. StopOnError: Run returns
// the error and nothing at or past the failed message is committed. A panic
// is an error.
func TestHandlerErrorPolicies(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "e", 2, 400, 90*time.Second)
	boom := errors.New("boom")
	failing := func(panics bool) func(context.Context, kafka.Message) error {
		var below atomic.Int64 // partition 1's offsets below 50 handled
		return func(_ context.Context, m kafka.Message) error {
			switch {
			case m.Partition == 1 && m.Offset < 50:
				below.Add(1)
			case m.Partition == 1 && m.Offset == 50:
				// Fail only once everything before is handled, so that the
				// commit point is exactly 50 (not a race with the workers).
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
		policy kafkago.ErrorPolicy
		panics bool
		want   error
	}{
		{"error is logged and acked by default", kafkago.LogAndAck, false, nil},
		{"panic is logged and acked by default", kafkago.LogAndAck, true, nil},
		{"error stops Run without committing past it", kafkago.StopOnError, false, boom},
		{"panic stops Run without committing past it", kafkago.StopOnError, true, kafkago.ErrPanic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			group := strings.ReplaceAll(tc.name, " ", "-")
			cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{"e"},
				append(fastOpts(slogDiscard()), kafkago.WithErrorPolicy(tc.policy))...)
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
			if !errors.Is(err, kafkago.ErrHandler) || !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want ErrHandler wrapping %v", err, tc.want)
			}
			com, err := c.Committed(ctx, group, "e")
			if err != nil {
				t.Fatal(err)
			}
			// Everything below 50 was handled before 50 failed: the final
			// commit is exactly 50, never past it.
			if got, ok := com[1]; !ok || got.Offset != 50 {
				t.Errorf("partition 1 committed %+v (present %v), want 50: up to the failed offset, not past it", got, ok)
			}
		})
	}
}
