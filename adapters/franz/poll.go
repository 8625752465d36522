package franz

// This file holds one Run's poll loop: PollFetches on the Run goroutine,
// each partition's records handed to the engine in runs with the
// non-blocking TryDeliverBatch (a transaction marker, kept as a control
// record, is stepped over with Skip), and back-pressure per partition: a
// record that does not fit the window is kept in its partition's stash and
// the partition is paused in kgo. While any partition is paused so, the
// poll also ends as soon as one of them has room for its first stashed
// record: a goroutine per such partition waits for it (watermark WaitRoom,
// woken by the acks that move the commit point, not a timer) and cancels
// the poll's context. The loop then retries the stashes (pump) and resumes
// a partition whose stash emptied. Nothing here blocks between a poll and
// AllowRebalance, so a rebalance never waits for a handler; while the poll
// waits, kgo lets rebalances run.
//
// roomWaitMax bounds that wait. WaitRoom is woken by every ack in the word
// of the window's base and by Close, so no room goes unnoticed and the
// bound is not needed for progress; it is kept as a safety net (a missed
// wake-up would cost at most roomWaitMax, not a stuck partition) at a
// cost of at most 10 empty polls a second while something is blocked,
// against 1,000 with the former 1 ms retry timer.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark"
)

// roomWaitMax is the longest a poll waits while a paused partition waits
// for room (see the file comment).
const roomWaitMax = 100 * time.Millisecond

// noWait is the nil context with which kgo's PollFetches returns at once
// with what it has buffered (its documented meaning).
var noWait context.Context

// roomWait is a paused partition's wait: offset, its first stashed record,
// fits in the window of wm.
type roomWait struct {
	wm     *watermark.Partition
	offset int64
}

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
	var waits []roomWait // the paused partitions, as of the last pump
	for ctx.Err() == nil {
		fs := r.pollFetches(ctx, waits)
		r.mu.Lock()
		closed := r.take(ctx, fs)
		if !fs.Empty() {
			r.ramp.grow(r.cl)
		}
		if ctx.Err() == nil {
			r.pump()
		}
		clear(waits) // drop the revoked partitions' trackers
		waits = waits[:0]
		for _, st := range r.blocked {
			waits = append(waits, roomWait{st.part.Watermark(), st.stash[0].Offset})
		}
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

// pollFetches is PollFetches(ctx) that, while waits is not empty, also
// returns once one of waits has room (or a partition of waits is closed,
// at a revoke) or after roomWaitMax. It starts a goroutine per wait and
// returns after they all have: they are the partitions' only
// Track-goroutine callers meanwhile (the poll loop calls Track again only
// after this returns). Run goroutine only.
func (r *runner) pollFetches(ctx context.Context, waits []roomWait) kgo.Fetches {
	if len(waits) == 0 {
		return r.cl.PollFetches(ctx)
	}
	pctx, cancel := context.WithTimeout(ctx, roomWaitMax)
	var wg sync.WaitGroup
	for _, w := range waits {
		wg.Go(func() {
			// nil: room; ErrClosed: revoked (the loop drops it);
			// pctx's error: the poll ended first.
			_ = w.wm.WaitRoom(pctx, w.offset)
			cancel()
		})
	}
	fs := r.cl.PollFetches(pctx)
	cancel()
	wg.Wait() // at once: each WaitRoom returns when pctx ends
	if errors.Is(fs.Err0(), context.Canceled) && ctx.Err() == nil {
		// Woken for room. A poll whose context ended before it looked at
		// kgo's buffer returns nothing of it: take what is buffered,
		// without waiting, so that the other partitions are not held back
		// while this one drains its stash.
		fs = append(fs, r.cl.PollFetches(noWait)...)
	}
	return fs
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
// Under r.mu, after each poll.
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
				if rec.LeaderEpoch != st.lastEpoch {
					r.epochStart(st, rec)
				}
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
				if rec.LeaderEpoch != st.lastEpoch { // a leader change: rare
					r.epochStart(st, rec)
				}
				offs = append(offs, rec.Offset)
			}
			run = run[:len(offs)]
			var n int
			n, err = r.sess.TryDeliverBatch(st.part, offs, run)
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

// epochStart records that rec, a record of st's partition about to be
// handed to the engine, starts a leader epoch: the commit of an offset
// carries the epoch of the record before it (epochLog). Under r.mu.
func (r *runner) epochStart(st *pstate, rec *kgo.Record) {
	st.lastEpoch = rec.LeaderEpoch
	st.epochs.add(rec.Offset, rec.LeaderEpoch)
}

// fetchRamp is the slow start of the fetch sizes (engine.FetchRamp; the
// kafka-go adapter ramps each partition's fetches, this one the client's):
// kgo reads and decodes a fetch response whole before the poll hands out
// any of it, so the first fetches of an assignment ask for
// engine.FirstFetchBytes, per response and per partition, and each poll
// that returns records doubles both up to the configured sizes
// (FetchMaxBytes per partition, kgo's FetchMaxBytes per response). Under
// r.mu (init: before kgo starts).
type fetchRamp struct {
	part, resp       engine.FetchRamp
	maxPart, maxResp int // configured (kgo clamps the partition size to the response size)
}

// init reads the configured sizes of cl and starts the ramp. From the
// new-client hook, before kgo fetches.
func (f *fetchRamp) init(cl *kgo.Client) {
	maxResp, _ := cl.OptValue(kgo.FetchMaxBytes).(int32)
	maxPart, _ := cl.OptValue(kgo.FetchMaxPartitionBytes).(int32)
	f.maxResp, f.maxPart = int(maxResp), int(maxPart)
	f.restart(cl)
}

// restart goes back to the first sizes.
func (f *fetchRamp) restart(cl *kgo.Client) {
	f.part, f.resp = engine.NewFetchRamp(f.maxPart), engine.NewFetchRamp(f.maxResp)
	f.update(cl)
}

// grow doubles the sizes, up to the configured ones.
func (f *fetchRamp) grow(cl *kgo.Client) {
	if p, r := f.part.Grow(), f.resp.Grow(); p || r {
		f.update(cl)
	}
}

func (f *fetchRamp) update(cl *kgo.Client) {
	cl.UpdateFetchMaxBytes(int32(f.resp.Size()), int32(f.part.Size()))
}
