package engine_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark/metadata"
)

// fakeTxn records the transactions it commits; refuse makes it abort.
type fakeTxn struct {
	mu     sync.Mutex
	refuse error
	txns   [][]engine.Offset
	outs   [][]int64
}

func (f *fakeTxn) commit(_ context.Context, offs []engine.Offset, outs []any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse != nil {
		return f.refuse
	}
	f.txns = append(f.txns, slices.Clone(offs))
	var o []int64
	for _, x := range outs {
		o = append(o, x.(int64))
	}
	f.outs = append(f.outs, o)
	return nil
}

func (f *fakeTxn) last() (engine.Offset, []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.txns[len(f.txns)-1][0], f.outs[len(f.outs)-1]
}

// marked returns the offsets of [from, to) that off commits as done: below
// its offset, or in its metadata.
func marked(t *testing.T, off engine.Offset, from, to int64) []int64 {
	t.Helper()
	done, err := metadata.Decode(off.Metadata, off.Offset)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for o := from; o < to; o++ {
		if o < off.Offset || done.Contains(o) {
			out = append(out, o)
		}
	}
	return out
}

// Issue 23: a transaction carries the outputs of exactly the messages its
// commit marks done (below the commit point or in the metadata, also when
// the done set does not fit and only a prefix is encoded), each once; an
// aborted transaction's outputs go in the next one.
func TestTxnOutputsOfExactlyTheMessagesTheCommitMarksDone(t *testing.T) {
	c := cfg()
	c.MetadataMaxBytes = 64 // the done set below does not fit: a prefix is committed
	c.Concurrency = 1024    // a worker per blocked call, and more
	const n = 2000
	release := make(chan struct{})
	// About a third of the offsets, at random (a regular pattern encodes
	// too well), block until release.
	rng := rand.New(rand.NewPCG(1, 2))
	blocked := make(map[int64]bool)
	for o := range int64(n) {
		blocked[o] = o == 0 || rng.IntN(3) == 0
	}
	h := engine.Transactional(func(ctx context.Context, o int64) error {
		if err := engine.AddOutput(ctx, o); err != nil {
			return err
		}
		if blocked[o] {
			<-release
		}
		return nil
	}, func(o int64) int64 { return o })
	e := engine.New(c, h, nil)
	e.Start(context.Background())
	defer e.Stop()
	ft := &fakeTxn{}
	s := e.NewTxnSession(ft.commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for o := range int64(n) {
		if err := s.Deliver(ctx, p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	nb := int64(0)
	for _, b := range blocked {
		if b {
			nb++
		}
	}
	waitUntil(t, func() bool { return p.Watermark().Pending() == nb })
	ft.refuse = errors.New("refused")
	if err := s.CommitNow(ctx); err == nil {
		t.Fatal("a refused transaction committed")
	}
	ft.refuse = nil
	if err := s.CommitNow(ctx); err != nil {
		t.Fatal(err)
	}
	off, outs := ft.last()
	want := marked(t, off, 0, n)
	if !slices.Equal(outs, want) {
		t.Fatalf("transaction at %d carries outputs %v, want the marked %v", off.Offset, outs, want)
	}
	acked := int64(n) - p.Watermark().Pending()
	if int64(len(want)) >= acked {
		t.Fatalf("the metadata marked all %d acked messages: the prefix case is not exercised", acked)
	}
	close(release)
	waitUntil(t, func() bool { return p.Watermark().Pending() == 0 })
	for range 100 { // the prefix grows commit by commit
		if err := s.CommitNow(ctx); err != nil {
			t.Fatal(err)
		}
		if off, _ := ft.last(); off.Offset == n {
			break
		}
	}
	got := map[int64]int{}
	for _, o := range ft.outs {
		for _, x := range o {
			got[x]++
		}
	}
	for o := range int64(n) {
		if got[o] != 1 {
			t.Fatalf("output of %d committed %d times, want once (commit at %d)", o, got[o], ft.txns[len(ft.txns)-1][0].Offset)
		}
	}
}

// Issue 23: AddOutput outside a transactional call, or after it returned,
// is refused; a failed call's outputs are discarded.
func TestTxnAddOutputRefusedOutsideAndAfterCallFailedCallDiscarded(t *testing.T) {
	if err := engine.AddOutput(context.Background(), int64(1)); !errors.Is(err, engine.ErrNotTransactional) {
		t.Fatalf("AddOutput outside a call: %v", err)
	}
	var mu sync.Mutex
	var kept []context.Context
	h := engine.Transactional(func(ctx context.Context, o int64) error {
		mu.Lock()
		kept = append(kept, ctx)
		mu.Unlock()
		if err := engine.AddOutput(ctx, o); err != nil {
			return err
		}
		if o == 1 {
			return errors.New("fails") // LogAndAck: acked, its output dropped
		}
		return nil
	}, func(o int64) int64 { return o })
	e := engine.New(cfg(), h, nil)
	e.Start(context.Background())
	defer e.Stop()
	ft := &fakeTxn{}
	s := e.NewTxnSession(ft.commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for o := range int64(3) {
		if err := s.Deliver(ctx, p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return p.Watermark().Committable() == 3 })
	if err := s.CommitNow(ctx); err != nil {
		t.Fatal(err)
	}
	if off, outs := ft.last(); off.Offset != 3 || !slices.Equal(outs, []int64{0, 2}) {
		t.Fatalf("transaction at %d with outputs %v, want 3 with [0 2]", off.Offset, outs)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range kept {
		if err := engine.AddOutput(c, int64(9)); !errors.Is(err, engine.ErrCallEnded) {
			t.Fatalf("AddOutput after the call returned: %v", err)
		}
	}
}

// Issue 23: a dead-lettered message's dead-letter outputs (AddOutput from
// Config.DeadLetter) go in the transaction that commits it as done, under
// its offset, once: a dead-letter call that fails or panics drops what it
// added (the retry adds anew), and its context refuses outputs once it
// returned.
func TestTxnDeadLetterOutputsGoWithTheMessage(t *testing.T) {
	c := cfg()
	c.Retry = engine.Retry{MaxAttempts: 1, Backoff: time.Millisecond, MaxBackoff: time.Millisecond} // odd offsets: dead letter at once
	var (
		mu    sync.Mutex
		calls = map[int64]int{}
		kept  []context.Context
	)
	c.DeadLetter = func(ctx context.Context, m any, _ error, _ int) error {
		o := m.(int64)
		mu.Lock()
		calls[o]++
		n := calls[o]
		kept = append(kept, ctx)
		mu.Unlock()
		if err := engine.AddOutput(ctx, -o); err != nil {
			return err
		}
		switch {
		case o == 3 && n == 1:
			return errors.New("dead letter fails once")
		case o == 5 && n == 1:
			panic("dead letter panics once")
		}
		return nil
	}
	h := engine.Transactional(func(ctx context.Context, o int64) error {
		if err := engine.AddOutput(ctx, o); err != nil {
			return err
		}
		if o%2 == 1 {
			return errors.New("odd") // its output is dropped
		}
		return nil
	}, func(o int64) int64 { return o })
	e := engine.New(c, h, nil)
	e.Start(context.Background())
	defer e.Stop()
	ft := &fakeTxn{}
	s := e.NewTxnSession(ft.commit)
	p, err := s.Assign(tp, 0, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for o := range int64(8) {
		if err := s.Deliver(ctx, p, o, o); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, func() bool { return p.Watermark().Committable() == 8 })
	if err := s.CommitNow(ctx); err != nil {
		t.Fatal(err)
	}
	want := []int64{0, -1, 2, -3, 4, -5, 6, -7}
	if off, outs := ft.last(); off.Offset != 8 || !slices.Equal(outs, want) {
		t.Fatalf("transaction at %d with outputs %v, want 8 with %v", off.Offset, outs, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls[3] != 2 || calls[5] != 2 {
		t.Fatalf("dead-letter calls of 3 and 5: %d, %d, want 2 each (one failed, one panicked)", calls[3], calls[5])
	}
	for _, c := range kept {
		if err := engine.AddOutput(c, int64(9)); !errors.Is(err, engine.ErrCallEnded) {
			t.Fatalf("AddOutput after the dead-letter call returned: %v", err)
		}
	}
}
