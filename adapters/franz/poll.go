package franz

// This file holds one Run's poll loop: PollFetches on the Run goroutine,
// each record handed to the engine with the non-blocking TryDeliver (a
// transaction marker, kept as a control record, is stepped over with Skip),
// and back-pressure per partition: a record that does not fit the window
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
		for _, rec := range fp.Records {
			if len(st.stash) > 0 {
				st.stash = append(st.stash, rec)
				continue
			}
			if !r.push(st, rec) {
				st.stash = append(st.stash, rec)
				r.blocked[st.tp] = st
				r.cl.PauseFetchPartitions(tpMap(st.tp))
				if f := r.cfg.onPause; f != nil {
					f(st.tp, true)
				}
			}
		}
	})
	return closed
}

// pump retries the stashes; a partition whose stash emptied is resumed.
// Under r.mu.
func (r *runner) pump() {
	for tp, st := range r.blocked {
		i := 0
		for i < len(st.stash) && r.push(st, st.stash[i]) {
			i++
		}
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

// push hands rec to the engine and reports whether it is done with it
// (false: it does not fit in the window yet). A control record (transaction
// marker) is a gap: Skip past it. Under r.mu.
func (r *runner) push(st *pstate, rec *kgo.Record) bool {
	var err error
	if rec.Attrs.IsControl() {
		err = st.part.Watermark().Skip(rec.Offset + 1)
	} else {
		err = r.sess.TryDeliver(st.part, rec.Offset, rec)
	}
	switch {
	case err == nil:
		if rec.LeaderEpoch != st.lastEpoch { // rare: one atomic store per leader change
			st.lastEpoch = rec.LeaderEpoch
			st.epoch.Store(rec.LeaderEpoch)
		}
		return true
	case errors.Is(err, watermark.ErrWindowFull):
		return false
	case errors.Is(err, watermark.ErrClosed), errors.Is(err, engine.ErrStopped):
		return true // revoked or stopping: redelivered to the next owner
	default:
		r.log.Warn("franz: record not delivered", "topic", rec.Topic, "partition", rec.Partition,
			"offset", rec.Offset, "error", err)
		return true
	}
}
