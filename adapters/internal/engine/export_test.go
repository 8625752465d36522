package engine

// This file exposes the scheduler alone to the external tests: the model
// test and FuzzScheduler drive it step by step, with no goroutine.

import (
	"context"
	"errors"
	"time"

	"github.com/inorder/inorder/watermark"
)

// TestSched is a scheduler of messages that are their offset and key.
type TestSched struct {
	s    *sched[testMsg]
	hash func([]byte) uint64
	now  int64 // the scheduler's clock
}

type testMsg struct {
	off int64
	key []byte
}

// TestTask is a message handed out by TestSched.Take.
type TestTask struct{ t task[testMsg] }

// NewTestSched returns a scheduler for workers workers whose keys hash with
// hash (a weak one provokes collisions).
func NewTestSched(mode Ordering, keylessOrdered bool, workers int, hash func([]byte) uint64) *TestSched {
	key := func(m testMsg) []byte { return m.key }
	return &TestSched{s: newSched(mode, keylessOrdered, workers, key), hash: hash}
}

// NewTestPart returns a partition that was never assigned.
func NewTestPart(partition int32) *Part {
	return &Part{TP: TopicPartition{Topic: "t", Partition: partition}}
}

// SetRevoking marks p revoked, as the session does first thing at revoke.
func SetRevoking(p *Part) { p.revoking.Store(true) }

// Unackable returns how many of p's tracked offsets will never be acked.
func Unackable(p *Part) int64 { return p.unackable.Load() }

// Push queues message offset with key k (ByKey).
func (s *TestSched) Push(p *Part, offset int64, k []byte) bool {
	return s.s.pushBatch(p, []int64{offset}, []testMsg{{offset, k}}, []uint64{s.hash(k)})
}

// Take hands out the next message.
func (s *TestSched) Take() (TestTask, bool) {
	t, ok := s.s.take()
	return TestTask{t}, ok
}

// TakeMore hands out up to n more messages of t's partition, as a worker
// taking a run does (Unordered only).
func (s *TestSched) TakeMore(t TestTask, n int) []TestTask {
	var out []TestTask
	for _, x := range s.s.takeMore(t.t.q, nil, n) {
		out = append(out, TestTask{x})
	}
	return out
}

// Done releases a message handed out by Take.
func (s *TestSched) Done(t TestTask) {
	s.s.done(&t.t, s.now)
	s.s.settle(t.t.q)
}

// Fail releases a message handed out by Take whose handler failed: it waits
// wait ticks of the clock for its retry.
func (s *TestSched) Fail(t TestTask, wait int64) {
	rt := t.t.retry()
	rt.pending, rt.wait = true, time.Duration(wait)
	s.s.done(&t.t, s.now)
	s.s.settle(t.t.q)
}

// Advance moves the clock on by d and queues the retries then due; it
// returns how many.
func (s *TestSched) Advance(d int64) int {
	s.now += d
	return s.s.expire(s.now)
}

// Waiting returns how many messages wait for a retry.
func (s *TestSched) Waiting() int { return len(s.s.timers) }

// Drop drops p's queue and counts what it held as unackable.
func (s *TestSched) Drop(p *Part) int64 {
	n := s.s.drop(s.s.partOf(p))
	addUnackable(p, n)
	return n
}

// Ready returns how many messages a worker may take now.
func (s *TestSched) Ready() int { return s.s.nready }

// Keys returns how many keys of p are busy or have messages parked (idle
// keys' records kept in the lane are not counted).
func (s *TestSched) Keys(p *Part) int {
	q, _ := p.sq.(*partQ[testMsg])
	if q == nil {
		return 0
	}
	n := 0
	for _, e := range q.keys.slots {
		if kq := e.kq; kq != nil && (kq.holds > 0 || kq.jobs.n > 0) {
			n++
		}
	}
	return n
}

// Part returns the task's partition.
func (t TestTask) Part() *Part { return t.t.q.p }

// Offset returns the task's offset.
func (t TestTask) Offset() int64 { return t.t.offset }

// ReadyOf returns how many of p's messages a worker may take now (a revoked
// partition counts until it is dropped).
func (s *TestSched) ReadyOf(p *Part) int {
	q, _ := p.sq.(*partQ[testMsg])
	if q == nil {
		return 0
	}
	return q.ready
}

// RetryWait returns the n-th wait of r, jittered.
func RetryWait(r Retry, n int) time.Duration { return r.wait(n) }

// Tick runs one turn of the session's commit loop as if its ticker fired
// at now: refresh hooks, watchdogs, periodic commit.
func (s *Session[M]) Tick(now time.Time) { s.tick(context.Background(), now) }

// RevokeAt is Revoke with its budget measured from start instead of the
// call, so that a test knows the exact deadline the commit must see.
func (s *Session[M]) RevokeAt(ctx context.Context, start time.Time, tps ...TopicPartition) {
	s.release(ctx, start, s.lookup(tps), false)
}

// The delivery calls the tests drive a session with, besides Offer: the
// session's own primitives (tryDeliverBatch) with the waits for room.

// Deliver tracks offset (waiting while the window is full: back-pressure)
// and queues msg for the workers, unless commit metadata marked it done.
// It never waits for a worker. It returns ctx.Err() when ctx ends,
// watermark.ErrClosed after revoke, watermark.ErrOutOfOrder for an offset
// not above the last one, ErrStopped after the engine stopped. Fetch
// goroutine of p only.
func (s *Session[M]) Deliver(ctx context.Context, p *Part, offset int64, msg M) error {
	return s.dispatch(p, offset, msg, p.wm.TrackWait(ctx, offset))
}

// TryDeliver is Deliver without the wait for room: when offset does not fit
// in the window yet it returns watermark.ErrWindowFull and changes nothing,
// for the caller to retry later (see Part.WaitRoom). It never blocks. Fetch
// goroutine of p only.
func (s *Session[M]) TryDeliver(p *Part, offset int64, msg M) error {
	return s.dispatch(p, offset, msg, p.wm.Track(offset))
}

// DeliverBatch is Deliver for a run of p's messages (see TryDeliverBatch):
// it delivers what fits in the window, waits for room for the rest
// (back-pressure: the handling of what it delivered makes the room), and
// returns once every message is delivered, len(offsets) and nil, or with
// how many it consumed and ctx.Err() when ctx ends, or the errors of
// TryDeliverBatch but watermark.ErrWindowFull. It never waits for a worker.
// Fetch goroutine of p only.
func (s *Session[M]) DeliverBatch(ctx context.Context, p *Part, offsets []int64, msgs []M) (int, error) {
	done := 0
	for {
		n, err := s.TryDeliverBatch(p, offsets[done:], msgs[done:])
		done += n
		if !errors.Is(err, watermark.ErrWindowFull) {
			return done, err
		}
		if err := p.wm.WaitRoom(ctx, offsets[done]); err != nil {
			return done, err
		}
	}
}

// dispatch queues msg once Track or TrackWait returned trackErr for it.
func (s *Session[M]) dispatch(p *Part, offset int64, msg M, trackErr error) error {
	if trackErr != nil {
		if errors.Is(trackErr, watermark.ErrRestored) {
			p.restored.Add(1)
			return nil
		}
		return trackErr
	}
	return s.e.dispatchBatch(p, []int64{offset}, []M{msg})
}

// SkipTo declares every offset below to that was not delivered a gap
// (transaction markers, aborted or compacted records), waiting for room if
// needed. Fetch goroutine of p only.
func (s *Session[M]) SkipTo(ctx context.Context, p *Part, to int64) error {
	for {
		err := p.wm.Skip(to)
		if !errors.Is(err, watermark.ErrWindowFull) {
			return err
		}
		if err := p.wm.WaitRoom(ctx, to-1); err != nil {
			return err
		}
	}
}

// TryDeliverBatch is tryDeliverBatch, for the tests.
func (s *Session[M]) TryDeliverBatch(p *Part, offsets []int64, msgs []M) (int, error) {
	return s.tryDeliverBatch(p, offsets, msgs)
}

// CommitNow commits every owned partition whose commit point (or commit
// metadata) moved since the last commit. It returns the request's error or
// the first partition's, ctx.Err() if ctx ends while it waits for another
// commit, and an error if a revoke or loss is running (which cancels it if
// it was already committing; the revoke commits its own partitions). Safe
// for concurrent use; it blocks until the commit returns.
func (s *Session[M]) CommitNow(ctx context.Context) error {
	return s.commitCancellable(ctx, s.owned())
}

// TakeBatch hands out up to max messages as a batch worker's visit does
// (sched.takeBatch), out extending an earlier take of the same batch.
func (s *TestSched) TakeBatch(out []TestTask, max int) []TestTask {
	ts := make([]task[testMsg], len(out))
	for i := range out {
		ts[i] = out[i].t
	}
	ts, _ = s.s.takeBatch(ts, max)
	out = out[:0]
	for _, t := range ts {
		out = append(out, TestTask{t})
	}
	return out
}

// Requeue puts back a message handed out and not handled (a BatchError's
// tail), without an attempt.
func (s *TestSched) Requeue(t TestTask) {
	s.s.requeue(&t.t)
	s.s.settle(t.t.q)
}

// Key returns t's key.
func (t TestTask) Key() []byte { return t.t.msg.key }

// Mono returns the freeze detector's clock (frozen.go).
func Mono() int64 { return mono() }

// SawGap tells the freeze detector that its ticks came at last and now.
func (e *Engine[M]) SawGap(last, now int64) { e.sawGap(last, now) }

// FrozenHolds returns how many workers waited for a partition after a
// freeze.
func (e *Engine[M]) FrozenHolds() int64 { return e.frozen.held.Load() }

// FreezeHold reports whether the workers hold after a freeze (frozen.go).
func (e *Engine[M]) FreezeHold() bool { return e.frozen.holds[holdFreeze].Load() != nil }

// StuckCommitHold reports whether the workers hold for a stuck commit
// (stuckcommit.go).
func (e *Engine[M]) StuckCommitHold() bool { return e.frozen.holds[holdCommit].Load() != nil }
