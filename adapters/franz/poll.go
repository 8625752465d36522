package franz

// This file holds one Run's poll loop: PollFetches on the Run goroutine,
// each partition's records offered to the engine (Offer: the engine tracks
// what fits in the window and keeps the rest, so nothing here holds a
// record), a transaction marker (kept as a control record) offered as a
// gap, and the engine's flow decisions applied with kgo's
// PauseFetchPartitions and ResumeFetchPartitions after each poll. While a
// partition is paused the poll also ends when the engine wants a change
// (Engine.FlowChanged), so a partition resumes as soon as it has room.
// Nothing here blocks between a poll and AllowRebalance, so a rebalance
// never waits for a handler; while the poll waits, kgo lets rebalances run.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/internal/engine"
	"github.com/inorder/inorder/watermark"
)

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
	paused := false // a partition is paused in kgo, as of the last poll
	for ctx.Err() == nil {
		fs := r.pollFetches(ctx, paused)
		r.mu.Lock()
		closed := r.take(ctx, fs)
		if !fs.Empty() {
			r.ramp.grow(r.cl)
		}
		r.eng.ApplyFlow(r.applyFlow)
		paused = r.paused > 0
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

// pollFetches is PollFetches(ctx) that, while a partition is paused (paused), also
// returns when the engine wants a partition's fetch state changed. Run
// goroutine only.
func (r *runner) pollFetches(ctx context.Context, paused bool) kgo.Fetches {
	if !paused {
		return r.cl.PollFetches(ctx)
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-r.eng.FlowChanged():
			cancel()
		case <-pctx.Done():
		}
	}()
	fs := r.cl.PollFetches(pctx)
	cancel()
	<-done
	if errors.Is(fs.Err0(), context.Canceled) && ctx.Err() == nil {
		// Woken for a change of the flow. A poll whose context ended
		// before it looked at kgo's buffer returns nothing of it: take
		// what is buffered, without waiting.
		fs = append(fs, r.cl.PollFetches(noWait)...)
	}
	return fs
}

// noWait is the nil context with which kgo's PollFetches returns at once
// with what it has buffered (its documented meaning).
var noWait context.Context

// applyFlow pauses or resumes p in kgo (Engine.ApplyFlow). Under r.mu.
func (r *runner) applyFlow(p *engine.Part, pause bool) {
	if pause {
		r.cl.PauseFetchPartitions(tpMap(p.TP))
		r.paused++
	} else {
		r.cl.ResumeFetchPartitions(tpMap(p.TP))
		r.paused--
	}
	if f := r.cfg.onPause; f != nil {
		f(p.TP, pause)
	}
}

// take offers the records of fs to the engine and reports whether the
// client is closed. Under r.mu.
func (r *runner) take(ctx context.Context, fs kgo.Fetches) (closed bool) {
	for _, fe := range fs.Errors() {
		unread := r.unread[TopicPartition{Topic: fe.Topic, Partition: fe.Partition}]
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
		case errors.Is(fe.Err, kgo.ErrClientClosed):
			closed = true
		case fatal(fe.Err) && fe.Topic == "": // not a partition's (a group error)
			r.fail(fmt.Errorf("%w: %w", ErrClient, fe.Err))
		case fatal(fe.Err):
			r.fail(fmt.Errorf("%w: %s[%d]: %w", ErrClient, fe.Topic, fe.Partition, fe.Err))
		case unread != nil && errors.Is(fe.Err, unread) && !kerr.IsRetriable(fe.Err):
			// kgo (v1.22.3) drops a partition whose committed offset read
			// failed (but for UNSTABLE_OFFSET_COMMIT and, three times,
			// UNKNOWN_TOPIC_ID) from the member's assignment, and reports
			// the error here: nothing consumes it until a rebalance moves
			// it. An error no retry can fix ends Run.
			r.fail(fmt.Errorf("%w: reading the committed offset of %s[%d] (kgo dropped the partition from this member's assignment): %w",
				ErrAssign, fe.Topic, fe.Partition, fe.Err))
		case unread != nil && errors.Is(fe.Err, unread):
			r.log.Warn("franz: a new partition's committed offset could not be read: kgo dropped it from this member's assignment until a rebalance moves it",
				"topic", fe.Topic, "partition", fe.Partition, "error", fe.Err)
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
		r.offer(st, fp.Records)
	})
	return closed
}

// batchMax bounds the records offered at once (their offsets are gathered
// in an array on the stack).
const batchMax = 256

// offer hands recs, records of st's partition in offset order, to the
// engine in runs; a control record (transaction marker) ends a run as a
// gap. Under r.mu.
func (r *runner) offer(st *pstate, recs []*kgo.Record) {
	var buf [batchMax]int64
	for len(recs) > 0 {
		run := recs[:min(len(recs), batchMax)]
		offs := buf[:0]
		end := int64(0)
		for _, rec := range run {
			if rec.LeaderEpoch != st.lastEpoch { // a leader change: rare
				r.epochStart(st, rec)
			}
			if rec.Attrs.IsControl() {
				end = rec.Offset + 1
				break
			}
			offs = append(offs, rec.Offset)
		}
		n := len(offs)
		if end > 0 {
			n++ // the marker
		}
		stale, err := r.sess.Offer(st.part, offs, run[:len(offs)], end)
		recs = recs[n:]
		if stale > 0 && !st.staleLogged {
			// A log truncated below what was fetched (an unclean leader
			// election), or a refetch: once per assignment at Info.
			st.staleLogged = true
			r.log.Info("franz: records below the partition's fetch position dropped (refetched, or the log was truncated)",
				"topic", st.tp.Topic, "partition", st.tp.Partition, "first", offs[0], "dropped", stale,
				"position", st.part.Next())
		}
		if err != nil {
			if !errors.Is(err, watermark.ErrClosed) && !errors.Is(err, engine.ErrStopped) {
				r.log.Warn("franz: records not offered", "topic", st.tp.Topic, "partition", st.tp.Partition, "error", err)
			}
			return // revoked or stopping: redelivered to the next owner
		}
	}
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
