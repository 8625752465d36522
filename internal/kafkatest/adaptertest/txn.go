package adaptertest

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/internal/kafkatest"
)

// OutputValue is the value of the output of input record (p, o) in the
// exactly-once tests: CheckOutputsOnce counts outputs by it.
func OutputValue(p int32, o int64) []byte { return fmt.Appendf(nil, "%d/%d", p, o) }

// CheckOutputsOnce reads topic out with read_committed isolation and fails
// the test unless it holds exactly one record with OutputValue(p, o) for
// each input offset o below ends[p] (an input topic without gaps), and no
// record whose value starts with "poison" (the output of a failed call).
func CheckOutputsOnce(ctx context.Context, t testing.TB, c *kafkatest.Cluster, out string, ends map[int32]int64) {
	t.Helper()
	CheckOutputsOnceExcept(ctx, t, c, out, ends, nil)
}

// CheckOutputsOnceExcept is CheckOutputsOnce for the inputs other than
// those skip reports (nil: none), which must have no output.
func CheckOutputsOnceExcept(ctx context.Context, t testing.TB, c *kafkatest.Cluster, out string, ends map[int32]int64,
	skip func(p int32, o int64) bool) {
	t.Helper()
	if err := c.WaitStable(ctx, out); err != nil {
		t.Fatal(err)
	}
	recs, err := c.ReadCommitted(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]int)
	poison := 0
	for _, r := range recs {
		if strings.HasPrefix(string(r.Value), "poison") {
			poison++
			continue
		}
		seen[string(r.Value)]++
	}
	missing, dups, want := 0, 0, 0
	for p, end := range ends {
		for o := range end {
			if skip != nil && skip(p, o) {
				if n := seen[string(OutputValue(p, o))]; n > 0 {
					t.Errorf("output %q: %d outputs of input %d/%d, which has none", out, n, p, o)
				}
				continue
			}
			want++
			switch n := seen[string(OutputValue(p, o))]; {
			case n == 0:
				missing++
			case n > 1:
				dups += n - 1
			}
		}
	}
	t.Logf("output %q: %d records read committed for %d inputs", out, len(recs), want)
	if missing > 0 || dups > 0 || poison > 0 || len(seen) != want {
		t.Errorf("output %q read committed: %d missing, %d duplicates, %d outputs of failed calls, %d distinct for %d inputs",
			out, missing, dups, poison, len(seen), want)
	}
}

// TxnDeadLetterConsumer is what CheckTxnDeadLetters needs of an adapter.
type TxnDeadLetterConsumer struct {
	// Start runs an exactly-once consumer (transactional id id, no retry,
	// dead letters to the topic dlq) of src in group. Its handler calls
	// handled(p, o) for each call; when that returns true it produces an
	// output with the value "poison p/o" to out and fails, else it
	// produces OutputValue(p, o) to out and returns nil. stop ends the
	// consumer and returns Run's error.
	Start func(t *testing.T, addrs []string, group, id, src, out, dlq string,
		handled func(p int32, o int64) (fail bool)) (stop func() error)
}

// CheckTxnDeadLetters (issue 23): in the exactly-once mode a dead-lettered
// message's dead-letter record goes in the transaction that commits the
// message as done. A first consumer whose transactional offset commits the
// broker refuses (every transaction aborted) dead-letters the failing
// messages, and nothing of it is visible read-committed, neither outputs
// nor dead-letter records; it stops. A second consumer with the same
// transactional id, one of whose AddOffsetsToTxn and one of whose commits
// the broker refuses, gets the failing messages again (redelivered), dead-letters them
// again and commits everything to the log end: read-committed, the output
// topic holds each other input's output once and nothing of the failing
// ones, the dead-letter topic exactly one record per failing message (its
// headers name it; the partition rule holds), and read-uncommitted shows
// the aborted transactions' dead-letter records.
func CheckTxnDeadLetters(t *testing.T, tc TxnDeadLetterConsumer) {
	t.Helper()
	const src, out, dlq, n = "txd-in", "txd-out", "txd-dlq", 600
	c := kafkatest.Start(t, kafkatest.WithTopic(src, 3), kafkatest.WithTopic(out, 2), kafkatest.WithTopic(dlq, 2))
	ctx := Timeout(t, 90*time.Second)
	if _, err := c.Produce(ctx, src, n); err != nil {
		t.Fatal(err)
	}
	ends, err := c.LogEnd(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	failing := func(_ int32, o int64) bool { return o%25 == 0 } // offset 0 of each partition too
	var (
		mu    sync.Mutex
		calls = map[[2]int64]int{}
	)
	poison := 0
	for p, end := range ends {
		for o := range end {
			if failing(p, o) {
				poison++
			}
		}
	}
	handled := func(p int32, o int64) bool {
		mu.Lock()
		calls[[2]int64{int64(p), o}]++
		mu.Unlock()
		return failing(p, o)
	}
	// callsOfFailing returns the fewest handler calls of a failing message.
	callsOfFailing := func() int {
		mu.Lock()
		defer mu.Unlock()
		least := -1
		for p, end := range ends {
			for o := range end {
				if failing(p, o) {
					if k := calls[[2]int64{int64(p), o}]; least < 0 || k < least {
						least = k
					}
				}
			}
		}
		return least
	}
	group := NextGroup("txd")

	// The first consumer: every transactional offset commit refused.
	refuse := c.Fake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.TxnOffsetCommit}, Err: kerr.InvalidTxnState, Count: -1})
	stop := tc.Start(t, c.Addrs(), group, "txd-1", src, out, dlq, handled)
	WaitFor(ctx, t, "every failing message dead-lettered and transactions refused", func() bool {
		return callsOfFailing() >= 1 && refuse.Hits() >= 3
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	refuse.Remove()
	for _, topic := range []string{out, dlq} {
		if err := c.WaitStable(ctx, topic); err != nil {
			t.Fatal(err)
		}
		recs, err := c.ReadCommitted(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 {
			t.Fatalf("%d records of %q visible read-committed after every transaction was refused", len(recs), topic)
		}
	}
	if com, err := c.Committed(ctx, group, src); err != nil {
		t.Fatal(err)
	} else {
		for p, cm := range com {
			if cm.Offset > 0 {
				t.Fatalf("partition %d committed at %d though every transaction was refused", p, cm.Offset)
			}
		}
	}

	// The second consumer: a transaction's AddOffsetsToTxn refused once,
	// then the commit of one.
	addRefused := c.Fake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.AddOffsetsToTxn}, Err: kerr.InvalidTxnState, Count: 1})
	defer addRefused.Remove()
	endRefused := c.Fake().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.EndTxn}, Err: kerr.InvalidTxnState, Count: 1,
		When: func(r kmsg.Request) bool { return r.(*kmsg.EndTxnRequest).Commit }})
	defer endRefused.Remove()
	stop = tc.Start(t, c.Addrs(), group, "txd-1", src, out, dlq, handled)
	WaitFor(ctx, t, "everything committed", func() bool {
		ok, _ := CommittedAtEnd(ctx, c, group, src)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if a, e := addRefused.Hits(), endRefused.Hits(); a != 1 || e != 1 {
		t.Fatalf("the refused AddOffsetsToTxn and commit were hit %d and %d times, want 1 each", a, e)
	}
	if k := callsOfFailing(); k < 2 {
		t.Errorf("a failing message was handled %d times, want 2 (redelivered after the aborts)", k)
	}
	CheckOutputsOnceExcept(ctx, t, c, out, ends, failing)
	if err := c.WaitStable(ctx, dlq); err != nil {
		t.Fatal(err)
	}
	recs, err := c.ReadCommitted(ctx, dlq)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[[2]int64]int{}
	for _, r := range recs {
		var part, off []byte
		var topic string
		for _, h := range r.Headers {
			switch h.Key {
			case "kafka_dlt-original-topic":
				topic = string(h.Value)
			case "kafka_dlt-original-partition":
				part = h.Value
			case "kafka_dlt-original-offset":
				off = h.Value
			}
		}
		if topic != src || len(part) != 4 || len(off) != 8 {
			t.Fatalf("dead-letter record without its origin headers: %v", r.Headers)
		}
		p, o := int32(binary.BigEndian.Uint32(part)), int64(binary.BigEndian.Uint64(off))
		if !failing(p, o) {
			t.Errorf("dead-letter record of %d/%d, which did not fail", p, o)
		}
		if want := WantDeadLetterPartition(p, r.Key, 2); r.Partition != want {
			t.Errorf("dead-letter record of %d/%d in partition %d, want %d", p, o, r.Partition, want)
		}
		seen[[2]int64{int64(p), o}]++
	}
	for k, v := range seen {
		if v != 1 {
			t.Errorf("%d dead-letter records of %d/%d visible read-committed, want 1", v, k[0], k[1])
		}
	}
	if len(seen) != poison {
		t.Errorf("dead-letter records of %d messages visible read-committed, want %d", len(seen), poison)
	}
	t.Logf("%d failing messages, least handler calls of one %d; %d dead-letter records read committed",
		poison, callsOfFailing(), len(recs))
	// The aborted transactions wrote dead-letter records that
	// read_uncommitted sees.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.ReadN(rctx, dlq, len(recs)+1); err != nil {
		t.Errorf("read_uncommitted sees no more than the %d committed dead-letter records: no aborted transaction wrote any (%v)", len(recs), err)
	}
}
