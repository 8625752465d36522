// Package franz is a Kafka consumer built on twmb/franz-go (kgo) that
// handles records out of order, on many goroutines, and commits offsets in
// order: a partition's committed offset never passes a record whose handler
// has not returned.
//
//	c, err := franz.NewConsumer([]string{"localhost:9092"}, "my-group", []string{"orders"},
//		franz.WithConcurrency(64),
//		franz.WithClientOptions(kgo.DialTLSConfig(tlsCfg), kgo.SASL(mech))) // optional
//	if err != nil { ... }
//	err = c.Run(ctx, func(ctx context.Context, rec *kgo.Record) error {
//		return process(ctx, rec) // called concurrently
//	})
//
// Guarantees (see the module's README for the full list). At least once:
// after a crash, every record not handled before the last commit is
// delivered again. Commits follow the handlers every CommitInterval and at
// once on revoke and shutdown; they go through kgo's CommitOffsetsSync, so
// kgo stamps each with the member id and generation of the moment (a member
// fenced out of the group is refused by the broker), and every
// per-partition error is read. No commit is issued for a partition after
// its revoke, and none at all for a lost assignment. Each commit carries
// the leader epoch of the record before the committed offset (the last one
// it covers, as Kafka's own consumers commit) and the
// commit metadata (written through a PreCommitFnContext hook in place of
// the member id kgo writes by default), which records the records above the
// commit point already handled: the next owner, or this process after a
// restart, does not hand them to the handler again. Transaction markers,
// aborted records (read_committed, the default) and compacted offsets are
// gaps: they never hold the commit point, including a marker at the very
// end of a partition. One limitation: a record batch emptied by compaction
// at the end of a partition is invisible to kgo's users, so that offset
// holds the commit point until a later record arrives.
//
// What it does with kgo. The client is a group consumer with
// BlockRebalanceOnPoll, auto-commit disabled and control records kept. Run
// polls (PollFetches) on its own goroutine and offers each partition's
// records to the engine without ever waiting (engine Offer); a transaction
// marker, which kgo hands out as a control record because of
// KeepControlRecords, is a gap at its exact offset. The engine tracks what
// fits in the window, keeps the rest, and decides which partitions to pause
// (window full, or over their share of MaxBufferedBytes); after each poll
// Run applies its decisions with PauseFetchPartitions and
// ResumeFetchPartitions (kgo includes a resumed partition in its next
// fetch, after the broker's in-flight one, which can take up to
// FetchMaxWait). While a partition is paused the poll also ends when the
// engine wants a change, so no timer spins. Then Run calls AllowRebalance,
// so a rebalance never waits for a handler.
//
// Fetch sizes. kgo reads and decodes a fetch response whole before the
// poll hands out any of it, so a response is at most FetchMaxBytes (1 MiB
// by default, per partition and per response; kgo's own response default
// is 50 MiB), and the first fetches of a Run and of each assignment ask for
// 64 KiB, doubling with each poll that returns records: the handlers start
// after a small response and run while the next one is fetched and
// decoded. WithClientOptions(kgo.FetchMaxBytes(n)) raises the response's
// size (fewer round trips on a slow link); it may not lower it below
// FetchMaxBytes.
//
// Rebalances, eager (kgo.RangeBalancer, ...) or cooperative (kgo's default
// cooperative-sticky balancer). At an assignment, kgo's OnOffsetsFetched
// gives the committed offsets and their metadata, and AdjustFetchOffsetsFn
// sets the start of each new partition: the commit, or, without one or
// when it is outside the log (logged), the log start or end by
// WithStartOffset (the last stable offset for Latest under
// read_committed); the metadata restores the records already handled. In
// OnPartitionsRevoked (also called by kgo when Run ends, before it leaves
// the group) the revoked partitions' records not handed out are dropped,
// the in-flight ones get at most RevokeTimeout to finish, the commit points
// are committed synchronously and the partitions closed, so late
// handler results are ignored. OnPartitionsLost drops the partitions
// without committing.
//
// Group membership. WithInstanceID makes the member static (kgo.InstanceID):
// Run's end commits every partition and does not leave the group, and a
// member fenced by another with its id ends Run with ErrFenced.
// WithGroupProtocol(ConsumerProtocol) speaks KIP-848 (kgo.ServerSideBalancer).
// See the README's Group membership section.
//
// Options: the shared ones (same names, defaults and validation in every
// adapter of the module) map onto kgo's (see the var block of options.go);
// WithClientOptions passes any other kgo option through, refusing by name
// those that would break the guarantees.
//
// Cost per record: one Track (lock-free), one hand-off to the workers, one
// Ack (one atomic CompareAndSwap); per commit tick and partition, a
// snapshot of the window and the metadata encoding.
package franz
