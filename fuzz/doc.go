// Package fuzz holds the go test -fuzz targets of the ordering invariants
// (package fuzz_test): each drives the code from a byte program against a
// plain, obviously correct model.
//
//   - FuzzOrdset: ordset.Set against a map[int64]bool.
//   - FuzzPartition: a sequential watermark.Partition program (Track with
//     gaps and jumps, Skip, every kind of Ack, Restore, Close, Drain,
//     WaitRoom) against a model of pending offsets.
//   - FuzzPartitionConcurrent: acks split across 2-4 goroutines over a
//     window small enough to wrap, late duplicates replayed; a checker
//     verifies the safety invariant while it runs.
//   - FuzzTracker: assign, revoke and re-assign while goroutines holding the
//     old partitions keep acking.
//   - FuzzMetadataRoundTrip, FuzzMetadataDecode: the commit-metadata codec.
//
// Plain go test ./fuzz/ runs the seed corpus in testdata/fuzz/. Fuzz one
// target longer locally with
//
//	go test -run '^$' -fuzz='^FuzzPartitionConcurrent$' -fuzztime=10m ./fuzz/
//
// and every target in turn with ./fuzz/run.sh (FUZZTIME=10s by default).
// A crasher is written to testdata/fuzz/<Target>/ and then replays under
// plain go test: commit it with the fix.
package fuzz
