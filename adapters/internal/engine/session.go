package engine

// This file holds a Session: the partitions of one assignment, their
// delivery, the commit loop, and the drain-commit-close on revoke.

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
// the broker accepted it), or a non-nil second result if the whole request
// failed. The engine calls it from one goroutine at a time per session.
type CommitFunc func(ctx context.Context, offs []Offset) ([]error, error)

// Session is the set of partitions of one assignment (for kafka-go, one
// generation) and its commit loop. Create it with Engine.NewSession.
type Session[M any] struct {
	e      *Engine[M]
	commit CommitFunc

	commitMu sync.Mutex // serialises commits: a commit never overtakes a later one

	mu    sync.Mutex
	parts map[TopicPartition]*Part

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewSession starts a session whose commit loop commits through commit
// every CommitInterval.
func (e *Engine[M]) NewSession(commit CommitFunc) *Session[M] {
	s := &Session[M]{
		e:      e,
		commit: commit,
		parts:  make(map[TopicPartition]*Part),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go s.loop()
	return s
}

func (s *Session[M]) loop() {
	defer close(s.done)
	t := time.NewTicker(s.e.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			parts := s.owned()
			for _, p := range parts {
				p.wm.Stats() // samples the stuck time
			}
			ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			_ = s.commitParts(ctx, parts)
			cancel()
		}
	}
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
// corrupt, is logged and ignored.
func (s *Session[M]) Assign(tp TopicPartition, committed int64, meta string, logEnd int64) (*Part, error) {
	if committed < 0 {
		return nil, fmt.Errorf("engine: assign %s[%d]: negative start offset %d", tp.Topic, tp.Partition, committed)
	}
	cfg := s.e.cfg
	wm := watermark.NewPartition(committed, watermark.WithWindow(cfg.Window))
	p := &Part{TP: tp, wm: wm, lastMeta: meta, snap: ordset.New()}
	p.committed.Store(committed)
	p.logEnd.Store(logEnd)
	if meta != "" && cfg.MetadataMaxBytes > 0 {
		done, err := metadata.Decode(meta, committed)
		switch {
		case err != nil:
			s.e.log.Warn("inorder: ignoring commit metadata",
				"topic", tp.Topic, "partition", tp.Partition, "offset", committed, "error", err)
		case done != nil:
			if logEnd >= 0 {
				done.RemoveRange(logEnd, math.MaxInt64)
			}
			if err := wm.Restore(done); err != nil {
				return nil, fmt.Errorf("engine: restore %s[%d]: %w", tp.Topic, tp.Partition, err)
			}
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

// dispatch queues msg once Track or TrackWait returned trackErr for it.
func (s *Session[M]) dispatch(p *Part, offset int64, msg M, trackErr error) error {
	if trackErr != nil {
		if errors.Is(trackErr, watermark.ErrRestored) {
			p.restored.Add(1)
			return nil
		}
		return trackErr
	}
	return s.e.dispatch(p, offset, msg)
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

// CommitNow commits every owned partition whose commit point (or commit
// metadata) moved since the last commit. Safe for concurrent use.
func (s *Session[M]) CommitNow(ctx context.Context) error {
	return s.commitParts(ctx, s.owned())
}

func (s *Session[M]) commitParts(ctx context.Context, parts []*Part) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	maxBytes := s.e.cfg.MetadataMaxBytes
	offs := make([]Offset, 0, len(parts))
	which := make([]*Part, 0, len(parts))
	for _, p := range parts {
		if p.revoked {
			continue
		}
		var point int64
		meta := ""
		if maxBytes > 0 {
			point = p.wm.Snapshot(p.snap)
			m, complete, err := metadata.Encode(point, p.snap, maxBytes)
			switch {
			case err != nil:
				s.e.log.Error("inorder: encoding commit metadata", "topic", p.TP.Topic, "partition", p.TP.Partition, "error", err)
				m = ""
			case !complete:
				p.misses.Add(1)
				if now := time.Now(); now.Sub(p.lastMissLog) >= time.Minute {
					p.lastMissLog = now
					s.e.log.Warn("inorder: commit metadata does not fit, committing a prefix of the done offsets",
						"topic", p.TP.Topic, "partition", p.TP.Partition, "offset", point,
						"done_ranges", p.snap.NumRanges(), "max_bytes", maxBytes)
				}
			}
			meta = m
		} else {
			point = p.wm.Committable()
		}
		last := p.committed.Load()
		if point < last || (point == last && meta == p.lastMeta) {
			continue // never lower; nothing new
		}
		offs = append(offs, Offset{TP: p.TP, Offset: point, Metadata: meta})
		which = append(which, p)
	}
	if len(offs) == 0 {
		return nil
	}
	t0 := time.Now()
	errs, err := s.commit(ctx, offs)
	if err == nil && len(errs) != len(offs) {
		err = fmt.Errorf("engine: commit returned %d results for %d offsets", len(errs), len(offs))
	}
	s.e.m.commit(offs, errs, err, time.Since(t0))
	if err != nil {
		s.e.log.Warn("inorder: commit failed", "partitions", len(offs), "error", err)
		return err
	}
	var first error
	for i, p := range which {
		if errs[i] != nil {
			s.e.log.Warn("inorder: commit refused", "topic", p.TP.Topic, "partition", p.TP.Partition,
				"offset", offs[i].Offset, "error", errs[i])
			if first == nil {
				first = errs[i]
			}
			continue
		}
		p.committed.Store(offs[i].Offset)
		p.lastMeta = offs[i].Metadata
		p.commits.Add(1)
	}
	return first
}

// Revoke gives up tps (their fetch loops must have stopped): it waits at
// most RevokeTimeout (or until ctx ends) for their in-flight messages, then
// commits them synchronously and closes them, so later acks are ignored and
// no commit is issued for them again. Unknown partitions are ignored.
func (s *Session[M]) Revoke(ctx context.Context, tps ...TopicPartition) {
	s.revoke(ctx, s.lookup(tps), false)
}

// Lose drops tps without waiting and without committing: the assignment
// was lost (session timeout), another member may own them already. Their
// queued messages are not handed out; late acks are ignored. Unknown
// partitions are ignored.
func (s *Session[M]) Lose(tps ...TopicPartition) {
	s.revoke(context.Background(), s.lookup(tps), true)
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

func (s *Session[M]) revoke(ctx context.Context, parts []*Part, lost bool) {
	if len(parts) == 0 {
		return
	}
	for _, p := range parts {
		p.revoking.Store(true) // queued messages are no longer handed out
	}
	if lost {
		s.commitMu.Lock()
		for _, p := range parts {
			p.revoked = true // no commit from here on
		}
		s.commitMu.Unlock()
	} else {
		dctx, cancel := context.WithTimeout(ctx, s.e.cfg.RevokeTimeout)
		var wg sync.WaitGroup
		for _, p := range parts {
			wg.Go(func() { drain(dctx, p) })
		}
		wg.Wait()
		cancel()

		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		_ = s.commitParts(cctx, parts)
		ccancel()
	}

	s.commitMu.Lock()
	for _, p := range parts {
		p.revoked = true
		p.wm.Close()
	}
	s.commitMu.Unlock()
	s.mu.Lock()
	for _, p := range parts {
		if s.parts[p.TP] == p {
			delete(s.parts, p.TP)
		}
	}
	s.mu.Unlock()
	for _, p := range parts {
		s.e.unregister(p)
		s.e.m.release(p, lost)
		st := p.wm.Stats()
		s.e.log.Debug("inorder: partition released", "topic", p.TP.Topic, "partition", p.TP.Partition,
			"committed", p.committed.Load(), "commit_point", st.Committable, "pending", st.Pending)
		if !lost && st.Pending > p.unackable.Load() {
			s.e.log.Warn("inorder: revoke timeout: messages still in flight are not committed and will be redelivered",
				"topic", p.TP.Topic, "partition", p.TP.Partition, "pending", st.Pending, "revoke_timeout", s.e.cfg.RevokeTimeout)
		}
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

// Close revokes every owned partition (drain, commit, close) and stops the
// commit loop. Idempotent.
func (s *Session[M]) Close(ctx context.Context) {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.revoke(ctx, s.owned(), false)
	})
}
