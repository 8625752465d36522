package engine_test

// Tests of a partition's life cycle in a session: its states, the revoke
// budget and the commit retries at revoke, the loss, and the watchdogs of
// the commit tick. The commit ticks are driven by Session.Tick (the loop's
// own ticker is an hour).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// logRecord is one captured log record.
type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]slog.Value
}

// recorder is a slog handler that keeps every record (Debug and above).
type recorder struct {
	mu   sync.Mutex
	recs []logRecord
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{level: r.Level, msg: r.Message, attrs: map[string]slog.Value{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, rec)
	h.mu.Unlock()
	return nil
}
func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

// find returns the records at level whose message contains substr.
func (h *recorder) find(level slog.Level, substr string) []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRecord
	for _, r := range h.recs {
		if r.level == level && strings.Contains(r.msg, substr) {
			out = append(out, r)
		}
	}
	return out
}

// call is one CommitFunc call as the fake coordinator saw it.
type call struct {
	offs        []engine.Offset
	deadline    time.Time
	hasDeadline bool
	ctxErr      error // ctx.Err() when the call returned
}

// scripted is a CommitFunc whose answer to the n-th call (from 0) is
// answer(n, ctx, offs).
type scripted struct {
	mu     sync.Mutex
	calls  []call
	answer func(n int, ctx context.Context, offs []engine.Offset) ([]error, error)
}

func (s *scripted) commit(ctx context.Context, offs []engine.Offset) ([]error, error) {
	s.mu.Lock()
	n := len(s.calls)
	d, ok := ctx.Deadline()
	s.calls = append(s.calls, call{offs: append([]engine.Offset(nil), offs...), deadline: d, hasDeadline: ok})
	s.mu.Unlock()
	errs, err := s.answer(n, ctx, offs)
	s.mu.Lock()
	s.calls[n].ctxErr = ctx.Err()
	s.mu.Unlock()
	return errs, err
}

func (s *scripted) all() []call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]call(nil), s.calls...)
}

func accept(offs []engine.Offset) ([]error, error) { return make([]error, len(offs)), nil }

func refuse(offs []engine.Offset, err error) ([]error, error) {
	errs := make([]error, len(offs))
	for i := range errs {
		errs[i] = err
	}
	return errs, nil
}

// blockUntilDone blocks until ctx ends, then answers ctx.Err() for the
// whole request (a coordinator that never answers).
func blockUntilDone(ctx context.Context) ([]error, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

var errRebalancing = errors.New("rebalance in progress")

// started returns an engine with c and handler h, stopped at cleanup.
func started(t *testing.T, c engine.Config, h engine.Handler[int64]) *engine.Engine[int64] {
	t.Helper()
	e := engine.New(c, h, nil)
	e.Start(context.Background())
	t.Cleanup(e.Stop)
	return e
}

func deliverRange(t *testing.T, s *engine.Session[int64], p *engine.Part, from, to int64) {
	t.Helper()
	for o := from; o < to; o++ {
		if err := s.Deliver(context.Background(), p, o, o); err != nil {
			t.Fatal(err)
		}
	}
}

// within runs f and fails the test if it does not return in d (a hang
// guard, not a timing assertion).
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return in %v", what, d)
	}
}

func ok(context.Context, int64) error { return nil }

func TestPartitionStates(t *testing.T) {
	e := started(t, cfg(), ok)
	var during []engine.State
	var p *engine.Part
	sc := &scripted{answer: func(_ int, _ context.Context, offs []engine.Offset) ([]error, error) {
		during = append(during, p.State())
		return accept(offs)
	}}
	s := e.NewSession(sc.commit)
	defer s.Close(context.Background())
	p, _ = s.Assign(tp, 0, "", -1)
	if got := p.State(); got != engine.StateAssigned || p.Revoked() {
		t.Fatalf("after Assign: %v (revoked %v), want assigned", got, p.Revoked())
	}
	deliverRange(t, s, p, 0, 3)
	if got := p.State(); got != engine.StateActive {
		t.Fatalf("after a delivery: %v, want active", got)
	}
	if !p.SetPaused(true) || p.State() != engine.StatePaused {
		t.Fatalf("SetPaused(true): state %v, want paused", p.State())
	}
	if p.SetPaused(true) {
		t.Fatal("SetPaused(true) twice reported a change")
	}
	if st := e.Stats(); len(st) != 1 || st[0].State != engine.StatePaused {
		t.Fatalf("Stats %+v, want the paused state", st)
	}
	if !p.SetPaused(false) || p.State() != engine.StateActive {
		t.Fatalf("SetPaused(false): state %v, want active", p.State())
	}
	p.SetPaused(true) // a paused partition can be revoked too
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	s.Revoke(context.Background(), tp)
	if len(during) != 1 || during[0] != engine.StateRevoking {
		t.Fatalf("states seen by the commit at revoke %v, want [revoking]", during)
	}
	if p.State() != engine.StateClosed || !p.Revoked() {
		t.Fatalf("after Revoke: %v (revoked %v), want closed", p.State(), p.Revoked())
	}
	if p.SetPaused(false) || p.SetPaused(true) || p.State() != engine.StateClosed {
		t.Fatalf("SetPaused changed a closed partition: %v", p.State())
	}

	q, _ := s.Assign(engine.TopicPartition{Topic: "t", Partition: 1}, 0, "", -1)
	q.SetPaused(true)
	s.Lose(q.TP)
	if q.State() != engine.StateLost || !q.Revoked() || !q.Watermark().Closed() {
		t.Fatalf("after Lose: %v (revoked %v)", q.State(), q.Revoked())
	}
	for st := engine.StateAssigned; st <= engine.StateLost; st++ {
		if strings.HasPrefix(st.String(), "State(") {
			t.Errorf("state %d has no name", st)
		}
	}
}

// The commit at revoke gets the budget's last part even when the drain
// uses all of its own (a handler that never returns), and no more: the
// deadline it sees is the call's start plus RevokeTimeout.
func TestRevokeCommitFitsTheBudget(t *testing.T) {
	c := cfg()
	c.RevokeTimeout = time.Second
	c.CommitTimeout = time.Hour // the budget, not the attempt's cap, bounds it
	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	e := engine.New(c, func(_ context.Context, o int64) error {
		if o == 2 {
			<-block
		}
		return nil
	}, nil)

	e.Start(context.Background())
	t.Cleanup(func() { go e.Stop() }) // the blocked handler would hold Stop
	sc := &scripted{answer: func(_ int, ctx context.Context, _ []engine.Offset) ([]error, error) {
		return blockUntilDone(ctx)
	}}
	s := e.NewSession(sc.commit)
	p, _ := s.Assign(tp, 0, "", -1)
	deliverRange(t, s, p, 0, 4)
	waitUntil(t, func() bool { return p.Watermark().Committable() == 2 })
	start := time.Now()
	within(t, 10*time.Second, "revoke", func() { s.RevokeAt(context.Background(), start, tp) })
	calls := sc.all()
	if len(calls) == 0 {
		t.Fatal("no commit attempted: the drain used the whole budget")
	}
	want := start.Add(c.RevokeTimeout)
	for i, cl := range calls {
		if !cl.hasDeadline || !cl.deadline.Equal(want) {
			t.Fatalf("commit %d deadline %v (set %v), want the budget's end %v", i, cl.deadline, cl.hasDeadline, want)
		}
		if !errors.Is(cl.ctxErr, context.DeadlineExceeded) {
			t.Fatalf("commit %d ended with %v, want its deadline", i, cl.ctxErr)
		}
	}
	if calls[0].offs[0].Offset != 2 || p.Committed() != 0 || p.State() != engine.StateClosed {
		t.Fatalf("offered %+v, committed %d, state %v; want 2 offered, nothing committed, closed",
			calls[0].offs, p.Committed(), p.State())
	}
	within(t, 10*time.Second, "close", func() { s.Close(context.Background()) })
}

// A periodic commit that the coordinator never answers is cancelled by a
// revoke, which commits within its own budget. RevokeTimeout and
// CommitTimeout are an hour: waiting for the periodic commit would hang.
func TestRevokeCancelsAPeriodicCommitInFlight(t *testing.T) {
	c := cfg()
	c.RevokeTimeout = time.Hour
	c.CommitTimeout = time.Hour
	e := started(t, c, ok)
	inFlight := make(chan struct{})
	sc := &scripted{answer: func(n int, ctx context.Context, offs []engine.Offset) ([]error, error) {
		if n == 0 {
			close(inFlight)
			return blockUntilDone(ctx)
		}
		return accept(offs)
	}}
	s := e.NewSession(sc.commit)
	p, _ := s.Assign(tp, 0, "", -1)
	deliverRange(t, s, p, 0, 5)
	waitUntil(t, func() bool { return p.Watermark().Committable() == 5 })
	tickDone := make(chan struct{})
	go func() { s.Tick(time.Now()); close(tickDone) }()
	<-inFlight
	start := time.Now()
	within(t, 10*time.Second, "revoke", func() { s.RevokeAt(context.Background(), start, tp) })
	<-tickDone
	calls := sc.all()
	if len(calls) != 2 {
		t.Fatalf("%d commits, want the periodic one and the revoke's", len(calls))
	}
	if !errors.Is(calls[0].ctxErr, context.Canceled) {
		t.Fatalf("periodic commit ended with %v, want cancelled by the revoke", calls[0].ctxErr)
	}
	if !calls[1].deadline.Equal(start.Add(c.RevokeTimeout)) {
		t.Fatalf("revoke commit deadline %v, want %v", calls[1].deadline, start.Add(c.RevokeTimeout))
	}
	if p.Committed() != 5 {
		t.Fatalf("committed %d, want 5", p.Committed())
	}
	s.Close(context.Background())
}

// A commit at revoke that does not land (the request fails, then the
// coordinator refuses one partition) is retried, for the failed partitions
// only, until it lands; each failed try is logged at Debug level.
func TestRefusedCommitAtRevokeIsRetried(t *testing.T) {
	rec := &recorder{}
	c := cfg()
	c.Logger = slog.New(rec)
	c.RevokeTimeout = time.Hour // hang guard: a retry that never comes would hang
	e := started(t, c, ok)
	tp1 := engine.TopicPartition{Topic: "t", Partition: 1}
	sc := &scripted{answer: func(n int, _ context.Context, offs []engine.Offset) ([]error, error) {
		switch n {
		case 0:
			return nil, errors.New("coordinator moved")
		case 1:
			errs, _ := accept(offs)
			for i, o := range offs {
				if o.TP == tp1 {
					errs[i] = errRebalancing
				}
			}
			return errs, nil
		}
		return accept(offs)
	}}
	s := e.NewSession(sc.commit)
	p0, _ := s.Assign(tp, 0, "", -1)
	p1, _ := s.Assign(tp1, 0, "", -1)
	deliverRange(t, s, p0, 0, 3)
	deliverRange(t, s, p1, 0, 7)
	waitUntil(t, func() bool { return p0.Watermark().Pending()+p1.Watermark().Pending() == 0 })
	within(t, 10*time.Second, "revoke", func() { s.Revoke(context.Background(), tp, tp1) })
	calls := sc.all()
	if len(calls) != 3 {
		t.Fatalf("%d commit attempts, want 3", len(calls))
	}
	if len(calls[1].offs) != 2 || len(calls[2].offs) != 1 || calls[2].offs[0].TP != tp1 || calls[2].offs[0].Offset != 7 {
		t.Fatalf("attempts %+v / %+v, want both partitions again after the request failed, then only %v at 7",
			calls[1].offs, calls[2].offs, tp1)
	}
	if p0.Committed() != 3 || p1.Committed() != 7 {
		t.Fatalf("committed %d and %d, want 3 and 7", p0.Committed(), p1.Committed())
	}
	if n := len(rec.find(slog.LevelDebug, "commit at revoke did not land")); n != 2 {
		t.Fatalf("%d debug records of failed tries, want 2", n)
	}
	if n := len(rec.find(slog.LevelWarn, "commit")); n != 0 {
		t.Fatalf("%d warnings although the commit landed", n)
	}
	s.Close(context.Background())
}

// A commit refused until the budget ends is given up with one warning that
// names the partition and offset; one refused with ErrFenced is not
// retried at all (an hour's budget: retrying would hang).
func TestCommitAtRevokeGivesUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		err     error
		tries   func(int) bool
	}{
		{"refused until the budget ends", 300 * time.Millisecond, errRebalancing, func(n int) bool { return n >= 1 }},
		{"fenced, at once", time.Hour, fmt.Errorf("%w: illegal generation", engine.ErrFenced), func(n int) bool { return n == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := cfg()
			c.Logger = slog.New(rec)
			c.RevokeTimeout = tc.timeout
			e := started(t, c, ok)
			sc := &scripted{answer: func(_ int, _ context.Context, offs []engine.Offset) ([]error, error) {
				return refuse(offs, tc.err)
			}}
			s := e.NewSession(sc.commit)
			p, _ := s.Assign(tp, 0, "", -1)
			deliverRange(t, s, p, 0, 4)
			waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
			within(t, 10*time.Second, "revoke", func() { s.Revoke(context.Background(), tp) })
			if n := len(sc.all()); !tc.tries(n) {
				t.Fatalf("%d attempts", n)
			}
			warns := rec.find(slog.LevelWarn, "commit at revoke failed")
			if len(warns) != 1 || !strings.Contains(warns[0].attrs["partitions"].String(), "t[0]@4") {
				t.Fatalf("warnings %+v, want one naming t[0]@4", warns)
			}
			if p.Committed() != 0 || p.State() != engine.StateClosed {
				t.Fatalf("committed %d, state %v", p.Committed(), p.State())
			}
			n := len(sc.all())
			s.Close(context.Background())
			if len(sc.all()) != n {
				t.Fatal("commit after the partition was closed")
			}
		})
	}
}

// A partition lost while its commit at revoke is being retried is not
// retried any more, and Lose alone never commits.
func TestLoseNeverCommits(t *testing.T) {
	c := cfg()
	c.RevokeTimeout = time.Hour // hang guard: retrying a lost partition would hang
	e := started(t, c, ok)
	tried := make(chan struct{}, 1)
	sc := &scripted{answer: func(_ int, _ context.Context, offs []engine.Offset) ([]error, error) {
		select {
		case tried <- struct{}{}:
		default:
		}
		return refuse(offs, errRebalancing)
	}}
	s := e.NewSession(sc.commit)
	p, _ := s.Assign(tp, 0, "", -1)
	deliverRange(t, s, p, 0, 4)
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	revoked := make(chan struct{})
	go func() { s.Revoke(context.Background(), tp); close(revoked) }()
	<-tried
	s.Lose(tp)
	n := len(sc.all())
	within(t, 10*time.Second, "revoke of a lost partition", func() { <-revoked })
	if got := len(sc.all()); got != n {
		t.Fatalf("%d commit attempts after Lose returned", got-n)
	}
	if p.State() != engine.StateLost || p.Committed() != 0 {
		t.Fatalf("state %v, committed %d; want lost, 0", p.State(), p.Committed())
	}

	// Lose alone: acked messages, a tick, Close: nothing committed.
	q, _ := s.Assign(engine.TopicPartition{Topic: "t", Partition: 1}, 10, "", -1)
	deliverRange(t, s, q, 10, 15)
	waitUntil(t, func() bool { return q.Watermark().Pending() == 0 })
	n = len(sc.all())
	s.Lose(q.TP)
	s.Tick(time.Now())
	s.Close(context.Background())
	if got := len(sc.all()); got != n {
		t.Fatalf("%d commits after Lose", got-n)
	}
	if err := q.Watermark().Ack(10); err == nil {
		t.Fatal("late ack accepted after Lose")
	}
}

// A commit point that does not move for StuckThreshold while messages are
// pending is warned about once per episode, with its offset, and its
// recovery logged at Info level.
func TestStuckWarnedOncePerEpisode(t *testing.T) {
	rec := &recorder{}
	c := cfg()
	c.Logger = slog.New(rec)
	c.StuckThreshold = time.Minute // the ticks' clock is the test's
	var mu sync.Mutex
	blocks := map[int64]chan struct{}{0: make(chan struct{}), 5: make(chan struct{})}
	e := started(t, c, func(_ context.Context, o int64) error {
		mu.Lock()
		ch := blocks[o]
		mu.Unlock()
		if ch != nil {
			<-ch
		}
		return nil
	})
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, _ := s.Assign(tp, 0, "", -1)
	deliverRange(t, s, p, 0, 3)
	waitUntil(t, func() bool { return p.Watermark().Pending() == 1 })
	stuck := func() []logRecord { return rec.find(slog.LevelWarn, "partition stuck") }
	moving := func() []logRecord { return rec.find(slog.LevelInfo, "moving again") }

	t0 := time.Unix(1_000_000, 0)
	s.Tick(t0)
	s.Tick(t0.Add(c.StuckThreshold - time.Nanosecond))
	if n := len(stuck()); n != 0 {
		t.Fatalf("%d stuck warnings before StuckThreshold", n)
	}
	s.Tick(t0.Add(c.StuckThreshold))
	s.Tick(t0.Add(2 * c.StuckThreshold))
	s.Tick(t0.Add(3 * c.StuckThreshold))
	w := stuck()
	if len(w) != 1 {
		t.Fatalf("%d stuck warnings in one episode, want 1", len(w))
	}
	if w[0].attrs["offset"].Int64() != 0 || w[0].attrs["pending"].Int64() != 1 ||
		w[0].attrs["stuck_for"].Duration() != c.StuckThreshold {
		t.Fatalf("stuck warning %+v, want offset 0, pending 1, stuck_for %v", w[0].attrs, c.StuckThreshold)
	}
	close(blocks[0])
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	s.Tick(t0.Add(4 * c.StuckThreshold))
	if m := moving(); len(m) != 1 || m[0].attrs["commit_point"].Int64() != 3 {
		t.Fatalf("recovery records %+v, want one at commit point 3", m)
	}

	// A second episode is warned about again.
	deliverRange(t, s, p, 3, 8)
	waitUntil(t, func() bool { return p.Watermark().Committable() == 5 })
	t1 := t0.Add(10 * c.StuckThreshold)
	s.Tick(t1)
	s.Tick(t1.Add(c.StuckThreshold))
	if w := stuck(); len(w) != 2 || w[1].attrs["offset"].Int64() != 5 {
		t.Fatalf("stuck warnings %d, want a second one at 5", len(w))
	}
	close(blocks[5])
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	s.Tick(t1.Add(2 * c.StuckThreshold))
	if len(moving()) != 2 {
		t.Fatal("no recovery record for the second episode")
	}
}

func TestConfigValidatesTheLifecycleSettings(t *testing.T) {
	for _, tc := range []struct {
		field string
		set   func(*engine.Config)
	}{
		{"CommitTimeout", func(c *engine.Config) { c.CommitTimeout = 0 }},
		{"StuckThreshold", func(c *engine.Config) { c.StuckThreshold = 0 }},
	} {
		c := engine.DefaultConfig()
		tc.set(&c)
		err := c.Validate()
		if !errors.Is(err, engine.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("bad %s: %v, want ErrConfig naming it", tc.field, err)
		}
	}
	if err := engine.DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
