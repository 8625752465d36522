// Package engine is the client-agnostic machinery the Kafka adapters share
// (adapters/kafkago, adapters/confluent, adapters/franz): the intake and
// flow control of fetched messages, a scheduler of lanes and a pool of
// workers that run the handler, per-partition tracking with
// watermark.Partition, the commit loop with commit metadata, the drain on
// revoke, retries and dead letters, the handler error policy, statistics
// and metrics. An adapter translates its client's events into engine calls
// and applies the engine's answers on the goroutine its client requires;
// it keeps no partition state and no flow control of its own.
//
// Life cycle, as an adapter drives it:
//
//	e := engine.New(cfg, handler, key) // once per Run; key reads a message's key
//	e.SetSize(size)                    // bytes of a message, for MaxBufferedBytes
//	e.Start(ctx)                       // workers
//	s := e.NewSession(commitFunc)      // per assignment (kafka-go: per generation); starts the commit loop
//	p, _ := s.Assign(tp, committed, metadata, logEnd) // restore from commit metadata
//	... after each fetch: s.Offer(p, offsets, msgs, end)  // never blocks
//	    and e.ApplyFlow(pauseOrResume) on the client's goroutine
//	    (or e.WaitFlow(ctx, p) in a fetch loop per partition)
//	s.Revoke(ctx, tps...)              // drain, commit, close, ≤ RevokeTimeout
//	s.Lose(tps...)                     // assignment lost: close without drain or commit
//	s.Close(ctx)                       // revoke everything, stop the commit loop
//	e.Stop()                           // stop workers once no session is left (waits ≤ RevokeTimeout)
//
// Each partition (Part) is one state machine, Part.State:
// assigned → active ⇄ paused → revoking → closed, or lost from any state
// but closed. The Part is its only writer; adapters ask it (State,
// Revoked, Paused, Next) rather than keep their own copy. Revoked is true
// from the first moment of a revoke or loss: queued messages of the
// partition are no longer handed to the handler.
//
// Intake and flow (flow.go). Offer takes every fetched message: what fits
// in the partition's window is tracked and queued at once; the rest waits
// in the partition's backlog, tracked in order as acks make room. Messages
// below what was offered before (a refetch) are dropped and counted. The
// engine wants a partition paused while it has a backlog, or while the
// consumer holds MaxBufferedBytes or more (key, value and headers of the
// messages fetched and not finished) and the partition holds at least its
// share of it (the budget over the partitions owned); it resumes with some
// hysteresis. ApplyFlow reports the changes to the adapter, which pauses
// and resumes the partitions in its client and so records the Paused state.
//
// Revoke budget: a revoke (or Close) ends within RevokeTimeout of the
// call. The drain may use the first three quarters; the commit, with its
// retries, has until the end (at least the last quarter). A periodic
// commit in flight is cancelled, not waited for. A commit at revoke that
// the coordinator refuses, or whose request fails, is retried with backoff
// (partitions that did not land only) until the budget ends, unless the
// CommitFunc marked the refusal ErrFenced; each try is logged at Debug
// level, a final failure at Warn level with partitions and offsets. Once
// the partition is closed (late acks ignored), the context of its calls
// still running is cancelled: a handler that honours it stops there.
//
// The commit loop ticks every CommitInterval: the stuck watchdog samples
// each partition (no cost per message): a commit point that has not moved
// for StuckThreshold while messages are pending is logged at Warn level with
// its offset, once per episode, and its recovery at Info level; then the
// periodic commit (bounded by CommitTimeout).
//
// Concurrency: Offer for one partition must come from one goroutine at a
// time (the partition's fetch side); ApplyFlow from the client's goroutine;
// everything else is safe for concurrent use. Commits of one session are
// serialised, so a commit never overtakes a later one, never goes below
// what the session already committed for that partition, and is never
// issued for a partition after it was closed or lost.
//
// Scheduling (sched.go). Each topic-partition has a lane that outlives its
// assignments: a partition revoked and assigned again (an eager rebalance
// does this) gets the same lane, whose calls still running from the earlier
// assignment keep their keys (ByKey) or the partition (ByPartition), so
// the new assignment's messages of those wait for them. What a lane lets
// start depends on Config.Ordering: Unordered, any queued message (a FIFO);
// ByPartition, the oldest, once the lane's previous call returned; ByKey,
// for each key (compared by bytes) with no call running, its oldest
// message, and any keyless message unless KeylessOrdered (then the keyless
// messages are one key). ByKey keeps the partition's messages in one
// arrival queue; a key gets a queue of its own only while it is busy (a
// call running or a retry waiting), for the messages met behind it, and
// loses it when it is idle and empty.
//
// A free worker takes from the lane with the fewest handler calls running
// among those with a message that may start, round-robin among equals;
// within the lane, the lowest offset that may start (which also moves the
// commit point soonest). Each decision costs O(1) (amortised: ByKey parks
// each message met behind a busy key once), plus O(log k) for ByKey with k
// idle keys holding parked messages, under one lock shared with the intake
// (one lock per offered batch; ByKey hashes the keys before it takes the
// lock, 64 at a time); a worker releases its finished message and takes
// the next in one critical section.
//
// Runs (Unordered and ByKey). A worker whose handler calls are short takes
// a run of up to 64 messages of the lane it chose, sized to about 20µs of
// handler time from how long its previous calls took (a handler slower than
// that gets one message at a time), and only while no worker is parked: one
// lock and one wake-up decision per run instead of per message. An
// Unordered run's messages are reserved in the lane's queue blocks under
// the lock, not copied, and read there by their worker (sched.reserveMore,
// workerRun.job): a block is not reused while a run reads it
// (qblock.readers), and a retry inserted in front of the queue moves the
// head's messages off such a block. A worker that finds nothing
// to take steals the messages of another worker's run that its worker has
// not reached yet, one per visit, so no message waits behind a slow call
// while a worker is free. A ByKey run holds distinct keys (so any of its
// messages may be stolen), and its worker marks each call finished as it
// returns (an atomic store, workerRun.finished): every visit to the
// scheduler first releases the finished calls of the runs still running
// (runq.reap), so when a worker chooses its next message no key is held,
// nor counted running, by a call that returned, and a call that hangs holds
// only its own key.
//
// Batches (NewBatch, batchhandler.go). With a batch handler a worker takes
// up to Config.BatchSize messages per visit to the scheduler
// (sched.takeBatch), and, holding fewer, waits up to BatchWait for more
// (counted as spinning meanwhile, so a push does not wake another worker
// for what it can take); a push that makes enough messages ready to fill
// it ends the wait at once (runq.fillWake), a trickle does not. What a
// batch may hold follows the ordering: Unordered, any messages across
// lanes, a lane's next messages at once; ByPartition, a lane's
// consecutive messages (the lane is held while any runs); ByKey, the key's
// parked messages after the one taken and its later messages met in the
// lane's queue, in offset order: a key record counts its holds (messages in
// a worker, or waiting for a retry), is free at 0, and sits in its lane's
// heap iff it is free and has parked messages. No stealing. The outcome is
// applied per message before the batch is released: nil acks all; a
// BatchError acks msgs[:Index], sends msgs[Index] through the retry policy
// (failOne, as run does for one message), and queues msgs[Index+1:] again
// at their offset's place without an attempt (sched.requeue: behind their
// key's earlier messages, held by the failed one if of its key); an Index
// outside the batch, any other error or a panic fails every message once.
// A message whose dead letter is next is dead-lettered alone, not handed to
// the batch handler; if that dead letter fails (ByKey, ByPartition), the
// batch's later messages are queued again, so none passes it.
// messaging.process.duration has one observation per batch call;
// inorder.batch.size records each call's size; the consumed counter and
// Handled count messages.
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
// and backlog are dropped (Engine.dropPart, or the first worker that
// reaches it): queued messages are never handed out afterwards,
// count as unackable so the drain does not wait for them, and are
// redelivered to the next owner. Messages waiting for a retry are dropped
// with them.
// Handlers that ignore their context are abandoned by Stop after
// RevokeTimeout (logged): their goroutines run until they return; the
// lane keeps their keys until then.
package engine
