package confluent_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// Issue: a committed offset outside the log applies the start policy, as
// the kafka-go adapter does, logged at Warn naming the partition, the
// committed offset and the log start and end. Above the log end (the topic
// was recreated or truncated: fetching there would return nothing for
// ever) and below the log start (deleted by retention), under Earliest and
// Latest.
func TestCommitOutsideTheLogAppliesTheStartPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		policy    confluent.StartOffset
		committed int64 // the group's commit on partition 0
		logStart  int64 // records deleted below it
		after     int   // produced once the member consumes
		want      []int64
		warn      string
	}{
		// 45 records, committed 100: the commit is for another log.
		{"above the log end, Earliest", confluent.Earliest, 100, 0, 0, span(0, 45), "above the log end"},
		{"above the log end, Latest", confluent.Latest, 100, 0, 5, span(45, 50), "above the log end"},
		// 45 records, committed 10, records below 30 deleted.
		{"below the log start, Earliest", confluent.Earliest, 10, 30, 0, span(30, 45), "below the log start"},
		{"below the log start, Latest", confluent.Latest, 10, 30, 5, span(45, 50), "below the log start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "outside"
			group := adaptertest.NextGroup("outside")
			c, ctx := adaptertest.StartProduced(t, topic, 1, 45, 60*time.Second)
			if tc.logStart > 0 {
				if err := c.Fake().DeleteRecords(topic, 0, tc.logStart); err != nil {
					t.Fatal(err)
				}
			}
			commitAt(t, c.Addrs(), group, topic, 0, tc.committed)
			logs := newCapture()
			cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
				append(stableOpts(slog.New(logs)), confluent.WithStartOffset(tc.policy),
					confluent.WithReadCommitted(false))...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			stop := runConsumer(t, cons, rec.handle)
			adaptertest.WaitFor(ctx, t, "the partition to be assigned", func() bool { return len(cons.Stats()) == 1 })
			if tc.after > 0 {
				if _, err := c.Produce(ctx, topic, tc.after, kafkatest.FirstIndex(45)); err != nil {
					t.Fatal(err)
				}
			}
			adaptertest.WaitFor(ctx, t, "the commit at the log end", func() bool {
				ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
				return ok
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			seen := rec.Seen()
			if len(seen) != len(tc.want) {
				t.Errorf("handled %d offsets, want %d (%v)", len(seen), len(tc.want), tc.want)
			}
			for _, o := range tc.want {
				if seen[adaptertest.PO{P: 0, O: o}] == 0 {
					t.Errorf("offset %d not handled", o)
				}
			}
			warns := logs.records(func(r logRecord) bool {
				return r.level == slog.LevelWarn && strings.Contains(r.msg, tc.warn)
			})
			if len(warns) != 1 {
				t.Fatalf("%d warnings %q, want 1", len(warns), tc.warn)
			}
			w := warns[0].attrs
			for k, v := range map[string]any{"topic": topic, "partition": int64(0), "committed": tc.committed,
				"log_start": tc.logStart, "log_end": int64(45)} {
				if fmt.Sprint(w[k]) != fmt.Sprint(v) {
					t.Errorf("warning's %s = %v, want %v (%v)", k, w[k], v, w)
				}
			}
		})
	}
}

// span returns the offsets from..to-1.
func span(from, to int64) []int64 {
	var out []int64
	for o := from; o < to; o++ {
		out = append(out, o)
	}
	return out
}

// Issue: under read_committed, the Latest start policy starts at the last
// stable offset, not the high watermark: the records of a transaction open
// at the assignment are handled once it commits (from the high watermark,
// they would be skipped).
func TestLatestReadCommittedStartsAtTheLastStableOffset(t *testing.T) {
	const (
		topic = "latest-lso"
		group = "latest-lso-group"
	)
	c, ctx := adaptertest.StartProduced(t, topic, 1, 10, 60*time.Second)
	end, err := c.OpenTxn(ctx, topic, 5, kafkatest.FirstIndex(10))
	if err != nil {
		t.Fatal(err)
	}
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(testLogger(t)), confluent.WithStartOffset(confluent.Latest))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, rec.handle)
	adaptertest.WaitFor(ctx, t, "the partition to be assigned", func() bool { return len(cons.Stats()) == 1 })
	if err := end(ctx, true); err != nil {
		t.Fatal(err)
	}
	adaptertest.WaitFor(ctx, t, "the transaction's records handled", func() bool { return rec.Distinct() == 5 })
	adaptertest.WaitFor(ctx, t, "the commit at the log end", func() bool {
		ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic)
		return ok
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for o := int64(10); o < 15; o++ {
		if rec.Times(0, o) != 1 {
			t.Fatalf("offset %d handled %d times, want once", o, rec.Times(0, o))
		}
	}
}
