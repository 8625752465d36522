package engine_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark"
	"github.com/inorder/inorder/watermark/metadata"
)

type fakeBroker struct {
	mu      sync.Mutex
	commits []engine.Offset
	refuse  error
}

func (f *fakeBroker) commit(_ context.Context, offs []engine.Offset) ([]error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	errs := make([]error, len(offs))
	for i := range offs {
		errs[i] = f.refuse
		if f.refuse == nil {
			f.commits = append(f.commits, offs[i])
		}
	}
	return errs, nil
}

func (f *fakeBroker) all() []engine.Offset {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]engine.Offset(nil), f.commits...)
}

func cfg() engine.Config {
	c := engine.DefaultConfig()
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c.CommitInterval = time.Hour // commits only when the test asks
	c.RevokeTimeout = 200 * time.Millisecond
	c.Concurrency = 4
	return c
}

var tp = engine.TopicPartition{Topic: "t", Partition: 0}

func TestCommitsOnlyMovedNeverLowerNeverAfterRevoke(t *testing.T) {
	release := make(chan struct{})
	e := engine.New(cfg(), func(_ context.Context, o int64) error {
		if o == 3 {
			<-release
		}
		return nil
	}, nil)
	e.Start(context.Background())
	defer e.Stop()
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for o := int64(0); o < 10; o++ {
		if err := s.Deliver(ctx, p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return p.Watermark().Pending() == 1 })
	if err := s.CommitNow(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitNow(ctx); err != nil { // nothing moved: no second commit
		t.Fatal(err)
	}
	got := fb.all()
	if len(got) != 1 || got[0].Offset != 3 {
		t.Fatalf("commits %+v, want one at 3", got)
	}
	done, err := metadata.Decode(got[0].Metadata, 3)
	if err != nil || done.Len() != 6 || done.Contains(3) {
		t.Fatalf("metadata marks %v (%v), want offsets 4..9", done, err)
	}
	// A refused commit does not count as committed; the next one retries.
	close(release)
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	fb.refuse = errors.New("illegal generation")
	_ = s.CommitNow(ctx)
	if p.Committed() != 3 {
		t.Fatalf("refused commit recorded: %d", p.Committed())
	}
	fb.refuse = nil
	s.Revoke(ctx, tp)
	got = fb.all()
	if len(got) != 2 || got[1].Offset != 10 {
		t.Fatalf("commits %+v, want a final one at 10", got)
	}
	if !p.Watermark().Closed() {
		t.Fatal("partition not closed after revoke: late acks would count")
	}
	_ = s.CommitNow(ctx)
	s.Close(ctx)
	if n := len(fb.all()); n != 2 {
		t.Fatalf("%d commits after revoke, want none", n-2)
	}
	if st := e.Stats(); len(st) != 0 {
		t.Fatalf("stats after revoke: %+v", st)
	}
}

func TestMetadataMissIsCountedAndNeverStalls(t *testing.T) {
	c := cfg()
	c.MetadataMaxBytes = 16 // far too small for the done set below
	c.Concurrency = 512     // room for all slow handlers at once
	// About one message in ten, at random (an incompressible pattern), is
	// slow: the done offsets above the commit point form ~200 ranges.
	rng := rand.New(rand.NewPCG(1, 2))
	slow := map[int64]bool{0: true}
	for o := int64(1); o < 2000; o++ {
		slow[o] = rng.IntN(10) == 0
	}
	nslow := int64(0)
	for _, v := range slow {
		if v {
			nslow++
		}
	}
	block := make(chan struct{})
	e := engine.New(c, func(_ context.Context, o int64) error {
		if slow[o] {
			<-block
		}
		return nil
	}, nil)
	e.Start(context.Background())
	released := false
	defer func() {
		if !released {
			close(block)
		}
		e.Stop()
	}()
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for o := int64(0); o < 2000; o++ {
		if err := s.Deliver(ctx, p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return p.Watermark().Pending() == nslow })
	if err := s.CommitNow(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if len(st) != 1 || st[0].MetadataMisses != 1 {
		t.Fatalf("stats %+v, want one metadata miss", st)
	}
	got := fb.all()
	if len(got) != 1 || got[0].Offset != 0 || len(got[0].Metadata) > 16 {
		t.Fatalf("commits %+v, want one at 0 with at most 16 bytes of metadata", got)
	}
	close(block)
	released = true
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	s.Close(ctx)
	if got := fb.all(); got[len(got)-1].Offset != 2000 {
		t.Fatalf("final commit %+v, want 2000", got[len(got)-1])
	}
}

func TestRevokeWaitsAtMostRevokeTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	running := make(chan struct{})
	e := engine.New(cfg(), func(_ context.Context, o int64) error {
		if o == 1 {
			close(running)
			<-block
		}
		return nil
	}, nil)
	e.Start(context.Background())
	defer func() { go e.Stop() }() // the blocked handler would hold Stop
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, _ := s.Assign(tp, 0, "", -1)
	for o := range int64(3) {
		if err := s.Deliver(context.Background(), p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	// Offsets 0 and 2 handled first: a revoke drops what is still queued.
	waitUntil(t, func() bool { return e.Handled() == 2 })
	done := make(chan struct{})
	go func() { s.Close(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return although RevokeTimeout is 200ms")
	}
	got := fb.all()
	if len(got) != 1 || got[0].Offset != 1 {
		t.Fatalf("commits %+v, want one at 1 (offset 1 still running)", got)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Issue (review finding 3): a handler that ignores its context must not
// make Stop (and so the adapter's Run) hang: Stop waits at most
// RevokeTimeout for the workers, then abandons them. Stop may be called
// twice, also concurrently.
func TestStopAbandonsHandlersThatIgnoreCtx(t *testing.T) {
	block := make(chan struct{})
	t.Cleanup(func() { close(block) }) // frees the abandoned goroutine at the end
	started := make(chan struct{})
	e := engine.New(cfg(), func(_ context.Context, o int64) error {
		close(started)
		<-block // ignores ctx
		return nil
	}, nil)
	e.Start(context.Background())
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, _ := s.Assign(tp, 0, "", -1)
	if err := s.Deliver(context.Background(), p, 0, 0); err != nil {
		t.Fatal(err)
	}
	<-started
	done := make(chan struct{})
	go func() {
		s.Close(context.Background())
		var wg sync.WaitGroup
		wg.Go(e.Stop)
		wg.Go(e.Stop)
		wg.Wait()
		e.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second): // hang guard only
		t.Fatal("Stop did not return with a handler that ignores ctx")
	}
}

// countWarn counts log records at Warn and above and sums their
// errors_not_logged attribute.
type countWarn struct {
	mu      sync.Mutex
	n       int64
	skipped int64
}

func (h *countWarn) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countWarn) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "errors_not_logged" {
			h.skipped += a.Value.Int64()
		}
		return true
	})
	return nil
}
func (h *countWarn) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countWarn) WithGroup(string) slog.Handler      { return h }

// Issue (review nit): handler errors under LogAndAck are logged at most once
// per partition per second; the others are counted in the next record.
func TestHandlerErrorLogsAreRateLimited(t *testing.T) {
	const n = 500
	h := &countWarn{}
	c := cfg()
	c.Logger = slog.New(h)
	e := engine.New(c, func(context.Context, int64) error { return errors.New("boom") }, nil)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	p, _ := s.Assign(tp, 0, "", -1)
	begin := time.Now()
	for o := range int64(n) {
		if err := s.Deliver(context.Background(), p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return e.Handled() == n })
	elapsed := time.Since(begin)
	s.Close(context.Background())
	if e.Errors() != n || p.Watermark().Committable() != n {
		t.Fatalf("errors %d, commit point %d; want %d acked errors", e.Errors(), p.Watermark().Committable(), n)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	// One record per started second at most (bounded by the elapsed time,
	// not a timing window), and nothing silently dropped but the tail.
	if limit := 1 + int64(elapsed/time.Second); h.n < 1 || h.n > limit {
		t.Fatalf("%d error records for %d errors in %v, want 1..%d", h.n, n, elapsed, limit)
	}
	if h.n+h.skipped > n {
		t.Fatalf("%d records + %d counted as not logged > %d errors", h.n, h.skipped, n)
	}
}

// A message that failed under the Stop policy is never acked. When every
// other in-flight message is done, the drain must end at once rather than
// wait out RevokeTimeout (here an hour: the test's bound catches the hang).
func TestDrainEndsWhenOnlyUnackableMessagesRemain(t *testing.T) {
	c := cfg()
	c.RevokeTimeout = time.Hour
	c.ErrorPolicy = engine.Stop
	release := make(chan struct{})
	e := engine.New(c, func(_ context.Context, o int64) error {
		switch o {
		case 1:
			return errors.New("boom")
		case 2:
			<-release
		}
		return nil
	}, nil)
	e.Start(context.Background())
	defer e.Stop()
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, _ := s.Assign(tp, 0, "", -1)
	for o := range int64(3) {
		if err := s.Deliver(context.Background(), p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool {
		st := e.Stats()
		return len(st) == 1 && st[0].Errors == 1
	})
	done := make(chan struct{})
	go func() { s.Close(context.Background()); close(done) }()
	time.Sleep(50 * time.Millisecond) // let Close start draining (not asserted)
	close(release)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("drain kept waiting for a message that can never be acked")
	}
	// Offset 0 may have been skipped after the failure (Stop policy), so the
	// commit point is 0 or 1, never past the failed offset 1.
	for _, c := range fb.all() {
		if c.Offset > 1 {
			t.Fatalf("committed %d, past the failed offset 1", c.Offset)
		}
	}
}

// TryDeliver never waits: with the window full it returns ErrWindowFull and
// changes nothing; once the head is handled the same offset goes through.
func TestTryDeliverRefusesAFullWindowWithoutChange(t *testing.T) {
	c := cfg()
	c.Window = 2
	release := make(chan struct{})
	e := engine.New(c, func(_ context.Context, o int64) error {
		if o == 0 {
			<-release
		}
		return nil
	}, nil)
	e.Start(context.Background())
	defer e.Stop()
	s := e.NewSession((&fakeBroker{}).commit)
	defer s.Close(context.Background())
	p, _ := s.Assign(tp, 0, "", -1)
	for o := range int64(2) {
		if err := s.TryDeliver(p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.TryDeliver(p, 2, 2); !errors.Is(err, watermark.ErrWindowFull) {
		t.Fatalf("TryDeliver with a full window = %v, want ErrWindowFull", err)
	}
	if h := p.Watermark().High(); h != 2 {
		t.Fatalf("High = %d after a refused TryDeliver, want 2", h)
	}
	close(release)
	waitUntil(t, func() bool { return p.Watermark().Committable() >= 1 })
	if err := s.TryDeliver(p, 2, 2); err != nil {
		t.Fatalf("TryDeliver once the head was handled = %v", err)
	}
}

// The commit path skips the snapshot when nothing changed since the last
// one; a refused metadata-only commit must still be sent again.
func TestRefusedMetadataOnlyCommitIsSentAgain(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	e := engine.New(cfg(), func(_ context.Context, o int64) error {
		if o == 0 {
			<-release
		}
		return nil
	}, nil)

	e.Start(context.Background())
	defer func() { go e.Stop() }()
	fb := &fakeBroker{}
	s := e.NewSession(fb.commit)
	p, _ := s.Assign(tp, 0, "", -1)
	for o := range int64(4) {
		if err := s.Deliver(context.Background(), p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return p.Watermark().Pending() == 1 })
	fb.mu.Lock()
	fb.refuse = errors.New("refused")
	fb.mu.Unlock()
	if err := s.CommitNow(context.Background()); err == nil {
		t.Fatal("CommitNow with the broker refusing = nil")
	}
	fb.mu.Lock()
	fb.refuse = nil
	fb.mu.Unlock()
	if err := s.CommitNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := fb.all()
	if len(got) != 1 || got[0].Offset != 0 || got[0].Metadata == "" {
		t.Fatalf("commits %+v, want one at 0 carrying the done set 1..3", got)
	}
	// Nothing changed since: no commit, no snapshot.
	if err := s.CommitNow(context.Background()); err != nil || len(fb.all()) != 1 {
		t.Fatalf("unchanged partition committed again: %v %+v", err, fb.all())
	}
}
