package watermark_test

// BenchmarkAckFloor measures why Ack cannot come within 1.3x of the bare
// limit of bench/cmd/compare (an atomic Or per ack, its result unused) on
// one goroutine: any ack that checks the word it sets a bit in (Ack checks
// the word's lap tag, so that a late or duplicate ack can never mark an
// offset of a newer lap done) must load the word before its atomic
// operation, and that load waits for the previous locked instruction. The
// three loops set one bit per offset of 64Ki offsets in 40-bit words, one
// goroutine, no contention, alternating in rounds in one process:
//
//   - or: one atomic Or per offset, result unused (the bare limit);
//   - load+cas: a load, then a CompareAndSwap of that word (the least a
//     checked ack does; a load, then an Or, costs the same);
//   - Ack: Partition.Ack over offsets tracked with TrackRange.
//
// Reported: ns per offset of each, and the ratios to or.
//
//	go test -run '^$' -bench AckFloor -count 5 ./watermark/

import (
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/inorder/inorder/watermark"
)

func BenchmarkAckFloor(b *testing.B) {
	const (
		n      = 1 << 16
		words  = 1 << 12 // > n/40
		bits   = 40
		rounds = 16
	)
	ring := make([]atomic.Uint64, words)
	orLoop := func() time.Duration {
		clear(ring)
		t := time.Now()
		for o := uint64(0); o < n; o++ {
			ring[o/bits%words].Or(1 << (o % bits))
		}
		return time.Since(t)
	}
	casLoop := func() time.Duration {
		clear(ring)
		t := time.Now()
		for o := uint64(0); o < n; o++ {
			w := &ring[o/bits%words]
			bit := uint64(1) << (o % bits)
			for {
				old := w.Load()
				if old&bit != 0 || w.CompareAndSwap(old, old|bit) {
					break
				}
			}
		}
		return time.Since(t)
	}
	ackLoop := func() time.Duration {
		p := watermark.NewPartition(0, watermark.WithWindow(n))
		if k, err := p.TrackRange(0, n); err != nil || k != n {
			b.Fatal(k, err)
		}
		t := time.Now()
		for o := int64(0); o < n; o++ {
			if err := p.Ack(o); err != nil {
				b.Fatal(err)
			}
		}
		d := time.Since(t)
		if c := p.Committable(); c != n {
			b.Fatalf("commit point %d, want %d", c, n)
		}
		return d
	}
	var tOr, tCAS, tAck time.Duration
	var rCAS, rAck []float64
	for range b.N {
		for range rounds {
			o, c, a := orLoop(), casLoop(), ackLoop()
			tOr, tCAS, tAck = tOr+o, tCAS+c, tAck+a
			rCAS = append(rCAS, float64(c)/float64(o))
			rAck = append(rAck, float64(a)/float64(o))
		}
	}
	ops := float64(b.N * rounds * n)
	median := func(r []float64) float64 { sort.Float64s(r); return r[len(r)/2] }
	b.ReportMetric(float64(tOr.Nanoseconds())/ops, "or-ns/offset")
	b.ReportMetric(float64(tCAS.Nanoseconds())/ops, "load+cas-ns/offset")
	b.ReportMetric(float64(tAck.Nanoseconds())/ops, "Ack-ns/offset")
	b.ReportMetric(median(rCAS), "load+cas/or")
	b.ReportMetric(median(rAck), "Ack/or")
	b.ReportMetric(0, "ns/op")
}
