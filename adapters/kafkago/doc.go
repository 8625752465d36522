// Package kafkago is a Kafka consumer built on segmentio/kafka-go that
// handles messages out of order, on many goroutines, and commits offsets in
// order: a partition's committed offset never passes a message whose handler
// has not returned.
//
//	c, err := kafkago.NewConsumer([]string{"localhost:9092"}, "my-group", []string{"orders"},
//		kafkago.WithConcurrency(64))
//	if err != nil { ... }
//	err = c.Run(ctx, func(ctx context.Context, msg kafka.Message) error {
//		return process(ctx, msg) // called concurrently
//	})
//
// Guarantees. At least once: after a crash, every message not handled
// before the last commit is delivered again. Commits are issued only by the
// member that owns the partition in the current generation (fenced by
// generation id and member id, every per-partition error checked), never go
// below a commit this member made in the same generation, and happen every
// CommitInterval and at once on rebalance and shutdown. The commit metadata
// records which messages above the commit point are already handled, so the
// next owner (or this process after a restart) does not hand them to the
// handler again. Transaction markers, aborted records (WithReadCommitted) and
// compacted offsets are gaps: they never hold the commit point, including a
// marker at the very end of a partition. One limitation: kafka-go's decoder
// drops a record batch's last offset, so a batch whose records at and after
// the fetch offset were all removed by compaction (an empty batch a broker
// keeps for producer state, say) cannot be stepped over; that partition
// stops advancing there (logged, retried with backoff) until the log
// changes. Ordinary compaction, where later batches follow, is not
// affected.
//
// Design. Group membership uses kafka-go's ConsumerGroup/Generation API (a
// Reader with GroupID can commit partitions it no longer owns and rewind
// them). One fetch loop per assigned partition sends Fetch requests through
// kafka-go's Transport (see fetch.go for why not a Reader), tracks each
// delivered offset in a watermark.Partition and queues the message for the
// Concurrency workers. A partition whose window is full stops fetching
// until its oldest message is handled (back-pressure). When a generation
// ends, fetching stops, in-flight messages get at most RevokeTimeout to
// finish (the member keeps heartbeating meanwhile, so a drain longer than
// the session timeout does not get it evicted), the commit points are
// committed synchronously and the partitions are closed, so late acks are
// ignored.
//
// Cost per message: one Track (lock-free), one channel send to the workers,
// one Ack (one atomic CompareAndSwap); per commit tick and partition, a
// snapshot of the window (O(window/40) words) and the metadata encoding.
package kafkago
