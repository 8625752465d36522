// Package bench compares the watermark tracker with the ways a user would
// otherwise track in-flight offsets, in the same run, and with the physical
// limits of the hardware:
//
//   - btree: the original design, pending offsets in a mutex-guarded ordered
//     set (google/btree BTreeG[int64]); the commit point is its minimum.
//   - heap: a mutex-guarded container/heap of pending offsets; Ack marks an
//     offset done in a map and pops the done offsets off the head.
//   - actor: one goroutine owns the ordered sets and is fed track and ack
//     messages by a channel (the GenServer of the original); it publishes the
//     commit point in an atomic.
//   - or: a bare atomic.Uint64.Or per ack over a ring with the watermark's
//     geometry and access pattern (the limit of Ack); its Track initialises
//     words and stores the high mark as the watermark's does (the limit of
//     a tracker end to end).
//   - add: a bare atomic.Int64.Add on one shared word per ack.
//
// Workloads (see newWorkload): inorder, random, stuck, gaps, partitions;
// each runs at GOMAXPROCS acking goroutines, set with -cpu. Offsets are never
// handed out by a shared counter: each goroutine acks its own precomputed
// share of a tracked batch. E2E runs one producer, N ackers and a committer
// end to end; Memory measures bytes per in-flight offset.
//
// The benchmarks are named by parameter, each next to its baselines:
//
//	BenchmarkAck/workload=random/impl=watermark-2
//	BenchmarkAck/workload=random/impl=btree-2
//
// Rerun them and compare two runs with benchstat
// (golang.org/x/perf/cmd/benchstat):
//
//	go test -run '^$' -bench . -cpu 1,2,4 -count 10 ./bench/ | tee new.txt
//	go run golang.org/x/perf/cmd/benchstat@latest old.txt new.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl new.txt # implementations side by side
//
// or print the whole comparison as one table (and write bench/results/)
// with
//
//	go run ./bench/cmd/compare
//
// The machines this runs on are shared and noisy: compare within one run and
// quote ratios, not absolute times.
package bench
