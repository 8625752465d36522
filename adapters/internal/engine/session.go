package engine

// This file holds a Session: the partitions of one assignment, their
// delivery, and their release: the drain-commit-close on revoke, the drop
// on loss. The commit loop is in commit.go, its watchdogs in watchdog.go.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark"
	"github.com/inorder/inorder/watermark/metadata"
)

// Offset is one partition's commit: the next offset to read and the commit
// metadata.
type Offset struct {
	TP       TopicPartition
	Offset   int64
	Metadata string
}

// CommitFunc sends offs to the group coordinator, fenced by the adapter's
// generation and member id. It returns one error per element of offs (nil:
// the broker accepted it; wrap ErrFenced when retrying cannot help), or a
// non-nil second result if the whole request failed. It must return soon
// after ctx ends: a revoke cancels a periodic commit in flight and waits
// for it to return. The engine calls it from one goroutine at a time per
// session.
type CommitFunc func(ctx context.Context, offs []Offset) ([]error, error)

// Session is the set of partitions of one assignment (for kafka-go, one
// generation) and its commit loop. Create it with Engine.NewSession.
type Session[M any] struct {
	e      *Engine[M]
	commit CommitFunc
	txn    TxnFunc // exactly-once mode (txn.go): commits go through it, not commit

	// commitMu serialises commits (a commit never overtakes a later one)
	// and the close of partitions. A channel of one token, so that a
	// revoke can wait for it within its budget.
	commitMu chan struct{}

	cmu      sync.Mutex
	releases int                // revokes and losses running: periodic commits are skipped
	inflight context.CancelFunc // cancels the periodic commit (or CommitNow) holding commitMu

	// The failed periodic commits since the last one that landed (under
	// the commit lock): one Warn per episode, see commitCancellable.
	failing struct {
		n           int
		since, said time.Time
	}

	tickMu sync.Mutex // one tick at a time; guards the watchdog fields of the parts

	mu    sync.Mutex
	parts map[TopicPartition]*Part

	releasing  sync.WaitGroup // revokes and losses running, for Close
	loopCtx    context.Context
	loopCancel context.CancelFunc // ends the commit loop and its commit in flight
	done       chan struct{}      // closed when the commit loop returned
	closeOnce  sync.Once
}

// NewSession starts a session whose commit loop commits through commit
// every CommitInterval. commit must not be nil. Safe for concurrent use.
func (e *Engine[M]) NewSession(commit CommitFunc) *Session[M] {
	if commit == nil {
		panic("engine: nil CommitFunc") // programmer error
	}
	return e.newSession(commit, nil)
}

func (e *Engine[M]) newSession(commit CommitFunc, txn TxnFunc) *Session[M] {
	s := &Session[M]{
		e:        e,
		commit:   commit,
		txn:      txn,
		commitMu: make(chan struct{}, 1),
		parts:    make(map[TopicPartition]*Part),
		done:     make(chan struct{}),
	}
	s.loopCtx, s.loopCancel = context.WithCancel(context.Background())
	go s.loop()
	return s
}

func (s *Session[M]) owned() []*Part {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Part, 0, len(s.parts))
	for _, p := range s.parts {
		out = append(out, p)
	}
	return out
}

// Assign takes ownership of tp, whose group commit is committed (the next
// offset to read, >= 0) with commit metadata meta. The offsets meta marks
// done are restored (not handed to the handler again), except those at or
// above logEnd (the partition's log end offset; -1 if unknown): they cannot
// exist and would only be stale. Metadata another client wrote, or that is
// corrupt, is logged and ignored. The partition starts in StateAssigned.
func (s *Session[M]) Assign(tp TopicPartition, committed int64, meta string, logEnd int64) (*Part, error) {
	if committed < 0 {
		return nil, fmt.Errorf("engine: assign %s[%d]: negative start offset %d", tp.Topic, tp.Partition, committed)
	}
	cfg := s.e.cfg
	wm := watermark.NewPartition(committed, watermark.WithWindow(cfg.Window))
	p := &Part{TP: tp, wm: wm, lastMeta: meta, snap: ordset.New(), in: &intake[M]{}, gone: make(chan struct{})}
	hctx := s.e.hctx
	if hctx == nil { // not started (tests)
		hctx = context.Background()
	}
	if s.txn != nil { // Transactional finds the partition's outputs through the handler's context
		p.txo = &txnOuts{}
		hctx = context.WithValue(hctx, partKey{}, p)
	}
	p.ctx, p.cancel = context.WithCancel(hctx)
	p.since = mono()
	p.next.Store(committed)
	p.committed.Store(committed)
	p.logEnd.Store(logEnd)
	var done *ordset.Set
	if meta != "" && cfg.MetadataMaxBytes > 0 {
		d, err := metadata.Decode(meta, committed)
		if err != nil {
			s.e.log.Warn("inorder: ignoring commit metadata",
				"topic", tp.Topic, "partition", tp.Partition, "offset", committed, "error", err)
		} else {
			done = d
		}
	}
	if s.txn == nil { // kept.go
		var n int64
		if done, n = s.e.unkeep(tp, committed, done); n > 0 {
			s.e.log.Info("inorder: partition back: the offsets this process handled before are not handled again",
				"topic", tp.Topic, "partition", tp.Partition, "offset", committed, "kept", n)
		}
	}
	if done != nil {
		if logEnd >= 0 {
			done.RemoveRange(logEnd, math.MaxInt64)
		}
		if err := wm.Restore(done); err != nil {
			return nil, fmt.Errorf("engine: restore %s[%d]: %w", tp.Topic, tp.Partition, err)
		}
	}
	s.mu.Lock()
	if _, dup := s.parts[tp]; dup {
		s.mu.Unlock()
		return nil, fmt.Errorf("engine: %s[%d] assigned twice", tp.Topic, tp.Partition)
	}
	s.parts[tp] = p
	s.mu.Unlock()
	s.e.register(p)
	s.e.m.assign(p)
	return p, nil
}

// tryDeliverBatch tracks and queues a run of p's messages: msgs[i] at
// offsets[i], offsets strictly increasing (offsets between them are gaps). It tracks them with one publication of the high mark
// (watermark.Partition.TrackBatch) and queues them under one lock of the
// scheduler, waking as many idle workers as the run can use. Messages that
// commit metadata marked done are counted and not queued, as with
// TryDeliver.
//
// It returns how many messages n it consumed, a prefix of the run: each of
// msgs[:n] is queued or was done (or, once p is revoked or the engine
// stopped, dropped as TryDeliver drops it). With n < len(offsets) err says
// why offsets[n] was not: watermark.ErrWindowFull (it does not fit in the
// window yet: keep msgs[n:] and retry later, see Part.WaitRoom; the room
// comes from the handling of msgs[:n]), watermark.ErrClosed (revoked),
// watermark.ErrOutOfOrder (offsets[n] is not above the previous offset).
// ErrStopped (the engine stopped) may come with n == len(offsets). An empty
// run returns 0, nil. It panics if the lengths differ (a programmer
// error). It never blocks. Fetch goroutine of p only.
func (s *Session[M]) tryDeliverBatch(p *Part, offsets []int64, msgs []M) (int, error) {
	if len(offsets) != len(msgs) {
		panic(fmt.Sprintf("engine: tryDeliverBatch: %d offsets for %d messages", len(offsets), len(msgs)))
	}
	i := 0
	for i < len(offsets) {
		n, err := p.wm.TrackBatch(offsets[i:])
		restored := errors.Is(err, watermark.ErrRestored) // offsets[i+n] is tracked and done
		if n > 0 {
			if derr := s.e.dispatchBatch(p, offsets[i:i+n], msgs[i:i+n]); derr != nil {
				if restored {
					p.restored.Add(1)
					n++
				}
				return i + n, derr
			}
		}
		i += n
		if err == nil {
			break
		}
		if !restored {
			return i, err
		}
		p.restored.Add(1)
		i++
	}
	return i, nil
}

// Revoke gives up tps (their fetch loops must have stopped) within
// RevokeTimeout measured from the call: it waits for their in-flight
// messages until the last quarter of that budget (or until ctx ends), then
// commits them, retrying a refused commit with backoff until the budget
// ends, and closes them, so that later acks are ignored and no commit is
// issued for them again. A periodic commit in flight is cancelled rather
// than waited for. Unknown partitions, and partitions already being
// revoked or lost, are ignored. Safe for concurrent use; it blocks.
func (s *Session[M]) Revoke(ctx context.Context, tps ...TopicPartition) {
	s.release(ctx, time.Now(), s.lookup(tps), false)
}

// Lose drops tps without waiting and without committing: the assignment
// was lost (session timeout), another member may own them already. Their
// queued messages are not handed out; late acks are ignored; a commit at
// revoke that is retrying them stops. It returns once no commit for them
// can be issued any more (after a commit in flight, which it cancels if it
// is a periodic one, has returned). Unknown partitions are ignored. Safe
// for concurrent use.
func (s *Session[M]) Lose(tps ...TopicPartition) {
	s.release(context.Background(), time.Now(), s.lookup(tps), true)
}

func (s *Session[M]) lookup(tps []TopicPartition) []*Part {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := make([]*Part, 0, len(tps))
	for _, tp := range tps {
		if p, ok := s.parts[tp]; ok {
			parts = append(parts, p)
		}
	}
	return parts
}

// release revokes (lost false) or loses parts; start is when the caller
// was called, the start of the RevokeTimeout budget.
//
// Budget of a revoke: the drain may use RevokeTimeout less a quarter of it
// (Config.revokeReserve); the commit, with its retries, has until
// RevokeTimeout from the call, so at least that quarter. The drain ends
// when ctx ends; the commit does not (a cancelled shutdown still commits
// what was done, within the budget). The close then waits for the commit
// lock without a bound: it can be held only by a commit that the release
// cancelled (periodic or CommitNow: it returns as soon as its CommitFunc
// honours ctx), or by another revoke's commit attempt (bounded by its own
// budget).
func (s *Session[M]) release(ctx context.Context, start time.Time, parts []*Part, lost bool) {
	if !lost {
		// Assigned before the process froze past the session timeout: the
		// group evicted this member, the assignment is dead even if the
		// client calls it a revoke (frozen.go). Lost: nothing committed.
		var dead []*Part
		parts, dead = s.e.splitFrozen(parts)
		if len(dead) > 0 {
			s.e.log.Warn("inorder: partitions revoked after the process froze past the session timeout: dropped as lost, not committed",
				"partitions", len(dead))
			s.release(ctx, start, dead, true)
		}
	}
	to := StateRevoking
	if lost {
		to = StateLost
	}
	mine := parts[:0:0]
	for _, p := range parts {
		if p.move(to) { // first thing: queued messages are no longer handed out
			s.e.dropPart(p) // and released now, counted unackable (the drain skips them)
			mine = append(mine, p)
		}
	}
	if len(mine) == 0 {
		return
	}
	s.releasing.Add(1)
	defer s.releasing.Done()
	s.beginRelease()
	defer s.endRelease()

	cfg := s.e.cfg
	deadline := start.Add(cfg.RevokeTimeout)
	if !lost {
		dctx, cancel := context.WithDeadline(ctx, deadline.Add(-cfg.revokeReserve()))
		var wg sync.WaitGroup
		for _, p := range mine {
			wg.Go(func() { drain(dctx, p) })
		}
		wg.Wait()
		cancel()

		cctx, ccancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		s.commitAtRevoke(cctx, mine)
		ccancel()
	}

	locked := s.closeLock(lost, deadline) // see above: no commit in flight for mine after this
	for _, p := range mine {
		if !lost {
			p.move(StateClosed) // refused if it was lost meanwhile: it stays lost
		}
		p.wm.Close()
		// Late acks are ignored from here: tell the calls still running
		// (past the drain's deadline, or of a lost partition) to stop.
		p.cancel()
		select {
		case <-p.gone: // a revoke and a loss of p both got here (under commitMu)
		default:
			close(p.gone)
		}
	}
	if locked {
		<-s.commitMu
	}
	s.mu.Lock()
	for _, p := range mine {
		if s.parts[p.TP] == p {
			delete(s.parts, p.TP)
		}
	}
	s.mu.Unlock()
	for _, p := range mine {
		if s.txn == nil {
			s.e.keep(p) // kept.go
		}
		s.e.unregister(p)
		s.e.m.release(p, lost)
		st := p.wm.Stats()
		s.e.log.Debug("inorder: partition released", "topic", p.TP.Topic, "partition", p.TP.Partition,
			"state", p.State(), "committed", p.committed.Load(), "commit_point", st.Committable, "pending", st.Pending)
		if !lost && p.State() == StateClosed && st.Pending > p.unackable.Load() {
			s.e.log.Warn("inorder: revoke timeout: messages still in flight are not committed and will be redelivered",
				"topic", p.TP.Topic, "partition", p.TP.Partition, "pending", st.Pending, "revoke_timeout", s.e.cfg.RevokeTimeout)
		}
	}
}

// closeLock takes the commit lock for the close of a release and reports
// whether it did. It waits without a bound, except for a revoke with
// Config.ClientWaitsForCommits: that one waits until its deadline, then
// closes without the lock, the lock's holder being a periodic commit it
// cancelled and the client could not (its request was sent before the
// revoke, and the client holds the rebalance until it returns).
func (s *Session[M]) closeLock(lost bool, deadline time.Time) bool {
	if lost || !s.e.cfg.ClientWaitsForCommits {
		s.commitMu <- struct{}{}
		return true
	}
	select {
	case s.commitMu <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case s.commitMu <- struct{}{}:
		return true
	case <-t.C:
		s.e.log.Warn("inorder: a commit the client cannot cancel is still running at the revoke's deadline: "+
			"the revoke ends without waiting for it (the client completes the rebalance once it returns)",
			"revoke_timeout", s.e.cfg.RevokeTimeout)
		return false
	}
}

// drainPoll is how often drain re-checks while an unackable message holds
// the head of a partition.
const drainPoll = 10 * time.Millisecond

// drain waits until every in-flight message of p that can still be acked is
// acked, or ctx ends. Messages can become unackable while it waits (Stop
// policy, undispatched): addUnackable wakes it to re-check.
func drain(ctx context.Context, p *Part) {
	for {
		if p.wm.Pending() <= p.unackable.Load() {
			return
		}
		if p.unackable.Load() > 0 {
			// A message that will never be acked holds the head: acks above
			// it do not wake wm.Drain (which waits for zero pending). Poll;
			// this only happens with the Stop policy or undispatched work.
			t := time.NewTimer(drainPoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		p.wakeMu.Lock()
		p.wakeDrain = cancel
		p.wakeMu.Unlock()
		// Re-check after publishing the wake-up: an increment before it is
		// seen here, one after it cancels wctx.
		var err error
		if p.wm.Pending() > p.unackable.Load() {
			err = p.wm.Drain(wctx)
		}
		p.wakeMu.Lock()
		p.wakeDrain = nil
		p.wakeMu.Unlock()
		cancel()
		if ctx.Err() != nil || errors.Is(err, watermark.ErrClosed) {
			return
		}
	}
}

// Close revokes every owned partition (drain, commit, close, within
// RevokeTimeout from the call, as Revoke) and stops the commit loop,
// cancelling its commit in flight. It returns once every revoke or loss of
// the session has ended. Idempotent; safe for concurrent use; it blocks.
func (s *Session[M]) Close(ctx context.Context) {
	s.closeOnce.Do(func() {
		start := time.Now()
		s.loopCancel()
		<-s.done
		s.release(ctx, start, s.owned(), false)
		s.releasing.Wait()
	})
}
