package engine

// This file exposes the scheduler alone to the external tests: the model
// test and FuzzScheduler drive it step by step, with no goroutine.

import (
	"context"
	"time"
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
	return s.s.push(p, offset, testMsg{offset, k}, s.hash(k))
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
func (s *TestSched) Done(t TestTask) { s.s.done(&t.t, s.now) }

// Fail releases a message handed out by Take whose handler failed: it waits
// wait ticks of the clock for its retry.
func (s *TestSched) Fail(t TestTask, wait int64) {
	rt := t.t.retry()
	rt.pending, rt.wait = true, time.Duration(wait)
	s.s.done(&t.t, s.now)
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

// Keys returns how many key queues p holds.
func (s *TestSched) Keys(p *Part) int {
	q, _ := p.sq.(*partQ[testMsg])
	if q == nil {
		return 0
	}
	n := 0
	for _, kq := range q.keys {
		for ; kq != nil; kq = kq.chain {
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
