package engine

// This file holds a session's commits: the commit loop and its tick, the
// commit lock, the periodic commit (which a revoke cancels), and the commit
// at revoke (retried within the revoke's budget).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/inorder/inorder/watermark/metadata"
)

// Backoff between the attempts of a commit at revoke: it doubles from
// retryFirst (or RevokeTimeout/20 if smaller) up to retryMax, and the
// revoke's deadline cuts it short.
const (
	retryFirst = 50 * time.Millisecond
	retryMax   = time.Second
)

// errReleasing is the periodic commit's answer when a revoke or a loss is
// running: the revoke commits its partitions; the others wait for the
// next tick.
var errReleasing = errors.New("engine: commit skipped, a revoke is running")

func (s *Session[M]) loop() {
	defer close(s.done)
	t := time.NewTicker(s.e.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-s.loopCtx.Done():
			return
		case now := <-t.C:
			s.tick(s.loopCtx, now)
		}
	}
}

// tick is one turn of the commit loop at time now: run the watchdog,
// commit what moved.
func (s *Session[M]) tick(ctx context.Context, now time.Time) {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	parts := s.owned()
	for _, p := range parts {
		if p.Revoked() {
			continue
		}
		s.watch(p, now)
	}
	cctx, cancel := context.WithTimeout(ctx, s.e.cfg.CommitTimeout)
	defer cancel()
	_ = s.commitCancellable(cctx, parts)
}

// lock takes the commit lock, or returns false if ctx ends first.
func (s *Session[M]) lock(ctx context.Context) bool {
	select {
	case s.commitMu <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Session[M]) unlock() { <-s.commitMu }

// beginRelease marks a revoke or loss as running, which cancels the
// periodic commit in flight and skips the next ones until endRelease.
func (s *Session[M]) beginRelease() {
	s.cmu.Lock()
	s.releases++
	if s.inflight != nil {
		s.inflight()
	}
	s.cmu.Unlock()
}

func (s *Session[M]) endRelease() {
	s.cmu.Lock()
	s.releases--
	s.cmu.Unlock()
}

// commitCancellable is a commit that a revoke or loss cancels (periodic
// commits and CommitNow), logged at Warn level when it fails otherwise.
func (s *Session[M]) commitCancellable(ctx context.Context, parts []*Part) error {
	if !s.lock(ctx) {
		return ctx.Err()
	}
	defer s.unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.cmu.Lock()
	if s.releases > 0 {
		s.cmu.Unlock()
		return errReleasing
	}
	s.inflight = cancel
	s.cmu.Unlock()
	defer func() {
		s.cmu.Lock()
		s.inflight = nil
		s.cmu.Unlock()
	}()
	fails, reqErr := s.commitLocked(ctx, parts)
	if errors.Is(context.Cause(ctx), context.Canceled) && len(fails) > 0 {
		s.e.log.Debug("inorder: commit cancelled by a revoke", "partitions", len(fails))
		return context.Cause(ctx)
	}
	if reqErr == nil && len(fails) == 0 {
		if f := &s.failing; f.n > 0 {
			s.e.log.Info("inorder: commits land again", "failed_commits", f.n, "for", time.Since(f.since).Round(time.Millisecond))
			f.n = 0
		}
		return nil
	}
	// A broker that refuses every commit for a while (a coordinator
	// moving, an error never seen before) is one episode: its first
	// failure is logged at Warn, then one line a minute while it lasts,
	// and one at Info when a commit lands again.
	now := time.Now()
	f := &s.failing
	if f.n == 0 {
		f.since = now
	}
	f.n++
	level := slog.LevelDebug
	if f.n == 1 || now.Sub(f.said) >= time.Minute {
		level, f.said = slog.LevelWarn, now
	}
	if reqErr != nil {
		s.e.log.Log(ctx, level, "inorder: commit failed", "partitions", len(fails), "error", reqErr,
			"failed_commits", f.n, "failing_for", now.Sub(f.since).Round(time.Millisecond))
		return reqErr
	}
	for _, fl := range fails {
		s.e.log.Log(ctx, level, "inorder: commit refused", "topic", fl.p.TP.Topic, "partition", fl.p.TP.Partition,
			"offset", fl.offset, "error", fl.err, "failed_commits", f.n, "failing_for", now.Sub(f.since).Round(time.Millisecond))
	}
	return fails[0].err
}

// commitFailure is a partition whose commit did not land.
type commitFailure struct {
	p      *Part
	offset int64
	err    error
}

// commitLocked commits the partitions of parts whose commit point (or
// metadata) moved, never below what they committed, never for a closed or
// lost partition, and records what the broker accepted. It returns the
// partitions whose commit did not land and, if the whole request failed,
// its error (then every attempted partition is in fails with it). Under
// the commit lock.
func (s *Session[M]) commitLocked(ctx context.Context, parts []*Part) (fails []commitFailure, reqErr error) {
	maxBytes := s.e.cfg.MetadataMaxBytes
	offs := make([]Offset, 0, len(parts))
	which := make([]*Part, 0, len(parts))
	for _, p := range parts {
		if p.closed() || s.e.frozenOut(p) {
			continue // frozenOut: see frozen.go
		}
		var point int64
		meta := ""
		if maxBytes > 0 {
			// Skip the snapshot and its encoding when nothing changed since
			// the last one: acks only add to the done set, so the same
			// commit point, high mark and pending count (read before the
			// snapshot) mean the same set.
			sig := [3]int64{p.wm.Committable(), p.wm.High(), p.wm.Pending()}
			if sig == p.lastSig && sig[0] == p.committed.Load() {
				continue
			}
			p.lastSig = sig
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
		return nil, nil
	}
	t0 := time.Now()
	done := s.e.commitStarts() // stuckcommit.go
	errs, err := s.send(ctx, offs, which)
	done()
	if err == nil && len(errs) != len(offs) {
		err = fmt.Errorf("engine: commit returned %d results for %d offsets", len(errs), len(offs))
	}
	s.e.m.commit(offs, errs, err, time.Since(t0))
	if err != nil {
		fails = make([]commitFailure, len(which))
		for i, p := range which {
			p.lastSig = [3]int64{} // not committed: snapshot again next time
			fails[i] = commitFailure{p, offs[i].Offset, err}
		}
		return fails, err
	}
	for i, p := range which {
		if errs[i] != nil {
			p.lastSig = [3]int64{}
			fails = append(fails, commitFailure{p, offs[i].Offset, errs[i]})
			continue
		}
		p.committed.Store(offs[i].Offset)
		p.lastMeta = offs[i].Metadata
		p.commits.Add(1)
	}
	return fails, nil
}

// commitAtRevoke commits parts, retrying the partitions whose commit did
// not land (refused, or the request failed) with backoff until ctx ends,
// except those refused with ErrFenced and those lost meanwhile. Each
// attempt is bounded by CommitTimeout and ctx, logged at Debug level when
// it fails; a final failure is logged at Warn level with the partitions and
// offsets.
func (s *Session[M]) commitAtRevoke(ctx context.Context, parts []*Part) {
	wait := min(retryFirst, max(s.e.cfg.RevokeTimeout/20, time.Millisecond))
	todo := parts
	var left []commitFailure // did not land, as of the last attempt
	for attempt := 1; ; attempt++ {
		if !s.lock(ctx) {
			if attempt == 1 {
				for _, p := range todo {
					left = append(left, commitFailure{p, p.wm.Committable(), ctx.Err()})
				}
			}
			break
		}
		actx, cancel := context.WithTimeout(ctx, s.e.cfg.CommitTimeout)
		fails, reqErr := s.commitLocked(actx, todo)
		cancel()
		s.unlock()
		left = fails
		todo = todo[:0:0]
		for _, f := range fails {
			if !errors.Is(f.err, ErrFenced) {
				todo = append(todo, f.p)
			}
		}
		if len(todo) == 0 {
			break
		}
		err := reqErr
		if err == nil {
			err = fails[0].err
		}
		s.e.log.Debug("inorder: commit at revoke did not land, retrying", "attempt", attempt,
			"partitions", describe(fails), "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		if ctx.Err() != nil {
			break
		}
		wait = min(2*wait, retryMax)
	}
	final := left[:0:0]
	for _, f := range left {
		if !f.p.closed() { // lost meanwhile: nothing to commit any more
			final = append(final, f)
		}
	}
	if len(final) > 0 {
		s.e.log.Warn("inorder: commit at revoke failed, these partitions restart from their last commit",
			"partitions", describe(final), "error", final[0].err, "revoke_timeout", s.e.cfg.RevokeTimeout)
	}
}

// describe names failures as "topic[partition]@offset (committed c): error".
func describe(fails []commitFailure) string {
	var b strings.Builder
	for i, f := range fails {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s[%d]@%d (committed %d): %v", f.p.TP.Topic, f.p.TP.Partition, f.offset, f.p.committed.Load(), f.err)
	}
	return b.String()
}
