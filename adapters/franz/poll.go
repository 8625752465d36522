package franz

// This file holds one Run's poll loop: PollFetches on the Run goroutine,
// each partition's records handed to the engine in runs with the
// non-blocking TryDeliverBatch (a transaction marker, kept as a control
// record, is stepped over with Skip), and back-pressure per partition: a record that does not fit the window
// is kept in its partition's stash, the partition is paused in kgo, and the
// stash is retried every pumpInterval until there is room; then the
// partition is resumed. Nothing here blocks between a poll and
// AllowRebalance, so a rebalance never waits for a handler.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark"
)

// pumpInterval is how often the stashes of paused partitions are retried
// (the longest a poll waits while one is waiting for room).
const pumpInterval = time.Millisecond

// run polls until runCtx ends, then leaves the group and stops the engine.
// ctx is Run's.
func (r *runner) run(runCtx, ctx context.Context) error {
	go func() {
		select {
		case <-r.eng.Fatal():
			r.stop()
		case <-runCtx.Done():
		}
	}()
	r.poll(runCtx)

	// Shutdown: kgo's Close leaves the group; before that it calls
	// onRevoked with every owned partition (drain, commit while still a
	// member). Then nothing is left for the session but its commit loop.
	t0 := time.Now()
	r.cl.CloseAllowingRebalance()
	t1 := time.Now()
	r.sess.Close(context.WithoutCancel(ctx))
	r.eng.Stop()
	r.log.Debug("franz: closed", "group", r.c.group, "leave", t1.Sub(t0), "stop", time.Since(t1))
	if err := r.eng.Err(); err != nil {
		return err
	}
	return r.err
}

// poll is the loop. It returns when ctx ends (Run's end, a handler failed,
// or fail) or the client is closed.
func (r *runner) poll(ctx context.Context) {
	waiting := false // a stash waits for room: poll at most pumpInterval
	for ctx.Err() == nil {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if waiting {
			pctx, cancel = context.WithTimeout(ctx, pumpInterval)
		}
		fs := r.cl.PollFetches(pctx)
		cancel()
		r.mu.Lock()
		closed := r.take(ctx, fs)
		if ctx.Err() == nil {
			r.pump()
		}
		waiting = len(r.blocked) > 0
		r.mu.Unlock()
		r.cl.AllowRebalance()
		if closed {
			if ctx.Err() == nil {
				r.fail(fmt.Errorf("%w: %w", ErrClient, kgo.ErrClientClosed))
			}
			return
		}
	}
}

// take hands out the records of fs and reports whether the client is
// closed. Under r.mu.
func (r *runner) take(ctx context.Context, fs kgo.Fetches) (closed bool) {
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
		case errors.Is(fe.Err, kgo.ErrClientClosed):
			closed = true
		case fatal(fe.Err):
			r.fail(fmt.Errorf("%w: %s[%d]: %w", ErrClient, fe.Topic, fe.Partition, fe.Err))
		default:
			r.log.Warn("franz: fetch error", "topic", fe.Topic, "partition", fe.Partition, "error", fe.Err)
		}
	}
	if ctx.Err() != nil {
		return closed // stopping: nothing more is handed out (it is redelivered)
	}
	fs.EachPartition(func(fp kgo.FetchTopicPartition) {
		if fp.Err != nil {
			return
		}
		st := r.parts[TopicPartition{Topic: fp.Topic, Partition: fp.Partition}]
		if st == nil {
			return // not ours (any more)
		}
		st.part.SetLogEnd(fp.HighWatermark)
		recs := fp.Records
		if len(st.stash) == 0 {
			n := r.push(st, recs)
			recs = recs[n:]
			if len(recs) == 0 {
				return
			}
			r.blocked[st.tp] = st
			r.cl.PauseFetchPartitions(tpMap(st.tp))
			if f := r.cfg.onPause; f != nil {
				f(st.tp, true)
			}
		}
		st.stash = append(st.stash, recs...)
	})
	return closed
}

// pump retries the stashes; a partition whose stash emptied is resumed.
// Under r.mu.
func (r *runner) pump() {
	for tp, st := range r.blocked {
		i := r.push(st, st.stash)
		clear(st.stash[:i])
		st.stash = st.stash[i:]
		if len(st.stash) == 0 {
			st.stash = nil
			delete(r.blocked, tp)
			r.cl.ResumeFetchPartitions(tpMap(tp))
			if f := r.cfg.onPause; f != nil {
				f(tp, false)
			}
		}
	}
}

// batchMax bounds the records push hands to the engine at once (its
// offsets are gathered in an array on the stack).
const batchMax = 256

// push hands recs, records of st's partition in offset order, to the
// engine in runs (TryDeliverBatch: one publication and one scheduler lock
// per run) and returns how many it is done with: fewer than len(recs) when
// recs[n] does not fit in the window yet. A control record (transaction
// marker) is a gap: Skip past it. Under r.mu.
func (r *runner) push(st *pstate, recs []*kgo.Record) int {
	var buf [batchMax]int64
	done := 0
	for done < len(recs) {
		var err error
		if rec := recs[done]; rec.Attrs.IsControl() {
			if err = st.part.Watermark().Skip(rec.Offset + 1); err == nil {
				r.delivered(st, rec)
				done++
				continue
			}
		} else {
			run := recs[done:min(len(recs), done+batchMax)]
			offs := buf[:0]
			for _, rec := range run {
				if rec.Attrs.IsControl() {
					break
				}
				offs = append(offs, rec.Offset)
			}
			run = run[:len(offs)]
			var n int
			n, err = r.sess.TryDeliverBatch(st.part, offs, run)
			if n > 0 {
				r.delivered(st, run[n-1])
			}
			done += n
			if err == nil {
				continue
			}
		}
		switch {
		case errors.Is(err, watermark.ErrWindowFull):
			return done
		case errors.Is(err, watermark.ErrClosed), errors.Is(err, engine.ErrStopped):
			return len(recs) // revoked or stopping: redelivered to the next owner
		default:
			rec := recs[done]
			r.log.Warn("franz: record not delivered", "topic", rec.Topic, "partition", rec.Partition,
				"offset", rec.Offset, "error", err)
			done++
		}
	}
	return done
}

// delivered records the leader epoch of rec, the last record of st's
// partition handed to the engine (rare: one atomic store per leader
// change). Under r.mu.
func (r *runner) delivered(st *pstate, rec *kgo.Record) {
	if rec.LeaderEpoch != st.lastEpoch {
		st.lastEpoch = rec.LeaderEpoch
		st.epoch.Store(rec.LeaderEpoch)
	}
}
