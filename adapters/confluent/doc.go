// Package confluent is a Kafka consumer built on confluent-kafka-go/v2
// (librdkafka, cgo) that handles messages out of order, on many goroutines,
// and commits offsets in order: a partition's committed offset never passes
// a message whose handler has not returned.
//
//	c, err := confluent.NewConsumer([]string{"localhost:9092"}, "my-group", []string{"orders"},
//		confluent.WithConcurrency(64),
//		confluent.WithConfigMap(kafka.ConfigMap{"partition.assignment.strategy": "cooperative-sticky"}))
//	if err != nil { ... }
//	err = c.Run(ctx, func(ctx context.Context, msg *kafka.Message) error {
//		return process(ctx, msg) // called concurrently
//	})
//
// Guarantees (the same as adapters/kafkago). At least once: after a crash,
// every message not handled before the last commit is delivered again.
// Commits are issued only for partitions this member owns: offsets are
// stored with StoreOffsets (which librdkafka refuses for partitions not
// assigned) and sent by Commit with the member's generation. Commit sends
// only offsets that moved; a commit whose offset stayed but whose metadata
// grew (a slow message holds the commit point) is sent by CommitOffsets,
// only while the engine has not revoked the partition, librdkafka lists it
// as assigned and the assignment is not lost (see commitExplicit in
// loop.go). Commits never go below a commit this member made for the
// same assignment, and happen every CommitInterval and synchronously in the
// revoke callback and at shutdown. A commit that the coordinator does not
// answer gives up after the engine's commit timeout (nothing is recorded as
// committed; the librdkafka request may still complete later). The commit metadata records which
// messages above the commit point are already handled, so the next owner
// (or this process after a restart) does not hand them to the handler
// again. Transaction markers, aborted records and compacted offsets are
// gaps that never hold the commit point; a marker at the very end of a
// partition is covered by librdkafka's partition EOF (enable.partition.eof).
//
// Rebalances. Both protocols work: EAGER (range, roundrobin: Assign and
// Unassign of everything) and COOPERATIVE (cooperative-sticky:
// IncrementalAssign and IncrementalUnassign of what moves). The protocol is
// read once per assignment, never in the revoke callback nor while closing
// (both can hang inside librdkafka); until then it is the one the
// configuration selects. On assign, the committed offsets and their
// metadata are read and the partitions are assigned at exactly those
// offsets; a partition whose committed offset cannot be read fails Run
// with ErrAssign. On revoke, the partitions' messages stop being handed out
// at once (without waiting for busy workers: queued ones are dropped, a
// hand-off waiting for a worker is cancelled), in-flight ones get at most
// RevokeTimeout, the commit points are stored and committed, then the
// partitions are closed (late acks are ignored). A lost assignment (AssignmentLost) is closed
// without committing: another member may own it already.
//
// Design. librdkafka delivers every partition through one Poll loop, run
// by Run's goroutine, which also runs the rebalance callback; it is the
// consumer's critical path, so it only polls and hands messages, in batches,
// to a feeder goroutine. The feeder tracks each message in its partition's
// watermark.Partition and queues it to the Concurrency workers of the
// shared engine (adapters/internal/engine), which also runs the commit
// loop. A partition whose window is full must not stall the others: its
// message is kept, the partition is Paused, and the feeder delivers it once
// the window has room, then Resumes (and Seeks to where the partition
// stands, which makes librdkafka fetch it again at once). A newly assigned
// partition is always Resumed (a partition that moved away while paused
// comes back with room).
//
// Cost per message: one Poll (cgo), 1/256 of a channel send to the feeder,
// one Track (lock-free), one channel send to the workers, one Ack (one
// atomic CompareAndSwap); per commit tick and
// partition, a snapshot of the window, the metadata encoding, one
// StoreOffsets and one Commit for all partitions (plus one CommitOffsets
// for those whose metadata alone changed).
//
// Settings. Options cover the common settings and name the librdkafka
// property each sets; WithConfigMap passes any other property through and
// refuses, naming it, those that would break the guarantees
// (enable.auto.offset.store=true, enable.auto.commit=true, ...).
package confluent
