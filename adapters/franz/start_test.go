package franz_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// warnings records the messages logged at Warn and above.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	w.msgs = append(w.msgs, r.Message)
	w.mu.Unlock()
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) has(sub string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// seedCommit commits offset for partition 0 of topic in group, outside any
// generation.
func seedCommit(ctx context.Context, t *testing.T, c *kafkatest.Cluster, group, topic string, offset int64) {
	t.Helper()
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.MaxVersions(kversion.V3_8_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset, rp.LeaderEpoch = offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, admin)
	if err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("seed commit: %v %+v", err, resp)
	}
}

// Issue: the start policy. Without a commit, Earliest starts at the log
// start and Latest at the log end (only records produced afterwards are
// handled). A commit outside the log is logged and replaced: above the log
// end (topic recreated) by the policy, below the log start (retention) by
// the log start.
func TestStartOffsetPolicy(t *testing.T) {
	c, ctx := adaptertest.StartProduced(t, "s", 1, 100, 90*time.Second)
	// Records 0..29 deleted: the log starts at 30.
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "s"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = 30
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	dr.TimeoutMillis = 5000
	if resp, err := dr.RequestWith(ctx, admin); err != nil || resp.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("delete records: %v %+v", err, resp)
	}

	for _, tc := range []struct {
		name   string
		start  franz.StartOffset
		commit int64 // -1: none
		first  int64 // first offset handled; -1: the log end before the run
		warn   string
	}{
		{"earliest without commit starts at the log start", franz.Earliest, -1, 30, ""},
		{"latest without commit starts at the log end", franz.Latest, -1, -1, ""},
		{"commit below the log start starts at the log start", franz.Latest, 10, 30, "below log start"},
		{"commit above the log end applies earliest", franz.Earliest, 500, 30, "above log end"},
		{"commit above the log end applies latest", franz.Latest, 500, -1, "above log end"},
		{"commit inside the log is where it starts", franz.Latest, 60, 60, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ends, err := c.LogEnd(ctx, "s")
			if err != nil {
				t.Fatal(err)
			}
			first, end := tc.first, ends[0]+10 // each run produces 10 more
			if first < 0 {
				first = ends[0]
			}
			group := adaptertest.NextGroup("start")
			if tc.commit >= 0 {
				seedCommit(ctx, t, c, group, "s", tc.commit)
			}
			w := &warnings{}
			cons, err := franz.NewConsumer(c.Addrs(), group, []string{"s"},
				append(stableOpts(slog.New(w)), franz.WithStartOffset(tc.start))...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			stop := runConsumer(t, cons, rec.handle)
			// Owned and started: then 10 more records arrive.
			adaptertest.WaitFor(ctx, t, "the partition owned", func() bool { return len(cons.Stats()) == 1 })
			if _, err := c.Produce(ctx, "s", 10, kafkatest.FirstIndex(int(end))); err != nil {
				t.Fatal(err)
			}
			adaptertest.WaitFor(ctx, t, "commit at the new log end", func() bool {
				ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, "s")
				return ok
			})
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			for o := int64(0); o < end; o++ {
				want := 0
				if o >= first {
					want = 1
				}
				if got := rec.Times(0, o); got != want {
					t.Errorf("offset %d handled %d times, want %d", o, got, want)
				}
			}
			if tc.warn != "" && !w.has(tc.warn) {
				t.Errorf("no warning containing %q; got %v", tc.warn, w.msgs)
			}
			if tc.warn == "" && len(w.msgs) > 0 {
				t.Errorf("unexpected warnings: %v", w.msgs)
			}
		})
	}
}

// allLogs records every line with its level. Safe for concurrent use.
type allLogs struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *allLogs) Enabled(context.Context, slog.Level) bool { return true }
func (h *allLogs) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *allLogs) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *allLogs) WithGroup(string) slog.Handler      { return h }

// count returns how many lines at level contain sub.
func (h *allLogs) count(level slog.Level, sub string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.recs {
		if r.Level == level && strings.Contains(r.Message, sub) {
			n++
		}
	}
	return n
}

// Issue 25: the log bounds of an assignment cannot be read for several
// RequestTimeouts (the broker cuts every ListOffsets connection, or answers
// NOT_LEADER_OR_FOLLOWER for the partitions: errors retrying can fix), then
// the broker heals: Run goes on, every record is handled and committed, and
// the failure is logged at Warn once, the retries at Debug.
func TestStartReadsFailingForAWhile(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(kmsg.Request) (kmsg.Response, error)
	}{
		{"connection cut", func(kmsg.Request) (kmsg.Response, error) { return nil, errors.New("connection cut") }},
		{"not leader", func(kreq kmsg.Request) (kmsg.Response, error) {
			return listOffsetsFailing(kreq, kerr.NotLeaderForPartition.Code), nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 100
			c, ctx := adaptertest.StartProduced(t, "bounds-cut", 2, n, 60*time.Second)
			var healed atomic.Bool
			c.Fake().ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				c.Fake().KeepControl()
				if healed.Load() {
					return nil, nil, false
				}
				resp, err := tc.fail(kreq)
				return resp, err, true
			})
			logs := &allLogs{}
			cons, err := franz.NewConsumer(c.Addrs(), "bounds-cut-group", []string{"bounds-cut"},
				append(stableOpts(slog.New(logs)), franz.WithRetryBackoff(10*time.Millisecond),
					franz.WithRequestTimeout(200*time.Millisecond))...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			stop := runConsumer(t, cons, rec.handle)
			const failing = "reading log offsets failed"
			adaptertest.WaitFor(ctx, t, "the log-bounds reads failing several times", func() bool {
				return logs.count(slog.LevelWarn, failing)+logs.count(slog.LevelDebug, failing) >= 4
			})
			healed.Store(true)
			adaptertest.WaitFor(ctx, t, "every record handled and committed", func() bool {
				ok, _ := adaptertest.CommittedAtEnd(ctx, c, "bounds-cut-group", "bounds-cut")
				return ok && rec.Distinct() == n
			})
			if err := stop(); err != nil {
				t.Fatalf("Run = %v", err)
			}
			if w := logs.count(slog.LevelWarn, failing); w != 1 {
				t.Errorf("%d Warn lines for the failing reads, want 1", w)
			}
		})
	}
}

// listOffsetsFailing answers a ListOffsets request with code for every
// partition it names.
func listOffsetsFailing(kreq kmsg.Request, code int16) *kmsg.ListOffsetsResponse {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// runUntilItEnds runs cons until Run returns by itself, and returns its
// error; Run still running when ctx (the test's hang bound) ends fails the
// test.
func runUntilItEnds(ctx context.Context, t *testing.T, cons *franz.Consumer, h func(context.Context, *kgo.Record) error) error {
	t.Helper()
	runCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- cons.Run(runCtx, h) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		cancel()
		<-errc
		t.Fatal("Run still running at the test's hang bound")
		return nil
	}
}

// Issue (fatal): the log bounds of a new assignment cannot be read because
// the broker refuses them for good (TOPIC_AUTHORIZATION_FAILED on
// ListOffsets): Run ends at once, without retrying, with an error wrapping
// ErrAssign and the broker's error and naming the partitions; nothing is
// handled and the commit that was there stays (nothing past what was
// handled). Before, the read was retried until the assignment ended: Run
// ran on, consuming nothing.
func TestStartReadAuthorizationErrorEndsRun(t *testing.T) {
	const topic, group = "start-authz", "start-authz-group"
	c, ctx := adaptertest.StartProduced(t, topic, 2, 100, 30*time.Second)
	seedCommit(ctx, t, c, group, topic, 10)
	before, _ := clientGoroutines()
	var reads atomic.Int32
	c.Fake().ControlKey(int16(kmsg.ListOffsets), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.Fake().KeepControl()
		reads.Add(1)
		return listOffsetsFailing(kreq, kerr.TopicAuthorizationFailed.Code), nil, true
	})
	logs := &allLogs{}
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic},
		append(stableOpts(slog.New(logs)), franz.WithRetryBackoff(10*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	err = runUntilItEnds(ctx, t, cons, rec.handle)
	if !errors.Is(err, franz.ErrAssign) || !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("Run = %v, want an error wrapping ErrAssign and TOPIC_AUTHORIZATION_FAILED", err)
	}
	t.Logf("Run = %v", err)
	if !strings.Contains(err.Error(), topic+"[0 1]") {
		t.Errorf("Run = %v, want it to name %s[0 1]", err, topic)
	}
	if n := logs.count(slog.LevelWarn, "retrying") + logs.count(slog.LevelDebug, "retrying"); n != 0 {
		t.Errorf("%d retry lines, want none", n)
	}
	if n := reads.Load(); n > 2 { // one attempt: the log starts and ends
		t.Errorf("%d ListOffsets requests, want at most 2 (no retry)", n)
	}
	if n := rec.Count(); n != 0 {
		t.Errorf("%d records handled, want none", n)
	}
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	if len(com) != 1 || com[0].Offset != 10 {
		t.Errorf("committed %v, want only partition 0 at 10 (the seeded commit)", com)
	}
	checkNoLeak(t, before)
}

// Issue (fatal): the committed offsets of a new assignment cannot be read
// because the broker refuses them for good (OffsetFetch answering
// TOPIC_AUTHORIZATION_FAILED for the partitions, or
// GROUP_AUTHORIZATION_FAILED for the group): kgo hands the error to the poll
// loop as a fetch error, and Run ends with an error wrapping ErrClient and
// the broker's error, naming the partition when the error is a partition's;
// nothing is handled. A non-retriable partition error that is not an
// authorization one (UNKNOWN_SERVER_ERROR, for partition 0 of 2) makes kgo
// drop the partition from the member's assignment: Run ends with ErrAssign
// naming it (it used to go on without the partition, logging a Warn), and
// nothing of it is handled.
func TestCommittedReadErrorEndsRun(t *testing.T) {
	for _, tc := range []struct {
		name       string
		group      bool  // the error at the group level, not the partitions'
		readable   int32 // a partition answered "no commit" (-1: none)
		want       *kerr.Error
		sentinel   error
		wantInText string
	}{
		{"partitions", false, -1, kerr.TopicAuthorizationFailed, franz.ErrClient, "fetch-authz["},
		{"group", true, -1, kerr.GroupAuthorizationFailed, franz.ErrClient, "client error: unable to join group session: "},
		{"dropped", false, 1, kerr.UnknownServerError, franz.ErrAssign, "fetch-authz[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic, group = "fetch-authz", "fetch-authz-group"
			c, ctx := adaptertest.StartProduced(t, topic, 2, 100, 30*time.Second)
			c.Fake().ControlKey(int16(kmsg.OffsetFetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
				c.Fake().KeepControl()
				resp := offsetFetchFailing(kreq, tc.want.Code, tc.group)
				for i := range resp.Groups {
					for j := range resp.Groups[i].Topics {
						for k := range resp.Groups[i].Topics[j].Partitions {
							if p := &resp.Groups[i].Topics[j].Partitions[k]; p.Partition == tc.readable {
								p.ErrorCode, p.Offset = 0, -1 // no commit: consumed from the start
							}
						}
					}
				}
				return resp, nil, true
			})
			cons, err := franz.NewConsumer(c.Addrs(), group, []string{topic}, stableOpts(slogDiscard())...)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			err = runUntilItEnds(ctx, t, cons, rec.handle)
			if !errors.Is(err, tc.sentinel) || !errors.Is(err, tc.want) {
				t.Fatalf("Run = %v, want an error wrapping %v and %v", err, tc.sentinel, tc.want)
			}
			if !strings.Contains(err.Error(), tc.wantInText) {
				t.Errorf("Run = %v, want it to contain %q", err, tc.wantInText)
			}
			for po := range rec.Seen() {
				if po.P != tc.readable {
					t.Fatalf("partition %d was handled (offset %d), yet its committed offset was never read", po.P, po.O)
				}
			}
		})
	}
}

// offsetFetchFailing answers an OffsetFetch request with code, for the
// group if group is set, else for every partition it names.
func offsetFetchFailing(kreq kmsg.Request, code int16, group bool) *kmsg.OffsetFetchResponse {
	req := kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	pcode := code
	if group {
		resp.ErrorCode, pcode = code, 0
	}
	for _, g := range req.Groups {
		rg := kmsg.NewOffsetFetchResponseGroup()
		rg.Group = g.Group
		if group {
			rg.ErrorCode = code
		}
		for _, t := range g.Topics {
			rt := kmsg.NewOffsetFetchResponseGroupTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				rp.Partition, rp.ErrorCode = p, pcode
				rt.Partitions = append(rt.Partitions, rp)
			}
			rg.Topics = append(rg.Topics, rt)
		}
		resp.Groups = append(resp.Groups, rg)
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p, pcode
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}
