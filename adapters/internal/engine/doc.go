// Package engine is the client-agnostic machinery the Kafka adapters share
// (adapters/kafkago, adapters/confluent): a pool of workers that run the
// handler, per-partition tracking with watermark.Partition, the commit loop
// with commit metadata, the drain on revoke, the handler error policy and
// per-partition statistics. The adapters keep only what is specific to
// their client: group membership, fetching, the commit request.
//
// Life cycle, as an adapter drives it:
//
//	e := engine.New(cfg, handler)   // once per Run
//	e.Start(ctx)                    // workers
//	s := e.NewSession(commitFunc, engine.SessionHooks{Refresh: ..., Stalled: ...})
//	                                // per assignment (kafka-go: per generation); starts the commit loop
//	p, _ := s.Assign(tp, committed, metadata, logEnd)  // restore from commit metadata
//	... fetch goroutine per partition: s.Deliver(ctx, p, offset, msg), s.SkipTo(ctx, p, next) ...
//	    (or s.TryDeliver, which returns watermark.ErrWindowFull instead of waiting for room;
//	    p.SetPaused(true/false) when the adapter pauses or resumes the partition)
//	s.Revoke(ctx, tps...)           // after stopping those fetches: drain, commit, close, ≤ RevokeTimeout
//	s.Lose(tps...)                  // assignment lost: close without drain or commit
//	s.Close(ctx)                    // revoke everything, stop the commit loop
//	e.Stop()                        // stop workers once no session is left (waits ≤ RevokeTimeout)
//
// Each partition (Part) is one state machine, Part.State:
// assigned → active ⇄ paused → revoking → closed, or lost from any state
// but closed. The Part is its only writer; adapters ask it (State,
// Revoked) rather than keep their own copy. Revoked is true from the first
// moment of a revoke or loss: queued messages of the partition are no
// longer handed to the handler.
//
// Revoke budget: a revoke (or Close) ends within RevokeTimeout of the
// call. The drain may use the first three quarters; the commit, with its
// retries, has until the end (at least the last quarter). A periodic
// commit in flight is cancelled, not waited for. A commit at revoke that
// the coordinator refuses, or whose request fails, is retried with backoff
// (partitions that did not land only) until the budget ends, unless the
// CommitFunc marked the refusal ErrFenced; each try is logged at Debug
// level, a final failure at Warn level with partitions and offsets.
//
// The commit loop ticks every CommitInterval: SessionHooks.Refresh (the
// adapter refreshes the log end from its client's cache), then two
// watchdogs that sample each partition (no cost per message), then the
// periodic commit (bounded by CommitTimeout). Stuck: a commit point that
// has not moved for StuckThreshold while messages are pending is logged at
// Warn level with its offset, once per episode, and its recovery at Info
// level. Stalled: a partition with room in its window whose log end is
// above its high mark, and whose high mark has not moved for StallAfter,
// is logged at Warn level and reported once per episode to
// SessionHooks.Stalled (the adapter makes its client fetch it again).
//
// Concurrency: Deliver, TryDeliver and SkipTo for one partition must come from one
// goroutine (the partition's fetch loop); everything else is safe for
// concurrent use. Commits of one session are serialised, so a commit never
// overtakes a later one, never goes below what the session already
// committed for that partition, and is never issued for a partition after
// it was closed or lost.
//
// Messages flow through one shared FIFO queue of Concurrency slots to the
// workers, in the order the fetch loops deliver them. There is no
// per-partition fairness: a partition with a large backlog gets a share of
// the workers in proportion to how fast its fetch loop fills the queue, so
// it can slow the others down (up to its window), though it cannot take
// the workers for itself indefinitely, since a full window blocks its fetch
// loop (TrackWait): that is the back-pressure, and it is per partition.
// Handlers that ignore their context are abandoned by Stop after
// RevokeTimeout (logged): their goroutines run until they return.
package engine
