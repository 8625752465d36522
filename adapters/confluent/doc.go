// Package confluent is a Kafka consumer built on confluent-kafka-go/v2
// (librdkafka, cgo) that handles messages out of order, on many goroutines,
// and commits offsets in order: a partition's committed offset never passes
// a message whose handler has not returned. The guarantees are the
// module's (see the README); this comment says how this adapter keeps them.
//
//	c, err := confluent.NewConsumer([]string{"localhost:9092"}, "my-group", []string{"orders"},
//		confluent.WithConcurrency(64),
//		confluent.WithConfigMap(kafka.ConfigMap{"partition.assignment.strategy": "cooperative-sticky"}))
//	if err != nil { ... }
//	err = c.Run(ctx, func(ctx context.Context, msg *kafka.Message) error {
//		return process(ctx, msg) // called concurrently
//	})
//
// Threads and who calls what. Run's goroutine is the poll goroutine: it
// calls Poll, and librdkafka calls the rebalance callback inside Poll (and
// inside kafka.Consumer.Close) on it. Every librdkafka call that changes a
// partition's fetch state (Assign, Unassign, IncrementalAssign,
// IncrementalUnassign, Pause, Resume, Seek) is made there, so none of them
// race; so is every Offer of a partition's messages to the engine (which
// never waits). The engine's Concurrency workers
// (adapters/internal/engine) run the handler; its commit loop, every
// CommitInterval, calls StoreOffsets, Commit and CommitOffsets, which
// librdkafka allows from any thread. One more goroutine forwards
// librdkafka's log lines to the Logger. Whether a partition is being
// revoked is the engine's state (Part.Revoked), and so is whether it should
// be fetched (the engine's flow control); the poll goroutine keeps only what
// it needs to route a partition's messages, dropped at the revoke.
//
// A message's path. The poll goroutine offers each partition's messages to
// the engine (Offer, in batches of consecutive messages, at most 256 or a
// sixteenth of MaxBufferedBytes, whichever comes first): the engine tracks
// what fits in the window and keeps the rest, and decides which partitions
// to pause (window full, or over their share of MaxBufferedBytes). After
// every Poll (which waits at most 10ms while a partition is paused) the
// poll goroutine applies those decisions: Pause, or Resume and Seek to
// where the partition stands (librdkafka otherwise refetches a resumed
// partition only after about a second; what it fetched before the pause
// and fetches again is dropped by the engine as already offered). Its local
// queue is bounded by queued.max.messages.kbytes, a quarter of
// MaxBufferedBytes unless a ConfigMap sets it. A partition EOF lets the
// commit point pass trailing transaction markers (enable.partition.eof).
// Every CommitInterval the poll goroutine refreshes each partition's log
// end from librdkafka's cached high watermark (no request), so Stats' Lag
// is fresh, and a watchdog reseeks (Resume and Seek) a partition that is
// assigned, not paused, has room, is behind its log end and received
// nothing for several fetch waits and ticks: librdkafka can leave a
// partition assigned and never fetched (#5591).
//
// Rebalances. Both protocols work: EAGER (range, roundrobin: Assign and
// Unassign) and COOPERATIVE (cooperative-sticky: IncrementalAssign and
// IncrementalUnassign). The protocol is read once per assignment, never in
// the revoke callback nor while closing (both can hang inside librdkafka).
// On assign, the callback reads the committed offsets and their metadata
// and the partitions' log starts and ends (batched ListOffsets requests; the
// last stable offset for Latest when reading committed). Transient errors
// are retried with backoff within RequestTimeout; authorization and
// configuration errors stop Run with ErrAssign. Partitions whose reads still
// fail for a transient reason are assigned paused (at the log start: an
// EAGER member must assign its whole set in the callback) and do not stop
// Run: the poll loop reads their starts again with backoff (each read on a
// goroutine of its own, so the other partitions are polled meanwhile, and
// bounded by a quarter of RequestTimeout), logged at Warn once, and once
// read registers them, Resumes them and Seeks them to their starts; a
// revoke or loss before then forgets them. It applies the start policy
// (StartOffset) to partitions without a commit and to those whose commit is
// below the log start or above the log end (logged at Warn), Resumes them (the pause flag
// survives an unassign in librdkafka) and assigns them at exactly those
// offsets. On revoke, the engine stops handing out their messages at once
// (without waiting for busy workers), waits at most RevokeTimeout for the
// in-flight ones, stores and commits the commit points synchronously and
// closes them (late acks are ignored); then the poll goroutine drops the
// held messages, Resumes them if paused and unassigns them. A lost
// assignment (AssignmentLost: session or poll timeout) is released without
// waiting or committing (Session.Lose): another member may own it already.
// The callback waits for nothing else.
//
// Group membership. WithInstanceID makes the member static
// (group.instance.id): Run's end commits every partition and does not leave
// the group, and a member fenced by another with its id ends Run with
// ErrFenced (librdkafka's handle is then left open: see WithInstanceID).
// WithGroupProtocol(ConsumerProtocol) speaks KIP-848
// (group.protocol=consumer). See the README's Group membership section.
//
// Commits. Offsets are stored with StoreOffsets, which librdkafka refuses
// for partitions not assigned to this member, and sent by Commit with the
// member's generation. Commit leaves out a partition whose offset did not
// move; when only its metadata changed (a slow message holds the commit
// point while the done-set above it grows), the partition is sent by
// CommitOffsets, which librdkafka does not check against the assignment.
// That commit stays fenced because it runs under the engine's commit lock,
// only for partitions the engine has not revoked (the callback revokes a
// partition in the engine, under that lock, before it unassigns it), only
// while librdkafka lists the partition in Assignment, and never while
// AssignmentLost reports a lost assignment; a coordinator gives the
// partition to another member only after this member's callback completed
// (COOPERATIVE) or after it rejoined (EAGER). A commit the coordinator
// refuses for a moment (REBALANCE_IN_PROGRESS, or ILLEGAL_GENERATION while
// librdkafka rejoins: a COOPERATIVE member rejoins in the background even
// while Run drains at shutdown) is sent again after a backoff, unless the
// assignment is lost.
//
// Commit bounds. No librdkafka call is abandoned: a commit (Commit,
// CommitOffsets) runs on the goroutine that commits, under the engine's
// commit lock, and returns when librdkafka returns, so nothing reaches the
// broker that the lock did not let through. librdkafka bounds the call
// itself: each OffsetCommit request times out after socket.timeout.ms,
// which the Consumer sets from RequestTimeout (at least FetchMaxWait + 1s),
// and is sent at most three times; a commit made while the group has no
// coordinator waits for one at most session.timeout.ms. A coordinator that
// does not answer makes a commit return at most about
// 3 x (RequestTimeout + 1s) after it started, with kafka.ErrTimedOut (nothing recorded as committed), even if
// the engine's commit timeout or a revoke ended its context earlier: the
// context is checked between calls. (librdkafka does not bound a commit
// whose coordinator it cannot connect to at all, librdkafka #3740; its own
// close waits for such a commit too.)
//
// Shutdown. When ctx ends or Close is called, the poll goroutine stops
// polling, drops the held messages (never tracked: delivered again to the
// next owner), and the session drains, stores and commits every partition
// while they are still assigned; then the assignment is revoked through
// the callback (nothing is left to commit) and the group left: a dynamic
// cooperative-sticky member unsubscribes first and serves its revokes
// before kafka.Consumer.Close (inside it, librdkafka 2.11.1 can wait for
// ever for an unassign, librdkafka #4884), other members inside Close.
// kafka.Consumer.Close itself is bounded: past SessionTimeout + 2 x
// RequestTimeout its handle is left open and Run returns ErrClient. The
// consumer handle is destroyed only after every commit call
// into it has returned, and the dead-letter producer only after every
// dead-letter produce into it has returned, including one of a handler the
// engine abandoned after RevokeTimeout (bounded by RequestTimeout).
//
// Errors. librdkafka retries most errors itself; they are logged (routine
// ones such as a connection closed by a broker at Debug). Fatal librdkafka
// errors and authentication and authorization errors stop Run with
// ErrClient, as do repeated SASL authentication failures that a broker
// reports by closing the connection. Errors wrap librdkafka's kafka.Error
// (errors.As finds it). librdkafka's own log lines go to the Logger at
// Debug, except its warnings and errors.
//
// Cost per message: one Poll (cgo), one Track (lock-free), one push to the
// engine's queue, one Ack (one atomic CompareAndSwap). Per commit tick and
// partition: a snapshot of the window, the metadata encoding, one cached
// watermark read; one StoreOffsets and one Commit for all partitions (plus
// one CommitOffsets for those whose metadata alone changed).
//
// Settings. Options cover the common settings and name the librdkafka
// property each sets; WithConfigMap passes any other property through and
// refuses, naming it, those that would break the guarantees
// (enable.auto.offset.store=true, enable.auto.commit=true, ...).
package confluent
