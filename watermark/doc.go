// Package watermark tracks the offsets a Kafka consumer has handed out and
// computes, lock-free, the offset it may commit: the contiguous prefix of the
// partition that is done.
//
// A consumer that handles one partition's messages on many goroutines
// finishes them out of order. Committing the highest finished offset loses
// every slower message if the process dies; committing one at a time
// serialises everything. A Partition instead records every delivered offset
// (Track, from the fetch loop), lets any goroutine acknowledge any offset
// (Ack), and answers the commit point (Committable): every offset below it is
// acked or a gap.
//
// # Guarantees
//
//   - Safety: the commit point never passes an offset that was tracked and not
//     acked, whatever the acks: duplicate, stale, late (after Close or after
//     the window has wrapped), never tracked, or concurrent with anything.
//   - Gaps are done: offsets skipped between two tracked ones (compaction,
//     transaction markers, aborted records) do not hold the commit point; Skip
//     covers a trailing gap.
//   - Monotonic: Committable never decreases.
//   - Liveness: once every tracked offset below X is acked, Committable() >= X.
//   - Bounded: memory is the window (1.6 bits per offset) plus O(ranges) for a
//     restored set; a full window is back-pressure (ErrWindowFull, TrackWait).
//
// # Cost
//
// Ack is a tag-checked CompareAndSwap on one word plus two loads of a
// read-mostly cache line (and of the high mark, only for the newest word); it
// never locks or allocates. Track is a few comparisons and one atomic store
// (plus one store per 40 offsets); TrackBatch tracks a fetch batch with a
// comparison per offset and one atomic store of the high mark per batch, and
// TrackRange a batch without gaps in a few operations per 40 offsets.
// Committable moves over done words, 40 offsets per step. See Partition for
// the algorithm.
//
// # Concurrency
//
// One goroutine per partition calls Track, TrackWait, TrackBatch,
// TrackRange, Skip, WaitRoom and Restore; any goroutine may call the rest.
// A Tracker maps topic-partitions to their Partition for a consumer with
// many partitions.
package watermark
