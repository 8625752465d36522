// Package inorder is the root of a module for Kafka consumers that process
// messages out of order on many goroutines and still commit offsets in order.
//
// A consumer that handles one partition's messages concurrently finishes them
// out of order. Committing the highest finished offset loses every slower
// message if the process dies; committing one at a time serialises
// everything. The answer is a watermark: track every offset handed out, let
// any goroutine acknowledge any offset, and commit only the contiguous prefix
// that is done.
//
// The packages:
//
//   - watermark: the core. Partition is a lock-free tracker of one
//     topic-partition's in-flight offsets and its commit point (a ring of
//     lap-tagged atomic words, one bit per offset); Tracker holds the
//     partitions of one consumer. The subpackage watermark/metadata encodes
//     the offsets done above the commit point into Kafka's commit metadata, so
//     that the next owner of a partition skips them.
//   - ordset: an ordered set of int64 held as ranges (a sorted slice while
//     written in ascending order, a B-tree once written elsewhere), for
//     sparse sets (restored offsets, snapshots, reference models).
//   - adapters/kafkago, adapters/confluent and adapters/franz: complete
//     consumers on github.com/segmentio/kafka-go,
//     github.com/confluentinc/confluent-kafka-go/v2 and
//     github.com/twmb/franz-go, with one API and one option set: group
//     membership fenced by generation, per-key or per-partition ordering
//     (WithOrdering), retries with backoff and dead-letter topics
//     (WithRetry, WithDeadLetter), OpenTelemetry metrics
//     (WithMeterProvider), TLS and SASL. They are thin layers over one
//     engine (adapters/internal/engine) that owns scheduling, ordering,
//     retries, commits and metrics; the options, written once there, are
//     generated into each adapter with their docs (internal/cmd/genoptions).
//   - kafkatest: an in-process Kafka-protocol broker for tests and examples,
//     like net/http/httptest: start it with topics, produce, and read back a
//     group's commits, state and members, or a dead-letter topic.
//   - bench and fuzz: benchmarks against the baselines and the physical limit,
//     and fuzz targets for the ordering invariants.
//
// The guarantees, for every package: the commit point never passes an offset
// that was delivered and not acknowledged, whatever the acknowledgements
// (duplicate, stale, late, never delivered, concurrent); offsets never
// delivered (compaction, transaction markers) do not hold it; it never goes
// down within an assignment; it reaches the broker within one commit interval
// once the messages below it are done; memory per partition is bounded by the
// window; and after a crash every message not acknowledged is delivered
// again. With ByKey ordering, calls for one key never overlap and start in
// offset order; a message is acknowledged only once its handler succeeded,
// it was dead-lettered (broker acknowledgement), or the error policy acks
// it.
//
// This package has no code.
package inorder
