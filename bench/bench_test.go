package bench_test

// Run: go test -run '^$' -bench . -cpu 1,2,4 ./bench/
// (see the package documentation for benchstat).

import (
	"testing"

	"github.com/inorder/inorder/bench"
)

func runGroup(b *testing.B, group string) {
	for _, c := range bench.Suite() {
		if c.Group == group {
			b.Run(c.Name(), c.F)
		}
	}
}

// BenchmarkAck: one op is one Ack by one of GOMAXPROCS goroutines.
func BenchmarkAck(b *testing.B) { runGroup(b, "Ack") }

// BenchmarkTrack: one op is one Track by the single tracking goroutine.
func BenchmarkTrack(b *testing.B) { runGroup(b, "Track") }

// BenchmarkCommittable: one op is one Committable by one of GOMAXPROCS
// goroutines while the commit point is held by a stuck head.
func BenchmarkCommittable(b *testing.B) { runGroup(b, "Committable") }

// BenchmarkE2E: one op is one offset through producer, GOMAXPROCS ackers and
// committer.
func BenchmarkE2E(b *testing.B) { runGroup(b, "E2E") }

// BenchmarkMemory reports bits and bytes per in-flight offset (a full
// default window per partition, nothing acked).
func BenchmarkMemory(b *testing.B) {
	for _, im := range bench.Trackers {
		b.Run("impl="+im, func(b *testing.B) { bench.MemoryBench(b, im) })
	}
}
