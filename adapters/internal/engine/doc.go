// Package engine is the client-agnostic machinery the Kafka adapters share
// (adapters/kafkago, adapters/confluent): a pool of workers that run the
// handler, per-partition tracking with watermark.Partition, the commit loop
// with commit metadata, the drain on revoke, the handler error policy and
// per-partition statistics. The adapters keep only what is specific to
// their client: group membership, fetching, the commit request.
//
// Life cycle, as an adapter drives it:
//
//	e := engine.New(cfg, handler, key) // once per Run; key reads a message's key
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
// Scheduling. Deliver and TryDeliver never wait for a worker: they queue
// the message in its partition's queue, which the partition's window bounds
// (a full window makes Deliver wait and TryDeliver refuse: that is the
// back-pressure, per partition). What a queue lets start depends on
// Config.Ordering: Unordered, any queued message (a FIFO); ByPartition, the
// oldest, once the partition's previous call returned; ByKey, for each key
// (compared by bytes) with no call running, its oldest message, and any
// keyless message unless KeylessOrdered (then the keyless messages are one
// key). ByKey keeps the partition's messages in one arrival queue; a key
// gets a queue of its own only while it is busy (a call running or a retry
// waiting), for the messages met behind it, and loses it when it is idle
// and empty: the uniform-keys case stays as cache-friendly as Unordered.
//
// A free worker takes from the partition with the fewest handler calls
// running among those with a message that may start, round-robin among
// equals; within the partition, the lowest offset that may start (which
// also moves the commit point soonest). So a partition of slow handlers
// holds at most its share of the workers while another partition has work
// ready, and a new message of a quiet partition gets the next worker that
// frees up, whatever the backlog of the others. The choice is not
// preemptive: workers that went to a partition while nothing else was ready
// stay until their calls return. Each decision costs O(1) (amortised: ByKey
// parks each message met behind a busy key once), plus O(log k) for ByKey
// with k idle keys holding parked messages, under one lock shared with the
// deliveries;
// a worker releases its finished message and takes the next in one critical
// section. Unordered allocates nothing per message; ByKey takes a pooled
// key record per running key.
//
// Runs (Unordered and ByKey). A worker whose handler calls are short takes
// a run of up to 64 messages of the partition it chose (what take would
// hand out next there, one after the other: with ByKey each holds its key
// until the run is released), sized to
// about 20µs of handler time from how long its previous calls took (a
// handler slower than that gets one message at a time), and only while no
// worker is parked: one lock, one release and one wake-up decision per run
// instead of per message. The run's messages count as running for the
// fairness rule. A worker that finds nothing to take steals the messages of
// another worker's run that its worker has not reached yet, one per visit,
// so no message waits behind a slow call while a worker is free.
//
// Retries (Config.Retry). A failed handler call is retried up to
// Retry.MaxAttempts calls in all, unless its error is wrapped with
// Permanent, after exponential waits with jitter. While it waits the message
// sits in the scheduler's timer heap, not in a worker, and keeps holding
// what its mode holds: its key (ByKey), its partition (ByPartition), only
// itself (Unordered); when due it is queued again at its offset's place.
// After the last attempt, Config.DeadLetter (if set) gets the message and
// the error: the message is acked only once it returned nil, and a failing
// dead letter is retried with the same waits, never dropped. Without a dead
// letter the ErrorPolicy applies. The watermark is untouched by all this:
// the message stays tracked, holding the commit point, until it is acked.
//
// On revoke or loss the session marks the partition revoking and its queue
// is dropped (Engine.dropPart, or the first worker that reaches it): queued messages are never handed out afterwards,
// count as unackable so the drain does not wait for them, and are
// redelivered to the next owner. Messages waiting for a retry are dropped
// with them.
// Handlers that ignore their context are abandoned by Stop after
// RevokeTimeout (logged): their goroutines run until they return.
package engine
