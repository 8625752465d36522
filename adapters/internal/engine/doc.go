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
//	s := e.NewSession(commitFunc)   // per assignment (kafka-go: per generation); starts the commit loop
//	p, _ := s.Assign(tp, committed, metadata, logEnd)  // restore from commit metadata
//	... fetch goroutine per partition: s.Deliver(ctx, p, offset, msg), s.SkipTo(ctx, p, next) ...
//	    (or s.TryDeliver, which returns watermark.ErrWindowFull instead of waiting for room)
//	s.Revoke(ctx, tps...)           // after stopping those fetches: drain ≤ RevokeTimeout, commit, close
//	s.Close(ctx)                    // revoke everything, stop the commit loop
//	e.Stop()                        // stop workers once no session is left (waits ≤ RevokeTimeout)
//
// Concurrency: Deliver, TryDeliver and SkipTo for one partition must come from one
// goroutine (the partition's fetch loop); everything else is safe for
// concurrent use. Commits of one session are serialised, so a commit never
// overtakes a later one, never goes below what the session already
// committed for that partition, and is never issued for a partition after
// it was revoked.
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
