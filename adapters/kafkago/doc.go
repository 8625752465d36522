// Package kafkago is a Kafka consumer built on segmentio/kafka-go that
// handles messages out of order, on many goroutines, and commits offsets in
// order: a partition's committed offset never passes a message whose handler
// has not returned.
//
//	c, err := kafkago.NewConsumer([]string{"broker:9093"}, "my-group", []string{"orders"},
//		kafkago.WithConcurrency(64),
//		kafkago.WithTLS(&tls.Config{RootCAs: pool}),
//		kafkago.WithSASL(plain.Mechanism{Username: "app", Password: secret}))
//	if err != nil { ... }
//	go func() { <-stopSignal; c.Close() }() // or cancel Run's context
//	err = c.Run(ctx, func(ctx context.Context, msg kafka.Message) error {
//		return process(ctx, msg) // called concurrently
//	})
//
// The guarantees (at least once, in-order commits, commit metadata that
// spares the next owner the messages already handled) are the module's; see
// its README. What this adapter adds or limits:
//
// Commits are fenced. They go through kafka.Client.OffsetCommit with the
// generation id and member id of the member's current generation (a Reader
// with GroupID can commit partitions it no longer owns and rewind them), and
// every per-partition error is read: a stale generation comes back as a
// per-partition ILLEGAL_GENERATION with no request error. A refused commit
// (REBALANCE_IN_PROGRESS, a coordinator moving) is retried at the next
// commit tick; a commit never goes below one this member made in the same
// generation and is never sent for a partition it no longer owns.
//
// Group membership. The member speaks the classic group protocol itself
// (JoinGroup, SyncGroup, Heartbeat, LeaveGroup through kafka-go's Transport,
// the assignors are kafka-go's range and round-robin balancers) rather than
// through kafka-go's ConsumerGroup, whose subscription metadata librdkafka
// and Java members cannot read and which cannot read theirs (see group.go):
// it shares a group with librdkafka, Java and kafka-go members, as leader or
// not, with the range or round-robin assignor (cooperative-sticky needs an
// incremental protocol kafka-go's balancers do not have). WithInstanceID
// makes the member static (group.instance.id, KIP-345; kafka-go's
// ConsumerGroup has none): a restart within the session timeout gets the
// same partitions back without a rebalance, Run's end commits without
// leaving, and a member fenced by a duplicate id ends Run with ErrFenced.
//
// Generations. The member rebalances eagerly: when a generation ends, every
// partition stops fetching, in-flight messages get at most RevokeTimeout to
// finish (the member keeps heartbeating meanwhile), the commit points are committed synchronously and
// the partitions are closed, so late acks are ignored. The group leader
// assigns from fresh per-topic metadata (a deleted topic has no partitions;
// the others are assigned) and rejoins when a partition count it assigned
// from changes (WithPartitionWatchInterval, default 5s): partitions added
// to a topic are consumed after that rebalance, and a deleted topic is
// logged and dropped from the assignment.
//
// Security. WithTLS and WithSASL (kafka-go's sasl/plain and sasl/scram
// mechanisms: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) apply to every
// connection: group membership, fetches, commits, offset requests (kafka-go's
// Transport) and metadata requests (kafka-go's Dialer); WithClientID names every request. What retrying cannot fix
// stops Run with an error wrapping ErrClient and naming it: SASL
// authentication refused, a TLS handshake the certificates fail, a group,
// topic or cluster authorization refused. (A plaintext client on a TLS
// listener, or one without SASL on a SASL listener, only sees connections
// closed, like a network failure, and retries.) Transient failures (a broker
// unreachable, a coordinator or leader moving, a rebalance in progress, a
// deleted topic) are retried with backoff; fetch failures are logged at
// Debug until they have lasted 5s, then at Warn.
//
// Lifecycle. Run may be called again after it returns; Close stops a
// running Run as its context would, waits until it has returned (drained,
// committed, left the group) and makes every later Run return ErrClosed;
// called from inside a handler it does not wait (the Run waits for that
// handler).
// Stats reports, per owned partition, the commit point, the committed
// offset, LogEnd and Lag: LogEnd is the high watermark of the last fetch
// response, and is read from the broker at each commit tick for a
// partition whose fetch is waiting (paused by the engine), so a partition
// held by a slow message reports its lag.
//
// Fetching. One fetch loop per assigned partition sends Fetch requests
// through kafka-go's Transport (see fetch.go for why not a Reader) and
// offers each response's messages to the engine, which tracks and queues
// them for the Concurrency workers. The loop fetches again only when the
// engine lets it (WaitFlow): not while the partition's window is full or it
// holds its share of MaxBufferedBytes while the consumer is at the budget
// (back-pressure). One response of at most FetchMaxBytes per partition is
// held at a time, on top of the budget. Transaction markers, aborted records
// (read_committed, the default) and compacted offsets are gaps that never
// hold the commit point, including a marker at the very end of a
// partition. A committed offset below the log start or above the log end
// applies the StartOffset policy (logged at Warn). One limitation:
// kafka-go's decoder drops a record batch's last offset, so a batch whose
// records at and after the fetch offset were all removed by compaction (an
// empty batch a broker keeps for producer state, say) cannot be stepped
// over; that partition stops advancing there (logged, retried with
// backoff) until the log changes. Ordinary compaction, where later batches
// follow, is not affected.
//
// Cost per message: one Track (lock-free), one queue push to the workers,
// one Ack (one atomic CompareAndSwap); per commit tick and partition, a
// snapshot of the window (O(window/40) words) and the metadata encoding.
package kafkago
