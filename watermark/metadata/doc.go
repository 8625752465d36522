// Package metadata encodes, in the metadata string Kafka stores with each
// committed offset, the offsets above the commit point that are already done,
// so that the next owner of the partition — this process after a restart, or
// another member after a rebalance — skips them instead of handling them again.
//
// Guarantees:
//
//   - Encode never claims an offset that is not done. When the set does not
//     fit the caller's budget (DefaultMaxBytes, the broker's default
//     offset.metadata.max.bytes), it encodes the longest prefix that fits and
//     says so (complete=false): commit anyway, never stall.
//   - Decode never panics and never returns an offset the string does not
//     encode, or one below the commit point. Metadata that is not ours, is
//     corrupt, comes from a newer format or was written for another commit
//     point is reported with an error (ErrForeign, ErrCorrupt, ErrVersion,
//     ErrMismatch) for the caller to log, and ignored. A hostile string cannot
//     make Decode allocate beyond MaxRanges ranges or inflate more than 2 MiB.
//   - The string is printable ASCII (base64url), starts with "io", carries its
//     format version and a checksum over itself and the commit point.
//
// Forms: run lengths (varints, with repetitions folded), a bitmap, either of
// them DEFLATEd, and Golomb-Rice codes of the gaps (the positions of the
// offsets not done, or the lengths of the runs, with the parameter chosen per
// set); Encode keeps the smallest. Rice codes come within a few percent of the
// entropy of offsets left undone at random (1% of 100,000: 1,368 characters,
// the bound is ~1,350). The byte layout is in format.go; a string carries the
// lowest format version that reads it (2 for rice, 1 otherwise), so readers of
// version 1 still read every other form. On every pattern of bench/cmd/metasize
// the result is never larger than Confluent Parallel Consumer's best encoding.
//
// Cost: Encode is O(ranges) plus, for raw forms over 48 bytes that rice
// codes do not beat by half, up to four DEFLATE passes over them; it
// allocates only its result. When the set does
// not fit, a bounded binary search of DEFLATE passes finds the prefix (a few
// milliseconds for a million-offset window). Decode is O(len(meta) +
// ranges): it appends the ranges, in order, to a set in ordset's slice form.
// Both are safe for concurrent use.
//
// Usage, in an adapter's commit loop and on assignment:
//
//	commit := partition.Snapshot(done)
//	meta, complete, err := metadata.Encode(commit, done, maxBytes)
//	// commit offset `commit` with `meta`; if !complete, count and log (rate-limited)
//
//	set, err := metadata.DecodeBelow(committed.Metadata, committed.Offset, logEnd)
//	if err != nil { log it; set = nil }
//	partition.Restore(set)
package metadata
